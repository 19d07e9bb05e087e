// In package io.grpc.xds, a split package beside grpc-xds's jar: grpc-java 1.62 keeps the XdsClient's resource
// types' update values (CdsUpdate, EdsUpdate) and the ways to build an XdsClient from a bootstrap package-private.
// Acceptable for a test; nothing outside src/test does this.
package io.grpc.xds;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.TestConfigs;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.xds.NodeStatus;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.controlplane.xds.XdsType;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import io.grpc.Status;
import io.grpc.internal.JsonParser;
import io.grpc.internal.ObjectPool;
import io.grpc.xds.Endpoints.LocalityLbEndpoints;
import io.grpc.xds.XdsClient.ResourceUpdate;
import io.grpc.xds.XdsClient.ResourceWatcher;
import io.grpc.xds.XdsClusterResource.CdsUpdate;
import io.grpc.xds.XdsEndpointResource.EdsUpdate;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * gRPC's own xDS client (grpc-java 1.62's {@code XdsClientImpl}, the one behind every {@code xds:///} channel)
 * subscribes to Turnout's ADS server over a loopback socket and follows a database through a route change.
 *
 * <p>The client is driven directly, watching the Cluster (CDS) and ClusterLoadAssignment (EDS) named after the
 * database: a gRPC channel would start from an HttpConnectionManager {@code api_listener}, and Turnout's Listeners
 * are TCP listeners with {@code tcp_proxy}. grpc-java 1.62's XdsClient speaks state-of-the-world ADS only.
 */
class GrpcXdsClientTest {
  /** Generous: the first test in a JVM loads grpc-xds's thousands of classes, on a machine shared by others. */
  private static final Duration WAIT = Duration.ofSeconds(30);

  @TempDir Path dir;

  private ControlPlane plane;
  private final List<Runnable> closers = new ArrayList<>();

  private void start(int xdsPort, List<DatabaseRoute> databases) throws Exception {
    plane = ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", xdsPort, 0, 0), dir,
        Duration.ofSeconds(10), com.google.common.collect.ImmutableList.copyOf(databases),
        TurnoutConfig.MigratorSettings.DEFAULT));
  }

  private void start() throws Exception {
    start(0, List.of(
        database("orders", 15432, "10.0.0.5:5432", "checkout"),
        database("ledger", 15433, "10.0.0.7:5432", "billing")));
  }

  /**
   * A gRPC XdsClient made the way gRPC makes its own: a bootstrap in GRPC_XDS_BOOTSTRAP_CONFIG's JSON, given to a
   * {@link SharedXdsClientPoolProvider} as an override (an instance of our own, not the process-wide one).
   */
  private XdsClient grpcXdsClient(String nodeId, String service) throws Exception {
    String bootstrap = """
        {
          "xds_servers": [{"server_uri": "127.0.0.1:%d", "channel_creds": [{"type": "insecure"}]}],
          "node": {"id": "%s", "cluster": "%s"}
        }
        """.formatted(plane.xdsPort(), nodeId, service);
    @SuppressWarnings("unchecked")
    Map<String, ?> raw = (Map<String, ?>) JsonParser.parse(bootstrap);
    SharedXdsClientPoolProvider provider = new SharedXdsClientPoolProvider();
    provider.setBootstrapOverride(raw);
    ObjectPool<XdsClient> pool = provider.getOrCreate();
    XdsClient client = pool.getObject();
    closers.add(() -> pool.returnObject(client)); // the last reference shuts the client down
    return client;
  }

  @Test
  void grpcsXdsClient_followsADatabaseThroughARouteChange_andItsAckCompletesTheRoute() throws Exception {
    start();
    XdsClient grpc = grpcXdsClient("checkout-grpc-1", "checkout");
    Watcher<CdsUpdate> cluster = new Watcher<>("CDS orders");
    Watcher<EdsUpdate> assignment = new Watcher<>("EDS orders");
    grpc.watchXdsResource(XdsClusterResource.getInstance(), "orders", cluster);
    grpc.watchXdsResource(XdsEndpointResource.getInstance(), "orders", assignment);

    CdsUpdate cds = cluster.awaitUpdate("the orders Cluster", u -> true);
    assertThat(cds.clusterName()).isEqualTo("orders");
    assertThat(cds.clusterType()).isEqualTo(CdsUpdate.ClusterType.EDS);
    assertThat(Optional.ofNullable(cds.edsServiceName()).orElse(cds.clusterName()))
        .as("the assignment gRPC asks EDS for").isEqualTo("orders");

    EdsUpdate eds = assignment.awaitUpdate("the orders assignment", u -> true);
    assertThat(eds.clusterName).isEqualTo("orders");
    // gRPC drops a locality without load_balancing_weight, endpoints and all: an empty list here means the weight
    // went missing.
    assertThat(eds.localityLbEndpointsMap.values()).singleElement().satisfies(locality -> {
      assertThat(locality.localityWeight()).isEqualTo(1);
      assertThat(locality.priority()).isZero();
    });
    assertThat(endpoints(eds)).containsExactly("10.0.0.5:5432");

    CompletableFuture<RoutingService.RouteResult> change =
        plane.routing().route("orders", Endpoint.parse("10.0.0.6:5432"));

    assignment.awaitUpdate("the new endpoint", u -> endpoints(u).equals(List.of("10.0.0.6:5432")));
    RoutingService.RouteResult result = change.get(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(result.ack().ackedBy()).containsExactly("checkout-grpc-1");
    NodeStatus node = plane.tracker().node("checkout-grpc-1").orElseThrow();
    assertThat(node.cluster()).isEqualTo("checkout");
    assertThat(node.ackedVersion(XdsType.EDS)).isEqualTo(result.version());
    assertThat(node.types().get(XdsType.EDS).lastNack()).isEmpty();
    assertThat(node.types().get(XdsType.CDS).lastNack()).isEmpty();
    assertThat(cluster.absences()).isZero();
    assertThat(cluster.errors()).isEmpty();
    assertThat(assignment.errors()).isEmpty();
  }

  /**
   * The server answers the new subscription at once with a whole CDS response that leaves ledger out (a name the
   * service may not see looks like one that does not exist), and gRPC ACKs it. gRPC 1.62 does not conclude absence
   * from that response, though: while a newly watched resource's initial-fetch timer (15 s) runs, a response
   * without it may answer an older request, so the watcher is told when the timer fires
   * ({@code XdsClientImpl.ResourceSubscriber.onAbsent}: "too early to conclude absence"; the xDS protocol's
   * "Knowing When a Requested Resource Does Not Exist" allows exactly that).
   */
  @Test
  void aDatabaseTheServiceMayNotReach_isLeftOutOfTheClusterResponse_andGrpcReportsItDoesNotExist() throws Exception {
    start();
    XdsClient grpc = grpcXdsClient("checkout-grpc-2", "checkout");
    Watcher<CdsUpdate> orders = new Watcher<>("CDS orders");
    grpc.watchXdsResource(XdsClusterResource.getInstance(), "orders", orders);
    orders.awaitUpdate("the orders Cluster", u -> true);
    await("gRPC's ACK of the first CDS response",
        () -> cds("checkout-grpc-2").flatMap(NodeStatus.TypeStatus::ackedAt).isPresent());

    Instant subscribed = Instant.now();
    Watcher<CdsUpdate> ledger = new Watcher<>("CDS ledger");
    grpc.watchXdsResource(XdsClusterResource.getInstance(), "ledger", ledger);

    await("gRPC's answer to the CDS response after it asked for ledger", () -> cds("checkout-grpc-2")
        .map(cds -> cds.lastNack().isPresent() || cds.ackedAt().orElseThrow().isAfter(subscribed)).orElse(false));
    assertThat(cds("checkout-grpc-2").orElseThrow().lastNack()).as("no NACK").isEmpty();

    ledger.awaitAbsent(Duration.ofSeconds(25)); // gRPC's 15 s timer, and room for a slow machine
    assertThat(ledger.updates()).isEmpty();
    assertThat(ledger.errors()).isEmpty();
    assertThat(orders.absences()).as("orders is still there").isZero();
    assertThat(cds("checkout-grpc-2").orElseThrow().lastNack()).isEmpty();
  }

  /**
   * The case where the protocol lets a client conclude absence from a response alone: a Cluster it had is left
   * out of a whole CDS response. Here the control plane restarts (same store, same port) with orders reserved for
   * another service, and gRPC, reconnected, is told orders no longer exists without waiting for any timer.
   */
  @Test
  void aDatabaseTheServiceMayNoLongerReach_isGoneForGrpcAsSoonAsItReconnects() throws Exception {
    start();
    int port = plane.xdsPort();
    XdsClient grpc = grpcXdsClient("checkout-grpc-3", "checkout");
    Watcher<CdsUpdate> orders = new Watcher<>("CDS orders");
    grpc.watchXdsResource(XdsClusterResource.getInstance(), "orders", orders);
    orders.awaitUpdate("the orders Cluster", u -> true);

    plane.close();
    plane = null;
    start(port, List.of(
        database("orders", 15432, "10.0.0.5:5432", "billing"),
        database("ledger", 15433, "10.0.0.7:5432", "billing")));

    // gRPC runs no timer for a resource it already has: only a response leaving orders out can tell it.
    orders.awaitAbsent(Duration.ofSeconds(10));
    await("the reconnected node's answer to the CDS response", () -> cds("checkout-grpc-3")
        .map(cds -> cds.lastNack().isPresent() || cds.ackedVersion() > 0).orElse(false));
    assertThat(cds("checkout-grpc-3").orElseThrow().lastNack()).as("no NACK").isEmpty();
  }

  /** What the control plane's ACK tracker knows of {@code nodeId}'s Clusters. */
  private Optional<NodeStatus.TypeStatus> cds(String nodeId) {
    return plane.tracker().node(nodeId).map(n -> n.types().get(XdsType.CDS));
  }

  /** The endpoints gRPC would connect to, as {@code host:port}, over every locality it kept. */
  private static List<String> endpoints(EdsUpdate update) {
    List<String> result = new ArrayList<>();
    for (LocalityLbEndpoints locality : update.localityLbEndpointsMap.values()) {
      for (Endpoints.LbEndpoint endpoint : locality.endpoints()) {
        for (SocketAddress address : endpoint.eag().getAddresses()) {
          InetSocketAddress inet = (InetSocketAddress) address;
          result.add(inet.getHostString() + ":" + inet.getPort());
        }
      }
    }
    return result;
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out after " + WAIT + " waiting for " + what);
      }
      Thread.sleep(10);
    }
  }

  /** Records what gRPC tells a watcher; the tests wait on it with deadlines. */
  private static final class Watcher<T extends ResourceUpdate> implements ResourceWatcher<T> {
    private final String name;
    // Guarded by this.
    private final List<T> updates = new ArrayList<>();
    private final List<Status> errors = new ArrayList<>();
    private int absences;

    Watcher(String name) {
      this.name = name;
    }

    @Override
    public synchronized void onChanged(T update) {
      updates.add(update);
      notifyAll();
    }

    @Override
    public synchronized void onResourceDoesNotExist(String resourceName) {
      absences++;
      notifyAll();
    }

    @Override
    public synchronized void onError(Status error) {
      errors.add(error);
      notifyAll();
    }

    synchronized List<T> updates() {
      return List.copyOf(updates);
    }

    synchronized List<Status> errors() {
      return List.copyOf(errors);
    }

    synchronized int absences() {
      return absences;
    }

    /** Waits for an update matching {@code condition} (the latest one counts) and returns it. */
    synchronized T awaitUpdate(String what, Predicate<T> condition) throws InterruptedException {
      awaitState(what, WAIT, () -> !updates.isEmpty() && condition.test(updates.get(updates.size() - 1)));
      return updates.get(updates.size() - 1);
    }

    synchronized void awaitAbsent(Duration within) throws InterruptedException {
      long start = System.nanoTime();
      awaitState("onResourceDoesNotExist", within, () -> absences > 0);
      System.out.printf("%s: onResourceDoesNotExist after %d ms%n", name,
          TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
    }

    private void awaitState(String what, Duration within, BooleanSupplier condition) throws InterruptedException {
      long deadline = System.nanoTime() + within.toNanos();
      while (!condition.getAsBoolean()) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new AssertionError(name + ": timed out after " + within + " waiting for " + what
              + "; got updates " + updates + ", errors " + errors + ", " + absences + " absence(s)");
        }
        wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
      }
    }
  }

  @AfterEach
  void stop() throws Exception {
    closers.forEach(Runnable::run);
    if (plane != null) {
      plane.close();
    }
  }
}
