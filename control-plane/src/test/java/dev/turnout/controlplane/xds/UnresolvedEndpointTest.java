package dev.turnout.controlplane.xds;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.Database;
import dev.turnout.admin.v1.GetRoutingSnapshotRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.TestConfigs;
import dev.turnout.controlplane.cli.Turnout;
import dev.turnout.envoy.Endpoint;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One endpoint name that does not resolve, at the start or later, must not take the control plane down: every
 * other database is served, that one at its stored address (or drained when it never had one), shown unresolved in
 * {@code turnout routes}, {@code /v1/routes} and the metrics, and published as soon as its name resolves.
 */
class UnresolvedEndpointTest {
  @TempDir Path dir;

  private final Map<String, String> dns = new ConcurrentHashMap<>();
  private final RoutingService.Resolver resolver = e -> e.isIpLiteral() ? e
      : new Endpoint(Optional.ofNullable(dns.get(e.host())).orElseThrow(() -> new UnknownHostException(e.host())),
          e.port());
  private ControlPlane plane;
  private final List<AutoCloseable> closing = new ArrayList<>();

  @AfterEach
  void stop() throws Exception {
    for (AutoCloseable c : closing) {
      c.close();
    }
    if (plane != null) {
      plane.close();
    }
  }

  private void start() throws Exception {
    plane = ControlPlane.start(TestConfigs.config(dir, Duration.ofSeconds(10), List.of(
        database("orders", 15432, "10.0.0.5:5432", "checkout"),
        database("ledger", 15433, "ledger.db.example:5433", "checkout"))), resolver);
  }

  private AdsTestClient sidecar() {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort()).usePlaintext().build();
    AdsTestClient client = new AdsTestClient(channel, "checkout-1", "checkout", AdsTestClient.Mode.STATE_OF_THE_WORLD);
    closing.add(channel::shutdownNow);
    closing.add(client);
    return client;
  }

  private Database snapshotOf(String database) {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext().build();
    try {
      return AdminGrpc.newBlockingStub(channel).getRoutingSnapshot(GetRoutingSnapshotRequest.getDefaultInstance())
          .getDatabasesList().stream().map(d -> d.getDatabase()).filter(d -> d.getName().equals(database))
          .findFirst().orElseThrow();
    } finally {
      channel.shutdownNow();
    }
  }

  private String http(String path) throws Exception {
    return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + plane.httpPort()
        + path)).build(), HttpResponse.BodyHandlers.ofString()).body();
  }

  /** {@code turnout routes} as an operator reads it. */
  private String turnoutRoutes() {
    PrintStream out = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
    try {
      assertThat(Turnout.run("routes", "--admin", "127.0.0.1:" + plane.adminPort())).isZero();
    } finally {
      System.setOut(out);
    }
    return captured.toString(StandardCharsets.UTF_8);
  }

  @Test
  void aNameThatDoesNotResolveAtTheStart_isServedDrained_theOthersServed_andItIsPublishedOnceItResolves()
      throws Exception {
    start();
    AdsTestClient sidecar = sidecar();
    sidecar.await("both databases", c -> c.assignments().keySet().containsAll(List.of("orders", "ledger")));

    assertThat(sidecar.endpointOf("orders")).isEqualTo("10.0.0.5:5432");
    assertThat(sidecar.endpointOf("ledger")).as("drained: the sidecar holds new connections").isEmpty();
    Database ledger = snapshotOf("ledger");
    assertThat(ledger.getEndpoint()).isEmpty();
    assertThat(ledger.getHostname()).isEqualTo("ledger.db.example");
    assertThat(ledger.getUnresolved()).isEqualTo("endpoint host ledger.db.example does not resolve: unknown host");
    assertThat(snapshotOf("orders").getUnresolved()).isEmpty();
    assertThat(http("/v1/routes")).contains("\"unresolved\": \"endpoint host ledger.db.example does not resolve");
    assertThat(http("/metrics")).contains("turnout_database_endpoint_unresolved{database=\"ledger\"} 1.0")
        .contains("turnout_database_endpoint_unresolved{database=\"orders\"} 0.0");
    assertThat(turnoutRoutes()).contains("ledger (port 15433): (drained) (ledger.db.example) at version")
        .contains("  UNRESOLVED: endpoint host ledger.db.example does not resolve");
    assertThat(plane.routing().refreshDns()).as("still unresolved: nothing published").isEmpty();
    assertThat(snapshotOf("ledger").getUnresolved()).endsWith("; served drained");

    dns.put("ledger.db.example", "10.0.0.7");
    assertThat(plane.routing().refreshDns()).containsExactly("ledger");

    sidecar.await("ledger's address", c -> c.endpointOf("ledger").equals("10.0.0.7:5433"));
    assertThat(snapshotOf("ledger").getUnresolved()).isEmpty();
    assertThat(snapshotOf("ledger").getEndpoint()).isEqualTo("10.0.0.7:5433");
    assertThat(http("/metrics")).contains("turnout_database_endpoint_unresolved{database=\"ledger\"} 0.0");

    plane.close();
    plane = null;
    dns.clear();
    start();
    assertThat(plane.routing().table().get("ledger").orElseThrow().endpoint()).as("seeded: the store has it now")
        .contains(Endpoint.parse("10.0.0.7:5433"));
  }

  @Test
  void aStoredNameThatStopsResolving_keepsItsAddress_isShownUnresolved_andFollowsTheNameWhenItResolves()
      throws Exception {
    dns.put("ledger.db.example", "10.0.0.7");
    start();
    plane.close();
    dns.clear();
    start();
    AdsTestClient sidecar = sidecar();
    sidecar.await("both databases", c -> c.endpointOf("ledger").equals("10.0.0.7:5433")
        && c.endpointOf("orders").equals("10.0.0.5:5432"));

    assertThat(plane.routing().refreshDns()).isEmpty();

    assertThat(snapshotOf("ledger").getEndpoint()).isEqualTo("10.0.0.7:5433");
    assertThat(snapshotOf("ledger").getUnresolved()).isEqualTo("endpoint host ledger.db.example does not resolve:"
        + " unknown host; serving its last address");
    assertThat(http("/metrics")).contains("turnout_database_endpoint_unresolved{database=\"ledger\"} 1.0");
    assertThat(turnoutRoutes()).contains("ledger (port 15433): 10.0.0.7:5433 (ledger.db.example) at version")
        .contains("  UNRESOLVED: endpoint host ledger.db.example does not resolve");

    dns.put("ledger.db.example", "10.0.0.8");
    assertThat(plane.routing().refreshDns()).containsExactly("ledger");
    sidecar.await("ledger's new address", c -> c.endpointOf("ledger").equals("10.0.0.8:5433"));
    assertThat(snapshotOf("ledger").getUnresolved()).isEmpty();
  }
}
