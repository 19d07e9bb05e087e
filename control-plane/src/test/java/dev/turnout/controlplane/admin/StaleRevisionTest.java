package dev.turnout.controlplane.admin;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.RollbackMigrationRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.TestConfigs;
import dev.turnout.controlplane.store.FileMigrationStore;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A command decided on a migration that another writer moved on meanwhile: ABORTED, naming both revisions. */
class StaleRevisionTest {
  @TempDir Path dir;

  private static Migration awaitTerminal(ControlPlane plane) throws InterruptedException {
    for (int i = 0; i < 500; i++) {
      Migration m = plane.migrator().get("a1b2c3d4").orElseThrow();
      if (m.phase().isTerminal()) {
        return m;
      }
      Thread.sleep(10);
    }
    throw new AssertionError("not rolled back: " + plane.migrator().get("a1b2c3d4"));
  }

  @Test
  void aRollbackReadAtARevisionTheStoreNoLongerHolds_isAborted_andARetryDecidesOnTheStoresRevision() throws Exception {
    Instant t0 = Instant.parse("2026-11-27T10:00:00Z");
    FileMigrationStore journal = new FileMigrationStore(dir);
    Migration m = journal.save(Migration.plan("a1b2c3d4", new Migration.Spec("orders",
        new ServerAddress("127.0.0.1", 5999), new ServerAddress("127.0.0.1", 5998), Migration.Options.defaults()), t0));
    m = journal.save(m.to(Phase.PREFLIGHT, t0.plusSeconds(1), ""));
    Migration halted = journal.save(m.with(m.progress().withError("source unreachable"))
        .to(Phase.HALTED, t0.plusSeconds(2), "halted for an operator"));

    try (ControlPlane plane = ControlPlane.start(TestConfigs.config(dir, java.time.Duration.ofSeconds(5),
        List.of(database("orders", 15432, "127.0.0.1:5999"))))) {
      Migration movedOn = journal.save(halted.note(t0.plusSeconds(3), "written by another process"));
      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext().build();
      try {
        AdminGrpc.AdminBlockingStub admin = AdminGrpc.newBlockingStub(channel);

        assertThatThrownBy(() -> admin.rollbackMigration(RollbackMigrationRequest.newBuilder().setId("a1b2c3d4").build()))
            .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.ABORTED);
              assertThat(e.getStatus().getDescription()).isEqualTo("migration a1b2c3d4 of database 'orders' changed"
                  + " meanwhile: this change to ROLLING_BACK was read at revision 3, the store holds revision 4"
                  + " (HALTED); nothing was saved, read it again");
            });
        assertThat(journal.loadAll()).as("nothing saved, no runner started").containsExactly(movedOn);
        assertThat(plane.migrator().get("a1b2c3d4")).as("the store's revision is the latest now").contains(movedOn);

        admin.rollbackMigration(RollbackMigrationRequest.newBuilder().setId("a1b2c3d4").build());
        Migration back = awaitTerminal(plane);
        assertThat(back.phase()).isEqualTo(Phase.ROLLED_BACK);
        assertThat(back.history()).anySatisfy(e -> assertThat(e.note()).isEqualTo("written by another process"));
      } finally {
        channel.shutdownNow();
      }
    }
  }
}
