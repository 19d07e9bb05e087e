package dev.turnout.it.bench;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.it.PostgresServer;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Benchmark: pgbench select-only load straight to PostgreSQL and through the built-in sidecar; prints TPS,
 * the ratio and the added latency. Not a test: it asserts nothing, it reports.
 *
 * <pre>mvn -q -pl integration-tests -am test-compile exec:java@sidecar-bench -Dexec.args="--seconds 10 --clients 4"</pre>
 * Options: --seconds N (per run, default 10), --clients N (default 4), --rounds N (alternating runs, default 2),
 * --json FILE (write the figures for comparison between commits).
 */
public final class SidecarBenchmark {
  private static final Pattern TPS = Pattern.compile("tps = ([0-9.]+)");
  private static final Pattern LATENCY = Pattern.compile("latency average = ([0-9.]+) ms");

  record Run(double tps, double latencyMs) {}

  public static void main(String[] args) throws Exception {
    int seconds = intArg(args, "--seconds", 10);
    int clients = intArg(args, "--clients", 4);
    int rounds = intArg(args, "--rounds", 2);
    String json = stringArg(args, "--json", null);
    Path dir = Files.createTempDirectory("turnout-bench");
    try (PostgresServer pg = PostgresServer.start(dir.resolve("pg"))) {
      pgbench(dir, pg.port(), List.of("-i", "-s", "10", "-q"));
      int sidecarPort = PostgresServer.freePort();
      TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0), dir.resolve("store"),
          Duration.ofSeconds(10), ImmutableList.of(new DatabaseRoute("bench", sidecarPort,
              Optional.of(new Endpoint("127.0.0.1", pg.port())), Set.of())), TurnoutConfig.MigratorSettings.DEFAULT);
      try (ControlPlane plane = ControlPlane.start(config);
           Sidecar sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", plane.xdsPort(), "bench-1", "bench"))) {
        awaitSidecar(sidecarPort);
        List<Run> direct = new ArrayList<>();
        List<Run> proxied = new ArrayList<>();
        List<String> common = List.of("-S", "-n", "-c", Integer.toString(clients), "-j", Integer.toString(Math.min(clients, 2)),
            "-T", Integer.toString(seconds));
        for (int r = 0; r < rounds; r++) { // alternate so drift in the machine hits both sides alike
          direct.add(pgbench(dir, pg.port(), common));
          proxied.add(pgbench(dir, sidecarPort, common));
        }
        double dTps = direct.stream().mapToDouble(Run::tps).average().orElseThrow();
        double pTps = proxied.stream().mapToDouble(Run::tps).average().orElseThrow();
        double dLat = direct.stream().mapToDouble(Run::latencyMs).average().orElseThrow();
        double pLat = proxied.stream().mapToDouble(Run::latencyMs).average().orElseThrow();
        System.out.printf(Locale.ROOT, "%nsidecar benchmark: pgbench -S, %d clients, %d s x %d rounds, %d cores%n",
            clients, seconds, rounds, Runtime.getRuntime().availableProcessors());
        System.out.printf(Locale.ROOT, "%-16s %12s %16s%n", "path", "TPS", "latency avg ms");
        System.out.printf(Locale.ROOT, "%-16s %12.0f %16.3f%n", "direct", dTps, dLat);
        System.out.printf(Locale.ROOT, "%-16s %12.0f %16.3f%n", "through sidecar", pTps, pLat);
        System.out.printf(Locale.ROOT, "TPS ratio (sidecar/direct): %.3f   added latency: %.3f ms   goal: ratio >= 0.85%n",
            pTps / dTps, pLat - dLat);
        if (json != null) {
          Files.writeString(Path.of(json), String.format(Locale.ROOT,
              "{\"benchmark\":\"sidecar\",\"clients\":%d,\"seconds\":%d,\"rounds\":%d,\"direct_tps\":%.1f,"
                  + "\"sidecar_tps\":%.1f,\"ratio\":%.4f,\"direct_latency_ms\":%.4f,\"sidecar_latency_ms\":%.4f}%n",
              clients, seconds, rounds, dTps, pTps, pTps / dTps, dLat, pLat));
        }
      }
    }
    System.exit(0);
  }

  private static void awaitSidecar(int port) throws Exception {
    for (int i = 0; i < 300; i++) {
      try (Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(port))) {
        return;
      } catch (java.sql.SQLException e) {
        Thread.sleep(50);
      }
    }
    throw new IllegalStateException("sidecar did not start serving");
  }

  private static Run pgbench(Path dir, int port, List<String> args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(PostgresServer.BIN.resolve("pgbench").toString(),
        "-h", "127.0.0.1", "-p", Integer.toString(port), "-U", "postgres"));
    command.addAll(args);
    command.add("postgres");
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IllegalStateException("pgbench failed:\n" + out);
    }
    Matcher tps = TPS.matcher(out);
    Matcher latency = LATENCY.matcher(out);
    return tps.find() && latency.find()
        ? new Run(Double.parseDouble(tps.group(1)), Double.parseDouble(latency.group(1))) : new Run(0, 0);
  }

  private static int intArg(String[] args, String name, int defaultValue) {
    String v = stringArg(args, name, null);
    return v == null ? defaultValue : Integer.parseInt(v);
  }

  private static String stringArg(String[] args, String name, String defaultValue) {
    for (int i = 0; i < args.length - 1; i++) {
      if (args[i].equals(name)) {
        return args[i + 1];
      }
    }
    return defaultValue;
  }
}
