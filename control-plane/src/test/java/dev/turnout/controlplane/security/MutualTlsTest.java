package dev.turnout.controlplane.security;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.GetRouteHistoryRequest;
import dev.turnout.admin.v1.SetRouteRequest;
import dev.turnout.admin.v1.ListDatabasesRequest;
import dev.turnout.admin.v1.MigrationOptions;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.xds.XdsType;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import dev.turnout.sidecar.XdsAddress;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** xDS and the admin API with client certificates: who is let in, and to do what. */
class MutualTlsTest {
  @TempDir Path dir;
  TestCertificates certs;
  ControlPlane plane;

  @BeforeEach
  void start() throws Exception {
    certs = new TestCertificates(dir);
    for (String name : new String[] {"ops-admin", "sre-viewer", "checkout", "billing"}) {
      certs.issue(name);
    }
    TurnoutConfig.Tls tls = new TurnoutConfig.Tls(certs.crt("turnout-control-plane"), certs.key("turnout-control-plane"),
        certs.ca(), Set.of("ops-admin"), Set.of("sre-viewer"));
    plane = ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0, Optional.of(tls)),
        dir.resolve("store"), Duration.ofSeconds(5), ImmutableList.of(database("orders", freePort(), "10.0.0.5:5432",
            "checkout")), TurnoutConfig.MigratorSettings.DEFAULT));
  }

  @AfterEach
  void stop() throws Exception {
    plane.close();
  }

  private AdminGrpc.AdminBlockingStub adminAs(String who) throws Exception {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort())
        .sslContext(Tls.clientContext(certs.crt(who), certs.key(who), certs.ca())).build();
    return AdminGrpc.newBlockingStub(channel);
  }

  private static StartMigrationRequest dryRun() {
    return StartMigrationRequest.newBuilder().setDatabase("orders").setTarget("10.0.0.6:5432")
        .setOptions(MigrationOptions.newBuilder().setDryRun(true)).build();
  }

  @Test
  void aClientWithoutAWriterIdentity_mayRead_butNotStartAMigration() throws Exception {
    AdminGrpc.AdminBlockingStub viewer = adminAs("sre-viewer");
    assertThat(viewer.listDatabases(ListDatabasesRequest.getDefaultInstance()).getDatabasesCount()).isEqualTo(1);
    assertThatThrownBy(() -> viewer.startMigration(dryRun()))
        .hasMessageContaining("PERMISSION_DENIED").hasMessageContaining("identity 'sre-viewer' may not call StartMigration");

    assertThatThrownBy(() -> adminAs("ops-admin").startMigration(dryRun()))
        .as("let through to the migrator, whose dry run reads a 10.0.0.5 that is not there")
        .hasMessageStartingWith("UNAVAILABLE: database 'orders': preflight: ");
    assertThatThrownBy(() -> adminAs("checkout").listDatabases(ListDatabasesRequest.getDefaultInstance()))
        .as("not a reader either").hasMessageContaining("PERMISSION_DENIED");
  }

  @Test
  void aCampaignsCommands_areForWriters() throws Exception {
    AdminGrpc.AdminBlockingStub viewer = adminAs("sre-viewer");
    var id = dev.turnout.admin.v1.CampaignId.newBuilder().setId("c-1").build();
    assertThatThrownBy(() -> viewer.pauseCampaign(id)).hasMessageContaining("PERMISSION_DENIED")
        .hasMessageContaining("may not call PauseCampaign");
    assertThatThrownBy(() -> viewer.abortCampaign(id)).hasMessageContaining("may not call AbortCampaign");
    assertThatThrownBy(() -> viewer.startCampaign(dev.turnout.admin.v1.CampaignRequest.newBuilder().setYaml("x")
        .build())).hasMessageContaining("may not call StartCampaign");
    assertThatThrownBy(() -> adminAs("ops-admin").pauseCampaign(id)).as("let through: there is no such campaign")
        .hasMessageContaining("NOT_FOUND");
  }

  @Test
  void aRouteByHand_isForWriters_andRecordsTheirCertificatesName() throws Exception {
    SetRouteRequest move = SetRouteRequest.newBuilder().setDatabase("orders").setEndpoint("10.0.0.9:5432")
        .setReason("db1 replaced").build();
    assertThatThrownBy(() -> adminAs("sre-viewer").setRoute(move)).hasMessageContaining("PERMISSION_DENIED")
        .hasMessageContaining("identity 'sre-viewer' may not call SetRoute");
    assertThat(plane.routing().table().get("orders").orElseThrow().endpoint().orElseThrow())
        .hasToString("10.0.0.5:5432");

    // The same refusal through the CLI: exit 2, the status and its reason on stderr.
    java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
    java.io.PrintStream stderr = System.err;
    int exit;
    try {
      System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
      exit = dev.turnout.controlplane.cli.Turnout.run("route", "drain", "orders", "--reason", "test",
          "--admin", "127.0.0.1:" + plane.adminPort(), "--tls-cert", certs.crt("sre-viewer").toString(),
          "--tls-key", certs.key("sre-viewer").toString(), "--tls-ca", certs.ca().toString());
    } finally {
      System.setErr(stderr);
    }
    assertThat(exit).isEqualTo(2);
    assertThat(err.toString(java.nio.charset.StandardCharsets.UTF_8))
        .contains("turnout route drain: PERMISSION_DENIED: identity 'sre-viewer' may not call SetRoute");
    assertThat(plane.routing().table().get("orders").orElseThrow().endpoint()).as("not drained").isPresent();

    assertThat(adminAs("ops-admin").setRoute(move).getBy()).isEqualTo("ops-admin");
    var history = adminAs("sre-viewer").getRouteHistory(GetRouteHistoryRequest.newBuilder().setDatabase("orders")
        .build());
    assertThat(history.getChanges(0).getBy()).as("a reader may read the history").isEqualTo("ops-admin");
    assertThat(history.getChanges(0).getReason()).isEqualTo("db1 replaced");
  }

  @Test
  void aClientWithoutACertificate_isNotLetIn() {
    ManagedChannel plain = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext().build();
    assertThatThrownBy(() -> AdminGrpc.newBlockingStub(plain).listDatabases(ListDatabasesRequest.getDefaultInstance()))
        .hasMessageContaining("UNAVAILABLE");
    plain.shutdownNow();
  }

  @Test
  void aSidecarWithItsServicesCertificate_isServed_overMutualTls() throws Exception {
    try (Sidecar sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", plane.xdsPort(), "checkout-1", "checkout")
        .withTls(new SidecarConfig.Tls(certs.crt("checkout"), certs.key("checkout"), certs.ca())))) {
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      // The sidecar opens its listener, then ACKs: wait for the ACK to reach the tracker too.
      while ((sidecar.listenAddress("orders").isEmpty() || ldsAcked("checkout-1") == 0) && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertThat(sidecar.listenAddress("orders")).isPresent();
      assertThat(ldsAcked("checkout-1")).isPositive();
    }
  }

  @Test
  void aSidecarGivenSeveralReplicas_checksEachAgainstTheNameItIsListedUnder() throws Exception {
    // The first replica listed is down, and its name (127.0.0.2) is not in the control plane's certificate:
    // the one that answers is checked as "localhost", the name it is listed under, not as the first entry.
    List<XdsAddress> replicas = List.of(new XdsAddress("127.0.0.2", freePort()),
        new XdsAddress("localhost", plane.xdsPort()));
    try (Sidecar sidecar = Sidecar.start(SidecarConfig.of(replicas, "checkout-1", "checkout")
        .withTls(new SidecarConfig.Tls(certs.crt("checkout"), certs.key("checkout"), certs.ca())))) {
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      while (ldsAcked("checkout-1") == 0 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertThat(ldsAcked("checkout-1")).isPositive();
      assertThat(sidecar.listenAddress("orders")).isPresent();
    }
  }

  @Test
  void aSidecarWhoseCertificateIsForAnotherService_isRefused() throws Exception {
    try (Sidecar sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", plane.xdsPort(), "sneaky-1", "checkout")
        .withTls(new SidecarConfig.Tls(certs.crt("billing"), certs.key("billing"), certs.ca())))) {
      Thread.sleep(1500);
      assertThat(sidecar.listenAddress("orders")).as("no databases for a mismatched identity").isEmpty();
      assertThat(sidecar.connectedToControlPlane()).isFalse();
      assertThat(plane.tracker().node("sneaky-1")).isEmpty();
    }
  }

  @Test
  void sidecarCounters_comeOverMutualTlsFromTheServicesCertificate_andAnotherServicesCertificateIsRefused()
      throws Exception {
    try (Sidecar sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", plane.xdsPort(), "checkout-1", "checkout")
        .withStatsFlushInterval(Duration.ofMillis(200))
        .withTls(new SidecarConfig.Tls(certs.crt("checkout"), certs.key("checkout"), certs.ca())))) {
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      while (plane.xds().sidecarStats().nodes().isEmpty() && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertThat(plane.xds().sidecarStats().nodes()).containsExactly(
          new dev.turnout.controlplane.xds.SidecarStats.NodeCounters("checkout-1", "checkout", "orders", 0, 0));
    }
    // Envoy's stats sink, written from its protos, with billing's certificate reporting as checkout.
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort())
        .sslContext(Tls.clientContext(certs.crt("billing"), certs.key("billing"), certs.ca())).build();
    try {
      java.util.concurrent.CompletableFuture<io.grpc.Status> ended = new java.util.concurrent.CompletableFuture<>();
      io.grpc.stub.StreamObserver<io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage> sneaky =
          io.envoyproxy.envoy.service.metrics.v3.MetricsServiceGrpc.newStub(channel).streamMetrics(
              new io.grpc.stub.StreamObserver<>() {
                @Override
                public void onNext(io.envoyproxy.envoy.service.metrics.v3.StreamMetricsResponse value) {}

                @Override
                public void onError(Throwable t) {
                  ended.complete(io.grpc.Status.fromThrowable(t));
                }

                @Override
                public void onCompleted() {
                  ended.complete(io.grpc.Status.OK);
                }
              });
      io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage.Builder m =
          io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage.newBuilder();
      m.getIdentifierBuilder().setNode(io.envoyproxy.envoy.config.core.v3.Node.newBuilder().setId("sneaky-1")
          .setCluster("checkout"));
      sneaky.onNext(m.build());
      io.grpc.Status status = ended.get(10, java.util.concurrent.TimeUnit.SECONDS);
      assertThat(status.getCode()).isEqualTo(io.grpc.Status.Code.PERMISSION_DENIED);
      assertThat(status.getDescription()).contains("certificate is for 'billing'");
    } finally {
      channel.shutdownNow();
    }
  }

  private long ldsAcked(String node) {
    return plane.tracker().node(node).map(n -> n.ackedVersion(XdsType.LDS)).orElse(0L);
  }

  private static int freePort() throws Exception {
    try (var s = new java.net.ServerSocket(0)) {
      return s.getLocalPort();
    }
  }
}
