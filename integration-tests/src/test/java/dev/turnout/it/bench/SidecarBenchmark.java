package dev.turnout.it.bench;

import static dev.turnout.it.bench.BenchSupport.arg;
import static dev.turnout.it.bench.BenchSupport.intArg;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.it.PostgresServer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.LongSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Benchmark: pgbench select-only load straight to PostgreSQL and through the built-in sidecar; prints TPS,
 * the ratio, the added latency and the proxy's CPU per transaction. Not a test: it asserts nothing, it reports.
 * The sidecar runs as deployed, {@code turnout sidecar} in a JVM of its own subscribed to a control plane in this
 * one, so its CPU is its process's alone.
 *
 * <pre>mvn -q -pl integration-tests -am test-compile exec:java@sidecar-bench -Dexec.args="--seconds 10 --clients 4"</pre>
 * Options: --seconds N (per run, default 10), --clients N (default 4), --rounds N (alternating runs, default 2),
 * --placement shared|split|both (default both), --haproxy PATH|none (default: {@code haproxy} if it is on the PATH),
 * --json FILE (write the figures for comparison between commits).
 *
 * <p>With HAProxy installed ({@code apt-get install haproxy}) the same load also runs through HAProxy in TCP mode,
 * in the same alternation and placement, as a yardstick: a mature proxy written in C shows what any user-space
 * TCP proxy costs on this machine.
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

  /** One proxy's figures in one placement, against the direct runs alternated with it. */
  record Figures(String placement, String proxy, double directTps, double proxiedTps, double directLatencyMs,
      double proxiedLatencyMs, double proxyCpuMicrosPerTx) {
    double ratio() {
      return proxiedTps / directTps;
    }
  }

  /** A way to the server: its port, and the CPU time its proxy has used so far (nanoseconds). */
  record Route(String name, int port, LongSupplier cpuNanos) {}

  public static void main(String[] args) throws Exception {
    int seconds = intArg(args, "--seconds", 10);
    int clients = intArg(args, "--clients", 4);
    int rounds = intArg(args, "--rounds", 2);
    String json = arg(args, "--json", null);
    String placement = arg(args, "--placement", "both");
    Path dir = BenchSupport.tempDirectory("turnout-bench", args);
    try (PostgresServer pg = PostgresServer.start(dir.resolve("pg"))) {
      pgbench(dir, pg.port(), List.of("-i", "-s", "10", "-q"), "0-" + (Runtime.getRuntime().availableProcessors() - 1));
      int sidecarPort = PostgresServer.freePort();
      TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0), dir.resolve("store"),
          Duration.ofSeconds(10), ImmutableList.of(new DatabaseRoute("bench", sidecarPort,
              Optional.of(new Endpoint("127.0.0.1", pg.port())), Set.of())), TurnoutConfig.MigratorSettings.DEFAULT);
      String haproxyBinary = arg(args, "--haproxy", "auto");
      try (ControlPlane plane = ControlPlane.start(config);
           Proxy sidecar = Proxy.sidecar(dir, plane.xdsPort());
           Proxy haproxy = Proxy.haproxy(haproxyBinary, dir, pg.port())) {
        awaitServing(sidecarPort);
        List<Route> routes = new ArrayList<>();
        routes.add(new Route("sidecar", sidecarPort, sidecar::cpuNanos));
        if (haproxy != null) {
          awaitServing(haproxy.port());
          routes.add(new Route("haproxy", haproxy.port(), haproxy::cpuNanos));
        } else {
          System.out.println("reference: no HAProxy (" + haproxyBinary + "); apt-get install haproxy to compare");
        }
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
          pin(ProcessHandle.current(), appCpus); // the proxies are children of this process
          figures.addAll(measure(p, dir, pg.port(), routes, clients, seconds, rounds, appCpus));
        }
        System.out.printf(Locale.ROOT, "%nsidecar benchmark: pgbench -S, %d clients, %d s x %d rounds, %d cores%n",
            clients, seconds, rounds, cores);
        System.out.printf(Locale.ROOT, "%-9s %-8s %11s %12s %7s %10s %11s %9s %12s%n", "placement", "proxy",
            "direct TPS", "proxied TPS", "ratio", "direct ms", "proxied ms", "added ms", "proxy CPU/tx");
        for (Figures f : figures) {
          System.out.printf(Locale.ROOT, "%-9s %-8s %11.0f %12.0f %7.3f %10.3f %11.3f %9.3f %9.1f us%n",
              f.placement(), f.proxy(), f.directTps(), f.proxiedTps(), f.ratio(), f.directLatencyMs(),
              f.proxiedLatencyMs(), f.proxiedLatencyMs() - f.directLatencyMs(), f.proxyCpuMicrosPerTx());
        }
        System.out.println("goal: sidecar ratio >= 0.85 (shared: everything on every core; split: PostgreSQL on core "
            + (cores - 1) + ", pgbench and the proxy on the others)");
        if (json != null) {
          StringBuilder out = new StringBuilder(String.format(Locale.ROOT,
              "{\"benchmark\":\"sidecar\",\"clients\":%d,\"seconds\":%d,\"rounds\":%d,\"cores\":%d,\"placements\":[",
              clients, seconds, rounds, cores));
          for (int i = 0; i < figures.size(); i++) {
            Figures f = figures.get(i);
            out.append(i == 0 ? "" : ",").append(String.format(Locale.ROOT,
                "{\"placement\":\"%s\",\"proxy\":\"%s\",\"direct_tps\":%.1f,\"proxied_tps\":%.1f,\"ratio\":%.4f,"
                    + "\"direct_latency_ms\":%.4f,\"proxied_latency_ms\":%.4f,\"proxy_cpu_us_per_tx\":%.2f}",
                f.placement(), f.proxy(), f.directTps(), f.proxiedTps(), f.ratio(), f.directLatencyMs(),
                f.proxiedLatencyMs(), f.proxyCpuMicrosPerTx()));
          }
          Files.writeString(Path.of(json), out.append("]}\n").toString());
        }
      }
    }
    System.exit(0);
  }

  /**
   * Runs pgbench straight to the server and through each route, alternating, {@code rounds} times. A proxy's CPU
   * per transaction is what its CPU clock advanced during its runs, less what that clock advanced during the
   * direct run before it (its cost at rest).
   */
  private static List<Figures> measure(String placement, Path dir, int pgPort, List<Route> routes,
      int clients, int seconds, int rounds, String appCpus)
      throws IOException, InterruptedException {
    List<Run> direct = new ArrayList<>();
    Map<String, List<Run>> proxied = new LinkedHashMap<>();
    Map<String, Long> busyNanos = new HashMap<>();
    List<String> common = List.of("-S", "-n", "-c", Integer.toString(clients), "-j", Integer.toString(Math.min(clients, 2)),
        "-T", Integer.toString(seconds));
    for (int r = 0; r < rounds; r++) { // alternate so drift in the machine hits every side alike
      Map<String, Long> idle = new HashMap<>();
      routes.forEach(route -> idle.put(route.name(), -route.cpuNanos().getAsLong()));
      direct.add(pgbench(dir, pgPort, common, appCpus));
      routes.forEach(route -> idle.merge(route.name(), route.cpuNanos().getAsLong(), Long::sum)); // over the direct run
      for (Route route : routes) {
        long start = route.cpuNanos().getAsLong();
        proxied.computeIfAbsent(route.name(), k -> new ArrayList<>()).add(pgbench(dir, route.port(), common, appCpus));
        busyNanos.merge(route.name(), route.cpuNanos().getAsLong() - start - idle.get(route.name()), Long::sum);
      }
    }
    List<Figures> figures = new ArrayList<>();
    for (Route route : routes) {
      List<Run> runs = proxied.get(route.name());
      double tps = average(runs, Run::tps);
      figures.add(new Figures(placement, route.name(), average(direct, Run::tps), tps, average(direct, Run::latencyMs),
          average(runs, Run::latencyMs), busyNanos.get(route.name()) / 1000.0 / (tps * seconds * rounds)));
    }
    return figures;
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

  private static void awaitServing(int port) throws Exception {
    for (int i = 0; i < 300; i++) {
      try (Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(port))) {
        return;
      } catch (java.sql.SQLException e) {
        Thread.sleep(50);
      }
    }
    throw new IllegalStateException("nothing serves PostgreSQL on port " + port);
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

  /** A proxy in a process of its own, as it is deployed, whose CPU time is read from /proc. */
  static final class Proxy implements AutoCloseable {
    private final Process process;
    private final int port;

    private Proxy(Process process, int port) {
      this.process = process;
      this.port = port;
    }

    /** {@code turnout sidecar} in its own JVM, subscribed to the benchmark's control plane. */
    static Proxy sidecar(Path dir, int xdsPort) throws IOException, InterruptedException {
      return start(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
          classPath(), dev.turnout.controlplane.cli.Turnout.class.getName(), "sidecar",
          "--xds", "127.0.0.1:" + xdsPort, "--node", "bench-1", "--cluster", "bench"), dir.resolve("sidecar.log"), 0);
    }

    /** HAProxy in TCP mode in front of the server, the yardstick; null when there is no HAProxy to run. */
    static Proxy haproxy(String binary, Path dir, int serverPort) throws IOException, InterruptedException {
      if (binary.equals("none")) {
        return null;
      }
      Optional<Path> found = binary.equals("auto")
          ? java.util.stream.Stream.of(System.getenv().getOrDefault("PATH", "").split(":"))
              .map(d -> Path.of(d, "haproxy")).filter(Files::isExecutable).findFirst()
              .or(() -> Optional.of(Path.of("/usr/sbin/haproxy")).filter(Files::isExecutable))
          : Optional.of(Path.of(binary));
      if (found.isEmpty()) {
        return null;
      }
      int port = PostgresServer.freePort();
      Path config = dir.resolve("haproxy.cfg");
      Files.writeString(config, String.join("\n",
          "global", "  maxconn 4000",
          "defaults", "  mode tcp", "  timeout connect 5s", "  timeout client 1h", "  timeout server 1h",
          "listen bench", "  bind 127.0.0.1:" + port, "  server db 127.0.0.1:" + serverPort, ""));
      return start(List.of(found.get().toString(), "-db", "-f", config.toString()), dir.resolve("haproxy.log"), port);
    }

    /** This program's class path: exec:java loads it in a class loader of its own, not on java.class.path. */
    private static String classPath() {
      List<String> entries = new ArrayList<>();
      for (ClassLoader l = Thread.currentThread().getContextClassLoader(); l != null; l = l.getParent()) {
        if (l instanceof java.net.URLClassLoader urls) {
          for (java.net.URL url : urls.getURLs()) {
            try {
              entries.add(Path.of(url.toURI()).toString());
            } catch (java.net.URISyntaxException | IllegalArgumentException e) {
              // not a file: nothing a JVM could load from
            }
          }
        }
      }
      entries.add(System.getProperty("java.class.path"));
      return String.join(java.io.File.pathSeparator, entries);
    }

    private static Proxy start(List<String> command, Path log, int port) throws IOException, InterruptedException {
      Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
      Thread.sleep(200);
      if (!process.isAlive()) {
        throw new IllegalStateException(command.get(0) + " did not start: " + Files.readString(log));
      }
      return new Proxy(process, port);
    }

    int port() {
      return port;
    }

    /** User and system CPU of the process so far, from /proc (clock ticks of 10 ms). */
    long cpuNanos() {
      try {
        String stat = Files.readString(Path.of("/proc", Long.toString(process.pid()), "stat"));
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return (Long.parseLong(fields[11]) + Long.parseLong(fields[12])) * 10_000_000L;
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }

    @Override
    public void close() throws InterruptedException {
      process.destroy();
      process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
    }
  }
}
