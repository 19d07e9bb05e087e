package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cutover as applications see it through the sidecar, on PostgreSQL 15: work in flight at the drain
 * finishes within the grace, only what runs past it is cut (and recorded), and a client that opens a
 * connection per transaction sees no error at all.
 */
class QuiesceTest {
  @TempDir Path dir;
  MigrationFixture f;

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  private Migration.Spec spec(Duration grace) {
    Migration.Spec s = f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60));
    return new Migration.Spec(s.database(), s.source(), s.target(),
        s.options().withCutover(new Migration.Cutover(grace, false)));
  }

  private Connection viaSidecar() throws SQLException {
    Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(f.appPort).replace("user=postgres", "user=app"));
    c.setAutoCommit(false);
    return c;
  }

  @Test
  void aTransactionInFlightAtTheDrain_commitsWithinTheGrace_whileOneRunningPastItIsCutAndRecorded() throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    try (Connection finishing = viaSidecar(); Connection lingering = viaSidecar()) {
      try (Statement s = finishing.createStatement()) {
        s.execute("insert into writes(seq) values (-50)");
      }
      try (Statement s = lingering.createStatement()) {
        s.execute("insert into writes(seq) values (-51)");
      }
      Migration started = f.migrator().start(spec(Duration.ofMillis(1500)));
      f.awaitPhase(started.id(), p -> p == Phase.QUIESCING || p.isTerminal(), Duration.ofSeconds(60));
      Thread.sleep(400); // drained by now, inside the grace
      finishing.commit();
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(60));
      assertThatThrownBy(lingering::commit).as("cut by the fence").isInstanceOf(SQLException.class);

      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      assertThat(done.history()).extracting(Migration.Event::note)
          .anySatisfy(n -> assertThat(n).startsWith("route drained: every sidecar ACKed"))
          .anySatisfy(n -> assertThat(n).contains("quiesce grace of 1500 ms over: 1 session(s) still at work (roles app)"))
          .anySatisfy(n -> assertThat(n).startsWith("fence cut 1 session(s) at work (roles app)"));
      assertThat(MigrationFixture.seqs(f.target)).contains(-50L).doesNotContain(-51L);
    }
  }

  @Test
  void aSessionThatLoggedInAMomentBefore_getsItsFirstTransactionWithinTheGrace_thoughItsDriverRanAStatementAtLogin()
      throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    try (Connection finishing = viaSidecar()) {
      try (Statement s = finishing.createStatement()) {
        s.execute("insert into writes(seq) values (-60)"); // keeps the grace open while the story below plays
      }
      Migration started = f.migrator().start(spec(Duration.ofMillis(1500)));
      f.awaitPhase(started.id(), p -> p == Phase.QUIESCING || p.isTerminal(), Duration.ofSeconds(60));
      // A connection that logged in just before the drain and has not begun its work: pgjdbc has run
      // "SET application_name" at login, so the session is idle with a statement behind it.
      try (Connection late = DriverManager.getConnection(f.source.jdbcUrl().replace("user=postgres", "user=app"))) {
        late.setAutoCommit(false);
        Thread.sleep(200);
        try (Statement s = late.createStatement()) {
          s.execute("insert into writes(seq) values (-61)");
        }
        late.commit();
      }
      Thread.sleep(200);
      finishing.commit();
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(60));

      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      assertThat(done.history()).extracting(Migration.Event::note)
          .anySatisfy(n -> assertThat(n).startsWith("work in flight on the source finished"))
          .noneSatisfy(n -> assertThat(n).containsPattern("^fence cut [1-9]"));
      assertThat(MigrationFixture.seqs(f.target)).contains(-60L, -61L);
    }
  }

  @Test
  void clientsOpeningAConnectionPerTransaction_seeNoErrorAcrossTheCutover_andLoseNoCommit() throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong next = new AtomicLong(1_000_000);
    Set<Long> acknowledged = new ConcurrentSkipListSet<>();
    ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
    List<Thread> clients = new java.util.ArrayList<>();
    for (int i = 0; i < 3; i++) {
      Thread t = new Thread(() -> {
        while (!stop.get()) {
          long seq = next.incrementAndGet();
          try (Connection c = viaSidecar(); Statement s = c.createStatement()) { // pgbench -C, in Java
            s.execute("insert into writes(seq) values (" + seq + ")");
            c.commit();
            acknowledged.add(seq);
          } catch (SQLException e) {
            errors.add(e.getSQLState() + " " + e.getMessage());
          }
        }
      }, "per-transaction-" + i);
      t.start();
      clients.add(t);
    }
    try {
      Thread.sleep(500);
      Migration started = f.migrator().start(spec(Migration.Cutover.DEFAULT_GRACE));
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(60));
      Thread.sleep(500);
      stop.set(true);
      for (Thread t : clients) {
        t.join(30_000);
      }
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      assertThat(errors).as("errors a connection-per-transaction client saw").isEmpty();
      assertThat(MigrationFixture.missing(acknowledged, MigrationFixture.seqs(f.target))).isEmpty();
      assertThat(done.history()).extracting(Migration.Event::note).noneSatisfy(n -> assertThat(n).containsPattern("^fence cut [1-9]"));
    } finally {
      stop.set(true);
    }
  }
}
