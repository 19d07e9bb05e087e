package dev.turnout.it.bench;

import static dev.turnout.it.bench.BenchSupport.arg;

import dev.turnout.controlplane.demo.Writer;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.it.PostgresServer;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * Benchmark: N migrations in a row of one live database (each to a fresh standby of the current primary) while
 * an application writes through the sidecar; prints each write-unavailability window, their median and max,
 * and the commits lost (acknowledged but missing on the new primary). Asserts nothing: it reports.
 *
 * <pre>mvn -q -pl integration-tests exec:java@migration-bench -Dexec.args="--migrations 5"</pre>
 * Options: --migrations N (default 5), --window SECONDS (validation window, default 1), --json FILE.
 */
public final class MigrationBenchmark {

  public static void main(String[] args) throws Exception {
    int n = Integer.parseInt(arg(args, "--migrations", "5"));
    int window = Integer.parseInt(arg(args, "--window", "1"));
    String json = arg(args, "--json", null);
    Path dir = Files.createTempDirectory("turnout-migration-bench");
    List<PostgresServer> servers = new ArrayList<>();
    PostgresServer primary = PostgresServer.start(dir.resolve("pg0"), "wal_level=logical", "max_wal_senders=10",
        "max_replication_slots=10");
    servers.add(primary);
    primary.createApplication();
    int appPort = PostgresServer.freePort();
    TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0), dir.resolve("store"),
        Duration.ofSeconds(10), ImmutableList.of(new DatabaseRoute("app", appPort,
            Optional.of(new Endpoint("127.0.0.1", primary.port())), Set.of())), TurnoutConfig.MigratorSettings.DEFAULT);
    List<Double> windows = new ArrayList<>();
    List<Long> cutoverMillis = new ArrayList<>();
    long lost = 0;
    int completed = 0;
    try (ControlPlane plane = ControlPlane.start(config);
         Sidecar sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", plane.xdsPort(), "bench-app", "app"));
         Writer writer = new Writer(appPort, "app").start()) {
      for (int i = 1; i <= n; i++) {
        PostgresServer standby = PostgresServer.startStandby(dir.resolve("pg" + i), primary, "standby_" + i,
            "wal_level=logical", "max_wal_senders=10", "max_replication_slots=10");
        servers.add(standby);
        Migration m = plane.migrator().start(new Migration.Spec("app", new ServerAddress("127.0.0.1", primary.port()),
            new ServerAddress("127.0.0.1", standby.port()),
            new Migration.Options(Duration.ofSeconds(window), 16L * 1024 * 1024, Duration.ofSeconds(60), false)));
        m = await(plane, m.id(), p -> p == Phase.QUIESCING || p.isTerminal() || p == Phase.HALTED);
        writer.resetGap();
        m = await(plane, m.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED);
        Thread.sleep(300);
        double gap = writer.longestGapMillis();
        Set<Long> acknowledged = new HashSet<>(writer.acknowledged()); // before reading the server: it goes on writing
        Set<Long> present = seqs(standby);
        long missing = acknowledged.stream().filter(s -> !present.contains(s)).count();
        long cutover = Duration.between(phaseStart(m, Phase.QUIESCING), phaseStart(m, Phase.COMPLETED)).toMillis();
        System.out.printf(Locale.ROOT, "migration %d/%d %s: %s, write gap %.0f ms, cutover %d ms, lost %d%n", i, n,
            m.id(), m.phase(), gap, cutover, missing);
        if (m.phase() == Phase.COMPLETED) {
          completed++;
          windows.add(gap);
          cutoverMillis.add(cutover);
          plane.migrator().finalizeMigration(m.id());
          primary = standby;
        }
        lost += missing;
      }
    } finally {
      for (PostgresServer s : servers) {
        s.close();
      }
    }
    windows.sort(Double::compare);
    double median = windows.isEmpty() ? Double.NaN : windows.get(windows.size() / 2);
    double max = windows.isEmpty() ? Double.NaN : windows.get(windows.size() - 1);
    System.out.printf(Locale.ROOT, "%nmigration benchmark: %d of %d completed under write load through the sidecar%n",
        completed, n);
    System.out.printf(Locale.ROOT, "%-34s %10s%n", "write-unavailability median (ms)", fmt(median));
    System.out.printf(Locale.ROOT, "%-34s %10s%n", "write-unavailability max (ms)", fmt(max));
    System.out.printf(Locale.ROOT, "%-34s %10s%n", "cutover QUIESCING->COMPLETED (ms)", cutoverMillis);
    System.out.printf(Locale.ROOT, "%-34s %10d%n", "lost commits", lost);
    System.out.println("goal: median under 1000 ms, zero lost");
    if (json != null) {
      Files.writeString(Path.of(json), String.format(Locale.ROOT,
          "{\"benchmark\":\"migration\",\"migrations\":%d,\"completed\":%d,\"median_ms\":%.1f,\"max_ms\":%.1f,"
              + "\"lost\":%d}%n", n, completed, median, max, lost));
    }
    System.exit(0);
  }

  private static String fmt(double v) {
    return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.0f", v);
  }

  private static java.time.Instant phaseStart(Migration m, Phase phase) {
    return m.history().stream().filter(e -> e.phase() == phase).findFirst().orElseThrow().at();
  }

  private static Set<Long> seqs(PostgresServer server) throws java.sql.SQLException {
    try (Connection c = server.connect()) {
      return Writer.seqsOn(c);
    }
  }

  private static Migration await(ControlPlane plane, String id, java.util.function.Predicate<Phase> done)
      throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
    Migration m = plane.migrator().get(id).orElseThrow();
    while (!done.test(m.phase()) && System.nanoTime() < deadline) {
      Thread.sleep(20);
      m = plane.migrator().get(id).orElseThrow();
    }
    return m;
  }
}
