package dev.turnout.it;

import dev.turnout.controlplane.demo.Writer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.platform.postgres.PostgresPlatform;
import dev.turnout.migrator.MigrationStore;
import dev.turnout.migrator.MigrationException;
import dev.turnout.controlplane.store.FileMigrationStore;
import dev.turnout.controlplane.migration.XdsRouter;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Migrations stopped at exact points by a failpoint: the control plane crashes there and restarts from its
 * store, or an operator rolls back there. Real PostgreSQL 15 servers, a writer through the sidecar.
 */
class MigrationFaultsTest {
  @TempDir Path dir;
  MigrationFixture f;

  /** Blocks the migration's thread once at (phase, point) until released, or until the process stops. */
  static final class Stop implements Migrator.Failpoint {
    final Phase phase;
    final Point point;
    final CountDownLatch reached = new CountDownLatch(1);
    final CountDownLatch release = new CountDownLatch(1);
    final AtomicBoolean fired = new AtomicBoolean();

    Stop(Phase phase, Point point) {
      this.phase = phase;
      this.point = point;
    }

    @Override
    public void reached(Migration next, Point at) throws InterruptedException {
      if (next.phase() == phase && at == point && fired.compareAndSet(false, true)) {
        reached.countDown();
        release.await();
      }
    }

    void awaitReached() throws InterruptedException {
      assertThat(reached.await(60, TimeUnit.SECONDS)).as("failpoint " + phase + " " + point + " reached").isTrue();
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  @ParameterizedTest(name = "crash {1} {0}")
  @CsvSource({"REPLICATING,AFTER_SAVE", "QUIESCING,AFTER_SAVE", "CATCHING_UP,BEFORE_SAVE", "CATCHING_UP,AFTER_SAVE", "PROMOTING,AFTER_SAVE",
      "SHIFTING,AFTER_SAVE", "VERIFYING,BEFORE_SAVE"})
  void aControlPlaneCrash_isResumedFromTheStore_andTheMigrationCompletesWithNoLostCommit(Phase phase,
      Migrator.Failpoint.Point point) throws Exception {
    Stop stop = new Stop(phase, point);
    f = new MigrationFixture(dir, stop);
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(300);
      Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
      stop.awaitReached();

      f.crashPlane();
      Thread.sleep(300);
      f.startPlane(Migrator.Failpoint.NONE);

      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(90));
      Thread.sleep(300);
      writer.close();

      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      Set<Long> onTarget = MigrationFixture.seqs(f.target);
      assertThat(MigrationFixture.missing(writer.acknowledged(), onTarget))
          .as("acknowledged commits missing on the target").isEmpty();
      assertThat(MigrationFixture.missing(MigrationFixture.seqs(f.source), onTarget))
          .as("commits on the source missing on the target").isEmpty();
      assertThat(f.plane.routing().table().get("app").orElseThrow().endpoint())
          .contains(new Endpoint("127.0.0.1", f.target.port()));
      assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.target.port());
    }
  }

  @ParameterizedTest(name = "rollback at {0}")
  @EnumSource(value = Phase.class, names = {"PREFLIGHT", "REPLICATING", "VALIDATED", "QUIESCING", "CATCHING_UP"})
  void anOperatorRollbackBeforePromotion_leavesTheSourceRoutedAndWritable_withNoLostWrites(Phase phase)
      throws Exception {
    Stop stop = new Stop(phase, Migrator.Failpoint.Point.AFTER_SAVE);
    f = new MigrationFixture(dir, stop);
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
      stop.awaitReached();
      f.migrator().rollback(started.id(), false);
      stop.release.countDown();

      Migration done = f.awaitPhase(started.id(), Phase::isTerminal, Duration.ofSeconds(60));
      Thread.sleep(300);
      writer.close();

      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
      assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.source.port());
      try (Connection c = DriverManager.getConnection(
          PostgresServer.jdbcUrl(f.appPort).replace("user=postgres", "user=app")); Statement s = c.createStatement()) {
        s.execute("insert into writes(seq) values (-1)");
      }
      assertThat(MigrationFixture.missing(writer.acknowledged(), MigrationFixture.seqs(f.source)))
          .as("acknowledged commits missing on the source").isEmpty();
      assertThat(f.target.inRecovery()).as("the target is still a standby").isTrue();
    }
  }

  @Test
  void aFailureAfterTheFence_rollsBack_unfencingAndReroutingTheSource_withNoLostWrites() throws Exception {
    // As quiescing starts, the target stops replaying: CATCHING_UP, after the fence, cannot finish by its deadline.
    java.util.concurrent.atomic.AtomicReference<PostgresServer> target = new java.util.concurrent.atomic.AtomicReference<>();
    f = new MigrationFixture(dir, (next, point) -> {
      if (next.phase() == Phase.QUIESCING && point == Migrator.Failpoint.Point.AFTER_SAVE) {
        try (Connection c = target.get().connect(); Statement s = c.createStatement()) {
          s.execute("select pg_wal_replay_pause()");
        } catch (java.sql.SQLException e) {
          throw new IllegalStateException(e);
        }
      }
    });
    target.set(f.target);
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(4)));
      Migration done = f.awaitPhase(started.id(), Phase::isTerminal, Duration.ofSeconds(60));
      Thread.sleep(500);
      writer.close();

      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
      assertThat(done.progress().error()).get().asString().contains("deadline of CATCHING_UP");
      assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).as("routed back").isEqualTo(f.source.port());
      assertThat(MigrationFixture.serverPortOf(f.source.port(), "app")).as("logins restored").isEqualTo(f.source.port());
      try (Connection c = DriverManager.getConnection(
          PostgresServer.jdbcUrl(f.source.port()).replace("user=postgres", "user=app")); Statement s = c.createStatement()) {
        s.execute("insert into writes(seq) values (-1)"); // writable again
      }
      assertThat(MigrationFixture.missing(writer.acknowledged(), MigrationFixture.seqs(f.source)))
          .as("acknowledged commits missing on the source").isEmpty();
    }
  }

  @Test
  void aProcessThatLostTheLeadershipDuringARollback_leavesTheSourceFenced() throws Exception {
    // A migrator whose store says, once it has recorded ROLLING_BACK, that another process runs migrations now
    // (a leader paused there and replaced): it must not unfence a source that the new leader may have moved on from.
    AtomicBoolean stale = new AtomicBoolean();
    Stop fenced = new Stop(Phase.CATCHING_UP, Migrator.Failpoint.Point.AFTER_SAVE);
    f = new MigrationFixture(dir, fenced);
    FileMigrationStore file = new FileMigrationStore(dir.resolve("stale-store"));
    MigrationStore store = new MigrationStore() {
      @Override
      public Migration save(Migration m) throws MigrationException {
        confirmWriter();
        return file.save(m);
      }

      @Override
      public List<Migration> loadAll() throws MigrationException {
        return file.loadAll();
      }

      @Override
      public void confirmWriter() throws MigrationException {
        if (stale.get()) {
          throw new MigrationStore.StaleWriterException("another process leads migrations now");
        }
      }
    };
    Migrator.Failpoint failpoint = (next, at) -> {
      fenced.reached(next, at);
      if (next.phase() == Phase.ROLLING_BACK && at == Migrator.Failpoint.Point.AFTER_SAVE) {
        stale.set(true);
      }
    };
    Migrator migrator = new Migrator(store, new XdsRouter(f.plane.routing()),
        PostgresPlatform.factory(new PostgresPlatform.Credentials("postgres", null), java.time.Clock.systemUTC(),
            dev.turnout.migrator.Sleeper.SYSTEM), java.time.Clock.systemUTC(),
        dev.turnout.migrator.Sleeper.SYSTEM, java.util.concurrent.Executors.newCachedThreadPool(), failpoint);
    try {
      Migration started = migrator.start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
      fenced.awaitReached();
      migrator.rollback(started.id(), false);
      fenced.release.countDown();
      Eventually.until("the stale writer to stop", Duration.ofSeconds(30), () -> stale.get());
      Thread.sleep(2000); // what it would do next, it would do now

      assertThat(migrator.get(started.id()).orElseThrow().phase()).isEqualTo(Phase.ROLLING_BACK);
      assertThatThrownBy(() -> MigrationFixture.serverPortOf(f.source.port(), "app")).as("the source stays fenced")
          .isInstanceOf(java.sql.SQLException.class).hasMessageContaining("not permitted to log in");
    } finally {
      migrator.stop();
    }
  }

  @Test
  void theFence_endsOpenSessions_soNoneCanTurnReadWrite_andRefusesNewLogins() throws Exception {
    Stop stop = new Stop(Phase.CATCHING_UP, Migrator.Failpoint.Point.AFTER_SAVE);
    f = new MigrationFixture(dir, stop);
    String direct = PostgresServer.jdbcUrl(f.source.port()).replace("user=postgres", "user=app");
    // The fence leaves the standby's own read-only sessions alone (PostgreSQL 17's slot sync); one that takes the
    // standby's application name under another role is still an application session.
    try (Connection open = DriverManager.getConnection(direct);
         Connection namedLikeTheStandby = DriverManager.getConnection(direct + "&ApplicationName=walreceiver")) {
      Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
      stop.awaitReached(); // fenced, final LSN recorded, nothing promoted yet

      for (Connection c : List.of(open, namedLikeTheStandby)) {
        assertThatThrownBy(() -> {
          c.setAutoCommit(false);
          try (Statement s = c.createStatement()) {
            s.execute("set transaction read write");
            s.execute("insert into writes(seq) values (-42)");
          }
          c.commit();
        }).as("a session opened before the fence cannot write").isInstanceOf(java.sql.SQLException.class);
      }
      assertThatThrownBy(() -> DriverManager.getConnection(direct).close())
          .as("no new login for the application").hasMessageContaining("not permitted to log in");
      assertThat(MigrationFixture.seqs(f.source)).doesNotContain(-42L);
      stop.release.countDown();
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal(), Duration.ofSeconds(60));
      assertThat(done.phase()).isEqualTo(Phase.COMPLETED);
    }
  }

  @Test
  void aRollbackAfterPromotion_withoutReverseReplication_needsConsent_andWithItRoutesBackToTheSource()
      throws Exception {
    Stop stop = new Stop(Phase.SHIFTING, Migrator.Failpoint.Point.AFTER_SAVE);
    f = new MigrationFixture(dir, stop);
    Migration.Spec spec = f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60));
    Migration started = f.migrator().start(new Migration.Spec(spec.database(), spec.source(), spec.target(),
        spec.options().withoutReverseReplication(true)));
    stop.awaitReached();

    assertThatThrownBy(() -> f.migrator().rollback(started.id(), false))
        .isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("may hold writes made since cutover")
        .hasMessageContaining("no reverse replication was made at promotion")
        .hasMessageContaining("consent");
    f.migrator().rollback(started.id(), true);
    stop.release.countDown();

    Migration done = f.awaitPhase(started.id(), Phase::isTerminal, Duration.ofSeconds(60));
    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.source.port());
  }
}
