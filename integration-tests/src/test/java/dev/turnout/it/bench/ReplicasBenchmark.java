package dev.turnout.it.bench;

import static dev.turnout.it.bench.BenchSupport.arg;
import static dev.turnout.it.bench.BenchSupport.pct;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.xds.XdsType;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.it.PostgresServer;
import dev.turnout.it.SimulatedSidecar;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
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
 * Benchmark: control-plane replicas sharing a PostgreSQL store (a real PostgreSQL 15 on loopback). Prints, for
 * route changes made on the first replica, the time to record and publish them (the store's transaction, the
 * re-read, the snapshot) and the time until every sidecar on every replica has ACKed them (each replica learns
 * the change by NOTIFY, waits for its own sidecars and reports; the first polls the reports). The same changes
 * on one replica with the embedded file store are the baseline. Asserts nothing: it reports.
 *
 * <pre>mvn -q -pl integration-tests exec:java@replicas-bench -Dexec.args="--replicas 3 --sidecars 10 --changes 50"</pre>
 */
public final class ReplicasBenchmark {

  public static void main(String[] args) throws Exception {
    int replicas = Integer.parseInt(arg(args, "--replicas", "3"));
    int sidecars = Integer.parseInt(arg(args, "--sidecars", "10"));
    int databases = Integer.parseInt(arg(args, "--databases", "100"));
    int changes = Integer.parseInt(arg(args, "--changes", "50"));
    String json = arg(args, "--json", null);
    Path dir = BenchSupport.tempDirectory("turnout-replicas-bench", args);
    System.out.printf(Locale.ROOT, "%nreplicas: %d databases, %d simulated sidecars per replica, %d changes, %d cores%n",
        databases, sidecars, changes, Runtime.getRuntime().availableProcessors());
    System.out.printf(Locale.ROOT, "%-26s %14s %14s %14s %14s%n", "store", "publish p50 ms", "publish p99 ms",
        "ACK p50 ms", "ACK p99 ms");
    StringBuilder out = new StringBuilder("[");
    run(dir.resolve("warm"), null, 1, 2, databases, 10, false);
    out.append(run(dir.resolve("file"), null, 1, sidecars, databases, changes, true));
    try (PostgresServer meta = PostgresServer.start(dir.resolve("meta"))) {
      run(dir.resolve("warm-pg"), meta, replicas, 2, databases, 10, false);
      try (var c = meta.connect(); var s = c.createStatement()) {
        s.execute("drop schema turnout cascade");
      }
      out.append(",").append(run(dir.resolve("pg"), meta, replicas, sidecars, databases, changes, true));
    }
    if (json != null) {
      Files.writeString(Path.of(json), out.append("]\n").toString());
    }
    System.exit(0);
  }

  private static String run(Path dir, PostgresServer meta, int replicas, int sidecars, int databases, int changes,
      boolean print) throws Exception {
    List<DatabaseRoute> routes = new ArrayList<>();
    for (int i = 0; i < databases; i++) {
      routes.add(new DatabaseRoute("db" + i, 20000 + i, Optional.of(new Endpoint("10.1.0." + (i % 250 + 1), 5432)),
          Set.of()));
    }
    List<ControlPlane> planes = new ArrayList<>();
    List<AutoCloseable> closing = new ArrayList<>();
    try {
      for (int r = 0; r < replicas; r++) {
        Optional<TurnoutConfig.SharedStore> shared = meta == null ? Optional.empty()
            : Optional.of(new TurnoutConfig.SharedStore("jdbc:postgresql://127.0.0.1:" + meta.port() + "/postgres",
                "postgres", Optional.empty(), "cp-" + (r + 1), Duration.ofSeconds(5)));
        ControlPlane plane = ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0),
            new TurnoutConfig.Store(dir.resolve("store-" + r), shared), new TurnoutConfig.Xds(Duration.ofSeconds(60),
                Duration.ZERO), ImmutableList.copyOf(routes), TurnoutConfig.MigratorSettings.DEFAULT));
        planes.add(plane);
        closing.add(plane);
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort()).usePlaintext()
            .maxInboundMessageSize(64 << 20).build();
        closing.add(channel::shutdownNow);
        for (int s = 0; s < sidecars; s++) {
          SimulatedSidecar sidecar = new SimulatedSidecar(channel, "node-" + r + "-" + s, "app");
          closing.add(sidecar::close);
        }
      }
      for (int r = 0; r < replicas; r++) {
        for (int s = 0; s < sidecars; s++) {
          String node = "node-" + r + "-" + s;
          ControlPlane plane = planes.get(r);
          long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
          while (plane.tracker().node(node).map(n -> n.ackedVersion(XdsType.EDS) == 0).orElse(true)) {
            if (System.nanoTime() > deadline) {
              throw new IllegalStateException(node + " never subscribed");
            }
            Thread.sleep(20);
          }
        }
      }
      ControlPlane first = planes.get(0);
      List<Double> publish = new ArrayList<>();
      List<Double> acked = new ArrayList<>();
      for (int c = 0; c < changes; c++) {
        long s = System.nanoTime();
        var future = first.routing().route("db" + (c % databases), new Endpoint("10.2.0." + (c % 250 + 1), 5432));
        publish.add((System.nanoTime() - s) / 1e6);
        var result = future.get(60, TimeUnit.SECONDS);
        acked.add((System.nanoTime() - s) / 1e6);
        if (result.ack().ackedBy().size() != replicas * sidecars) {
          throw new IllegalStateException("change " + c + " acked by " + result.ack().ackedBy().size() + " nodes, not "
              + replicas * sidecars);
        }
      }
      String store = meta == null ? "file (1 replica)" : "postgres (" + replicas + " replicas)";
      if (print) {
        System.out.printf(Locale.ROOT, "%-26s %14.2f %14.2f %14.2f %14.2f%n", store, pct(publish, 50),
            pct(publish, 99), pct(acked, 50), pct(acked, 99));
      }
      return String.format(Locale.ROOT, "{\"store\":\"%s\",\"replicas\":%d,\"sidecars_per_replica\":%d,\"changes\":%d,"
          + "\"publish_p50_ms\":%.3f,\"publish_p99_ms\":%.3f,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f}", store, replicas,
          sidecars, changes, pct(publish, 50), pct(publish, 99), pct(acked, 50), pct(acked, 99));
    } finally {
      for (int i = closing.size() - 1; i >= 0; i--) {
        closing.get(i).close();
      }
    }
  }
}
