package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A migration that fails before QUIESCING has drained no route and fenced nothing: it ends ROLLED_BACK without
 * needing its source, so a source that does not answer cannot leave the database held by a halted migration.
 * (The AWS platform's side of this is in {@link AwsMigrationTest}.)
 */
class UnreachableSourceTest {
  @TempDir Path dir;
  MigrationFixture f;

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  @Test
  void aPreflightThatCannotReachTheSource_endsRolledBackWithoutTouchingIt_andTheNextMigrationIsAccepted()
      throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    long routeVersion = f.plane.routing().endpointVersion("app");
    f.source.stop();

    Migration first = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(30)));
    Migration done = f.awaitPhase(first.id(), p -> p.isTerminal() || p == Phase.HALTED || p == Phase.COMPLETED,
        Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(done.history()).extracting(Migration.Event::phase)
        .containsExactly(Phase.PLANNED, Phase.PREFLIGHT, Phase.ROLLING_BACK, Phase.ROLLED_BACK);
    assertThat(done.history().get(done.history().size() - 1).note())
        .startsWith("nothing to undo: the route and 127.0.0.1:" + f.source.port() + " were never changed; cause: ");
    assertThat(f.plane.routing().endpointVersion("app")).as("the route was not touched").isEqualTo(routeVersion);
    assertThat(f.plane.routing().table().get("app").orElseThrow().endpoint())
        .contains(new Endpoint("127.0.0.1", f.source.port()));

    Migration second = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(30)));
    assertThat(second.id()).as("accepted: the first one is over").isNotEqualTo(first.id());
    assertThat(f.awaitPhase(second.id(), p -> p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60)).phase())
        .isEqualTo(Phase.ROLLED_BACK);
  }
}
