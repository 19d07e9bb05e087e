package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.store.PostgresStore;
import dev.turnout.controlplane.store.RouteRecord;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.envoy.Endpoint;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Routes changed by hand on control-plane replicas sharing a real PostgreSQL store, and that store's history. */
class SharedStoreRouteByHandTest {
  @TempDir Path dir;
  private SharedStoreFixture store;

  @BeforeEach
  void metadataDatabase() throws Exception {
    store = new SharedStoreFixture(dir);
  }

  @AfterEach
  void tearDown() throws Exception {
    store.close();
  }

  private static List<String> historyRows(Cli.Result r) {
    return r.out().lines().filter(l -> l.matches("\\d+ .*")).toList();
  }

  @Test
  void aRouteByHandSentToAReplicaThatDoesNotLead_isMadeByTheLeader_andEveryReplicaListsItsHistory() throws Exception {
    ControlPlane a = store.replica("cp-a");
    Eventually.until("cp-a to lead", Duration.ofSeconds(10), () -> a.migrations().leading());
    ControlPlane b = store.replica("cp-b");
    SimulatedSidecar onA = store.sidecar(a, "node-a");
    SimulatedSidecar onB = store.sidecar(b, "node-b");
    SharedStoreFixture.awaitSeededRoute(onA, onB);
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
    try (Connection c = store.connect(); Statement s = c.createStatement();
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
    try (PostgresStore opened = store.open("cp-x")) {
      opened.routes().load();
    }
    // Back to what version 2 left: no history table, and a route row as it wrote them (no "by", no "reason").
    try (Connection c = store.connect(); Statement s = c.createStatement()) {
      s.execute("drop table turnout.audit");
      s.execute("drop table turnout.route_history");
      s.execute("delete from turnout.schema_migrations where version >= 3");
      s.execute("update turnout.counter set version = 7");
      s.execute("insert into turnout.routes (database, version, cause, record, updated_at) values ('orders', 7,"
          + " 'route', '{\"op\":\"put\",\"version\":7,\"cause\":\"route\",\"database\":\"orders\",\"port\":16432,"
          + "\"endpoint\":\"10.0.0.4:5432\",\"services\":[]}', '2025-11-01T10:00:00Z')");
    }

    try (PostgresStore opened = store.open("cp-x")) {
      RouteRecord orders = opened.routes().load().routes().get("orders");
      assertThat(orders.route().endpoint()).contains(Endpoint.parse("10.0.0.4:5432"));
      assertThat(orders.operator()).isEmpty();
      assertThat(opened.routes().history("orders", Long.MAX_VALUE, 10)).singleElement().satisfies(r -> {
        assertThat(r.record().version()).isEqualTo(7);
        assertThat(r.at()).as("the row's last update").contains(java.time.Instant.parse("2025-11-01T10:00:00Z"));
      });

      RouteRecord.Operator sre = new RouteRecord.Operator("ops-admin", "db4 replaced");
      long v = opened.routes().append(new RouteRecord(orders.route().withEndpoint(Optional.of(Endpoint.parse("10.0.0.5:5432"))),
          0, "route", Optional.empty(), Optional.of(sre)), RouteStore.Writer.ANY_REPLICA);
      assertThat(v).isEqualTo(8);
      assertThat(opened.routes().load().routes().get("orders").operator()).contains(sre);
      var history = opened.routes().history("orders", Long.MAX_VALUE, 10);
      assertThat(history).extracting(r -> r.record().version()).containsExactly(8L, 7L);
      assertThat(history.get(0).record().operator()).contains(sre);
      assertThat(opened.routes().history("orders", 8, 10)).extracting(r -> r.record().version()).containsExactly(7L);
      assertThat(opened.routes().history("orders", Long.MAX_VALUE, 1)).hasSize(1);
    }
    try (Connection c = store.connect(); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select max(version) from turnout.schema_migrations")) {
      rs.next();
      assertThat(rs.getInt(1)).as("every version this turnout knows").isEqualTo(7);
    }
  }
}
