package dev.turnout.it.bench;

import static dev.turnout.it.bench.BenchSupport.arg;
import static dev.turnout.it.bench.BenchSupport.intArg;

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
 * --placement shared|split|both (default both), --json FILE (write the figures for comparison between commits).
 *
 * <p>Two placements of the processes on this machine's cores. <b>shared</b>: pgbench, PostgreSQL and the sidecar
 * all float over every core, so the sidecar's work takes CPU away from the server it measures. <b>split</b>: the
 * deployment a sidecar lives in — PostgreSQL pinned to the last core (the database host), pgbench and the sidecar
 * pinned to the others (the application host, where the sidecar runs beside the application). The direct run of
 * each placement uses the same pinning, so each ratio compares like with like.
 */
public final class SidecarBenchmark {
  private static final Pattern TPS = Pattern.compile("tps = ([0-9.]+)");
  private static final Pattern LATENCY = Pattern.compile("latency average = ([0-9.]+) ms");

  record Run(double tps, double latencyMs) {}

  record Figures(String placement, double directTps, double sidecarTps, double directLatencyMs,
      double sidecarLatencyMs, double sidecarCpuMicrosPerTx) {
    double ratio() {
      return sidecarTps / directTps;
    }
  }

  public static void main(String[] args) throws Exception {
    int seconds = intArg(args, "--seconds", 10);
    int clients = intArg(args, "--clients", 4);
    int rounds = intArg(args, "--rounds", 2);
    String json = arg(args, "--json", null);
    String placement = arg(args, "--placement", "both");
    Path dir = Files.createTempDirectory("turnout-bench");
    try (PostgresServer pg = PostgresServer.start(dir.resolve("pg"))) {
      pgbench(dir, pg.port(), List.of("-i", "-s", "10", "-q"), "0-" + (Runtime.getRuntime().availableProcessors() - 1));
      int sidecarPort = PostgresServer.freePort();
      TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0), dir.resolve("store"),
          Duration.ofSeconds(10), ImmutableList.of(new DatabaseRoute("bench", sidecarPort,
              Optional.of(new Endpoint("127.0.0.1", pg.port())), Set.of())), TurnoutConfig.MigratorSettings.DEFAULT);
      try (ControlPlane plane = ControlPlane.start(config);
           Sidecar sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", plane.xdsPort(), "bench-1", "bench"))) {
        awaitSidecar(sidecarPort);
        int cores = Runtime.getRuntime().availableProcessors();
        List<String> placements = switch (placement) {
          case "both" -> cores >= 2 ? List.of("shared", "split") : List.of("shared");
          case "shared", "split" -> List.of(placement);
          default -> throw new IllegalArgumentException("--placement must be shared, split or both: " + placement);
        };
        List<Figures> figures = new ArrayList<>();
        for (String p : placements) {
          String appCpus = p.equals("split") ? "0-" + (cores - 2) : "0-" + (cores - 1);
          String dbCpus = p.equals("split") ? Integer.toString(cores - 1) : "0-" + (cores - 1);
          pin(pg.process(), dbCpus);
          pin(ProcessHandle.current(), appCpus);
          figures.add(measure(p, dir, pg.port(), sidecarPort, clients, seconds, rounds, appCpus));
        }
        System.out.printf(Locale.ROOT, "%nsidecar benchmark: pgbench -S, %d clients, %d s x %d rounds, %d cores%n",
            clients, seconds, rounds, cores);
        System.out.printf(Locale.ROOT, "%-9s %12s %12s %8s %12s %12s %10s %14s%n", "placement", "direct TPS",
            "sidecar TPS", "ratio", "direct ms", "sidecar ms", "added ms", "sidecar CPU/tx");
        for (Figures f : figures) {
          System.out.printf(Locale.ROOT, "%-9s %12.0f %12.0f %8.3f %12.3f %12.3f %10.3f %11.1f us%n", f.placement(),
              f.directTps(), f.sidecarTps(), f.ratio(), f.directLatencyMs(), f.sidecarLatencyMs(),
              f.sidecarLatencyMs() - f.directLatencyMs(), f.sidecarCpuMicrosPerTx());
        }
        System.out.println("goal: ratio >= 0.85 (shared: everything on every core; split: PostgreSQL on core "
            + (cores - 1) + ", pgbench and the sidecar on the others)");
        if (json != null) {
          StringBuilder out = new StringBuilder(String.format(Locale.ROOT,
              "{\"benchmark\":\"sidecar\",\"clients\":%d,\"seconds\":%d,\"rounds\":%d,\"cores\":%d,\"placements\":[",
              clients, seconds, rounds, cores));
          for (int i = 0; i < figures.size(); i++) {
            Figures f = figures.get(i);
            out.append(i == 0 ? "" : ",").append(String.format(Locale.ROOT,
                "{\"placement\":\"%s\",\"direct_tps\":%.1f,\"sidecar_tps\":%.1f,\"ratio\":%.4f,"
                    + "\"direct_latency_ms\":%.4f,\"sidecar_latency_ms\":%.4f,\"sidecar_cpu_us_per_tx\":%.2f}",
                f.placement(), f.directTps(), f.sidecarTps(), f.ratio(), f.directLatencyMs(), f.sidecarLatencyMs(),
                f.sidecarCpuMicrosPerTx()));
          }
          Files.writeString(Path.of(json), out.append("]}\n").toString());
        }
      }
    }
    System.exit(0);
  }

  private static Figures measure(String placement, Path dir, int pgPort, int sidecarPort, int clients, int seconds,
      int rounds, String appCpus) throws IOException, InterruptedException {
    List<Run> direct = new ArrayList<>();
    List<Run> proxied = new ArrayList<>();
    List<String> common = List.of("-S", "-n", "-c", Integer.toString(clients), "-j", Integer.toString(Math.min(clients, 2)),
        "-T", Integer.toString(seconds));
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    long directCpu = 0;
    long sidecarCpu = 0;
    for (int r = 0; r < rounds; r++) { // alternate so drift in the machine hits both sides alike
      long before = os.getProcessCpuTime();
      direct.add(pgbench(dir, pgPort, common, appCpus));
      long between = os.getProcessCpuTime();
      proxied.add(pgbench(dir, sidecarPort, common, appCpus));
      directCpu += between - before; // this JVM's idle cost: the control plane, GC, the JIT
      sidecarCpu += os.getProcessCpuTime() - between;
    }
    double sidecarTps = average(proxied, Run::tps);
    double cpuMicrosPerTx = (sidecarCpu - directCpu) / 1000.0 / (sidecarTps * seconds * rounds);
    return new Figures(placement, average(direct, Run::tps), sidecarTps,
        average(direct, Run::latencyMs), average(proxied, Run::latencyMs), cpuMicrosPerTx);
  }

  private static double average(List<Run> runs, java.util.function.ToDoubleFunction<Run> figure) {
    return runs.stream().mapToDouble(figure).average().orElseThrow();
  }

  /** Sets the CPU affinity of every thread of {@code process} and of its descendants. */
  private static void pin(ProcessHandle process, String cpus) throws IOException, InterruptedException {
    List<ProcessHandle> all = new ArrayList<>();
    all.add(process);
    process.descendants().forEach(all::add);
    for (ProcessHandle h : all) {
      Process p = new ProcessBuilder("taskset", "-a", "-p", "-c", cpus, Long.toString(h.pid()))
          .redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (p.waitFor() != 0 && h.isAlive()) {
        throw new IllegalStateException("taskset failed for " + h.pid() + ": " + out);
      }
    }
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

  private static Run pgbench(Path dir, int port, List<String> args, String cpus)
      throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of("taskset", "-c", cpus, PostgresServer.BIN.resolve("pgbench").toString(),
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
}
