package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An SRE moves a route by hand with {@code turnout route set|drain}: a control plane, the built-in sidecar and
 * two real PostgreSQL servers; each query goes through the sidecar and says which server answered by its port.
 */
class RouteByHandEndToEndTest {
  @TempDir Path dir;
  MigrationFixture f;

  private Cli.Result turnout(String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.add("--admin");
    all.add("127.0.0.1:" + f.plane.adminPort());
    return Cli.run(all.toArray(String[]::new));
  }

  private byte[] journal() throws Exception {
    return Files.readAllBytes(dir.resolve("store").resolve("routes.journal"));
  }

  private int serverBehindTheSidecar() throws Exception {
    return MigrationFixture.serverPortOf(f.appPort, "app");
  }

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  @Test
  void routeSetAndDrain_moveTheSidecarsConnections_andHistoryListsWhoDidWhatAndWhy() throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    String source = "127.0.0.1:" + f.source.port();
    String other = "127.0.0.1:" + f.target.port();
    assertThat(serverBehindTheSidecar()).isEqualTo(f.source.port());

    Cli.Result moved = turnout("route", "set", "app", other, "--reason", "db1 replaced after a disk failure",
        "--expect-current", source);
    assertThat(moved.exit()).as(moved.out() + moved.err()).isZero();
    assertThat(moved.out()).contains("database 'app': " + source + " -> " + other)
        .contains("recorded as made by anonymous@127.0.0.1")
        .contains("acknowledged by every subscribed sidecar: app-1");
    assertThat(serverBehindTheSidecar()).as("a new connection reaches the other server").isEqualTo(f.target.port());

    Cli.Result drained = turnout("route", "drain", "app", "--reason", "the new host misbehaves; hold connections");
    assertThat(drained.exit()).as(drained.out() + drained.err()).isZero();
    assertThat(drained.out()).contains(other + " -> (drained)").contains("app-1");
    CompletableFuture<Integer> waiting = CompletableFuture.supplyAsync(() -> {
      try {
        return serverBehindTheSidecar();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
    Thread.sleep(1500);
    assertThat(waiting).as("a new connection waits while the database is drained").isNotDone();

    Cli.Result back = turnout("route", "set", "app", source, "--reason", "back to db1 while the new host is examined");
    assertThat(back.exit()).as(back.out() + back.err()).isZero();
    assertThat(waiting.get(20, TimeUnit.SECONDS)).as("the held connection goes where the route now says")
        .isEqualTo(f.source.port());

    Cli.Result history = turnout("routes", "--history", "app");
    assertThat(history.exit()).as(history.err()).isZero();
    List<String> rows = history.out().lines().filter(l -> l.matches("\\d+ .*")).toList();
    assertThat(rows).hasSize(4);
    assertThat(rows.get(0)).contains(source).contains(" route ").contains("anonymous@127.0.0.1")
        .endsWith("back to db1 while the new host is examined");
    assertThat(rows.get(1)).contains("(drained)").contains(" drain ").contains("anonymous@127.0.0.1")
        .endsWith("the new host misbehaves; hold connections");
    assertThat(rows.get(2)).contains(other).contains(" route ").endsWith("db1 replaced after a disk failure");
    assertThat(rows.get(3)).contains(source).contains(" seed ").contains("turnout");
    assertThat(rows.get(0)).as("when").containsPattern("\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ");
  }

  @Test
  void aRouteByHand_isRefusedWhileAMigrationRuns_andBadInputExits2_changingNothing() throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    String source = "127.0.0.1:" + f.source.port();
    String other = "127.0.0.1:" + f.target.port();
    byte[] journal = journal();

    Cli.Result unknown = turnout("route", "set", "nope", other, "--reason", "x");
    assertThat(unknown.exit()).isEqualTo(2);
    assertThat(unknown.err()).contains("NOT_FOUND").contains("unknown database 'nope'");
    Cli.Result malformed = turnout("route", "set", "app", "127.0.0.1", "--reason", "x");
    assertThat(malformed.exit()).isEqualTo(2);
    assertThat(malformed.err()).contains("INVALID_ARGUMENT").contains("endpoint '127.0.0.1' has no port");
    Cli.Result noReason = turnout("route", "drain", "app", "--reason", " ");
    assertThat(noReason.exit()).isEqualTo(2);
    assertThat(noReason.err()).contains("INVALID_ARGUMENT").contains("a reason is required");
    assertThat(turnout("route", "drain", "app").exit()).as("--reason is required by the CLI too").isEqualTo(2);
    Cli.Result stale = turnout("route", "set", "app", other, "--reason", "x", "--expect-current", "127.0.0.1:1");
    assertThat(stale.exit()).isEqualTo(2);
    assertThat(stale.err()).contains("ABORTED")
        .contains("database 'app' is routed to " + source + ", not to the expected 127.0.0.1:1");

    Cli.Result started = turnout("migrate", "start", "app", "--target", other, "--window", "60s");
    assertThat(started.exit()).as(started.err()).isZero();
    Matcher id = Pattern.compile("migration (\\w+) of database").matcher(started.out());
    assertThat(id.find()).isTrue();
    f.awaitPhase(id.group(1), p -> p == Phase.REPLICATING || p.isTerminal(), Duration.ofSeconds(30));
    Cli.Result during = turnout("route", "set", "app", other, "--reason", "failover");
    assertThat(during.exit()).isEqualTo(2);
    assertThat(during.err()).contains("FAILED_PRECONDITION")
        .contains("database 'app' has migration " + id.group(1) + " in REPLICATING");
    assertThat(turnout("route", "drain", "app", "--reason", "failover").err()).contains("FAILED_PRECONDITION");

    assertThat(journal()).as("nothing recorded").isEqualTo(journal);
    assertThat(serverBehindTheSidecar()).isEqualTo(f.source.port());
    assertThat(turnout("routes", "--history", "app").out().lines().filter(l -> l.matches("\\d+ .*")))
        .singleElement().asString().contains(" seed ");

    // Once the migration is over, the route is the operator's again.
    assertThat(turnout("migrate", "rollback", id.group(1)).exit()).isZero();
    assertThat(turnout("migrate", "watch", id.group(1)).exit()).as("rolled back").isEqualTo(3);
    Cli.Result after = turnout("route", "set", "app", other, "--reason", "failover, now that nothing migrates");
    assertThat(after.exit()).as(after.out() + after.err()).isZero();
    assertThat(serverBehindTheSidecar()).isEqualTo(f.target.port());
  }
}
