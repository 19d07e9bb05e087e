package dev.turnout.it;

import static dev.turnout.it.RawAdsClient.CDS;
import static dev.turnout.it.RawAdsClient.EDS;
import static dev.turnout.it.RawAdsClient.LDS;
import static dev.turnout.it.RawAdsClient.node;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Any;
import com.google.rpc.Status;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.SetRouteRequest;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real {@code turnout server} process tried with ADS clients written here from the xDS protocol (Envoy's protos),
 * not with Turnout's own sidecar: what Envoy, gRPC's xDS clients or a careless client would see on the wire.
 * Service {@code checkout} may reach {@code orders} and {@code shared}; {@code ledger} is {@code billing}'s only.
 */
class XdsConformanceTest {
  @TempDir static Path dir;

  private static ServerProcess server;
  private static ManagedChannel xds;
  private static ManagedChannel admin;
  private static int httpPort;
  private final List<RawAdsClient<?, ?>> clients = new ArrayList<>();

  @BeforeAll
  static void startServer() throws Exception {
    int xdsPort = PostgresServer.freePort();
    int adminPort = PostgresServer.freePort();
    httpPort = PostgresServer.freePort();
    Path config = dir.resolve("turnout.yaml");
    Files.writeString(config, """
        server:
          bind_address: 127.0.0.1
          xds_port: %d
          admin_port: %d
          http_port: %d
        store:
          directory: data
        xds:
          ack_timeout: 3s
          reconnect_grace: 0s
        databases:
          - name: orders
            port: 25432
            endpoint: 10.0.0.5:5432
            services: [checkout]
          - name: ledger
            port: 25433
            endpoint: 10.0.0.7:5432
            services: [billing]
          - name: shared
            port: 25434
            endpoint: 10.0.0.9:5432
        """.formatted(xdsPort, adminPort, httpPort));
    server = ServerProcess.start(config, null);
    xds = NettyChannelBuilder.forAddress("127.0.0.1", xdsPort).usePlaintext().build();
    admin = NettyChannelBuilder.forAddress("127.0.0.1", adminPort).usePlaintext().build();
  }

  @AfterAll
  static void stopServer() throws Exception {
    if (xds != null) {
      xds.shutdownNow();
      admin.shutdownNow();
    }
    if (server != null) {
      assertThat(server.output).as("client mistakes must not print stack traces" + server.output())
          .noneMatch(line -> line.startsWith("\tat ") || line.contains("Exception in"));
      server.close();
    }
  }

  @AfterEach
  void closeClients() {
    clients.forEach(RawAdsClient::close);
  }

  private RawAdsClient<DiscoveryRequest, DiscoveryResponse> sotw() {
    var c = RawAdsClient.sotw(xds);
    clients.add(c);
    return c;
  }

  private RawAdsClient<DeltaDiscoveryRequest, DeltaDiscoveryResponse> delta() {
    var c = RawAdsClient.delta(xds);
    clients.add(c);
    return c;
  }

  /**
   * Routes {@code database} through the admin API as an operator would, without waiting for the ACKs: these
   * clients ACK only when a test says so. Every test then waits for the response the change causes, so no change
   * is still on its way when the next test starts.
   */
  private static void route(String database, String endpoint) {
    AdminGrpc.newFutureStub(admin).setRoute(setRoute(database, endpoint));
  }

  private static SetRouteRequest setRoute(String database, String endpoint) {
    return SetRouteRequest.newBuilder().setDatabase(database).setEndpoint(endpoint).setReason("conformance test")
        .build();
  }

  private static DiscoveryRequest.Builder request(String type, String... names) {
    return DiscoveryRequest.newBuilder().setTypeUrl(type).addAllResourceNames(List.of(names));
  }

  private static DiscoveryRequest ack(DiscoveryResponse r, String... names) {
    return request(r.getTypeUrl(), names).setVersionInfo(r.getVersionInfo()).setResponseNonce(r.getNonce()).build();
  }

  private static List<String> names(DiscoveryResponse r) throws Exception {
    List<String> names = new ArrayList<>();
    for (Any any : r.getResourcesList()) {
      names.add(name(any));
    }
    return names;
  }

  private static List<String> names(DeltaDiscoveryResponse r) {
    return r.getResourcesList().stream().map(Resource::getName).toList();
  }

  private static String name(Any any) throws Exception {
    if (any.is(Cluster.class)) {
      return any.unpack(Cluster.class).getName();
    }
    if (any.is(Listener.class)) {
      return any.unpack(Listener.class).getName();
    }
    return any.unpack(ClusterLoadAssignment.class).getClusterName();
  }

  private static String endpointOf(Any any) throws Exception {
    var cla = any.unpack(ClusterLoadAssignment.class);
    var a = cla.getEndpoints(0).getLbEndpoints(0).getEndpoint().getAddress().getSocketAddress();
    return a.getAddress() + ":" + a.getPortValue();
  }

  @Test
  void sotw_aNack_isAnsweredWithNothing_untilANewVersion_whichArrives() throws Exception {
    var client = sotw();
    client.send(request(CDS).setNode(node("nack-sotw", "checkout")).build());
    DiscoveryResponse clusters = client.expect("clusters");
    client.send(ack(clusters));
    client.send(request(EDS, "orders").build());
    DiscoveryResponse eds = client.expect("the orders assignment");
    assertThat(names(eds)).containsExactly("orders");

    // Envoy's NACK: the last accepted version (none), the rejected response's nonce, the reason.
    client.send(request(EDS, "orders").setResponseNonce(eds.getNonce())
        .setErrorDetail(Status.newBuilder().setCode(3).setMessage("rejected by the test")).build());

    assertThat(client.collect(Duration.ofSeconds(2))).as("responses within 2 s of a NACK").hasSizeLessThanOrEqualTo(1)
        .isEmpty();
    route("orders", "10.0.0.66:5432");
    DiscoveryResponse next = client.expect("the new version after the NACK");
    assertThat(Long.parseLong(next.getVersionInfo())).isGreaterThan(Long.parseLong(eds.getVersionInfo()));
    assertThat(endpointOf(next.getResources(0))).isEqualTo("10.0.0.66:5432");
    assertThat(metrics()).contains("turnout_xds_nacks_total{database=\"orders\",type=\"EDS\"}");
  }

  @Test
  void delta_aNack_isAnsweredWithNothing_untilANewVersion_whichArrives() throws Exception {
    var client = delta();
    client.send(DeltaDiscoveryRequest.newBuilder().setNode(node("nack-delta", "checkout")).setTypeUrl(EDS)
        .addResourceNamesSubscribe("shared").build());
    DeltaDiscoveryResponse eds = client.expect("the shared assignment");
    assertThat(names(eds)).containsExactly("shared");

    client.send(DeltaDiscoveryRequest.newBuilder().setTypeUrl(EDS).setResponseNonce(eds.getNonce())
        .setErrorDetail(Status.newBuilder().setCode(3).setMessage("rejected by the test")).build());

    assertThat(client.collect(Duration.ofSeconds(2))).as("responses within 2 s of a NACK").isEmpty();
    route("shared", "10.0.0.67:5432");
    DeltaDiscoveryResponse next = client.expect("the new version after the NACK");
    assertThat(names(next)).containsExactly("shared");
    assertThat(endpointOf(next.getResources(0).getResource())).isEqualTo("10.0.0.67:5432");
  }

  @Test
  void sotw_theNodeOnTheFirstRequestOnly_isKeptForTheStream() throws Exception {
    var client = sotw();
    client.send(request(CDS).setNode(node("once-1", "checkout")).build());
    DiscoveryResponse clusters = client.expect("clusters");
    assertThat(names(clusters)).containsExactlyInAnyOrder("orders", "shared");
    client.send(ack(clusters)); // no node from here on, as gRPC and Envoy with set_node_on_first_message_only do
    client.send(request(EDS, "orders", "shared").build());
    assertThat(names(client.expect("assignments without a node on the request"))).containsExactlyInAnyOrder(
        "orders", "shared");

    client.send(request(LDS).setNode(node("someone-else", "billing")).build());
    io.grpc.Status ended = client.ended();
    assertThat(ended.getCode()).isEqualTo(io.grpc.Status.Code.INVALID_ARGUMENT);
    assertThat(ended.getDescription()).contains("once-1").contains("cannot name node someone-else");
  }

  @Test
  void delta_theNodeOnTheFirstRequestOnly_isKeptForTheStream() throws Exception {
    var client = delta();
    client.send(DeltaDiscoveryRequest.newBuilder().setNode(node("once-2", "billing")).setTypeUrl(CDS).build());
    assertThat(names(client.expect("clusters"))).containsExactlyInAnyOrder("ledger", "shared");
    client.send(DeltaDiscoveryRequest.newBuilder().setTypeUrl(EDS).addResourceNamesSubscribe("ledger").build());
    assertThat(names(client.expect("ledger's assignment"))).containsExactly("ledger");
  }

  @Test
  void aStreamWhoseFirstRequestHasNoNode_isRefusedSayingSo() throws Exception {
    var client = sotw();
    client.send(request(CDS).build());
    io.grpc.Status ended = client.ended();
    assertThat(ended.getCode()).isEqualTo(io.grpc.Status.Code.INVALID_ARGUMENT);
    assertThat(ended.getDescription()).contains("first request").contains("node.id");
  }

  @Test
  void sotw_namesAskedFor_areAnsweredAtOnce_withWhatExistsAndMayBeSeen() throws Exception {
    var client = sotw();
    client.send(request(CDS, "orders", "ledger", "nope").setNode(node("names-1", "checkout")).build());
    DiscoveryResponse clusters = client.next(Duration.ofSeconds(1));
    assertThat(clusters).as("an answer within 1 s").isNotNull();
    assertThat(names(clusters)).containsExactly("orders");
    client.send(ack(clusters, "orders", "ledger", "nope"));
    client.send(request(EDS, "nope", "ledger", "orders").build());
    DiscoveryResponse eds = client.next(Duration.ofSeconds(1));
    assertThat(eds).as("an answer within 1 s").isNotNull();
    assertThat(names(eds)).containsExactly("orders");
  }

  @Test
  void delta_namesThatAreForbidden_lookExactlyLikeUnknownOnes() throws Exception {
    var client = delta();
    client.send(DeltaDiscoveryRequest.newBuilder().setNode(node("names-2", "checkout")).setTypeUrl(CDS)
        .addAllResourceNamesSubscribe(List.of("orders", "ledger", "nope")).build());
    DeltaDiscoveryResponse clusters = client.next(Duration.ofSeconds(1));
    assertThat(clusters).as("an answer within 1 s").isNotNull();
    assertThat(names(clusters)).containsExactly("orders");
    assertThat(clusters.getRemovedResourcesList()).containsExactlyInAnyOrder("ledger", "nope");

    var billing = delta(); // ledger exists: only checkout's policy hides it
    billing.send(DeltaDiscoveryRequest.newBuilder().setNode(node("names-3", "billing")).setTypeUrl(CDS)
        .addResourceNamesSubscribe("ledger").build());
    assertThat(names(billing.expect("ledger for billing"))).containsExactly("ledger");
  }

  @Test
  void delta_explicitSubscriptions_areHonouredForListenersClustersAndAssignments() throws Exception {
    var client = delta();
    client.send(DeltaDiscoveryRequest.newBuilder().setNode(node("subs-1", "checkout")).setTypeUrl(LDS)
        .addResourceNamesSubscribe("orders").build());
    assertThat(names(client.expect("the orders listener"))).containsExactly("orders");
    client.send(DeltaDiscoveryRequest.newBuilder().setTypeUrl(CDS).addResourceNamesSubscribe("shared").build());
    assertThat(names(client.expect("the shared cluster"))).containsExactly("shared");
    client.send(DeltaDiscoveryRequest.newBuilder().setTypeUrl(LDS).addResourceNamesSubscribe("shared").build());
    assertThat(names(client.expect("the shared listener"))).containsExactly("shared");
    client.send(DeltaDiscoveryRequest.newBuilder().setTypeUrl(EDS)
        .addAllResourceNamesSubscribe(List.of("orders", "shared")).build());
    assertThat(names(client.expect("two assignments"))).containsExactlyInAnyOrder("orders", "shared");

    client.send(DeltaDiscoveryRequest.newBuilder().setTypeUrl(EDS).addResourceNamesUnsubscribe("orders").build());
    client.send(DeltaDiscoveryRequest.newBuilder().setTypeUrl(LDS).addResourceNamesUnsubscribe("orders").build());
    route("orders", "10.0.0.55:5432");
    assertThat(client.collect(Duration.ofSeconds(1))).as("nothing about an unsubscribed database").isEmpty();
    route("shared", "10.0.0.56:5432");
    DeltaDiscoveryResponse shared = client.expect("the shared assignment");
    assertThat(shared.getTypeUrl()).isEqualTo(EDS);
    assertThat(names(shared)).containsExactly("shared");

    client.send(DeltaDiscoveryRequest.newBuilder().setTypeUrl(CDS).addResourceNamesSubscribe("*").build());
    assertThat(names(client.expect("the wildcard's other cluster"))).containsExactly("orders");
  }

  @Test
  void sotw_anAssignmentChange_sendsThatAssignmentOnly_withALocalityWeight() throws Exception {
    var client = sotw();
    client.send(request(CDS).setNode(node("partial-1", "checkout")).build());
    client.send(ack(client.expect("clusters")));
    client.send(request(EDS, "orders", "shared").build());
    DiscoveryResponse both = client.expect("both assignments");
    assertThat(names(both)).containsExactlyInAnyOrder("orders", "shared");
    for (Any any : both.getResourcesList()) {
      assertThat(any.unpack(ClusterLoadAssignment.class).getEndpoints(0).getLoadBalancingWeight().getValue())
          .as("gRPC drops a locality without a weight").isEqualTo(1);
    }
    client.send(ack(both, "orders", "shared"));

    route("shared", "10.0.0.58:5432");
    DiscoveryResponse changed = client.expect("the changed assignment");
    assertThat(changed.getTypeUrl()).isEqualTo(EDS);
    assertThat(names(changed)).containsExactly("shared");
    client.send(ack(changed, "orders", "shared"));
    assertThat(client.collect(Duration.ofMillis(500))).as("no Listener or Cluster resent for an endpoint move")
        .isEmpty();
  }

  @Test
  void aTypeNobodyServes_isRefusedNamingIt_andANonceNeverSent_countsForNothing() throws Exception {
    var careless = sotw();
    careless.send(request("type.googleapis.com/example.NotAType").setNode(node("careless-1", "checkout")).build());
    io.grpc.Status ended = careless.ended();
    assertThat(ended.getCode()).isEqualTo(io.grpc.Status.Code.INVALID_ARGUMENT);
    assertThat(ended.getDescription()).contains("example.NotAType");

    var guesser = delta();
    guesser.send(DeltaDiscoveryRequest.newBuilder().setNode(node("guesser-1", "checkout")).setTypeUrl(EDS)
        .addResourceNamesSubscribe("orders").build());
    DeltaDiscoveryResponse first = guesser.expect("orders");
    // Never reads it; echoes counter-like nonces instead, as a client guessing the server's nonces would.
    for (String nonce : List.of("0", "1", "2", "3")) {
      guesser.send(DeltaDiscoveryRequest.newBuilder().setTypeUrl(EDS).setResponseNonce(nonce).build());
    }
    assertThat(first.getNonce()).as("nonces are not a counter").hasSizeGreaterThanOrEqualTo(16);
    // Then a real ACK, so the guesses are known to have been read before it.
    guesser.send(DeltaDiscoveryRequest.newBuilder().setTypeUrl(LDS).addResourceNamesSubscribe("orders").build());
    guesser.expect("the orders listener");
    assertThat(guesser.isOpen()).isTrue();
    var node = AdminGrpc.newBlockingStub(admin).listNodes(dev.turnout.admin.v1.ListNodesRequest.getDefaultInstance())
        .getNodesList().stream().filter(n -> n.getId().equals("guesser-1")).findFirst().orElseThrow();
    var eds = node.getTypesList().stream().filter(t -> t.getType().equals("EDS")).findFirst().orElseThrow();
    assertThat(eds.getSentVersion()).isEqualTo(Long.parseLong(first.getSystemVersionInfo()));
    assertThat(eds.getAckedVersion()).as("a guessed nonce is no ACK").isZero();
  }

  @Test
  void oversizedAndHostileFields_areRefusedOrBounded_andNeverPoisonTheListings() throws Exception {
    var huge = sotw();
    huge.send(request(CDS).setNode(node("n".repeat(1 << 20), "checkout")).build());
    assertThat(huge.ended().getCode()).isEqualTo(io.grpc.Status.Code.INVALID_ARGUMENT);
    assertThat(huge.ended().getDescription()).contains("node.id is 1048576 characters; at most 256");

    var forger = sotw();
    forger.send(request(CDS).setNode(node("forger-1", "checkout\nfake-node  app  connected\u001b[31m")).build());
    assertThat(forger.ended().getCode()).isEqualTo(io.grpc.Status.Code.INVALID_ARGUMENT);
    assertThat(forger.ended().getDescription()).contains("control characters").doesNotContain("\n");

    var rambler = sotw();
    rambler.send(request(CDS).setNode(node("rambler-1", "checkout")).build());
    DiscoveryResponse clusters = rambler.expect("clusters");
    rambler.send(request(CDS).setResponseNonce(clusters.getNonce()).setErrorDetail(Status.newBuilder().setCode(3)
        .setMessage("x".repeat(1 << 20) + "\n\u001b[2J")).build());
    rambler.send(request(EDS, "orders").build()); // answered only after the NACK was read
    rambler.expect("the orders assignment");

    var admin = AdminGrpc.newBlockingStub(XdsConformanceTest.admin);
    var nodes = admin.listNodes(dev.turnout.admin.v1.ListNodesRequest.getDefaultInstance()).getNodesList();
    assertThat(nodes).extracting(n -> n.getId()).doesNotContain("forger-1").noneMatch(id -> id.length() > 256);
    var cds = nodes.stream().filter(n -> n.getId().equals("rambler-1")).findFirst().orElseThrow()
        .getTypesList().stream().filter(t -> t.getType().equals("CDS")).findFirst().orElseThrow();
    assertThat(cds.getNackError()).hasSizeLessThan(1200).endsWith("more characters)").doesNotContain("\n");
    Cli.Result listed = Cli.run("nodes", "--admin", "127.0.0.1:" + adminPortOf());
    assertThat(listed.exit()).isZero();
    assertThat(listed.out()).doesNotContain("\u001b").contains("rambler-1");
  }

  private static int adminPortOf() {
    return Integer.parseInt(admin.authority().substring(admin.authority().lastIndexOf(':') + 1));
  }

  private static String metrics() throws Exception {
    return get("/metrics");
  }

  private static String get(String path) throws Exception {
    HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
        URI.create("http://127.0.0.1:" + httpPort + path)).build(), HttpResponse.BodyHandlers.ofString());
    return r.body();
  }
}
