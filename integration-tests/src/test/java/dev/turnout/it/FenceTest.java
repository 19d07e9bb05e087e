package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The fence tried by clients Turnout did not write, on real PostgreSQL 15 and 17 servers, through every door the
 * issue found open: a transaction prepared before the fence, superusers and replication roles (postgres itself
 * included: the migrator here has a role of its own), a {@code replication=database} session that runs SQL, and a
 * write let in on purpose after the final LSN, which the WAL proof must catch.
 */
class FenceTest {
  @TempDir Path dir;
  MigrationFixture f;

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  private void setUp(int version, Migrator.Failpoint failpoint) throws Exception {
    f = MigrationFixture.withRoles(dir, failpoint, version == 17 ? PostgresServer.pg17() : PostgresServer.BIN,
        new MigrationFixture.Roles("turnout", "turnout", List.of("max_prepared_transactions=10")));
    try (Connection c = f.source.connect(); Statement s = c.createStatement()) {
      s.execute("create role dba superuser login");
      s.execute("create role cdc replication login");
      s.execute("grant insert on writes, writes_id_seq to cdc");
    }
  }

  private Migration.Spec spec(Duration grace, boolean rollbackPrepared) {
    Migration.Spec s = f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60));
    return new Migration.Spec(s.database(), s.source(), s.target(),
        s.options().withCutover(new Migration.Cutover(grace, rollbackPrepared)));
  }

  private String url(PostgresServer server, String user) {
    return server.jdbcUrl().replace("user=postgres", "user=" + user);
  }

  /** A walsender that runs SQL: what a CDC tool opens, and what pgjdbc opens with these properties. */
  private Connection replicationSession(PostgresServer server, String user) throws SQLException {
    Properties p = new Properties();
    p.setProperty("user", user);
    p.setProperty("replication", "database");
    p.setProperty("preferQueryMode", "simple");
    p.setProperty("assumeMinServerVersion", "10");
    p.setProperty("sslmode", "disable");
    return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + server.port() + "/postgres", p);
  }

  private static void prepare(String url, String gid, long seq) throws SQLException {
    try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
      s.execute("begin");
      s.execute("insert into writes(seq) values (" + seq + ")");
      s.execute("prepare transaction '" + gid + "'");
    }
  }

  private List<String> preparedOn(PostgresServer server) throws SQLException {
    List<String> gids = new java.util.ArrayList<>();
    try (Connection c = f.asMigrator(server); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select gid from pg_prepared_xacts")) {
      while (rs.next()) {
        gids.add(rs.getString(1));
      }
    }
    return gids;
  }

  private java.util.Set<Long> seqs(PostgresServer server) throws SQLException {
    try (Connection c = f.asMigrator(server)) {
      return dev.turnout.controlplane.demo.Writer.seqsOn(c);
    }
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15, 17})
  void aTransactionPreparedBeforeTheFence_isRolledBackAsAllowed_andNoSuperuserCanCommitItAfterTheFence(int version)
      throws Exception {
    MigrationFaultsTest.Stop fenced = new MigrationFaultsTest.Stop(Phase.CATCHING_UP, Migrator.Failpoint.Point.AFTER_SAVE);
    setUp(version, fenced);
    prepare(url(f.source, "app"), "before-fence", -7);
    Migration started = f.migrator().start(spec(Duration.ofMillis(300), true));
    fenced.awaitReached();

    // What the issue did: a superuser commits it after the fence. No superuser but the migrator can log in, and
    // the migrator finds nothing left to commit.
    for (String user : List.of("dba", "postgres")) {
      assertThatThrownBy(() -> DriverManager.getConnection(url(f.source, user)).close()).as(user)
          .hasMessageContaining("not permitted to log in");
    }
    try (Connection c = f.asMigrator(f.source); Statement s = c.createStatement()) {
      assertThatThrownBy(() -> s.execute("commit prepared 'before-fence'")).hasMessageContaining("does not exist");
    }
    fenced.release.countDown();
    Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
        Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(done.history()).extracting(Migration.Event::note).anySatisfy(n -> assertThat(n)
        .contains("prepared transactions: 1 on the source: 'before-fence' (owner app, database postgres"));
    assertThat(done.history()).extracting(Migration.Event::note).anySatisfy(n -> assertThat(n)
        .contains("rolling back 1 prepared transaction(s) on the source").contains("'before-fence' (owner app"));
    assertThat(preparedOn(f.target)).as("nothing carried to the target").isEmpty();
    assertThat(preparedOn(f.source)).isEmpty();
    assertThat(seqs(f.target)).doesNotContain(-7L);
    assertThat(seqs(f.source)).doesNotContain(-7L);
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15, 17})
  void aTransactionStillPreparedAtCutover_stopsTheMigrationNamingIt_whileOneFinishedWithinTheGraceMovesOn(int version)
      throws Exception {
    setUp(version, Migrator.Failpoint.NONE);
    prepare(url(f.source, "app"), "finishing", -8);
    prepare(url(f.source, "app"), "left-open", -9);
    Migration started = f.migrator().start(spec(Duration.ofSeconds(3), false));
    // The transaction manager finishes one while the migration quiesces: every role still logs in then.
    f.awaitPhase(started.id(), p -> p == Phase.QUIESCING || p.isTerminal(), Duration.ofSeconds(60));
    try (Connection c = DriverManager.getConnection(url(f.source, "app")); Statement s = c.createStatement()) {
      s.execute("commit prepared 'finishing'");
    }
    Migration done = f.awaitPhase(started.id(), Phase::isTerminal, Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(done.progress().error()).get().asString()
        .contains("1 prepared transaction(s)").contains("'left-open' (owner app, database postgres")
        .doesNotContain("'finishing'").contains("--rollback-prepared-transactions");
    assertThat(preparedOn(f.source)).as("left to its owner").containsExactly("left-open");
    try (Connection c = DriverManager.getConnection(url(f.source, "app")); Statement s = c.createStatement()) {
      s.execute("commit prepared 'left-open'"); // the source is its own again: logins and writes are back
    }
    assertThat(seqs(f.source)).contains(-8L, -9L);
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15, 17})
  void superusersReplicationRolesAndPostgresItself_cannotLogInAfterTheFence_andLogInOnThePromotedTarget(int version)
      throws Exception {
    MigrationFaultsTest.Stop fenced = new MigrationFaultsTest.Stop(Phase.CATCHING_UP, Migrator.Failpoint.Point.AFTER_SAVE);
    setUp(version, fenced);
    Migration started = f.migrator().start(spec(Duration.ofMillis(300), false));
    fenced.awaitReached();

    for (String user : List.of("postgres", "dba", "cdc", "app")) {
      assertThatThrownBy(() -> DriverManager.getConnection(url(f.source, user)).close()).as(user)
          .hasMessageContaining("not permitted to log in");
    }
    assertThatThrownBy(() -> replicationSession(f.source, "cdc").close()).as("cdc over replication=database")
        .hasMessageContaining("not permitted to log in");
    fenced.release.countDown();
    Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
        Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(done.progress().fencedRoles()).contains("postgres", "dba", "cdc", "app").doesNotContain("turnout");
    for (String user : List.of("postgres", "dba", "cdc")) {
      DriverManager.getConnection(url(f.target, user)).close();
      assertThatThrownBy(() -> DriverManager.getConnection(url(f.source, user)).close()).as(user + " on the old source")
          .hasMessageContaining("not permitted to log in");
    }
    assertThat(done.history()).extracting(Migration.Event::note)
        .anySatisfy(n -> assertThat(n).contains("no commit on the source after the final LSN"));

    Migration finalized = f.migrator().finalizeMigration(started.id());
    assertThat(finalized.phase()).isEqualTo(Phase.FINALIZED);
    try (Connection c = f.asMigrator(f.source); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
        "select count(*) from pg_replication_slots where slot_name like 'turnout_fence_%'")) {
      rs.next();
      assertThat(rs.getInt(1)).as("the WAL hold is let go at finalize").isZero();
    }
  }

  /** The roles are listed before the drain; one a superuser makes during the grace is fenced all the same. */
  @org.junit.jupiter.api.Test
  void aLoginRoleMadeAfterTheRolesWereListed_isFencedToo_andLogsInOnThePromotedTarget() throws Exception {
    MigrationFaultsTest.Stop fenced = new MigrationFaultsTest.Stop(Phase.CATCHING_UP, Migrator.Failpoint.Point.AFTER_SAVE);
    setUp(15, fenced);
    Migration started;
    try (Connection dba = DriverManager.getConnection(url(f.source, "dba")); Statement s = dba.createStatement()) {
      s.execute("begin");
      s.execute("select 1"); // in a transaction: the grace waits for it
      started = f.migrator().start(spec(Duration.ofSeconds(20), false));
      String id = started.id();
      Eventually.until("the roles to be listed", Duration.ofSeconds(30), () -> f.migrator().get(id).orElseThrow().progress().fencedRoles()
          .contains("dba"));
      s.execute("create role late login");
      s.execute("commit");
    }
    fenced.awaitReached();
    assertThatThrownBy(() -> DriverManager.getConnection(url(f.source, "late")).close())
        .hasMessageContaining("not permitted to log in");
    fenced.release.countDown();
    Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
        Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(done.progress().fencedRoles()).contains("late", "dba");
    assertThat(done.history()).extracting(Migration.Event::note)
        .anySatisfy(n -> assertThat(n).contains("fencing roles [late] too"));
    DriverManager.getConnection(url(f.target, "late")).close();
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15, 17})
  void aReplicationDatabaseSessionOpenedBeforeTheFence_cannotWriteAfterIt_whileTheStandbyKeepsStreaming(int version)
      throws Exception {
    MigrationFaultsTest.Stop fenced = new MigrationFaultsTest.Stop(Phase.CATCHING_UP, Migrator.Failpoint.Point.AFTER_SAVE);
    setUp(version, fenced);
    try (Connection superuser = replicationSession(f.source, "dba");
         Connection cdc = replicationSession(f.source, "cdc")) {
      try (Statement s = superuser.createStatement()) {
        s.execute("insert into writes(seq) values (-20)"); // it runs SQL, and writes, before the fence
      }
      Migration started = f.migrator().start(spec(Duration.ofMillis(300), false));
      fenced.awaitReached();

      for (Connection c : List.of(superuser, cdc)) {
        assertThatThrownBy(() -> {
          try (Statement s = c.createStatement()) {
            s.execute("set default_transaction_read_only = off");
            s.execute("insert into writes(seq) values (-21)");
          }
        }).as("a walsender session opened before the fence cannot write after it").isInstanceOf(SQLException.class);
      }
      try (Connection c = f.asMigrator(f.target); Statement s = c.createStatement();
           ResultSet rs = s.executeQuery("select status from pg_stat_wal_receiver")) {
        assertThat(rs.next()).isTrue();
        assertThat(rs.getString(1)).as("the physical standby's walsender is left streaming").isEqualTo("streaming");
      }
      fenced.release.countDown();
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(60));
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      assertThat(seqs(f.target)).contains(-20L).doesNotContain(-21L);
      assertThat(seqs(f.source)).doesNotContain(-21L);
    }
  }

  /** The door the test opens on purpose: the migrator's own role, writing on the fenced source. */
  private long writeThroughTheDoor(long seq) throws SQLException {
    try (Connection c = f.asMigrator(f.source); Statement s = c.createStatement()) {
      s.execute("set default_transaction_read_only = off");
      s.execute("begin");
      s.execute("insert into writes(seq) values (" + seq + ")");
      long xid;
      try (ResultSet rs = s.executeQuery("select txid_current()")) {
        rs.next();
        xid = rs.getLong(1);
      }
      s.execute("commit");
      return xid;
    }
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15, 17})
  void aWriteLetInAfterTheFinalLsn_haltsTheMigrationAtVerifying_namingTheTransaction(int version) throws Exception {
    MigrationFaultsTest.Stop promoted = new MigrationFaultsTest.Stop(Phase.SHIFTING, Migrator.Failpoint.Point.AFTER_SAVE);
    setUp(version, promoted);
    Migration started = f.migrator().start(spec(Duration.ofMillis(300), false));
    promoted.awaitReached();
    long xid = writeThroughTheDoor(-30);
    promoted.release.countDown();
    Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
        Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.HALTED);
    assertThat(done.progress().error()).get().asString()
        .contains("committed on the source").contains("after the final LSN")
        .contains("xid " + xid + " COMMIT").contains("writes");
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15})
  void anAnalyzeAfterTheFinalLsn_onlyWritesStatistics_andIsNoFinding(int version) throws Exception {
    MigrationFaultsTest.Stop promoted = new MigrationFaultsTest.Stop(Phase.SHIFTING, Migrator.Failpoint.Point.AFTER_SAVE);
    setUp(version, promoted);
    try (Connection c = f.source.connect(); Statement s = c.createStatement()) {
      s.execute("insert into writes(seq) select -g from generate_series(100, 1100) g");
    }
    Migration started = f.migrator().start(spec(Duration.ofMillis(300), false));
    promoted.awaitReached();
    try (Connection c = f.asMigrator(f.source); Statement s = c.createStatement()) {
      s.execute("set default_transaction_read_only = off");
      s.execute("analyze writes"); // what autovacuum does on its own: pg_statistic, and pg_class in place
    }
    promoted.release.countDown();
    Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
        Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(done.history()).extracting(Migration.Event::note)
        .anySatisfy(n -> assertThat(n).contains("statistics-only commit(s) by ANALYZE"));
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15})
  void aWriteLetInBeforePromotion_rollsBack_andTheSourceKeepsIt(int version) throws Exception {
    MigrationFaultsTest.Stop fenced = new MigrationFaultsTest.Stop(Phase.CATCHING_UP, Migrator.Failpoint.Point.AFTER_SAVE);
    setUp(version, fenced);
    Migration started = f.migrator().start(spec(Duration.ofMillis(300), false));
    fenced.awaitReached();
    long xid = writeThroughTheDoor(-31);
    fenced.release.countDown();
    Migration done = f.awaitPhase(started.id(), Phase::isTerminal, Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(done.progress().error()).get().asString().contains("xid " + xid + " COMMIT");
    assertThat(f.target.inRecovery()).as("never promoted").isTrue();
    assertThat(seqs(f.source)).contains(-31L);
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15})
  void aWriteLetInAfterCompletion_isFoundAtFinalize_whichRefusesAndHalts(int version) throws Exception {
    setUp(version, Migrator.Failpoint.NONE);
    Migration started = f.migrator().start(spec(Duration.ofMillis(300), false));
    Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
        Duration.ofSeconds(60));
    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
    long xid = writeThroughTheDoor(-32);

    assertThatThrownBy(() -> f.migrator().finalizeMigration(started.id()))
        .isInstanceOf(MigrationConflictException.class).hasMessageContaining("cannot be finalized")
        .hasMessageContaining("xid " + xid + " COMMIT");
    assertThat(f.migrator().get(started.id()).orElseThrow().phase()).isEqualTo(Phase.HALTED);
  }

  /**
   * The way back fences the target as the way forward fenced the source: a transaction prepared on the promoted target
   * and finished by its owner within the grace travels the reverse path to the source; one left prepared stops the
   * lossless rollback naming it (nobody but the migrator can commit it once the target is fenced, and the path would
   * carry it only once committed); committed then as the migrator's role, a second rollback carries it back too.
   * With --rollback-prepared-transactions it would be rolled back and its gid recorded (the next test).
   */
  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15})
  void aTransactionPreparedOnTheTarget_isFinishedWithinTheGrace_orStopsTheRollbackAfterPromotion_namingIt(int version)
      throws Exception {
    setUp(version, Migrator.Failpoint.NONE);
    Migration done = f.awaitPhase(f.migrator().start(spec(Duration.ofSeconds(2), false)).id(),
        p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60));
    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(done.progress().reverse()).as(MigrationFixture.history(done)).isPresent();
    // A transaction manager's two open branches on the target: it finishes one during the grace, not the other.
    prepare(url(f.target, "app"), "on-target-finishing", -21);
    prepare(url(f.target, "app"), "on-target-left-open", -22);
    f.migrator().rollback(done.id(), false);
    Thread.sleep(300); // the route is drained and the grace runs: the owner still can log in and commit
    try (Connection owner = DriverManager.getConnection(url(f.target, "app")); Statement s = owner.createStatement()) {
      s.execute("commit prepared 'on-target-finishing'");
    }
    Migration halted = f.awaitPhase(done.id(), p -> p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60));
    assertThat(halted.phase()).as(MigrationFixture.history(halted)).isEqualTo(Phase.HALTED);
    assertThat(halted.progress().error()).get().asString().contains("1 transaction(s) still prepared on the target")
        .contains("'on-target-left-open' (owner app, database postgres").doesNotContain("on-target-finishing");
    assertThatThrownBy(() -> DriverManager.getConnection(url(f.target, "app")).close())
        .as("the target stays fenced while the rollback is stopped").hasMessageContaining("not permitted to log in");
    try (Connection c = f.asMigrator(f.target); Statement s = c.createStatement()) {
      s.execute("commit prepared 'on-target-left-open'");
    }
    f.migrator().rollback(done.id(), false);
    Migration back = f.awaitPhase(done.id(), p -> p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60));
    assertThat(back.phase()).as(MigrationFixture.history(back)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(seqs(f.source)).as("both commits on the target reached the source over the reverse path")
        .contains(-21L, -22L);
    assertThat(preparedOn(f.target)).isEmpty();
  }

  /**
   * A rollback after promotion quiesces the target as the cutover quiesces the source: a persistent connection's
   * transaction open on the target at the drain finishes within the grace (the reverse path then carries it), and
   * is not cut by the target's fence.
   */
  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15, 17})
  void aTransactionInFlightOnTheTarget_finishesWithinTheRollbacksGrace_andReachesTheSource(int version)
      throws Exception {
    setUp(version, Migrator.Failpoint.NONE);
    Migration done = f.awaitPhase(f.migrator().start(spec(Duration.ofSeconds(3), false)).id(),
        p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60));
    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
    try (Connection app = DriverManager.getConnection(url(f.target, "app")); Statement s = app.createStatement()) {
      s.execute("begin");
      s.execute("insert into writes(seq) values (-31)");
      f.migrator().rollback(done.id(), false);
      Thread.sleep(500); // the route drained, the grace running: the transaction goes on and commits
      s.execute("insert into writes(seq) values (-32)");
      s.execute("commit");
    }
    Migration back = f.awaitPhase(done.id(), p -> p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60));
    assertThat(back.phase()).as(MigrationFixture.history(back)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(MigrationFixture.history(back)).contains("work in flight on the target finished in");
    assertThat(seqs(f.source)).as("the transaction the grace let finish, on the source").contains(-31L, -32L);
  }

  @ParameterizedTest(name = "PostgreSQL {0}")
  @ValueSource(ints = {15})
  void aTransactionPreparedOnTheTarget_isRolledBackThereAsAllowed_andARoleCreatedThereSinceThePromotionIsFenced(int version)
      throws Exception {
    setUp(version, Migrator.Failpoint.NONE);
    Migration done = f.awaitPhase(f.migrator().start(spec(Duration.ofMillis(300), true)).id(),
        p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60));
    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
    prepare(url(f.target, "app"), "on-target", -23);
    try (Connection c = f.asMigrator(f.target); Statement s = c.createStatement()) {
      s.execute("create role newcomer superuser login"); // since the promotion: not among the roles the cutover fenced
    }
    f.migrator().rollback(done.id(), false);
    Migration back = f.awaitPhase(done.id(), p -> p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60));
    assertThat(back.phase()).as(MigrationFixture.history(back)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(MigrationFixture.history(back)).contains("rolled back 1 transaction(s) prepared on the target")
        .contains("'on-target' (owner app, database postgres");
    assertThat(preparedOn(f.target)).as("none left on the abandoned target").isEmpty();
    assertThat(seqs(f.source)).doesNotContain(-23L);
    assertThatThrownBy(() -> DriverManager.getConnection(url(f.target, "newcomer")).close())
        .as("a role created on the target after the promotion is fenced there too: never two writable servers")
        .hasMessageContaining("not permitted to log in");
  }
}
