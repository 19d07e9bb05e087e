package dev.turnout.controlplane.admin;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.Duration;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.AuroraPlan;
import dev.turnout.admin.v1.FinalizeMigrationRequest;
import dev.turnout.admin.v1.GetMigrationRequest;
import dev.turnout.admin.v1.GetRoutingSnapshotRequest;
import dev.turnout.admin.v1.ListDatabasesRequest;
import dev.turnout.admin.v1.ListNodesRequest;
import dev.turnout.admin.v1.MigrationOptions;
import dev.turnout.admin.v1.RollbackMigrationRequest;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.admin.v1.WatchMigrationRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.TestConfigs;
import dev.turnout.controlplane.xds.AdsTestClientAccess;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The admin API over a real gRPC socket: answers, and the status codes bad input gets. */
class AdminServiceTest {
  @TempDir Path dir;
  ControlPlane plane;
  ManagedChannel channel;
  AdminGrpc.AdminBlockingStub admin;

  @BeforeEach
  void start() throws Exception {
    plane = ControlPlane.start(TestConfigs.config(dir, java.time.Duration.ofSeconds(5), List.of(
        database("orders", 15432, "10.0.0.5:5432", "checkout"), database("ledger", 15433, "10.0.0.7:5432"))));
    channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext().build();
    admin = AdminGrpc.newBlockingStub(channel);
  }

  @AfterEach
  void stop() throws Exception {
    channel.shutdownNow();
    plane.close();
  }

  private static Status.Code code(Runnable call) {
    try {
      call.run();
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
  }

  @Test
  void listDatabases_showsEndpointsServicesAndVersions() {
    var dbs = admin.listDatabases(ListDatabasesRequest.getDefaultInstance()).getDatabasesList();
    assertThat(dbs).extracting(d -> d.getName()).containsExactly("ledger", "orders");
    assertThat(dbs.get(1).getEndpoint()).isEqualTo("10.0.0.5:5432");
    assertThat(dbs.get(1).getServicesList()).containsExactly("checkout");
    assertThat(dbs.get(1).getEndpointVersion()).isPositive();
  }

  @Test
  void theRoutingSnapshot_saysWhichNodeAckedWhichVersion() throws Exception {
    try (var client = AdsTestClientAccess.connect(plane.xdsPort(), "checkout-1", "checkout")) {
      client.awaitEndpoints("orders", "ledger");
      var summary = admin.getRoutingSnapshot(GetRoutingSnapshotRequest.getDefaultInstance());
      assertThat(summary.getDatabases(summary.getDatabasesList().get(0).getDatabase().getName().equals("orders") ? 0 : 1)
          .getNodesCurrent()).isEqualTo(1);
      var snapshot = admin.getRoutingSnapshot(GetRoutingSnapshotRequest.newBuilder().setAllNodes(true).build());
      var orders = snapshot.getDatabasesList().stream().filter(d -> d.getDatabase().getName().equals("orders"))
          .findFirst().orElseThrow();
      assertThat(orders.getNodesList()).singleElement().satisfies(n -> {
        assertThat(n.getNodeId()).isEqualTo("checkout-1");
        assertThat(n.getConnected()).isTrue();
        assertThat(n.getCurrent()).isTrue();
        assertThat(n.getAckedVersion()).isGreaterThanOrEqualTo(orders.getDatabase().getEndpointVersion());
      });
      assertThat(admin.listNodes(ListNodesRequest.getDefaultInstance()).getNodesList())
          .extracting(n -> n.getId()).containsExactly("checkout-1");
      assertThat(code(() -> admin.getRoutingSnapshot(GetRoutingSnapshotRequest.newBuilder().setNode("nope").build())))
          .isEqualTo(Status.Code.NOT_FOUND);
    }
  }

  @Test
  void theSnapshot_summarisesByDefault_namesTheNackers_filtersByState_andPagesThroughEveryNode() throws Exception {
    List<dev.turnout.controlplane.xds.AdsTestClientAccess> clients = new java.util.ArrayList<>();
    try {
      for (int i = 0; i < 7; i++) {
        var c = dev.turnout.controlplane.xds.AdsTestClientAccess.connect(plane.xdsPort(), "checkout-" + i, "checkout");
        if (i % 2 == 1) {
          c.rejectEdsWhen(cla -> cla.toString().contains("10.0.0.66") ? "refused by test policy" : null);
        }
        c.awaitEndpoints("orders", "ledger");
        clients.add(c);
      }
      try {
        plane.routing().route("orders", dev.turnout.envoy.Endpoint.parse("10.0.0.66:5432")).get(10,
            java.util.concurrent.TimeUnit.SECONDS);
      } catch (java.util.concurrent.ExecutionException expected) {
        // three of them NACK it
      }

      var summary = admin.getRoutingSnapshot(GetRoutingSnapshotRequest.newBuilder().setDatabase("orders").build());
      assertThat(summary.getDatabasesList()).singleElement().satisfies(d -> {
        assertThat(d.getNodesCurrent()).isEqualTo(4);
        assertThat(d.getNodesNacked()).isEqualTo(3);
        assertThat(d.getNodesBehind()).isZero();
        assertThat(d.getNodesList()).extracting(n -> n.getNodeId())
            .containsExactlyInAnyOrder("checkout-1", "checkout-3", "checkout-5");
        assertThat(d.getNodesList()).allSatisfy(n -> assertThat(n.getNackError()).contains("refused by test policy"));
      });
      var nacked = admin.getRoutingSnapshot(GetRoutingSnapshotRequest.newBuilder().setState("nacked").build());
      assertThat(nacked.getDatabasesList()).flatExtracting(d -> d.getNodesList()).extracting(n -> n.getNodeId())
          .containsExactlyInAnyOrder("checkout-1", "checkout-3", "checkout-5");

      java.util.Set<String> listed = new java.util.HashSet<>();
      int pages = 0;
      var request = GetRoutingSnapshotRequest.newBuilder().setAllNodes(true).setPageSize(3);
      do {
        var page = admin.getRoutingSnapshot(request.build());
        pages++;
        for (var d : page.getDatabasesList()) {
          for (var n : d.getNodesList()) {
            assertThat(listed.add(d.getDatabase().getName() + "/" + n.getNodeId())).as("listed once").isTrue();
          }
        }
        request.setPageToken(page.getNextPageToken());
      } while (!request.getPageToken().isEmpty());
      assertThat(listed).hasSize(14);
      assertThat(pages).isEqualTo(5);
      assertThat(code(() -> admin.getRoutingSnapshot(GetRoutingSnapshotRequest.newBuilder().setState("sad").build())))
          .isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(code(() -> admin.getRoutingSnapshot(GetRoutingSnapshotRequest.newBuilder().setPageToken("x").build())))
          .isEqualTo(Status.Code.INVALID_ARGUMENT);
    } finally {
      clients.forEach(dev.turnout.controlplane.xds.AdsTestClientAccess::close);
    }
  }

  /**
   * A dry run is the run on a platform that reads the servers for real (the transcript itself is tested where there
   * are servers: the migrator's DryRunTest, CliEndToEndTest, AwsMigrationTest). Here nothing listens at 10.0.0.5:
   * the dry run cannot tell what the run would do, and says why, as the run would record it.
   */
  @Test
  void aDryRunWhoseServersDoNotAnswer_isUnavailable_namingTheDatabaseAndTheRead_andStartsNothing() {
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6:5432").setOptions(MigrationOptions.newBuilder().setDryRun(true)).build()))
        .hasMessageStartingWith("UNAVAILABLE: database 'orders': preflight: ");
    assertThat(plane.migrator().list()).isEmpty();
  }

  @Test
  void badRequests_getStatusCodesThatMeanWhatTheySay_namingTheDatabaseOrMigration() {
    var unknown = assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder()
        .setDatabase("nope").setTarget("10.0.0.6:5432").build())).isInstanceOf(StatusRuntimeException.class);
    unknown.hasMessageContaining("NOT_FOUND").hasMessageContaining("unknown database 'nope'");
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6").build())).hasMessageContaining("INVALID_ARGUMENT")
        .hasMessageContaining("database 'orders': target: endpoint '10.0.0.6' has no port");
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.5:5432").build())).hasMessageContaining("INVALID_ARGUMENT")
        .hasMessageContaining("is its current endpoint");
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6:5432").setOptions(MigrationOptions.newBuilder()
            .setValidationWindow(Duration.newBuilder().setSeconds(-5))).build()))
        .hasMessageContaining("INVALID_ARGUMENT").hasMessageContaining("validation_window must be a positive duration");
    assertThat(code(() -> admin.startMigration(StartMigrationRequest.getDefaultInstance())))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThatThrownBy(() -> admin.getMigration(GetMigrationRequest.newBuilder().setId("feedbeef").build()))
        .hasMessageContaining("NOT_FOUND").hasMessageContaining("no migration with id 'feedbeef'");
    assertThat(code(() -> admin.getMigration(GetMigrationRequest.getDefaultInstance())))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(code(() -> admin.rollbackMigration(RollbackMigrationRequest.newBuilder().setId("x").build())))
        .isEqualTo(Status.Code.NOT_FOUND);
    assertThat(code(() -> admin.finalizeMigration(FinalizeMigrationRequest.newBuilder().setId("x").build())))
        .isEqualTo(Status.Code.NOT_FOUND);
    assertThat(code(() -> admin.watchMigration(WatchMigrationRequest.newBuilder().setId("x").build()).hasNext()))
        .isEqualTo(Status.Code.NOT_FOUND);
  }

  @Test
  void aBake_isValidated_andItsLimitsAreReadBySignal() {
    var negative = MigrationOptions.newBuilder().setBake(Duration.newBuilder().setSeconds(-1));
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6:5432").setOptions(negative).build())).hasMessageContaining("INVALID_ARGUMENT")
        .hasMessageContaining("database 'orders': bake must be zero (no bake) or a positive duration");
    var tooLong = MigrationOptions.newBuilder().setBake(Duration.newBuilder().setSeconds(25 * 3600));
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6:5432").setOptions(tooLong).build())).hasMessageContaining("INVALID_ARGUMENT")
        .hasMessageContaining("bake 25h is over the maximum 24h");
    var badSignal = MigrationOptions.newBuilder().putBakeLimits("errors", "2x");
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6:5432").setOptions(badSignal).build())).hasMessageContaining("INVALID_ARGUMENT")
        .hasMessageContaining("bake_limits: no bake signal 'errors'");
    var badLimit = MigrationOptions.newBuilder().putBakeLimits("rollbacks", "twice");
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6:5432").setOptions(badLimit).build())).hasMessageContaining("INVALID_ARGUMENT")
        .hasMessageContaining("limit 'twice' is not like 2x+1");
    assertThat(plane.migrator().list()).isEmpty();
  }

  @Test
  void anAuroraMigration_isValidated_andNeedsTheAwsSection() {
    MigrationOptions.Builder bad = MigrationOptions.newBuilder().setAurora(AuroraPlan.newBuilder()
        .setSourceInstance("orders-rds").setTargetCluster("-nope"));
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6:5432").setOptions(bad).build())).hasMessageContaining("INVALID_ARGUMENT")
        .hasMessageContaining("database 'orders': aurora: target cluster identifier '-nope' is not an RDS identifier");
    MigrationOptions.Builder badClass = MigrationOptions.newBuilder().setAurora(AuroraPlan.newBuilder()
        .setSourceInstance("orders-rds").setTargetCluster("orders-aurora").setCreateInstanceClass("large"));
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6:5432").setOptions(badClass).build())).hasMessageContaining("INVALID_ARGUMENT")
        .hasMessageContaining("instance class 'large'");
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setOptions(MigrationOptions.newBuilder().setAurora(AuroraPlan.newBuilder().setSourceInstance("orders-rds")
            .setTargetCluster("orders-aurora"))).build())).as("no target: AWS is asked for it, and cannot be")
        .hasMessageContaining("FAILED_PRECONDITION").hasMessageContaining("needs migrator.aws in turnout.yaml");
    MigrationOptions.Builder good = MigrationOptions.newBuilder().setAurora(AuroraPlan.newBuilder()
        .setSourceInstance("orders-rds").setTargetCluster("orders-aurora"));
    assertThatThrownBy(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6:5432").setOptions(good).build())).hasMessageContaining("FAILED_PRECONDITION")
        .hasMessageContaining("needs migrator.aws in turnout.yaml");
    assertThat(plane.migrator().list()).as("nothing was saved").isEmpty();
  }

  /** Random and mangled requests: each answered with a status that blames the request, never INTERNAL. */
  @Test
  void fuzzedRequests_neverBreakTheServer_andAreAnsweredAsBadInput() throws Exception {
    Random random = new Random(20261127);
    // A well-formed dry run reads the source: one that refuses at once keeps the fuzzing fast (UNAVAILABLE).
    for (String database : new String[] {"orders", "ledger"}) {
      admin.setRoute(dev.turnout.admin.v1.SetRouteRequest.newBuilder().setDatabase(database)
          .setEndpoint("127.0.0.1:" + (database.equals("orders") ? 1 : 2)).setReason("nothing listens there").build());
    }
    Set<Status.Code> allowed = Set.of(Status.Code.OK, Status.Code.INVALID_ARGUMENT, Status.Code.NOT_FOUND,
        Status.Code.FAILED_PRECONDITION, Status.Code.ALREADY_EXISTS, Status.Code.UNAVAILABLE);
    String[] pieces = {"orders", "ledger", "", " ", "10.0.0.6:5432", "[::1]:5432", "::1:5432", "host:99999",
        "h\u00e9llo:5", "a".repeat(300), "10.0.0.5:5432", "x:-1", "\u0000", "orders;drop", "0.0.0.0:0"};
    for (int i = 0; i < 400; i++) {
      StartMigrationRequest.Builder start;
      if (random.nextBoolean()) {
        byte[] bytes = new byte[random.nextInt(64)];
        random.nextBytes(bytes);
        try {
          start = StartMigrationRequest.parseFrom(bytes).toBuilder();
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
          start = StartMigrationRequest.newBuilder();
        }
      } else {
        start = StartMigrationRequest.newBuilder().setDatabase(pieces[random.nextInt(pieces.length)])
            .setTarget(pieces[random.nextInt(pieces.length)]).setOptions(MigrationOptions.newBuilder()
                .setValidationWindow(Duration.newBuilder().setSeconds(random.nextInt(200_000) - 100)
                    .setNanos(random.nextInt(2_000_000_000) - 1_000_000_000))
                .setMaxLagBytes(random.nextLong()));
      }
      // Never start a real migration to a random host: the fuzzing is of validation.
      start.setOptions(start.getOptions().toBuilder().setDryRun(true));
      StartMigrationRequest request = start.build();
      assertThat(code(() -> admin.startMigration(request))).as(request.toString()).isIn(allowed);
      String id = pieces[random.nextInt(pieces.length)];
      assertThat(code(() -> admin.getMigration(GetMigrationRequest.newBuilder().setId(id).build()))).isIn(allowed);
      assertThat(code(() -> admin.rollbackMigration(RollbackMigrationRequest.newBuilder().setId(id)
          .setConsentToLoseWrites(random.nextBoolean()).build()))).isIn(allowed);
    }
    assertThat(admin.listDatabases(ListDatabasesRequest.getDefaultInstance()).getDatabasesCount()).isEqualTo(2);
  }
}
