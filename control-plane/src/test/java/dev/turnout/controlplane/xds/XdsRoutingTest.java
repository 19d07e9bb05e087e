package dev.turnout.controlplane.xds;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.TestConfigs;
import dev.turnout.envoy.Endpoint;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Two services' sidecars subscribe over real gRPC ADS streams (in-process and over a loopback socket,
 * state-of-the-world and delta): each sees only its databases, and a route change completes only when every
 * subscribed sidecar has ACKed it.
 */
class XdsRoutingTest {
  @TempDir Path dir;

  private ControlPlane plane;
  private Server inProcess;
  private String inProcessName;
  private final List<ManagedChannel> channels = new ArrayList<>();
  private final List<AdsTestClient> clients = new ArrayList<>();

  enum Transport { IN_PROCESS, SOCKET }

  private void start(Duration ackTimeout) throws Exception {
    start(ackTimeout, RoutingService.Resolver.SYSTEM);
  }

  private void start(Duration ackTimeout, RoutingService.Resolver resolver) throws Exception {
    plane = ControlPlane.start(TestConfigs.config(dir, ackTimeout, List.of(
        database("orders", 15432, "10.0.0.5:5432", "checkout"),
        database("ledger", 15433, "10.0.0.7:5432", "billing"),
        database("shared", 15434, "10.0.0.9:5432"))), resolver);
    inProcessName = "xds-" + System.nanoTime();
    InProcessServerBuilder builder = InProcessServerBuilder.forName(inProcessName);
    plane.xds().services().forEach(builder::addService);
    inProcess = builder.build().start();
  }

  private AdsTestClient connect(Transport transport, AdsTestClient.Mode mode, String nodeId, String service) {
    ManagedChannel channel = transport == Transport.IN_PROCESS
        ? InProcessChannelBuilder.forName(inProcessName).build()
        : NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort()).usePlaintext().build();
    channels.add(channel);
    AdsTestClient client = new AdsTestClient(channel, nodeId, service, mode);
    clients.add(client);
    return client;
  }

  /**
   * Until the client has each database's listener and endpoints: the server sends Clusters and their assignments
   * before the Listeners that use them (Envoy's make-before-break order), so endpoints alone do not mean listeners.
   */
  private static void awaitSubscribed(AdsTestClient client, String... databases) throws InterruptedException {
    client.await("listeners and endpoints of " + List.of(databases),
        c -> c.assignments().keySet().containsAll(List.of(databases))
            && c.listeners().keySet().containsAll(List.of(databases)));
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({"IN_PROCESS,STATE_OF_THE_WORLD", "SOCKET,STATE_OF_THE_WORLD", "IN_PROCESS,DELTA", "SOCKET,DELTA"})
  void eachServiceSeesOnlyItsDatabases_andARouteCompletesWhenBothNodesAck(Transport transport,
      AdsTestClient.Mode mode) throws Exception {
    start(Duration.ofSeconds(10));
    AdsTestClient checkout = connect(transport, mode, "checkout-1", "checkout");
    AdsTestClient billing = connect(transport, mode, "billing-1", "billing");
    awaitSubscribed(checkout, "orders", "shared");
    awaitSubscribed(billing, "ledger", "shared");

    assertThat(checkout.listeners()).containsOnlyKeys("orders", "shared");
    assertThat(billing.listeners()).containsOnlyKeys("ledger", "shared");
    assertThat(checkout.assignments()).containsOnlyKeys("orders", "shared");
    assertThat(checkout.endpointOf("shared")).isEqualTo("10.0.0.9:5432");

    billing.holdEds(true);
    CompletableFuture<RoutingService.RouteResult> change =
        plane.routing().route("shared", Endpoint.parse("10.0.0.10:5432"));
    checkout.await("new shared endpoint", c -> c.endpointOf("shared").equals("10.0.0.10:5432"));
    Thread.sleep(200); // give a wrongly eager future time to complete
    assertThat(change).as("must wait for billing-1, which has not ACKed").isNotDone();

    billing.holdEds(false);
    RoutingService.RouteResult result = change.get(10, TimeUnit.SECONDS);
    assertThat(result.ack().ackedBy()).containsExactlyInAnyOrder("checkout-1", "billing-1");
    assertThat(billing.endpointOf("shared")).isEqualTo("10.0.0.10:5432");
    assertThat(result.previous()).contains(Endpoint.parse("10.0.0.9:5432"));
    assertThat(plane.tracker().node("billing-1").orElseThrow().ackedVersion(XdsType.EDS))
        .isEqualTo(result.version());
  }

  @Test
  void aRouteOfOneServicesDatabase_waitsOnlyForNodesThatMayReachIt() throws Exception {
    start(Duration.ofSeconds(10));
    AdsTestClient checkout = connect(Transport.SOCKET, AdsTestClient.Mode.STATE_OF_THE_WORLD, "checkout-1", "checkout");
    AdsTestClient billing = connect(Transport.SOCKET, AdsTestClient.Mode.STATE_OF_THE_WORLD, "billing-1", "billing");
    awaitSubscribed(checkout, "orders");
    awaitSubscribed(billing, "ledger");
    billing.holdEds(true); // billing cannot reach orders: it must not be waited for

    var result = plane.routing().route("orders", Endpoint.parse("10.0.0.6:5432")).get(10, TimeUnit.SECONDS);

    assertThat(result.ack().ackedBy()).containsExactly("checkout-1");
    assertThat(billing.assignments()).doesNotContainKey("orders");
  }

  @Test
  void aNodeThatNacks_isNamedWithItsError_andTheFutureFails() throws Exception {
    start(Duration.ofSeconds(10));
    AdsTestClient checkout = connect(Transport.SOCKET, AdsTestClient.Mode.STATE_OF_THE_WORLD, "checkout-1", "checkout");
    AdsTestClient other = connect(Transport.SOCKET, AdsTestClient.Mode.STATE_OF_THE_WORLD, "checkout-2", "checkout");
    awaitSubscribed(checkout, "orders");
    awaitSubscribed(other, "orders");
    other.rejectEdsWhen(cla -> cla.getClusterName().equals("orders") && cla.getEndpointsCount() > 0
        && cla.toString().contains("10.0.0.66") ? "endpoint 10.0.0.66 refused by test policy" : null);

    CompletableFuture<RoutingService.RouteResult> change =
        plane.routing().route("orders", Endpoint.parse("10.0.0.66:5432"));

    assertThatThrownBy(() -> change.get(10, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .cause().isInstanceOf(RouteNotAcknowledgedException.class)
        .hasMessageContaining("checkout-2")
        .hasMessageContaining("endpoint 10.0.0.66 refused by test policy")
        .hasMessageNotContaining("checkout-1 (");
    var stragglers = ((RouteNotAcknowledgedException) catchCause(change)).stragglers();
    assertThat(stragglers).extracting(RouteNotAcknowledgedException.Straggler::nodeId).containsExactly("checkout-2");
    NodeStatus status = plane.tracker().node("checkout-2").orElseThrow();
    assertThat(status.types().get(XdsType.EDS).lastNack()).get()
        .satisfies(n -> assertThat(n.error()).contains("refused by test policy"));
    assertThat(status.types().get(XdsType.EDS).sentVersion()).isGreaterThan(status.ackedVersion(XdsType.EDS));
    assertThat(plane.tracker().node("checkout-1").orElseThrow().ackedVersion(XdsType.EDS))
        .isEqualTo(((RouteNotAcknowledgedException) catchCause(change)).version());
  }

  @Test
  void aNodeThatNeverAnswers_failsTheFutureAtTheDeadline_namingIt() throws Exception {
    start(Duration.ofMillis(700));
    AdsTestClient silent = connect(Transport.SOCKET, AdsTestClient.Mode.DELTA, "checkout-9", "checkout");
    awaitSubscribed(silent, "orders");
    silent.holdEds(true);

    var change = plane.routing().drain("orders");

    assertThatThrownBy(() -> change.get(10, TimeUnit.SECONDS))
        .cause().isInstanceOf(RouteNotAcknowledgedException.class)
        .hasMessageContaining("within the deadline")
        .hasMessageContaining("checkout-9 (checkout");
  }

  @Test
  void aNodeThatDisconnects_isNoLongerWaitedFor() throws Exception {
    start(Duration.ofSeconds(10));
    AdsTestClient staying = connect(Transport.SOCKET, AdsTestClient.Mode.STATE_OF_THE_WORLD, "checkout-1", "checkout");
    AdsTestClient leaving = connect(Transport.SOCKET, AdsTestClient.Mode.STATE_OF_THE_WORLD, "checkout-2", "checkout");
    awaitSubscribed(staying, "orders");
    awaitSubscribed(leaving, "orders");
    leaving.holdEds(true);

    var change = plane.routing().route("orders", Endpoint.parse("10.0.0.6:5432"));
    Thread.sleep(100);
    assertThat(change).isNotDone();
    leaving.close();

    assertThat(change.get(10, TimeUnit.SECONDS).ack().ackedBy()).containsExactly("checkout-1");
    assertThat(plane.tracker().node("checkout-2").orElseThrow().connected()).isFalse();
  }

  @Test
  void drain_sendsAnEmptyAssignment_andRouteRestoresIt() throws Exception {
    start(Duration.ofSeconds(10));
    AdsTestClient checkout = connect(Transport.IN_PROCESS, AdsTestClient.Mode.STATE_OF_THE_WORLD, "c1", "checkout");
    awaitSubscribed(checkout, "orders");

    plane.routing().drain("orders").get(10, TimeUnit.SECONDS);
    assertThat(checkout.assignments().get("orders").getEndpointsCount()).isZero();
    assertThat(checkout.endpointOf("orders")).isEmpty();

    plane.routing().route("orders", Endpoint.parse("10.0.0.8:5432")).get(10, TimeUnit.SECONDS);
    assertThat(checkout.endpointOf("orders")).isEqualTo("10.0.0.8:5432");
  }

  /** An Aurora writer endpoint is a DNS name whose address moves on failover: the route follows it. */
  @Test
  void anEndpointRoutedByName_followsTheNameToItsNewAddress_evenAfterARestart() throws Exception {
    Map<String, String> dns = new ConcurrentHashMap<>(Map.of("writer.orders.example", "10.0.0.20"));
    RoutingService.Resolver resolver = e -> e.isIpLiteral() ? e : new Endpoint(Optional.ofNullable(dns.get(e.host()))
        .orElseThrow(() -> new java.net.UnknownHostException(e.host())), e.port());
    start(Duration.ofSeconds(10), resolver);
    AdsTestClient checkout = connect(Transport.IN_PROCESS, AdsTestClient.Mode.STATE_OF_THE_WORLD, "c1", "checkout");
    awaitSubscribed(checkout, "orders");

    plane.routing().route("orders", new Endpoint("writer.orders.example", 5432)).get(10, TimeUnit.SECONDS);
    assertThat(checkout.endpointOf("orders")).isEqualTo("10.0.0.20:5432");
    assertThat(plane.routing().refreshDns()).as("nothing moved").isEmpty();

    dns.put("writer.orders.example", "10.0.0.21");
    assertThat(plane.routing().refreshDns()).containsExactly("orders");
    checkout.await("the new address", c -> "10.0.0.21:5432".equals(c.endpointOf("orders")));

    dns.remove("writer.orders.example");
    assertThat(plane.routing().refreshDns()).as("a name that stops resolving keeps its last address").isEmpty();
    assertThat(plane.routing().table().get("orders").orElseThrow().endpoint()).contains(Endpoint.parse("10.0.0.21:5432"));

    inProcess.shutdownNow();
    plane.close();
    dns.put("writer.orders.example", "10.0.0.22");
    start(Duration.ofSeconds(10), resolver);
    assertThat(plane.routing().refreshDns()).as("the store remembers the name").containsExactly("orders");
    assertThat(plane.routing().table().get("orders").orElseThrow().endpoint()).contains(Endpoint.parse("10.0.0.22:5432"));

    plane.routing().route("orders", Endpoint.parse("10.0.0.30:5432")).get(10, TimeUnit.SECONDS);
    dns.put("writer.orders.example", "10.0.0.23");
    assertThat(plane.routing().refreshDns()).as("a route by address stops following the name").isEmpty();
  }

  @Test
  void routingAnUnknownDatabase_isAClearError_andWritesNothing() throws Exception {
    start(Duration.ofSeconds(10));
    Path journal = dir.resolve("routes.journal");
    byte[] before = Files.readAllBytes(journal);
    long version = plane.routing().version();

    assertThatThrownBy(() -> plane.routing().route("nope", Endpoint.parse("10.0.0.1:5432")))
        .isInstanceOf(UnknownDatabaseException.class)
        .hasMessageContaining("unknown database 'nope'")
        .hasMessageContaining("ledger, orders, shared");

    assertThat(Files.readAllBytes(journal)).isEqualTo(before);
    assertThat(plane.routing().version()).isEqualTo(version);
  }

  @Test
  void routingToTheCurrentEndpoint_publishesNothingNew_butStillConfirmsTheAcks() throws Exception {
    start(Duration.ofSeconds(10));
    AdsTestClient checkout = connect(Transport.SOCKET, AdsTestClient.Mode.STATE_OF_THE_WORLD, "c1", "checkout");
    awaitSubscribed(checkout, "orders");
    long version = plane.routing().version();

    var result = plane.routing().route("orders", Endpoint.parse("10.0.0.5:5432")).get(10, TimeUnit.SECONDS);

    assertThat(plane.routing().version()).isEqualTo(version);
    assertThat(result.ack().ackedBy()).containsExactly("c1");
  }

  private static Throwable catchCause(CompletableFuture<?> future) {
    try {
      future.get();
      throw new AssertionError("expected failure");
    } catch (ExecutionException e) {
      return e.getCause();
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }

  @AfterEach
  void stop() throws Exception {
    clients.forEach(AdsTestClient::close);
    channels.forEach(ManagedChannel::shutdownNow);
    if (inProcess != null) {
      inProcess.shutdownNow();
    }
    if (plane != null) {
      plane.close();
    }
  }
}
