package dev.turnout.it;

import dev.turnout.controlplane.demo.CdcConsumer;

import dev.turnout.controlplane.demo.Writer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import dev.turnout.migrator.SlotPosition;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Moving a live database to its physical standby while an application writes through the sidecar, on real
 * PostgreSQL 15 servers: nothing acknowledged is lost, nothing commits on the source after the fence, and a
 * rollback before promotion leaves the source routed and writable.
 */
class MigrationEndToEndTest {
  @TempDir Path dir;

  MigrationFixture f;
  PostgresServer source;
  PostgresServer target;
  ControlPlane plane;
  int appPort;

  @BeforeEach
  void setUp() throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    source = f.source;
    target = f.target;
    plane = f.plane;
    appPort = f.appPort;
  }

  @AfterEach
  void tearDown() throws Exception {
    f.close();
  }

  private Migration.Spec spec(Duration window, Duration phaseDeadline) {
    return f.spec(window, phaseDeadline);
  }

  private Migration awaitPhase(String id, Predicate<Phase> done, Duration timeout) throws InterruptedException {
    return f.awaitPhase(id, done, timeout);
  }

  private static String history(Migration m) {
    return MigrationFixture.history(m);
  }

  private static Set<Long> seqs(PostgresServer server) throws SQLException {
    return MigrationFixture.seqs(server);
  }

  private static int serverPortOf(int port, String user) throws SQLException {
    return MigrationFixture.serverPortOf(port, user);
  }

  @Test
  void aMigrationUnderWriteLoad_losesNoAcknowledgedCommit_andLeavesTheSourceFenced() throws Exception {
    try (Writer writer = new Writer(appPort, "app").start()) {
      Thread.sleep(500);
      Migration started = plane.migrator().start(spec(Duration.ofSeconds(2), Duration.ofSeconds(60)));
      awaitPhase(started.id(), p -> p == Phase.QUIESCING || p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60));
      writer.resetGap(); // the window is measured across the cutover, not the validation before it
      Migration done = awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(90));
      assertThat(done.phase()).as(history(done)).isEqualTo(Phase.COMPLETED);
      int atCompleted = writer.acknowledged().size();
      Thread.sleep(500);
      writer.close();

      System.out.printf("migration %s: write-unavailability window %.0f ms, %d acknowledged commits, %d client errors%n",
          done.id(), writer.longestGapMillis(), writer.acknowledged().size(), writer.errors());
      Set<Long> onTarget = seqs(target);
      Set<Long> onSource = seqs(source);
      assertThat(MigrationFixture.missing(writer.acknowledged(), onTarget))
          .as("every acknowledged commit is on the promoted target").isEmpty();
      assertThat(MigrationFixture.missing(onSource, onTarget))
          .as("nothing committed on the source after the final LSN").isEmpty();
      assertThat(writer.acknowledged().size()).as("commits made on the target after cutover")
          .isGreaterThan(atCompleted);
      assertThat(done.progress().finalLsn()).isPresent();
      assertThat(plane.routing().table().get("app").orElseThrow().endpoint())
          .contains(new Endpoint("127.0.0.1", target.port()));
      assertThat(serverPortOf(appPort, "app")).isEqualTo(target.port());
      assertThatThrownBy(() -> serverPortOf(source.port(), "app")).as("the source refuses the application")
          .isInstanceOf(SQLException.class).hasMessageContaining("not permitted to log in");

      plane.migrator().finalizeMigration(done.id());
      assertThatThrownBy(() -> plane.migrator().rollback(done.id(), true))
          .isInstanceOf(MigrationConflictException.class).hasMessageContaining("is finalized");
    }
  }

  @Test
  void aCdcConsumerReadingThroughTheCutover_seesEveryCommitExactlyOnce() throws Exception {
    try (Connection c = source.connect(); Statement s = c.createStatement()) {
      s.execute("select pg_create_logical_replication_slot('cdc', 'test_decoding')");
    }
    try (CdcConsumer consumer = new CdcConsumer(appPort, "cdc").start();
         Writer writer = new Writer(appPort, "app").start()) {
      Thread.sleep(500);
      Migration started = plane.migrator().start(spec(Duration.ofSeconds(2), Duration.ofSeconds(60)));
      Migration done = awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(90));
      assertThat(done.phase()).as(history(done)).isEqualTo(Phase.COMPLETED);
      Set<Long> atCompleted = new java.util.HashSet<>(writer.acknowledged());
      Thread.sleep(1000);
      writer.close();
      Set<Long> acknowledged = writer.acknowledged();
      int distinct = MigrationFixture.assertEveryCommitSeenOnce(consumer, acknowledged);

      assertThat(done.progress().slots()).extracting(SlotPosition::name, SlotPosition::plugin)
          .containsExactly(org.assertj.core.groups.Tuple.tuple("cdc", "test_decoding"));
      assertThat(done.progress().slots().get(0).confirmedLsn()).isGreaterThanOrEqualTo(done.progress().finalLsn().orElseThrow());
      long onTargetOnly = acknowledged.stream().filter(seq -> !atCompleted.contains(seq)).count();
      assertThat(onTargetOnly).as("the consumer also saw commits made on the target after cutover").isPositive();
      assertThat(consumer.connections()).as("it reconnected through the sidecar to the target").isGreaterThan(1);
      System.out.printf("cdc: %d changes, %d distinct commits, %d connections, final LSN %s, slot confirmed %s%n",
          consumer.changes().size(), distinct, consumer.connections(), done.progress().finalLsn().orElseThrow(),
          done.progress().slots().get(0).confirmedLsn());
    }
  }

  @Test
  void anOperatorRollbackWhileReplicating_leavesTheSourceRoutedAndWritable() throws Exception {
    try (Writer writer = new Writer(appPort, "app").start()) {
      Migration started = plane.migrator().start(spec(Duration.ofSeconds(60), Duration.ofSeconds(90)));
      awaitPhase(started.id(), p -> p == Phase.REPLICATING || p.isTerminal(), Duration.ofSeconds(30));

      plane.migrator().rollback(started.id(), false);
      Migration done = awaitPhase(started.id(), Phase::isTerminal, Duration.ofSeconds(30));
      Thread.sleep(300);
      writer.close();

      assertThat(done.phase()).as(history(done)).isEqualTo(Phase.ROLLED_BACK);
      assertThat(serverPortOf(appPort, "app")).isEqualTo(source.port());
      assertThat(MigrationFixture.missing(writer.acknowledged(), seqs(source)))
          .as("acknowledged commits missing on the source").isEmpty();
      assertThatThrownBy(() -> plane.migrator().finalizeMigration(started.id()))
          .isInstanceOf(MigrationConflictException.class).hasMessageContaining("only a COMPLETED migration");
    }
  }

  @Test
  void aStaleInactiveSlot_blocksPreflight_namingItAndItsRetainedWal() throws Exception {
    try (Connection c = source.connect(); Statement s = c.createStatement()) {
      s.execute("select pg_create_logical_replication_slot('forgotten_cdc', 'test_decoding')");
      s.execute("insert into writes(seq) select g from generate_series(1, 20000) g");
    }
    Migration started = plane.migrator().start(spec(Duration.ofSeconds(1), Duration.ofSeconds(30)));
    Migration done = awaitPhase(started.id(), Phase::isTerminal, Duration.ofSeconds(30));

    assertThat(done.phase()).isEqualTo(Phase.ROLLED_BACK);
    assertThat(done.progress().error()).get().asString()
        .contains("logical slot forgotten_cdc: inactive slot retaining")
        .containsPattern("retaining \\d+\\.\\d MiB of WAL \\(\\d+ bytes\\)");
    assertThat(serverPortOf(appPort, "app")).isEqualTo(source.port());
  }

  @Test
  void aSecondMigrationOfTheSameDatabase_isRefused() throws Exception {
    Migration first = plane.migrator().start(spec(Duration.ofSeconds(60), Duration.ofSeconds(90)));
    assertThatThrownBy(() -> plane.migrator().start(spec(Duration.ofSeconds(1), Duration.ofSeconds(90))))
        .isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("database 'app' already has migration " + first.id());
    plane.migrator().rollback(first.id(), false);
    awaitPhase(first.id(), Phase::isTerminal, Duration.ofSeconds(30));
  }
}
