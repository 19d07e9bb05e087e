package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.collect.ImmutableMap;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.store.AuditLog;
import dev.turnout.controlplane.store.PostgresStore;
import dev.turnout.envoy.Endpoint;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The admin API's audit log in a real PostgreSQL store several replicas share, and the schema version that adds it. */
class SharedStoreAuditTest {
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

  private static List<String> rows(Cli.Result r) {
    return r.out().lines().filter(l -> l.matches("\\d+ .*")).toList();
  }

  @Test
  void everyReplicasWrites_areInOneAuditLog_readFromAnyReplica_andFromOneStartedLater() throws Exception {
    ControlPlane a = store.replica("cp-a");
    Eventually.until("cp-a to lead", Duration.ofSeconds(10), () -> a.migrations().leading());
    ControlPlane b = store.replica("cp-b");

    // Sent to cp-b first: it does not lead, answers UNAVAILABLE (on record), and the CLI tries cp-a, which makes it.
    Cli.Result moved = Cli.run("route", "set", "orders", "10.0.0.2:5432", "--reason", "failover made in the RDS console",
        "--admin", "127.0.0.1:" + b.adminPort() + ",127.0.0.1:" + a.adminPort());
    assertThat(moved.exit()).as(moved.out() + moved.err()).isZero();
    Cli.Result unknown = Cli.run("migrate", "start", "ledger", "--target", "10.0.0.6:5432",
        "--admin", "127.0.0.1:" + b.adminPort());
    assertThat(unknown.exit()).as(unknown.err()).isEqualTo(2);

    Cli.Result audit = Cli.run("audit", "--admin", "127.0.0.1:" + a.adminPort());
    assertThat(audit.exit()).as(audit.err()).isZero();
    List<String> rows = rows(audit);
    assertThat(rows).as(audit.out()).hasSize(3);
    assertThat(rows.get(0)).contains(" anonymous ", " StartMigration ", " ledger ", " NOT_FOUND ",
        "target=10.0.0.6:5432 | unknown database 'ledger'");
    assertThat(rows.get(1)).contains(" SetRoute ", " orders ", " OK ", "endpoint=10.0.0.2:5432",
        "reason=\"failover made in the RDS console\"", "acknowledged=true");
    assertThat(rows.get(2)).contains(" SetRoute ", " orders ", " UNAVAILABLE ", "the leader is cp-a");
    try (Connection c = store.connect(); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select string_agg(replica || ' ' || call || ' ' || code, ', ' order by id)"
             + " from turnout.audit")) {
      rs.next();
      assertThat(rs.getString(1)).as("which replica answered each")
          .isEqualTo("cp-b SetRoute UNAVAILABLE, cp-a SetRoute OK, cp-b StartMigration NOT_FOUND");
    }

    store.stop(a);
    store.stop(b);
    ControlPlane c = store.replica("cp-c");
    Cli.Result later = Cli.run("audit", "--admin", "127.0.0.1:" + c.adminPort(), "--limit", "2");
    assertThat(rows(later)).as(later.out()).hasSize(2);
    assertThat(rows(later).get(1)).contains(" SetRoute ", " OK ");
    assertThat(later.out()).contains("older: turnout audit --before 2 --limit 2");
  }

  @Test
  void aStoreAtSchemaVersion3_gainsTheAuditLogAtOpen_keepingItsRoutes() throws Exception {
    try (PostgresStore opened = store.open("cp-x")) {
      opened.routes().load();
    }
    try (Connection c = store.connect(); Statement s = c.createStatement()) { // as version 3 left it
      s.execute("drop table turnout.audit");
      s.execute("delete from turnout.schema_migrations where version >= 4");
      s.execute("insert into turnout.routes (database, version, cause, record) values ('orders', 7, 'route',"
          + " '{\"op\":\"put\",\"version\":7,\"cause\":\"route\",\"database\":\"orders\",\"port\":16432,"
          + "\"endpoint\":\"10.0.0.4:5432\",\"services\":[]}')");
    }

    try (PostgresStore opened = store.open("cp-x")) {
      assertThat(opened.routes().load().routes().get("orders").route().endpoint()).contains(Endpoint.parse("10.0.0.4:5432"));
      AuditLog.Request finalize = new AuditLog.Request("FinalizeMigration", "orders", "3533eee6",
          ImmutableMap.of("phase", "FINALIZED", "a-field-written-second", "kept in order"));
      AuditLog.Entry first = opened.audit().append(new AuditLog.Caller("ops-admin", "10.1.0.7:51234"), finalize,
          AuditLog.Outcome.OK);
      AuditLog.Entry second = opened.audit().append(new AuditLog.Caller("anonymous", "[::1]:40000"),
          new AuditLog.Request("SetRoute", "orders", "", ImmutableMap.of("reason", "nul \\u0000 written out")),
          new AuditLog.Outcome("PERMISSION_DENIED", "identity 'x' may not call SetRoute"));
      assertThat(second.id()).isGreaterThan(first.id());
      var page = opened.audit().list(Long.MAX_VALUE, 10);
      assertThat(page).containsExactly(second, first);
      assertThat(page.get(1).request().details().keySet()).containsExactly("phase", "a-field-written-second");
      assertThat(opened.audit().list(second.id(), 10)).containsExactly(first);
    }
    try (Connection c = store.connect(); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select max(version) from turnout.schema_migrations")) {
      rs.next();
      assertThat(rs.getInt(1)).as("every version this turnout knows").isEqualTo(7);
    }
  }
}
