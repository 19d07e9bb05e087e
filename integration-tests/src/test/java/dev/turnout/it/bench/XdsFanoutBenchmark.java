package dev.turnout.it.bench;

import static dev.turnout.it.bench.BenchSupport.arg;
import static dev.turnout.it.bench.BenchSupport.settleHeap;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.xds.NodeStatus;
import dev.turnout.controlplane.xds.XdsType;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.it.SimulatedSidecar;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * Benchmark: N simulated sidecars (real gRPC ADS streams over loopback, state of the world, ACKing like Envoy)
 * subscribed to 100 databases; one database's endpoint changes and the time until each node ACKs it is
 * measured: p50/p99/max over several changes, plus heap and CPU per stream. Asserts nothing: it reports.
 *
 * <pre>mvn -q -pl integration-tests exec:java@fanout-bench -Dexec.args="--streams 1000,5000 --changes 5"</pre>
 * Options: --protocol sotw|delta|both (default both: state-of-the-world ADS, and incremental ADS as Envoy's
 * DELTA_GRPC), --clients process|inprocess (default process: the simulated sidecars run in a second JVM, so the
 * heap and CPU per stream are the control plane's own; inprocess shares this JVM), --databases N, --json FILE.
 */
public final class XdsFanoutBenchmark {

  public static void main(String[] args) throws Exception {
    String streamsArg = arg(args, "--streams", "1000,5000");
    int changes = Integer.parseInt(arg(args, "--changes", "5"));
    int databases = Integer.parseInt(arg(args, "--databases", "100"));
    if (args.length > 0 && args[0].equals("--client-process")) {
      clientProcess(args);
      return;
    }
    String json = arg(args, "--json", null);
    String protocolArg = arg(args, "--protocol", "both");
    boolean separate = !arg(args, "--clients", "process").equals("inprocess");
    List<String> protocols = protocolArg.equals("both") ? List.of("sotw", "delta") : List.of(protocolArg);
    for (String p : protocols) {
      if (!p.equals("sotw") && !p.equals("delta")) {
        throw new IllegalArgumentException("--protocol must be sotw, delta or both: " + protocolArg);
      }
    }
    StringBuilder jsonOut = new StringBuilder("[");
    System.out.printf(Locale.ROOT, "%nxDS fan-out: %d databases, %d endpoint changes per run, %d cores%n", databases,
        changes, Runtime.getRuntime().availableProcessors());
    System.out.println(separate ? "simulated sidecars in a second JVM: heap and CPU are the control plane's own"
        : "simulated sidecars in this JVM: heap and CPU include them");
    System.out.printf(Locale.ROOT, "%-6s %8s %10s %10s %10s %12s %14s %14s%n", "ADS", "streams", "p50 ms", "p99 ms",
        "max ms", "connect s", "heap KiB/str", "CPU ms/str/chg");
    for (String protocol : protocols) {
      for (String s : streamsArg.split(",")) {
        int streams = Integer.parseInt(s.trim());
        String row = run(streams, databases, changes, protocol, separate);
        if (jsonOut.length() > 1) {
          jsonOut.append(',');
        }
        jsonOut.append(row);
      }
    }
    if (json != null) {
      Files.writeString(Path.of(json), jsonOut.append("]\n").toString());
    }
    System.out.println("goal: 5,000 streams, every ACK within 2 s at p99");
    System.exit(0);
  }

  /** The load process: {@code --client-process PORT STREAMS PROTOCOL}; runs until its stdin closes. */
  private static void clientProcess(String[] args) throws Exception {
    int port = Integer.parseInt(args[1]);
    int streams = Integer.parseInt(args[2]);
    boolean delta = args[3].equals("delta");
    List<ManagedChannel> channels = new ArrayList<>();
    List<SimulatedSidecar> sidecars = new ArrayList<>();
    for (int i = 0; i < streams; i++) {
      if (i % PER_CHANNEL == 0) {
        channels.add(NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().maxInboundMessageSize(64 << 20).build());
      }
      ManagedChannel ch = channels.get(channels.size() - 1);
      sidecars.add(delta ? SimulatedSidecar.delta(ch, "node-" + i, "app") : new SimulatedSidecar(ch, "node-" + i, "app"));
    }
    System.out.println("clients started: " + streams);
    System.out.flush();
    while (System.in.read() != -1) {
      // wait for the benchmark to close our stdin
    }
    System.exit(0);
  }

  /** This program's class path: exec:java loads it in a class loader of its own, not on java.class.path. */
  private static String classPath() {
    List<String> entries = new ArrayList<>();
    for (ClassLoader cl = XdsFanoutBenchmark.class.getClassLoader(); cl != null; cl = cl.getParent()) {
      if (cl instanceof java.net.URLClassLoader u) {
        for (java.net.URL url : u.getURLs()) {
          try {
            entries.add(Path.of(url.toURI()).toString());
          } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
          }
        }
      }
    }
    entries.add(System.getProperty("java.class.path"));
    return String.join(java.io.File.pathSeparator, entries);
  }

  /** HTTP/2 connections carry 100 streams each: a load process is not thousands of hosts. */
  private static final int PER_CHANNEL = 100;

  private static String run(int streams, int databases, int changes, String protocol, boolean separate)
      throws Exception {
    Path dir = Files.createTempDirectory("turnout-fanout");
    List<DatabaseRoute> routes = new ArrayList<>();
    for (int i = 0; i < databases; i++) {
      routes.add(new DatabaseRoute("db" + i, 20000 + i, Optional.of(new Endpoint("10.1." + (i / 250) + "." + (i % 250 + 1),
          5432)), Set.of()));
    }
    settleHeap();
    long heapBefore = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    try (ControlPlane plane = ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0),
        dir.resolve("store"), Duration.ofSeconds(120), ImmutableList.copyOf(routes), TurnoutConfig.MigratorSettings.DEFAULT))) {
      List<ManagedChannel> channels = new ArrayList<>();
      List<SimulatedSidecar> sidecars = new ArrayList<>();
      Process clients = null;
      long connectStart = System.nanoTime();
      if (separate) {
        clients = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xss512k",
            "-cp", classPath(), XdsFanoutBenchmark.class.getName(), "--client-process",
            Integer.toString(plane.xdsPort()), Integer.toString(streams), protocol)
            .redirectErrorStream(true).redirectOutput(dir.resolve("clients.log").toFile()).start();
      } else {
        for (int i = 0; i < streams; i++) {
          if (i % PER_CHANNEL == 0) {
            channels.add(NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort()).usePlaintext()
                .maxInboundMessageSize(64 << 20).build());
          }
          ManagedChannel ch = channels.get(channels.size() - 1);
          sidecars.add(protocol.equals("delta") ? SimulatedSidecar.delta(ch, "node-" + i, "app")
              : new SimulatedSidecar(ch, "node-" + i, "app"));
        }
      }
      long version = plane.routing().version();
      try {
        awaitAllAcked(plane, streams, version, Duration.ofSeconds(300));
      } catch (IllegalStateException e) {
        throw new IllegalStateException(e.getMessage() + (separate ? "; see " + dir.resolve("clients.log") : ""), e);
      }
      double connectSeconds = (System.nanoTime() - connectStart) / 1e9;
      settleHeap();
      long heapAfter = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();

      List<Long> latencies = new ArrayList<>();
      var threads = ManagementFactory.getThreadMXBean();
      long cpuBefore = totalCpu(threads);
      for (int c = 0; c < changes; c++) {
        String db = "db" + (c % databases);
        Instant t0 = Instant.now();
        var result = plane.routing().route(db, new Endpoint("10.2.0." + (c + 1), 5432)).get(120, TimeUnit.SECONDS);
        for (NodeStatus n : plane.tracker().nodes()) {
          NodeStatus.TypeStatus eds = n.types().get(XdsType.EDS);
          if (eds != null && eds.ackedVersion() >= result.version() && eds.ackedAt().isPresent()) {
            latencies.add(Duration.between(t0, eds.ackedAt().get()).toMillis());
          }
        }
      }
      long cpu = totalCpu(threads) - cpuBefore;
      Collections.sort(latencies);
      long p50 = latencies.get(latencies.size() / 2);
      long p99 = latencies.get((int) Math.min(latencies.size() - 1, Math.ceil(latencies.size() * 0.99) - 1));
      long max = latencies.get(latencies.size() - 1);
      double heapPerStream = (heapAfter - heapBefore) / 1024.0 / streams;
      double cpuPerStreamChange = cpu / 1e6 / streams / changes;
      System.out.printf(Locale.ROOT, "%-6s %8d %10d %10d %10d %12.1f %14.1f %14.3f%n", protocol, streams, p50, p99, max,
          connectSeconds, heapPerStream, cpuPerStreamChange);
      sidecars.forEach(SimulatedSidecar::close);
      channels.forEach(ManagedChannel::shutdownNow);
      if (clients != null) {
        clients.getOutputStream().close();
        if (!clients.waitFor(30, TimeUnit.SECONDS)) {
          clients.destroyForcibly();
        }
      }
      return String.format(Locale.ROOT, "{\"protocol\":\"%s\",\"clients\":\"%s\",\"streams\":%d,\"databases\":%d,"
          + "\"changes\":%d,\"p50_ms\":%d,\"p99_ms\":%d,\"max_ms\":%d,\"heap_kib_per_stream\":%.1f,"
          + "\"cpu_ms_per_stream_change\":%.3f}", protocol, separate ? "process" : "inprocess", streams, databases,
          changes, p50, p99, max, heapPerStream, cpuPerStreamChange);
    }
  }

  private static long totalCpu(java.lang.management.ThreadMXBean threads) {
    long total = 0;
    for (long id : threads.getAllThreadIds()) {
      long t = threads.getThreadCpuTime(id);
      if (t > 0) {
        total += t;
      }
    }
    return total;
  }

  private static void awaitAllAcked(ControlPlane plane, int streams, long version, Duration timeout) throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long acked = plane.tracker().nodes().stream().filter(n -> n.ackedVersion(XdsType.EDS) >= version).count();
      if (acked >= streams) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("only " + acked + " of " + streams + " nodes ACKed within " + timeout);
      }
      Thread.sleep(100);
    }
  }
}
