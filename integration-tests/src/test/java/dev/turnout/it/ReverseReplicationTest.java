package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.controlplane.demo.CdcConsumer;
import dev.turnout.controlplane.demo.Writer;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * The way back on real PostgreSQL 15 servers (issue 19, part 2): a migration completes under a writer, the writer
 * goes on writing on the promoted target, and a rollback without consent brings every one of those writes back to
 * the old source over the reverse replication made at promotion, with the source's sequence ahead of every id the
 * target used, so the writer goes on on the source without a duplicate key, and a CDC consumer that followed the
 * database to the target and back sees every commit once (its slot on the source moved past what it had confirmed on
 * the target). And preflight checks the way back before the way forward: a table without a primary key is named,
 * and so is a source that cannot connect to the target, and the migration does not start.
 */
class ReverseReplicationTest {
  @TempDir Path dir;

  MigrationFixture f;

  /** PostgreSQL 15 (the machine's, its standby made by pg_basebackup) or 17 (Maven Central's, by the SQL backup API). */
  private void setUp(int version) throws Exception {
    f = version == 17 ? new MigrationFixture(dir, Migrator.Failpoint.NONE, PostgresServer.pg17(), true)
        : new MigrationFixture(dir, Migrator.Failpoint.NONE);
  }

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15, 17})
  void aRollbackAfterPromotion_withoutConsent_bringsEveryWriteOnTheTargetBackToTheSource(int version) throws Exception {
    setUp(version);
    try (Connection c = f.source.connect(); Statement s = c.createStatement()) {
      s.execute("select pg_create_logical_replication_slot('cdc', 'test_decoding')");
    }
    // A CDC consumer through the sidecar, from the source to the target at the cutover and back at the rollback,
    // resuming each time from its slot's position (see CdcConsumer): it sees every commit once.
    try (CdcConsumer consumer = new CdcConsumer(f.appPort, "cdc", true).start();
         Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(300);
      Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(60));
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      assertThat(done.progress().reverse()).as(MigrationFixture.history(done)).isPresent();
      assertThat(MigrationFixture.history(done)).as("the proof tells the reverse path's commits apart")
          .contains("no commit on the source after the final LSN");
      assertThat(MigrationFixture.history(done)).as("preflight made the source connect to the target, as the path did")
          .contains("preflight ok   way back: connection from the source: the source connected to 127.0.0.1:"
              + f.target.port() + " as postgres in 1 database(s)");

      // An adversary on the target that names itself as the migrator's connections do (not in the migrator's role):
      // the target's fence must end it like any other session, or it could write after the last position carried.
      // Opened more than a second before the rollback: a login younger than that is waited for by the rollback's
      // grace as a client about to begin its first transaction (up to the grace), which is not what is measured here.
      Connection impostor = java.sql.DriverManager.getConnection(PostgresServer.jdbcUrl(f.target.port())
          .replace("user=postgres", "user=app") + "&ApplicationName=turnout-migrator");
      long impostorLogin = System.nanoTime();

      // The application keeps writing on the target; each of those writes reaches the source as it commits.
      int before = writer.acknowledged().size();
      long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      while (writer.acknowledged().size() < before + 300 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertThat(writer.acknowledged().size()).as("writes on the target").isGreaterThan(before + 100);
      assertThat(f.migrator().reverseHealth(done.id())).hasValueSatisfying(h -> {
        assertThat(h.healthy()).as(h.broken().orElse("")).isTrue();
        assertThat(h.lagMillis()).as("the reverse lag in time, read from the target under the writer's load")
            .isBetween(0L, 5_000L);
      });

      Thread.sleep(Math.max(0, 1_200 - (System.nanoTime() - impostorLogin) / 1_000_000));
      writer.resetGap(); // the write gap of the rollback
      f.migrator().rollback(done.id(), false); // no consent: the path is healthy
      Migration back = f.awaitPhase(done.id(), p -> p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60));
      assertThat(back.phase()).as(MigrationFixture.history(back)).isEqualTo(Phase.ROLLED_BACK);
      try (impostor) {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> {
          try (Statement s = impostor.createStatement()) {
            s.execute("set default_transaction_read_only = off");
            s.execute("insert into writes(seq) values (-7)");
          }
        }).as("a session calling itself turnout-migrator was ended by the target's fence")
            .isInstanceOf(java.sql.SQLException.class);
      }
      int atRollback = writer.acknowledged().size();
      deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      while (writer.acknowledged().size() < atRollback + 50 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      writer.close();

      Set<Long> acknowledged = writer.acknowledged();
      int seen = MigrationFixture.assertEveryCommitSeenOnce(consumer, acknowledged);
      assertThat(MigrationFixture.history(back)).contains("CDC slots on the source: cdc advanced to");
      Set<Long> onSource = MigrationFixture.seqs(f.source);
      assertThat(MigrationFixture.missing(acknowledged, onSource)).as("every acknowledged commit is on the source, those"
          + " the target took included").isEmpty();
      assertThat(writer.acknowledged().size()).as("the writer goes on on the source: its sequence is ahead of every"
          + " id the target used, so no duplicate key").isGreaterThanOrEqualTo(atRollback + 50);
      try (Connection c = f.source.connect(); Statement s = c.createStatement()) {
        try (ResultSet rs = s.executeQuery("select (select last_value from writes_id_seq) >= (select max(id) from"
            + " writes), (select count(*) from pg_subscription), current_setting('default_transaction_read_only')")) {
          rs.next();
          assertThat(rs.getBoolean(1)).as("sequence ahead of every id").isTrue();
          assertThat(rs.getLong(2)).as("the subscriptions are dropped").isZero();
          assertThat(rs.getString(3)).as("the source is writable").isEqualTo("off");
        }
      }
      try (Connection c = f.target.connect(); Statement s = c.createStatement();
           ResultSet rs = s.executeQuery("select (select count(*) from pg_replication_slots where slot_name like"
               + " 'turnout_reverse%'), current_setting('default_transaction_read_only')")) {
        rs.next();
        assertThat(rs.getLong(1)).as("the slots on the target are dropped").isZero();
        assertThat(rs.getString(2)).as("the target is fenced: never two writable servers").isEqualTo("on");
      }
      assertThat(f.plane.routing().table().get("app").orElseThrow().endpoint())
          .contains(new dev.turnout.envoy.Endpoint("127.0.0.1", f.source.port()));
      System.out.printf("PostgreSQL %d: lossless rollback's write gap %.0f ms; %s; ", version, writer.longestGapMillis(),
          back.history().stream().map(Migration.Event::note).filter(n -> n.startsWith("rollback steps: ")).findFirst()
              .orElseThrow());
      System.out.println("lossless rollback: " + acknowledged.size() + " commits (" + seen + " seen by CDC), "
          + (atRollback - before)
          + "+ taken by the target; " + back.history().get(back.history().size() - 1).note());
    }
  }

  @Test
  void ddlOnTheTarget_breaksThePath_soARollbackNeedsConsent_andFinalizeProvesTheSourceAndDropsThePath()
      throws Exception {
    setUp(15);
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(300);
      Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(60));
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      int before = writer.acknowledged().size();
      long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      while (writer.acknowledged().size() < before + 200 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      try (Connection c = f.target.connect(); Statement s = c.createStatement()) {
        s.execute("alter table writes add column note text");
      }
      Thread.sleep(300);
      writer.close();

      assertThat(f.migrator().reverseHealth(done.id())).hasValueSatisfying(h -> assertThat(h.broken())
          .hasValueSatisfying(b -> assertThat(b).contains("the target's schema changed since promotion")));
      org.assertj.core.api.Assertions.assertThatThrownBy(() -> f.migrator().rollback(done.id(), false))
          .isInstanceOf(dev.turnout.migrator.MigrationConflictException.class)
          .hasMessageContaining("the reverse replication is broken").hasMessageContaining("Roll back with consent");
      assertThat(f.migrator().get(done.id()).orElseThrow().progress().wayBack()).as("saved as broken").isFalse();

      // The source took the target's commits over the path: the proof at finalize tells them from an application's.
      Migration finalized = f.migrator().finalizeMigration(done.id());
      String history = MigrationFixture.history(f.migrator().get(done.id()).orElseThrow());
      assertThat(finalized.phase()).as(history).isEqualTo(Phase.FINALIZED);
      assertThat(history).containsPattern("[0-9]+ commit\\(s\\) of the reverse replication, applied from the target")
          .contains("reverse replication dropped");
      try (Connection c = f.source.connect(); Statement s = c.createStatement();
           ResultSet rs = s.executeQuery("select count(*) from pg_subscription")) {
        rs.next();
        assertThat(rs.getLong(1)).isZero();
      }
      try (Connection c = f.target.connect(); Statement s = c.createStatement();
           ResultSet rs = s.executeQuery("select (select count(*) from pg_replication_slots where slot_name like"
               + " 'turnout_reverse%'), (select count(*) from pg_publication)")) {
        rs.next();
        assertThat(rs.getLong(1)).as("slots").isZero();
        assertThat(rs.getLong(2)).as("publications").isZero();
      }
      System.out.println("finalize: " + finalized.history().get(finalized.history().size() - 1).note());
    }
  }

  @Test
  void preflight_namesATableWithoutAPrimaryKey_andRefusesTheWayForward() throws Exception {
    setUp(15);
    try (Connection c = f.source.connect(); Statement s = c.createStatement()) {
      s.execute("create table audit_log(at timestamptz, line text)");
    }
    Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
    Migration m = f.awaitPhase(started.id(), p -> p.isTerminal() || p == Phase.HALTED || p == Phase.REPLICATING,
        Duration.ofSeconds(30));

    assertThat(m.phase()).as(MigrationFixture.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(m.progress().error().orElseThrow()).contains("way back: replica identity")
        .contains("postgres.public.audit_log").contains("--without-reverse-replication");
  }

  /**
   * The source connects to the target for the way back only at promotion, when it is fenced already. A network
   * that lets the migrator's connections to the target through but drops the source's (a subscription's walsender
   * connection, replication=database) is found at preflight instead: it names the check, PostgreSQL's message and
   * the way out, the migration does not start, and the probe leaves no subscription behind on the source.
   */
  @Test
  void preflight_aSourceThatCannotReachTheTarget_refusesTheWayForward_andLeavesNoProbeBehind() throws Exception {
    setUp(15);
    try (Connection c = f.source.connect(); Statement s = c.createStatement()) {
      // What a crash between the probe's CREATE and DROP leaves: dropped before the next probe.
      s.execute("create subscription turnout_probe_1 connection 'host=127.0.0.1 port=1 dbname=postgres' publication"
          + " turnout_reverse with (connect = false, enabled = false, create_slot = false, slot_name = NONE)");
    }
    try (FakeNetwork network = FakeNetwork.inFrontOf(f.target.port(), FakeNetwork.LOGICAL_REPLICATION)) {
      Migration.Spec spec = f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60));
      Migration started = f.migrator().start(new Migration.Spec(spec.database(), spec.source(),
          new dev.turnout.migrator.ServerAddress("127.0.0.1", network.port()), spec.options()));
      Migration m = f.awaitPhase(started.id(), p -> p.isTerminal() || p == Phase.HALTED || p == Phase.REPLICATING,
          Duration.ofSeconds(60));

      assertThat(m.phase()).as(MigrationFixture.history(m)).isEqualTo(Phase.ROLLED_BACK);
      assertThat(m.progress().error().orElseThrow()).contains("way back: connection from the source")
          .contains("the source could not connect to 127.0.0.1:" + network.port() + " as postgres in 1 of 1 database(s)")
          .contains("postgres: could not connect to the publisher").contains("pg_hba.conf")
          .contains("--without-reverse-replication");
      assertThat(MigrationFixture.history(m)).as("the rest of the way back holds")
          .contains("preflight ok   way back: replica identity");
      assertThat(network.refused).as("the probe came as a subscription does").isNotEmpty()
          .allSatisfy(p -> assertThat(p).containsEntry("replication", "database").containsEntry("database", "postgres"));
      System.out.println("refused at preflight: " + m.progress().error().orElseThrow());
    }
    try (Connection c = f.source.connect(); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select count(*) from pg_subscription")) {
      rs.next();
      assertThat(rs.getLong(1)).as("no probe left on the source, nor the one a crash had left").isZero();
    }
    assertThat(java.nio.file.Files.readString(f.source.dataDir().resolveSibling("postgres.log")))
        .as("the probe's failure is in the source's log, its statement (which holds the password) is not")
        .contains("could not connect to the publisher").doesNotContainIgnoringCase("create subscription turnout_probe_");
  }
}
