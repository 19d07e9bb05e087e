package dev.turnout.it;

import dev.turnout.controlplane.demo.CdcConsumer;

import dev.turnout.controlplane.demo.Writer;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole migration, on a standby the migrator made itself with the SQL backup API, on the machine's
 * PostgreSQL 15 and on PostgreSQL 17 from Maven Central (which has no pg_basebackup): writes and a CDC
 * consumer through the sidecar across the cutover.
 */
class CrossVersionMigrationTest {
  @org.junit.jupiter.api.io.TempDir Path dir;
  MigrationFixture f;
  /**
   * A test running past a minute prints every thread, every minute (it caught AssertJ's quadratic
   * {@code containsAll} taking minutes at tens of thousands of commits; {@link MigrationFixture#missing} now).
   */
  private final StallWatch watch = StallWatch.start("CrossVersionMigrationTest", Duration.ofSeconds(60));

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
    watch.close();
  }

  @org.junit.jupiter.api.Test
  void theMigratorCreatesItsOwnReplica_onPostgres17WithoutPgBasebackup_andMovesTheDatabaseToIt() throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE, PostgresServer.pg17(), true, true);
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(120));
      Thread.sleep(300);
      writer.close();

      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      assertThat(done.history()).anySatisfy(e -> assertThat(e.note()).contains("is up"));
      assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.targetPort);
      Set<Long> onTarget = new HashSet<>();
      try (Connection c = java.sql.DriverManager.getConnection(PostgresServer.jdbcUrl(f.targetPort));
           Statement s = c.createStatement(); ResultSet rs = s.executeQuery("select seq from writes")) {
        while (rs.next()) {
          onTarget.add(rs.getLong(1));
        }
      }
      assertThat(MigrationFixture.missing(writer.acknowledged(), onTarget))
          .as("acknowledged commits missing on the target").isEmpty();
    }
  }

  @org.junit.jupiter.api.Test
  void onPostgres17_failoverSlotsSyncedToTheTarget_areVerifiedNotRecreated_andTheConsumerMissesNothing()
      throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE, PostgresServer.pg17(), true, false,
        "sync_replication_slots=on", "hot_standby_feedback=on");
    try (Connection c = f.source.connect(); Statement s = c.createStatement()) {
      s.execute("select pg_create_logical_replication_slot('cdc', 'test_decoding', false, false, true)");
      s.execute("alter system set synchronized_standby_slots = 'turnout_standby'"); // only after the base backup
      s.execute("select pg_reload_conf()");
    }
    try (CdcConsumer consumer = new CdcConsumer(f.appPort, "cdc").start();
         Writer writer = new Writer(f.appPort, "app").start()) {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
      while (!syncedOnTarget("cdc")) {
        assertThat(System.nanoTime()).as("slot cdc synced to the standby").isLessThan(deadline);
        Thread.sleep(200);
      }
      Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(90));
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      Thread.sleep(500);
      writer.close();
      Set<Long> acknowledged = writer.acknowledged();
      MigrationFixture.assertEveryCommitSeenOnce(consumer, acknowledged);
      System.out.printf("PostgreSQL 17 failover slot: %d commits, %d CDC changes%n", acknowledged.size(),
          consumer.changes().size());

      assertThat(done.history()).anySatisfy(e -> assertThat(e.note()).contains("cdc verified (synced as a failover slot"));
    }
  }

  private boolean syncedOnTarget(String slot) throws java.sql.SQLException {
    try (Connection c = f.target.connect(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
        "select synced and not temporary from pg_replication_slots where slot_name = '" + slot + "'")) {
      return rs.next() && rs.getBoolean(1);
    }
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15, 17})
  void aLiveDatabaseMovesToAReplicaTheMigratorMade_withNoLostCommitAndEveryChangeOnce(int version) throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE, version == 17 ? PostgresServer.pg17() : PostgresServer.BIN,
        true);
    try (Connection c = f.target.connect(); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select pg_is_in_recovery(), current_setting('server_version_num')")) {
      rs.next();
      assertThat(rs.getBoolean(1)).as("the replica is a standby").isTrue();
      assertThat(rs.getString(2)).startsWith(Integer.toString(version));
    }
    try (Connection c = f.source.connect(); Statement s = c.createStatement()) {
      s.execute("select pg_create_logical_replication_slot('cdc', 'test_decoding')");
    }
    try (CdcConsumer consumer = new CdcConsumer(f.appPort, "cdc").start();
         Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(500);
      Migration started = f.migrator().start(f.spec(Duration.ofSeconds(2), Duration.ofSeconds(60)));
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(90));
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      Thread.sleep(500);
      writer.close();
      Set<Long> acknowledged = writer.acknowledged();
      MigrationFixture.assertEveryCommitSeenOnce(consumer, acknowledged);

      Set<Long> onTarget = MigrationFixture.seqs(f.target);
      assertThat(MigrationFixture.missing(acknowledged, onTarget))
          .as("acknowledged commits missing on the target").isEmpty();
      assertThat(MigrationFixture.missing(MigrationFixture.seqs(f.source), onTarget))
          .as("commits on the source missing on the target").isEmpty();
      assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.target.port());
      System.out.printf("PostgreSQL %d: write gap %.0f ms, %d commits, %d CDC changes%n", version,
          writer.longestGapMillis(), acknowledged.size(), consumer.changes().size());
    }
  }
}
