package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.store.PostgresStore;
import dev.turnout.controlplane.store.RouteRecord;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Routes changed by hand on control-plane replicas sharing a real PostgreSQL store, and that store's history. */
class SharedStoreRouteByHandTest {
  @TempDir Path dir;
  private PostgresServer meta;
  private final List<AutoCloseable> closing = new ArrayList<>();

  @BeforeEach
  void metadataDatabase() throws Exception {
    meta = PostgresServer.start(dir.resolve("meta"));
  }

  @AfterEach
  void tearDown() throws Exception {
    for (int i = closing.size() - 1; i >= 0; i--) {
      closing.get(i).close();
    }
    meta.close();
  }

  private TurnoutConfig.SharedStore settings(String replica) {
    return new TurnoutConfig.SharedStore("jdbc:postgresql://127.0.0.1:" + meta.port() + "/postgres", "postgres",
        Optional.empty(), replica, Duration.ofSeconds(1));
  }

  private ControlPlane replica(String id) throws Exception {
    TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0),
        new TurnoutConfig.Store(dir.resolve(id), Optional.of(settings(id))),
        new TurnoutConfig.Xds(Duration.ofSeconds(5), Duration.ZERO),
        ImmutableList.of(new DatabaseRoute("orders", 16432, Optional.of(Endpoint.parse("10.0.0.1:5432")), Set.of())),
        TurnoutConfig.MigratorSettings.DEFAULT);
    ControlPlane plane = ControlPlane.start(config);
    closing.add(plane);
    return plane;
  }

  private SimulatedSidecar sidecar(ControlPlane plane, String id) {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort()).usePlaintext().build();
    closing.add(channel::shutdownNow);
    SimulatedSidecar s = new SimulatedSidecar(channel, id, "orders", cla -> false);
    closing.add(s::close);
    return s;
  }

  private static List<String> historyRows(Cli.Result r) {
    return r.out().lines().filter(l -> l.matches("\\d+ .*")).toList();
  }

  @Test
  void aRouteByHandSentToAReplicaThatDoesNotLead_isMadeByTheLeader_andEveryReplicaListsItsHistory() throws Exception {
    ControlPlane a = replica("cp-a");
    Eventually.until("cp-a to lead", Duration.ofSeconds(10), () -> a.migrations().leading());
    ControlPlane b = replica("cp-b");
    SimulatedSidecar onA = sidecar(a, "node-a");
    SimulatedSidecar onB = sidecar(b, "node-b");
    Eventually.until("the sidecars to get the seeded route", Duration.ofSeconds(20),
        () -> onA.endpointOf("orders").equals("10.0.0.1:5432") && onB.endpointOf("orders").equals("10.0.0.1:5432"));
    String bFirst = "127.0.0.1:" + b.adminPort() + ",127.0.0.1:" + a.adminPort();

    Cli.Result moved = Cli.run("route", "set", "orders", "10.0.0.2:5432", "--reason", "failover made in the RDS console",
        "--expect-current", "10.0.0.1:5432", "--admin", bFirst);

    assertThat(moved.exit()).as(moved.out() + moved.err()).isZero();
    assertThat(moved.err()).as("cp-b does not lead: it names the leader and the CLI tries the next")
        .contains("does not run migrations now; the leader is cp-a");
    assertThat(moved.out()).contains("10.0.0.1:5432 -> 10.0.0.2:5432")
        .contains("acknowledged by every subscribed sidecar: node-a, node-b");
    assertThat(onB.endpointOf("orders")).isEqualTo("10.0.0.2:5432");

    List<String> rows = historyRows(Cli.run("routes", "--history", "orders", "--admin", "127.0.0.1:" + b.adminPort()));
    assertThat(rows).hasSize(2);
    assertThat(rows.get(0)).contains("10.0.0.2:5432").contains("anonymous@127.0.0.1")
        .endsWith("failover made in the RDS console");
    assertThat(rows.get(1)).contains("10.0.0.1:5432").contains(" seed ");
    try (Connection c = meta.connect(); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select record->>'by', record->>'reason', at > now() - interval '1 minute'"
             + " from turnout.route_history where database = 'orders' order by version desc limit 1")) {
      assertThat(rs.next()).isTrue();
      assertThat(rs.getString(1)).isEqualTo("anonymous@127.0.0.1");
      assertThat(rs.getString(2)).isEqualTo("failover made in the RDS console");
      assertThat(rs.getBoolean(3)).isTrue();
    }

    Cli.Result stale = Cli.run("route", "drain", "orders", "--reason", "x", "--expect-current", "10.0.0.1:5432",
        "--admin", "127.0.0.1:" + a.adminPort());
    assertThat(stale.exit()).isEqualTo(2);
    assertThat(stale.err()).contains("ABORTED").contains("is routed to 10.0.0.2:5432, not to the expected 10.0.0.1:5432");
    assertThat(historyRows(Cli.run("routes", "--history", "orders", "--admin", "127.0.0.1:" + a.adminPort())))
        .as("nothing recorded").hasSize(2);
  }

  @Test
  void aStoreAtSchemaVersion2_isMigrated_itsRoutesStillLoad_andStartTheHistory() throws Exception {
    try (PostgresStore store = PostgresStore.open(settings("cp-x"))) {
      store.load();
    }
    // Back to what version 2 left: no history table, and a route row as it wrote them (no "by", no "reason").
    try (Connection c = meta.connect(); Statement s = c.createStatement()) {
      s.execute("drop table turnout.audit");
      s.execute("drop table turnout.route_history");
      s.execute("delete from turnout.schema_migrations where version >= 3");
      s.execute("update turnout.counter set version = 7");
      s.execute("insert into turnout.routes (database, version, cause, record, updated_at) values ('orders', 7,"
          + " 'route', '{\"op\":\"put\",\"version\":7,\"cause\":\"route\",\"database\":\"orders\",\"port\":16432,"
          + "\"endpoint\":\"10.0.0.4:5432\",\"services\":[]}', '2025-11-01T10:00:00Z')");
    }

    try (PostgresStore store = PostgresStore.open(settings("cp-x"))) {
      RouteRecord orders = store.load().routes().get("orders");
      assertThat(orders.route().endpoint()).contains(Endpoint.parse("10.0.0.4:5432"));
      assertThat(orders.operator()).isEmpty();
      assertThat(store.history("orders", Long.MAX_VALUE, 10)).singleElement().satisfies(r -> {
        assertThat(r.record().version()).isEqualTo(7);
        assertThat(r.at()).as("the row's last update").contains(java.time.Instant.parse("2025-11-01T10:00:00Z"));
      });

      RouteRecord.Operator sre = new RouteRecord.Operator("ops-admin", "db4 replaced");
      long v = store.append(new RouteRecord(orders.route().withEndpoint(Optional.of(Endpoint.parse("10.0.0.5:5432"))),
          0, "route", Optional.empty(), Optional.of(sre)), RouteStore.Writer.ANY_REPLICA);
      assertThat(v).isEqualTo(8);
      assertThat(store.load().routes().get("orders").operator()).contains(sre);
      var history = store.history("orders", Long.MAX_VALUE, 10);
      assertThat(history).extracting(r -> r.record().version()).containsExactly(8L, 7L);
      assertThat(history.get(0).record().operator()).contains(sre);
      assertThat(store.history("orders", 8, 10)).extracting(r -> r.record().version()).containsExactly(7L);
      assertThat(store.history("orders", Long.MAX_VALUE, 1)).hasSize(1);
    }
    try (Connection c = meta.connect(); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select max(version) from turnout.schema_migrations")) {
      rs.next();
      assertThat(rs.getInt(1)).as("every version this turnout knows").isEqualTo(4);
    }
  }
}
