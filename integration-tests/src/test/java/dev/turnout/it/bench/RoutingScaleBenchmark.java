package dev.turnout.it.bench;

import static dev.turnout.it.bench.BenchSupport.arg;
import static dev.turnout.it.bench.BenchSupport.pct;
import static dev.turnout.it.bench.BenchSupport.settleHeap;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * Benchmark: a routing table of many databases (1,000 by default). Prints the time to start (seed and journal
 * every database), the heap the table and its xDS snapshot take once a sidecar subscribes (the control plane,
 * the store, one node's stream and the snapshot of its service, per database), the time to publish one endpoint change
 * (journal line fsynced, snapshot rebuilt and set), and the time until a sidecar subscribed to every database
 * has ACKed it. Asserts nothing: it reports.
 *
 * <pre>mvn -q -pl integration-tests exec:java@routing-bench -Dexec.args="--databases 1000,5000 --changes 50"</pre>
 */
public final class RoutingScaleBenchmark {

  public static void main(String[] args) throws Exception {
    String sizes = arg(args, "--databases", "1000");
    int changes = Integer.parseInt(arg(args, "--changes", "50"));
    String json = arg(args, "--json", null);
    System.out.printf(Locale.ROOT, "%nrouting scale: %d endpoint changes per size, %d cores%n", changes,
        Runtime.getRuntime().availableProcessors());
    System.out.printf(Locale.ROOT, "%10s %10s %14s %14s %14s %14s %14s%n", "databases", "start s", "heap KiB/db",
        "publish p50 ms", "publish p99 ms", "ACK p50 ms", "ACK p99 ms");
    StringBuilder out = new StringBuilder("[");
    run(10, 5, false); // warm-up: class loading and the JIT would be counted against the first size
    for (String size : sizes.split(",")) {
      String row = run(Integer.parseInt(size.trim()), changes, true);
      out.append(out.length() > 1 ? "," : "").append(row);
    }
    if (json != null) {
      Files.writeString(Path.of(json), out.append("]\n").toString());
    }
    System.exit(0);
  }

  private static String run(int databases, int changes, boolean print) throws Exception {
    Path dir = BenchSupport.tempDirectory("turnout-routing", new String[0]);
    List<DatabaseRoute> routes = new ArrayList<>();
    for (int i = 0; i < databases; i++) {
      routes.add(new DatabaseRoute("db" + i, 20000 + i, Optional.of(new Endpoint("10.1." + (i / 250) + "." + (i % 250 + 1),
          5432)), Set.of()));
    }
    settleHeap();
    long heapBefore = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    long t0 = System.nanoTime();
    try (ControlPlane plane = ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0),
        dir.resolve("store"), Duration.ofSeconds(60), ImmutableList.copyOf(routes), TurnoutConfig.MigratorSettings.DEFAULT))) {
      double startSeconds = (System.nanoTime() - t0) / 1e9;

      List<Double> publish = new ArrayList<>();
      for (int c = 0; c < changes; c++) {
        long s = System.nanoTime();
        plane.routing().route("db" + (c % databases), new Endpoint("10.2.0." + (c % 250 + 1), 5432));
        publish.add((System.nanoTime() - s) / 1e6);
      }

      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort()).usePlaintext()
          .maxInboundMessageSize(256 << 20).build();
      SimulatedSidecar sidecar = new SimulatedSidecar(channel, "node-0", "app");
      long version = plane.routing().version();
      while (plane.tracker().node("node-0").map(n -> n.ackedVersion(XdsType.EDS) < version).orElse(true)) {
        Thread.sleep(20);
      }
      settleHeap(); // with a node subscribed, its service's snapshot (every resource) is built and held
      long heapAfter = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
      List<Double> acked = new ArrayList<>();
      for (int c = 0; c < changes; c++) {
        long s = System.nanoTime();
        plane.routing().route("db" + (c % databases), new Endpoint("10.3.0." + (c % 250 + 1), 5432))
            .get(60, TimeUnit.SECONDS);
        acked.add((System.nanoTime() - s) / 1e6);
      }
      sidecar.close();
      channel.shutdownNow();
      double heapPerDb = (heapAfter - heapBefore) / 1024.0 / databases;
      if (print) {
        System.out.printf(Locale.ROOT, "%10d %10.1f %14.1f %14.2f %14.2f %14.2f %14.2f%n", databases, startSeconds,
            heapPerDb, pct(publish, 50), pct(publish, 99), pct(acked, 50), pct(acked, 99));
      }
      return String.format(Locale.ROOT, "{\"databases\":%d,\"changes\":%d,\"start_s\":%.2f,\"heap_kib_per_db\":%.2f,"
          + "\"publish_p50_ms\":%.3f,\"publish_p99_ms\":%.3f,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f}", databases, changes,
          startSeconds, heapPerDb, pct(publish, 50), pct(publish, 99), pct(acked, 50), pct(acked, 99));
    }
  }
}
