package dev.turnout.controlplane.admin;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.Drain;
import dev.turnout.admin.v1.GetRouteHistoryRequest;
import dev.turnout.admin.v1.ListDatabasesRequest;
import dev.turnout.admin.v1.RouteChange;
import dev.turnout.admin.v1.RouteHistory;
import dev.turnout.admin.v1.SetRouteRequest;
import dev.turnout.admin.v1.SetRouteResponse;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.TestConfigs;
import dev.turnout.controlplane.xds.AdsTestClientAccess;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.migrator.Migrator;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An operator moves a route by hand through the admin API: what it does, what it records, what it refuses. */
class RouteByHandTest {
  @TempDir Path dir;
  ControlPlane plane;
  ManagedChannel channel;
  AdminGrpc.AdminBlockingStub admin;
  /** Holds every migration just before it saves PREFLIGHT, until the test ends. */
  final CountDownLatch migrationsHeld = new CountDownLatch(1);

  @BeforeEach
  void start() throws Exception {
    Migrator.Failpoint hold = (next, point) -> migrationsHeld.await();
    plane = ControlPlane.start(TestConfigs.config(dir, java.time.Duration.ofSeconds(5), List.of(
        database("orders", 15432, "10.0.0.5:5432", "checkout"), database("ledger", 15433, "10.0.0.7:5432"))),
        RoutingService.Resolver.SYSTEM, hold);
    channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext().build();
    admin = AdminGrpc.newBlockingStub(channel);
  }

  @AfterEach
  void stop() throws Exception {
    migrationsHeld.countDown();
    channel.shutdownNow();
    plane.close();
  }

  private static SetRouteRequest.Builder set(String database, String endpoint, String reason) {
    return SetRouteRequest.newBuilder().setDatabase(database).setEndpoint(endpoint).setReason(reason);
  }

  private static SetRouteRequest.Builder drain(String database, String reason) {
    return SetRouteRequest.newBuilder().setDatabase(database).setDrain(Drain.getDefaultInstance()).setReason(reason);
  }

  private String endpointOf(String database) {
    return admin.listDatabases(ListDatabasesRequest.getDefaultInstance()).getDatabasesList().stream()
        .filter(d -> d.getName().equals(database)).findFirst().orElseThrow().getEndpoint();
  }

  private RouteHistory history(String database) {
    return admin.getRouteHistory(GetRouteHistoryRequest.newBuilder().setDatabase(database).build());
  }

  @Test
  void routeSet_movesTheSidecars_waitsForTheirAcks_andIsRecordedWithWhoWhyAndWhen() throws Exception {
    try (var checkout = AdsTestClientAccess.connect(plane.xdsPort(), "checkout-1", "checkout")) {
      checkout.awaitEndpoints("orders");
      java.time.Instant before = java.time.Instant.now().minusSeconds(1);

      SetRouteResponse moved = admin.setRoute(set("orders", "10.0.0.9:5432", "db1 replaced by db9 after a disk failure")
          .setExpectedCurrent("10.0.0.5:5432").build());

      assertThat(moved.getChanged()).isTrue();
      assertThat(moved.getPrevious()).isEqualTo("10.0.0.5:5432");
      assertThat(moved.getCurrent()).isEqualTo("10.0.0.9:5432");
      assertThat(moved.getAcknowledged()).isTrue();
      assertThat(moved.getAckedByList()).containsExactly("checkout-1");
      assertThat(moved.getBy()).as("no TLS: anonymous, from where").isEqualTo("anonymous@127.0.0.1");
      assertThat(plane.tracker().node("checkout-1").orElseThrow().ackedVersion(dev.turnout.controlplane.xds.XdsType.EDS))
          .as("answered only once the sidecar had ACKed").isGreaterThanOrEqualTo(moved.getVersion());
      assertThat(endpointOf("orders")).isEqualTo("10.0.0.9:5432");

      SetRouteResponse drained = admin.setRoute(drain("orders", "db9 misbehaves; hold connections").build());
      assertThat(drained.getCurrent()).isEmpty();
      assertThat(drained.getAckedByList()).containsExactly("checkout-1");

      RouteHistory h = history("orders");
      assertThat(h.getChangesList()).extracting(RouteChange::getCause, RouteChange::getEndpoint, RouteChange::getBy,
          RouteChange::getReason).containsExactly(
          org.assertj.core.groups.Tuple.tuple("drain", "", "anonymous@127.0.0.1", "db9 misbehaves; hold connections"),
          org.assertj.core.groups.Tuple.tuple("route", "10.0.0.9:5432", "anonymous@127.0.0.1",
              "db1 replaced by db9 after a disk failure"),
          org.assertj.core.groups.Tuple.tuple("seed", "10.0.0.5:5432", "", ""));
      assertThat(h.getChanges(0).getVersion()).isEqualTo(drained.getVersion());
      assertThat(java.time.Instant.ofEpochSecond(h.getChanges(0).getAt().getSeconds())).isAfter(before);
      assertThat(h.getNextBeforeVersion()).as("no older page").isZero();
    }
  }

  @Test
  void theChangeSurvivesARestart_withItsHistory() throws Exception {
    admin.setRoute(set("ledger", "10.0.0.8:5432", "ledger moved to a new host").build());
    channel.shutdownNow();
    plane.close();
    plane = ControlPlane.start(TestConfigs.config(dir, java.time.Duration.ofSeconds(5), List.of(
        database("orders", 15432, "10.0.0.5:5432", "checkout"), database("ledger", 15433, "10.0.0.7:5432"))));
    channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext().build();
    admin = AdminGrpc.newBlockingStub(channel);

    assertThat(endpointOf("ledger")).as("the store is the truth, not the configuration").isEqualTo("10.0.0.8:5432");
    assertThat(history("ledger").getChanges(0).getReason()).isEqualTo("ledger moved to a new host");
  }

  @Test
  void anExpectedCurrentEndpointThatIsNotCurrent_isAborted_namingTheActualOne_andChangesNothing() throws Exception {
    long version = plane.routing().version();
    byte[] journal = Files.readAllBytes(dir.resolve("routes.journal"));

    assertThatThrownBy(() -> admin.setRoute(set("orders", "10.0.0.9:5432", "failover")
        .setExpectedCurrent("10.0.0.6:5432").build()))
        .hasMessageContaining("ABORTED")
        .hasMessageContaining("database 'orders' is routed to 10.0.0.5:5432, not to the expected 10.0.0.6:5432");
    assertThatThrownBy(() -> admin.setRoute(drain("orders", "failover").setExpectedCurrent("10.0.0.6:5432").build()))
        .hasMessageContaining("ABORTED");

    assertThat(endpointOf("orders")).isEqualTo("10.0.0.5:5432");
    assertThat(plane.routing().version()).isEqualTo(version);
    assertThat(Files.readAllBytes(dir.resolve("routes.journal"))).as("nothing recorded").isEqualTo(journal);
  }

  @Test
  void badInput_isRefusedWithAStatusThatSaysWhy_andChangesNothing() throws Exception {
    long version = plane.routing().version();
    byte[] journal = Files.readAllBytes(dir.resolve("routes.journal"));

    assertThatThrownBy(() -> admin.setRoute(set("nope", "10.0.0.9:5432", "x").build()))
        .hasMessageContaining("NOT_FOUND").hasMessageContaining("unknown database 'nope'");
    assertThatThrownBy(() -> admin.setRoute(set("orders", "10.0.0.9", "x").build()))
        .hasMessageContaining("INVALID_ARGUMENT").hasMessageContaining("database 'orders': endpoint: endpoint '10.0.0.9' has no port");
    assertThatThrownBy(() -> admin.setRoute(set("orders", "10.0.0.9:5432", "  ").build()))
        .hasMessageContaining("INVALID_ARGUMENT").hasMessageContaining("database 'orders': a reason is required");
    assertThatThrownBy(() -> admin.setRoute(set("orders", "10.0.0.9:5432", "two\nlines").build()))
        .hasMessageContaining("INVALID_ARGUMENT").hasMessageContaining("one line");
    assertThatThrownBy(() -> admin.setRoute(SetRouteRequest.newBuilder().setDatabase("orders").setReason("x").build()))
        .hasMessageContaining("INVALID_ARGUMENT").hasMessageContaining("give the endpoint to route to, or drain");
    assertThatThrownBy(() -> admin.setRoute(set("orders", "10.0.0.9:5432", "x").setExpectedCurrent("nonsense").build()))
        .hasMessageContaining("INVALID_ARGUMENT").hasMessageContaining("expected_current");
    assertThatThrownBy(() -> admin.setRoute(set("orders", "no-such-host.invalid:5432", "x").build()))
        .hasMessageContaining("INVALID_ARGUMENT").hasMessageContaining("cannot resolve endpoint host 'no-such-host.invalid'");
    assertThatThrownBy(() -> admin.getRouteHistory(GetRouteHistoryRequest.newBuilder().setDatabase("nope").build()))
        .hasMessageContaining("NOT_FOUND");
    assertThatThrownBy(() -> admin.getRouteHistory(GetRouteHistoryRequest.newBuilder().setDatabase("orders")
        .setPageSize(-1).build())).hasMessageContaining("INVALID_ARGUMENT");

    assertThat(plane.routing().version()).isEqualTo(version);
    assertThat(Files.readAllBytes(dir.resolve("routes.journal"))).as("nothing recorded").isEqualTo(journal);
    assertThat(history("orders").getChangesCount()).isEqualTo(1);
  }

  @Test
  void whileAMigrationOfTheDatabaseIsUnfinished_aRouteByHandIsRefused_namingItAndItsPhase() throws Exception {
    var m = admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders").setTarget("127.0.0.1:1")
        .build());
    byte[] journal = Files.readAllBytes(dir.resolve("routes.journal"));

    assertThatThrownBy(() -> admin.setRoute(set("orders", "10.0.0.9:5432", "failover").build()))
        .hasMessageContaining("FAILED_PRECONDITION")
        .hasMessageContaining("database 'orders' has migration " + m.getId() + " in PLANNED");
    assertThatThrownBy(() -> admin.setRoute(drain("orders", "failover").build()))
        .hasMessageContaining("FAILED_PRECONDITION").hasMessageContaining(m.getId());
    assertThat(endpointOf("orders")).isEqualTo("10.0.0.5:5432");
    assertThat(Files.readAllBytes(dir.resolve("routes.journal"))).isEqualTo(journal);

    assertThat(admin.setRoute(set("ledger", "10.0.0.8:5432", "another database is not held up").build())
        .getCurrent()).isEqualTo("10.0.0.8:5432");
  }

  @Test
  void aSidecarThatNacks_isNamedWithItsError_andTheChangeStaysMade() throws Exception {
    try (var good = AdsTestClientAccess.connect(plane.xdsPort(), "checkout-1", "checkout");
         var picky = AdsTestClientAccess.connect(plane.xdsPort(), "checkout-2", "checkout")) {
      good.awaitEndpoints("orders");
      picky.awaitEndpoints("orders");
      picky.rejectEdsWhen(cla -> cla.toString().contains("10.0.0.9") ? "cannot reach 10.0.0.9 from this zone" : null);

      SetRouteResponse r = admin.setRoute(set("orders", "10.0.0.9:5432", "failover").build());

      assertThat(r.getAcknowledged()).isFalse();
      assertThat(r.getChanged()).isTrue();
      assertThat(r.getAckedByList()).containsExactly("checkout-1");
      assertThat(r.getStragglersList()).singleElement().satisfies(s -> {
        assertThat(s.getNodeId()).isEqualTo("checkout-2");
        assertThat(s.getNackError()).isEqualTo("cannot reach 10.0.0.9 from this zone");
      });
      assertThat(r.getFailure()).contains("checkout-2");
      assertThat(endpointOf("orders")).as("recorded and published; only the ACKs are missing").isEqualTo("10.0.0.9:5432");
    }
  }

  @Test
  void routingWhereItIsAlready_recordsNothing() {
    SetRouteResponse r = admin.setRoute(set("orders", "10.0.0.5:5432", "make sure").build());
    assertThat(r.getChanged()).isFalse();
    assertThat(r.getAcknowledged()).isTrue();
    assertThat(history("orders").getChangesCount()).isEqualTo(1);
  }

  @Test
  void theHistory_comesAPageAtATime_newestFirst() {
    for (int i = 1; i <= 25; i++) {
      admin.setRoute(set("ledger", "10.0.1." + i + ":5432", "step " + i).build());
    }
    RouteHistory first = history("ledger");
    assertThat(first.getChangesList()).hasSize(20);
    assertThat(first.getChanges(0).getReason()).isEqualTo("step 25");
    assertThat(first.getNextBeforeVersion()).isEqualTo(first.getChanges(19).getVersion());

    RouteHistory second = admin.getRouteHistory(GetRouteHistoryRequest.newBuilder().setDatabase("ledger")
        .setBeforeVersion(first.getNextBeforeVersion()).build());
    assertThat(second.getChangesList()).extracting(RouteChange::getReason)
        .containsExactly("step 5", "step 4", "step 3", "step 2", "step 1", "");
    assertThat(second.getNextBeforeVersion()).isZero();

    assertThat(admin.getRouteHistory(GetRouteHistoryRequest.newBuilder().setDatabase("ledger").setPageSize(1000)
        .build()).getChangesList()).as("a page is at most 100; all 26 fit").hasSize(26);
    assertThat(admin.getRouteHistory(GetRouteHistoryRequest.newBuilder().setDatabase("ledger").setPageSize(3)
        .build()).getChangesList()).hasSize(3);
  }
}
