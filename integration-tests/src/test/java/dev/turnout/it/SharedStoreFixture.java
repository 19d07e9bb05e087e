package dev.turnout.it;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.store.PostgresStore;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Control-plane replicas in this JVM sharing a store in a real PostgreSQL server (the "metadata database"), each
 * serving one database, {@code orders}, seeded at 10.0.0.1:5432, and sidecars subscribed to them. What a test
 * starts here is closed with the fixture, last started first.
 */
final class SharedStoreFixture implements AutoCloseable {
  /** The endpoint the configuration seeds {@code orders} with. */
  static final String SEEDED = "10.0.0.1:5432";

  private final Path dir;
  private PostgresServer meta;
  private final List<AutoCloseable> closing = new ArrayList<>();

  SharedStoreFixture(Path dir) throws Exception {
    this.dir = dir;
    this.meta = PostgresServer.start(dir.resolve("meta"));
  }

  /** The store settings of replica {@code id}: a lease of 1 s, so leadership and liveness move within seconds. */
  TurnoutConfig.SharedStore settings(String id) {
    return new TurnoutConfig.SharedStore("jdbc:postgresql://127.0.0.1:" + meta.port() + "/postgres", "postgres",
        Optional.empty(), id, Duration.ofSeconds(1));
  }

  /** Starts replica {@code id} on free ports, with a data directory of its own. */
  ControlPlane replica(String id) throws Exception {
    TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0),
        new TurnoutConfig.Store(dir.resolve(id), Optional.of(settings(id))),
        new TurnoutConfig.Xds(Duration.ofSeconds(5), Duration.ZERO),
        ImmutableList.of(new DatabaseRoute("orders", 16432, Optional.of(Endpoint.parse(SEEDED)), Set.of())),
        TurnoutConfig.MigratorSettings.DEFAULT);
    ControlPlane plane = ControlPlane.start(config);
    closing.add(plane);
    return plane;
  }

  /** Stops {@code plane} now, as a replica that goes away. */
  void stop(ControlPlane plane) throws Exception {
    closing.remove(plane);
    plane.close();
  }

  /** The store as replica {@code id} opens it, without running a control plane; the caller closes it. */
  PostgresStore open(String id) throws Exception {
    return PostgresStore.open(settings(id));
  }

  /** The store as an onlooker opens it (not a replica), to read what the replicas share; closed with the fixture. */
  PostgresStore onlooker() throws Exception {
    PostgresStore store = open("cp-onlooker");
    closing.add(store);
    return store;
  }

  /** A sidecar subscribed to {@code orders} on {@code plane} that ACKs every assignment. */
  SimulatedSidecar sidecar(ControlPlane plane, String id) {
    return sidecar(plane, id, cla -> false);
  }

  /** A sidecar subscribed to {@code orders} on {@code plane} that NACKs the assignments {@code refuse} matches. */
  SimulatedSidecar sidecar(ControlPlane plane, String id, Predicate<ClusterLoadAssignment> refuse) {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort()).usePlaintext().build();
    closing.add(channel::shutdownNow);
    SimulatedSidecar s = new SimulatedSidecar(channel, id, "orders", refuse);
    closing.add(s::close);
    return s;
  }

  /** Waits until each of {@code sidecars} routes orders to the endpoint the configuration seeds. */
  static void awaitSeededRoute(SimulatedSidecar... sidecars) throws InterruptedException {
    Eventually.until("the sidecars to get the seeded route", Duration.ofSeconds(20), () -> java.util.Arrays
        .stream(sidecars).allMatch(s -> s.endpointOf("orders").equals(SEEDED)));
  }

  /** A connection to the metadata database, to look at (or set back) the store's tables. */
  Connection connect() throws SQLException {
    return meta.connect();
  }

  /** Stops the metadata database: the store is down until {@link #restartStore}. */
  void stopStore() throws Exception {
    meta.stop();
  }

  /** Starts the metadata database again, on the same data and port. */
  void restartStore() throws Exception {
    meta = PostgresServer.open(meta.bin(), meta.dataDir(), meta.port());
  }

  @Override
  public void close() throws Exception {
    try {
      for (int i = closing.size() - 1; i >= 0; i--) {
        closing.get(i).close();
      }
    } finally {
      meta.close();
    }
  }
}
