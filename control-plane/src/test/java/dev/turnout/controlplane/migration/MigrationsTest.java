package dev.turnout.controlplane.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.MigrationStore;
import dev.turnout.migrator.ServerAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A replica that does not lead: what it says when asked, in the migrator's terms (the admin API maps them). */
class MigrationsTest {

  /** A shared store that cannot be reached now. */
  private static final MigrationStore UNREACHABLE = new MigrationStore() {
    @Override
    public Migration save(Migration migration) throws MigrationException {
      throw new MigrationException("connection refused");
    }

    @Override
    public List<Migration> loadAll() throws MigrationException {
      throw new MigrationException("connection refused");
    }
  };

  private final Migrations follower = new Migrations(UNREACHABLE, () -> {
    throw new AssertionError("a follower makes no migrator");
  }, "cp-b", () -> "cp-a (admin 10.0.0.1:18001) at epoch 3");

  @Test
  void readingWhileTheStoreIsDown_failsSayingSo() {
    assertThatThrownBy(() -> follower.get("3533eee6")).isExactlyInstanceOf(MigrationException.class)
        .hasMessage("cannot read the migrations from the store: connection refused");
    assertThatThrownBy(follower::list).isExactlyInstanceOf(MigrationException.class)
        .hasMessageStartingWith("cannot read the migrations from the store");
  }

  @Test
  void aCommand_isRefusedAsUnavailable_namingTheLeader() {
    assertThatThrownBy(() -> follower.start(new Migration.Spec("orders", new ServerAddress("10.0.0.1", 5432),
        new ServerAddress("10.0.0.2", 5432), Migration.Options.defaults())))
        .isInstanceOfSatisfying(MigrationConflictException.class,
            e -> assertThat(e.kind()).isEqualTo(MigrationConflictException.Kind.UNAVAILABLE))
        .hasMessageContaining("cp-b does not run migrations now; the leader is cp-a");
  }
}
