package dev.turnout.it;

import dev.turnout.controlplane.demo.Writer;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An operator's session with the {@code turnout} CLI against a running control plane and real PostgreSQL. */
class CliEndToEndTest {
  @TempDir Path dir;
  MigrationFixture f;

  private Cli.Result turnout(String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.add("--admin");
    all.add("127.0.0.1:" + f.plane.adminPort());
    return Cli.run(all.toArray(String[]::new));
  }

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  @Test
  void aMalformedAdminAddressInTheList_isNamed_andNothingIsSent() {
    Cli.Result r = Cli.run("migrate", "status", "--admin", "127.0.0.1:18001,nonsense");
    assertThat(r.exit()).isEqualTo(2);
    assertThat(r.err()).contains("--admin: 'nonsense' is not HOST:PORT");
  }

  @Test
  void startWatchToCompleted_routesShowTheNewEndpointAcked_andAnotherMigrationRollsBack() throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    String target = "127.0.0.1:" + f.target.port();

    Cli.Result dry = turnout("migrate", "start", "app", "--target", target, "--dry-run");
    assertThat(dry.exit()).isZero();
    assertThat(dry.out()).contains(" 1. PLANNED").contains("QUIESCING: source 127.0.0.1:" + f.source.port()
        + ": ALTER SYSTEM SET default_transaction_read_only = on").contains("PROMOTING: target 127.0.0.1:"
        + f.target.port() + ": pg_promote").contains("BAKING: write probe committed on " + target)
        .contains("COMPLETED: the target held the baseline for the bake of 120 s")
        .as("the dry run read the servers: the real checks").contains("preflight ok   same system identifier")
        .as("and listed the probe of the source's connection to the target instead of making it")
        .contains("source 127.0.0.1:" + f.source.port() + ": in every database the reverse path covers: CREATE"
            + " SUBSCRIPTION turnout_probe_<pid> connecting to " + target)
        .contains("preflight warn way back: connection from the source: not tried in a dry run");
    assertThat(f.migrator().list()).isEmpty();
    try (java.sql.Connection c = f.source.connect(); java.sql.Statement s = c.createStatement();
         java.sql.ResultSet rs = s.executeQuery("select count(*) from pg_subscription")) {
      rs.next();
      assertThat(rs.getLong(1)).as("the dry run made no subscription").isZero();
    }

    Cli.Result started;
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      started = turnout("migrate", "start", "app", "--target", target, "--window", "1s", "--bake", "0", "--watch");
    }
    assertThat(started.exit()).as(started.out() + started.err()).isZero();
    assertThat(started.out()).contains("QUIESCING").contains("PROMOTING").contains(": COMPLETED");
    String id = id(started.out());

    Cli.Result routes = turnout("routes");
    assertThat(routes.exit()).isZero();
    assertThat(routes.out()).containsPattern("app \\(port " + f.appPort + "\\): " + Pattern.quote(target) + " at version \\d+");
    assertThat(routes.out()).as("a summary by default").containsPattern("at version \\d+: 1 current, 0 behind, 0 NACKing");
    assertThat(turnout("routes", "--all").out()).containsPattern("app-1\\s+app\\s+connected .* current");
    assertThat(turnout("routes", "--all", "--json").out()).contains("\"nodeId\": \"app-1\"")
        .contains("\"current\": true");
    assertThat(turnout("nodes").out()).contains("app-1").contains("EDS");
    assertThat(turnout("migrate", "status", id).out()).contains("final LSN").contains("COMPLETED")
        .contains("reverse replication (the way back after promotion): healthy, the source ")
        .contains("way back healthy (reverse lag ")
        .contains("sidecars on the current route 1/1");
    String metrics = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
            java.net.URI.create("http://127.0.0.1:" + f.plane.httpPort() + "/metrics")).build(),
        java.net.http.HttpResponse.BodyHandlers.ofString()).body();
    assertThat(metrics).contains("turnout_migration_phase{database=\"app\",migration=\"" + id + "\",phase=\"COMPLETED\"} 1.0")
        .containsPattern("turnout_migration_replication_lag_bytes\\{database=\"app\",migration=\"" + id + "\"")
        .containsPattern("turnout_migration_slot_lag_bytes\\{database=\"app\",migration=\"" + id + "\"");

    Cli.Result early = turnout("migrate", "start", "app", "--target", "127.0.0.1:" + f.source.port());
    assertThat(early.exit()).isEqualTo(2);
    assertThat(early.err()).contains("ALREADY_EXISTS").contains("finalize it or roll it back first");
    assertThat(turnout("migrate", "finalize", id).exit()).isZero();
    Cli.Result late = turnout("migrate", "rollback", id, "--consent-to-lose-writes");
    assertThat(late.exit()).isEqualTo(2);
    assertThat(late.err()).contains("FAILED_PRECONDITION").contains("is finalized");

    // A second move, from the new primary to a standby of it, rolled back by the operator.
    PostgresServer third = PostgresServer.startStandby(dir.resolve("third"), f.target, "third_standby",
        "wal_level=logical", "max_wal_senders=10", "max_replication_slots=10");
    try {
      Cli.Result second = turnout("migrate", "start", "app", "--target", "127.0.0.1:" + third.port(), "--window", "60s");
      assertThat(second.exit()).as(second.err()).isZero();
      String secondId = id(second.out());
      Cli.Result again = turnout("migrate", "start", "app", "--target", "127.0.0.1:" + third.port());
      assertThat(again.exit()).isEqualTo(2);
      assertThat(again.err()).contains("ALREADY_EXISTS").contains("database 'app' already has migration " + secondId);

      f.awaitPhase(secondId, p -> p == Phase.REPLICATING || p.isTerminal(), java.time.Duration.ofSeconds(30));
      Thread.sleep(1500);
      assertThat(turnout("migrate", "status", secondId).out())
          .containsPattern("now: window \\d+\\.\\d/60 s  lag \\d+ B .* sidecars on the current route 1/1");
      assertThat(turnout("migrate", "rollback", secondId).exit()).isZero();
      Cli.Result watched = turnout("migrate", "watch", secondId);
      assertThat(watched.exit()).as("watch exits 3 when rolled back").isEqualTo(3);
      assertThat(watched.out()).contains("ROLLED_BACK");
      assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.target.port());
    } finally {
      third.close();
    }

    Cli.Result missing = turnout("migrate", "status", "nosuchid");
    assertThat(missing.exit()).isEqualTo(2);
    assertThat(missing.err()).contains("NOT_FOUND").contains("nosuchid");
  }

  @Test
  void nothingListeningAtTheAdminAddress_isSaidPlainly() throws Exception {
    int port = PostgresServer.freePort();
    Cli.Result r = Cli.run("migrate", "status", "--admin", "127.0.0.1:" + port);
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.err()).contains("cannot reach the control plane at 127.0.0.1:" + port + ": connection refused")
        .doesNotContain("io exception");
  }

  @Test
  void startWithoutWatch_waitsThroughPreflight_andExitsNonZeroNamingTheFailedChecks() throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    try (PostgresServer stranger = PostgresServer.start(dir.resolve("stranger"))) {
      Cli.Result r = turnout("migrate", "start", "app", "--target", "127.0.0.1:" + stranger.port());
      assertThat(r.exit()).as(r.out() + r.err()).isEqualTo(3);
      assertThat(r.err()).contains("stopped in preflight").contains("FAIL target is a standby")
          .contains("FAIL same system identifier").contains("error: preflight failed");
    }
  }

  @Test
  void aSecondStartWhileTheFirstHasTheRouteDrained_namesTheMigrationUnderWay() throws Exception {
    MigrationFaultsTest.Stop fenced = new MigrationFaultsTest.Stop(Phase.CATCHING_UP, Migrator.Failpoint.Point.AFTER_SAVE);
    f = new MigrationFixture(dir, fenced);
    var started = f.migrator().start(f.spec(java.time.Duration.ofSeconds(1), java.time.Duration.ofSeconds(60)));
    fenced.awaitReached(); // the route is drained now
    try {
      Cli.Result again = turnout("migrate", "start", "app", "--target", "127.0.0.1:" + f.target.port());
      assertThat(again.exit()).isEqualTo(2);
      assertThat(again.err()).contains("ALREADY_EXISTS")
          .contains("database 'app' already has migration " + started.id() + " in CATCHING_UP").doesNotContain("drained");
    } finally {
      fenced.release.countDown();
    }
    f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal(), java.time.Duration.ofSeconds(60));
  }

  private static String id(String out) {
    Matcher m = Pattern.compile("migration (\\w+) of database").matcher(out);
    assertThat(m.find()).as(out).isTrue();
    return m.group(1);
  }
}
