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
 * heap and CPU per stream are the control plane's own; inprocess shares this JVM), --databases N, --json FILE,
 * --nack (state of the world only: every sidecar NACKs every assignment it is sent, as a fleet rejecting a bad
 * config would; prints the control plane's CPU at rest and the responses per NACK instead of ACK times).
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
    boolean nack = List.of(args).contains("--nack");
    String protocolArg = arg(args, "--protocol", nack ? "sotw" : "both");
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
    if (nack) {
      if (!protocols.equals(List.of("sotw"))) {
        throw new IllegalArgumentException("--nack runs state of the world only");
      }
      System.out.printf(Locale.ROOT, "%-6s %8s %12s %16s %16s %18s%n", "ADS", "streams", "connect s",
          "CPU at rest %", "NACKs at rest", "responses/stream/chg");
    } else {
      System.out.printf(Locale.ROOT, "%-6s %8s %10s %10s %10s %12s %14s %14s %12s %12s %12s%n", "ADS", "streams",
          "p50 ms", "p99 ms", "max ms", "connect s", "heap KiB/str", "CPU ms/str/chg", "routes ms", "/v1/routes",
          "--all ms");
    }
    for (String protocol : protocols) {
      for (String s : streamsArg.split(",")) {
        int streams = Integer.parseInt(s.trim());
        String row = nack ? runNacking(streams, databases, changes, separate)
            : run(streams, databases, changes, protocol, separate);
        if (jsonOut.length() > 1) {
          jsonOut.append(',');
        }
        jsonOut.append(row);
      }
    }
    if (json != null) {
      Files.writeString(Path.of(json), jsonOut.append("]\n").toString());
    }
    System.out.println(nack ? "goal: under 1% of one core at rest for 1,000 NACKing streams, one response per change"
        : "goal: state of the world 5,000 streams p99 <= 2 s, 10,000 <= 3 s; delta 10,000 <= 1 s; heap <= 32 KiB"
            + " per stream");
    System.exit(0);
  }

  /** The load process: {@code --client-process PORT STREAMS PROTOCOL}; runs until its stdin closes. */
  private static void clientProcess(String[] args) throws Exception {
    int port = Integer.parseInt(args[1]);
    int streams = Integer.parseInt(args[2]);
    boolean delta = args[3].equals("delta");
    boolean nacking = args[3].equals("nack");
    List<ManagedChannel> channels = new ArrayList<>();
    List<SimulatedSidecar> sidecars = new ArrayList<>();
    for (int i = 0; i < streams; i++) {
      if (i % PER_CHANNEL == 0) {
        channels.add(NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().maxInboundMessageSize(64 << 20).build());
      }
      ManagedChannel ch = channels.get(channels.size() - 1);
      sidecars.add(delta ? SimulatedSidecar.delta(ch, "node-" + i, "app")
          : new SimulatedSidecar(ch, "node-" + i, "app", cla -> nacking));
    }
    System.out.println("clients started: " + streams);
    System.out.flush();
    while (System.in.read() != -1) {
      // wait for the benchmark to close our stdin
    }
    System.exit(0);
  }

  /** This program's class path: exec:java loads it in a class loader of its own, not on java.class.path. */
  static String classPath() {
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
    Path dir = BenchSupport.tempDirectory("turnout-fanout", new String[0]);
    List<DatabaseRoute> routes = new ArrayList<>();
    for (int i = 0; i < databases; i++) {
      routes.add(new DatabaseRoute("db" + i, 20000 + i, Optional.of(new Endpoint("10.1." + (i / 250) + "." + (i % 250 + 1),
          5432)), Set.of()));
    }
    try (ControlPlane plane = start(dir, routes)) {
      // The baseline is the control plane serving no stream yet, so the figure is what the streams cost.
      settleHeap();
      long heapBefore = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
      List<ManagedChannel> channels = new ArrayList<>();
      List<SimulatedSidecar> sidecars = new ArrayList<>();
      Process clients = null;
      long connectStart = System.nanoTime();
      if (separate) {
        clients = clientProcess(plane, streams, protocol, dir);
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
      RoutesTimes routesTimes = timeRoutes(plane);

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
      System.out.printf(Locale.ROOT, "%-6s %8d %10d %10d %10d %12.1f %14.1f %14.3f %12d %12d %12d%n", protocol, streams,
          p50, p99, max, connectSeconds, heapPerStream, cpuPerStreamChange, routesTimes.summaryMillis,
          routesTimes.httpMillis, routesTimes.allPagesMillis);
      sidecars.forEach(SimulatedSidecar::close);
      channels.forEach(ManagedChannel::shutdownNow);
      stopClients(clients);
      return String.format(Locale.ROOT, "{\"protocol\":\"%s\",\"clients\":\"%s\",\"streams\":%d,\"databases\":%d,"
          + "\"changes\":%d,\"p50_ms\":%d,\"p99_ms\":%d,\"max_ms\":%d,\"heap_kib_per_stream\":%.1f,"
          + "\"cpu_ms_per_stream_change\":%.3f}", protocol, separate ? "process" : "inprocess", streams, databases,
          changes, p50, p99, max, heapPerStream, cpuPerStreamChange);
    }
  }

  private record RoutesTimes(long summaryMillis, long httpMillis, long allPagesMillis) {}

  /**
   * What an SRE waits for at this scale: the summary over the admin API (what {@code turnout routes} asks),
   * {@code /v1/routes} over HTTP, and every sidecar of every database page by page ({@code turnout routes --all}).
   */
  private static RoutesTimes timeRoutes(ControlPlane plane) throws Exception {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext().build();
    try {
      var admin = dev.turnout.admin.v1.AdminGrpc.newBlockingStub(channel);
      admin.getRoutingSnapshot(dev.turnout.admin.v1.GetRoutingSnapshotRequest.getDefaultInstance()); // warm up
      long t0 = System.nanoTime();
      admin.getRoutingSnapshot(dev.turnout.admin.v1.GetRoutingSnapshotRequest.getDefaultInstance());
      long summary = (System.nanoTime() - t0) / 1_000_000;
      t0 = System.nanoTime();
      var http = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
          java.net.URI.create("http://127.0.0.1:" + plane.httpPort() + "/v1/routes")).build(),
          java.net.http.HttpResponse.BodyHandlers.ofString());
      long httpMillis = (System.nanoTime() - t0) / 1_000_000;
      if (http.statusCode() != 200) {
        throw new IllegalStateException("/v1/routes answered " + http.statusCode());
      }
      t0 = System.nanoTime();
      var request = dev.turnout.admin.v1.GetRoutingSnapshotRequest.newBuilder().setAllNodes(true);
      do {
        var page = admin.getRoutingSnapshot(request.build());
        request.setPageToken(page.getNextPageToken());
      } while (!request.getPageToken().isEmpty());
      return new RoutesTimes(summary, httpMillis, (System.nanoTime() - t0) / 1_000_000);
    } finally {
      channel.shutdownNow();
    }
  }

  private static ControlPlane start(Path dir, List<DatabaseRoute> routes) throws Exception {
    return ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0),
        dir.resolve("store"), Duration.ofSeconds(120), ImmutableList.copyOf(routes),
        TurnoutConfig.MigratorSettings.DEFAULT));
  }

  /**
   * Every sidecar NACKs every assignment: after they have all NACKed once, the control plane should be idle
   * (no resend storm) and each change should cost one response per stream, NACKed once.
   */
  private static String runNacking(int streams, int databases, int changes, boolean separate) throws Exception {
    Path dir = BenchSupport.tempDirectory("turnout-nack", new String[0]);
    List<DatabaseRoute> routes = new ArrayList<>();
    for (int i = 0; i < databases; i++) {
      routes.add(new DatabaseRoute("db" + i, 20000 + i, Optional.of(new Endpoint("10.1." + (i / 250) + "."
          + (i % 250 + 1), 5432)), Set.of()));
    }
    try (ControlPlane plane = start(dir, routes)) {
      java.util.concurrent.atomic.AtomicLong nacks = new java.util.concurrent.atomic.AtomicLong();
      plane.xds().onNack((type, database) -> nacks.incrementAndGet());
      List<ManagedChannel> channels = new ArrayList<>();
      List<SimulatedSidecar> sidecars = new ArrayList<>();
      Process clients = null;
      long connectStart = System.nanoTime();
      if (separate) {
        clients = clientProcess(plane, streams, "nack", dir);
      } else {
        for (int i = 0; i < streams; i++) {
          if (i % PER_CHANNEL == 0) {
            channels.add(NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort()).usePlaintext()
                .maxInboundMessageSize(64 << 20).build());
          }
          sidecars.add(new SimulatedSidecar(channels.get(channels.size() - 1), "node-" + i, "app", cla -> true));
        }
      }
      long deadline = System.nanoTime() + Duration.ofSeconds(300).toNanos();
      while (plane.tracker().nodes().stream().filter(n -> n.types().containsKey(XdsType.EDS)
          && n.types().get(XdsType.EDS).lastNack().isPresent()).count() < streams) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("not every node NACKed within 300 s");
        }
        Thread.sleep(100);
      }
      double connectSeconds = (System.nanoTime() - connectStart) / 1e9;
      Thread.sleep(2000); // let the last NACKs be read
      var threads = ManagementFactory.getThreadMXBean();
      long nacksBefore = nacks.get();
      long cpuBefore = totalCpu(threads);
      long wallBefore = System.nanoTime();
      Thread.sleep(10_000);
      double cpuPercent = (totalCpu(threads) - cpuBefore) * 100.0 / (System.nanoTime() - wallBefore);
      long nacksAtRest = nacks.get() - nacksBefore;
      long beforeChanges = nacks.get();
      for (int c = 0; c < changes; c++) {
        long expected = nacks.get() + streams;
        plane.routing().route("db" + (c % databases), new Endpoint("10.2.0." + (c + 1), 5432));
        long until = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (nacks.get() < expected && System.nanoTime() < until) {
          Thread.sleep(20);
        }
      }
      Thread.sleep(2000); // any resend storm would show here
      double perStreamChange = (nacks.get() - beforeChanges) / (double) streams / changes;
      System.out.printf(Locale.ROOT, "%-6s %8d %12.1f %16.2f %16d %18.2f%n", "sotw", streams, connectSeconds,
          cpuPercent, nacksAtRest, perStreamChange);
      sidecars.forEach(SimulatedSidecar::close);
      channels.forEach(ManagedChannel::shutdownNow);
      stopClients(clients);
      return String.format(Locale.ROOT, "{\"mode\":\"nack\",\"streams\":%d,\"cpu_percent_at_rest\":%.2f,"
          + "\"nacks_at_rest\":%d,\"responses_per_stream_change\":%.2f}", streams, cpuPercent, nacksAtRest,
          perStreamChange);
    }
  }

  private static Process clientProcess(ControlPlane plane, int streams, String mode, Path dir) throws Exception {
    return new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xss512k",
        "-cp", classPath(), XdsFanoutBenchmark.class.getName(), "--client-process",
        Integer.toString(plane.xdsPort()), Integer.toString(streams), mode)
        .redirectErrorStream(true).redirectOutput(dir.resolve("clients.log").toFile()).start();
  }

  /** Ends the load process before the control plane stops, so no stream outlives the server's executors. */
  private static void stopClients(Process clients) throws Exception {
    if (clients != null) {
      clients.getOutputStream().close();
      if (!clients.waitFor(60, TimeUnit.SECONDS)) {
        clients.destroyForcibly();
        clients.waitFor(10, TimeUnit.SECONDS);
      }
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
