package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.ConfigException;
import dev.turnout.controlplane.config.ConfigLoader;
import dev.turnout.controlplane.store.PostgresStore;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.controlplane.store.SharedRoutes;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationStore;
import dev.turnout.migrator.ServerAddress;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Control planes in one JVM sharing a real PostgreSQL store: route changes made on one reach sidecars on the
 * other and wait for their ACKs; one leader, whose epoch fences a replica that lost the leadership.
 */
class SharedStoreTest {
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

  @Test
  void aRouteChangeOnOneReplica_reachesSidecarsOnTheOther_andCompletesOnlyWithTheirAcks() throws Exception {
    ControlPlane a = store.replica("cp-a");
    ControlPlane b = store.replica("cp-b");
    SimulatedSidecar onA = store.sidecar(a, "node-a");
    SimulatedSidecar onB = store.sidecar(b, "node-b");
    SharedStoreFixture.awaitSeededRoute(onA, onB);

    var result = a.routing().route("orders", Endpoint.parse("10.0.0.2:5432")).get(30, TimeUnit.SECONDS);

    assertThat(result.ack().ackedBy()).as("the change waited for the sidecar on the other replica too")
        .containsExactlyInAnyOrder("node-a", "node-b");
    assertThat(onB.endpointOf("orders")).isEqualTo("10.0.0.2:5432");
    assertThat(b.routing().table().get("orders").orElseThrow().endpoint()).contains(Endpoint.parse("10.0.0.2:5432"));
    assertThat(b.routing().version()).as("the version names the same table on both").isEqualTo(a.routing().version());

    // A third replica starting later serves what the store holds, not its configuration's endpoint.
    ControlPlane c = store.replica("cp-c");
    assertThat(c.routing().table().get("orders").orElseThrow().endpoint()).contains(Endpoint.parse("10.0.0.2:5432"));
  }

  @Test
  void aSidecarOnAnotherReplicaThatNacks_failsTheChange_namingIt() throws Exception {
    ControlPlane a = store.replica("cp-a");
    ControlPlane b = store.replica("cp-b");
    store.sidecar(a, "node-a");
    SimulatedSidecar picky = store.sidecar(b, "node-picky", cla -> cla.toString().contains("10.0.0.9"));
    SharedStoreFixture.awaitSeededRoute(picky);

    assertThatThrownBy(() -> a.routing().route("orders", Endpoint.parse("10.0.0.9:5432")).get(30, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .hasMessageContaining("cp-b").hasMessageContaining("node-picky")
        .hasMessageContaining("simulated sidecar refuses the assignment of orders");
  }

  @Test
  void oneLeaderRunsMigrations_andAReplicaThatLostTheLeadership_cannotWriteAStepOrAMigrationRoute()
      throws Exception {
    ControlPlane a = store.replica("cp-a");
    Eventually.until("cp-a to lead", Duration.ofSeconds(10), () -> a.migrations().leading());
    ControlPlane b = store.replica("cp-b");
    Thread.sleep(1500);
    assertThat(b.migrations().leading()).as("one leader at a time").isFalse();
    assertThatThrownBy(() -> b.migrations().start(new Migration.Spec("orders", new ServerAddress("10.0.0.1", 5432),
        new ServerAddress("10.0.0.2", 5432), Migration.Options.defaults())))
        .hasMessageContaining("does not run migrations now").hasMessageContaining("cp-a");

    // A store handle that led at an earlier epoch, as a paused leader would hold: its writes change nothing.
    try (PostgresStore stale = store.open("cp-stale")) {
      long epochBefore = leaderEpoch();
      store.stop(a); // cp-b takes over
      Eventually.until("cp-b to lead", Duration.ofSeconds(10), () -> b.migrations().leading());
      assertThat(leaderEpoch()).isGreaterThan(epochBefore);
      setEpoch(stale, epochBefore);

      Migration m = Migration.plan("stale1", new Migration.Spec("orders", new ServerAddress("10.0.0.1", 5432),
          new ServerAddress("10.0.0.2", 5432), Migration.Options.defaults()), Instant.now());
      assertThatThrownBy(() -> stale.migrations().save(m)).isInstanceOf(MigrationStore.StaleWriterException.class)
          .hasMessageContaining("not the migration leader").hasMessageContaining("cp-b");
      assertThatThrownBy(stale.migrations()::confirmWriter).isInstanceOf(MigrationStore.StaleWriterException.class);
      RouteStore.State before = stale.routes().load();
      assertThatThrownBy(() -> stale.routes().append(new dev.turnout.controlplane.store.RouteRecord(
          new DatabaseRoute("orders", 16432, Optional.empty(), Set.of()), 0, "drain"), RouteStore.Writer.LEADER))
          .hasMessageContaining("not the migration leader");
      assertThat(stale.routes().load()).as("nothing changed").isEqualTo(before);
      assertThat(stale.migrations().loadAll()).noneMatch(x -> x.id().equals("stale1"));
    }
  }

  @Test
  void whileTheStoreIsDown_replicasKeepServing_refuseChangesSayingWhy_andRecoverWhenItReturns() throws Exception {
    ControlPlane a = store.replica("cp-a");
    ControlPlane b = store.replica("cp-b");
    SimulatedSidecar onA = store.sidecar(a, "node-a");
    store.sidecar(b, "node-b");
    a.routing().route("orders", Endpoint.parse("10.0.0.2:5432")).get(30, TimeUnit.SECONDS);

    store.stopStore();
    SimulatedSidecar late = store.sidecar(b, "node-late");
    Eventually.until("a sidecar connecting during the outage to get the last route", Duration.ofSeconds(20),
        () -> late.endpointOf("orders").equals("10.0.0.2:5432"));
    assertThatThrownBy(() -> a.routing().route("orders", Endpoint.parse("10.0.0.3:5432")))
        .hasMessageContaining("cannot route database 'orders'").hasMessageContaining("Connection to 127.0.0.1")
        .hasMessageContaining("nothing was changed");
    assertThat(onA.endpointOf("orders")).isEqualTo("10.0.0.2:5432");
    Eventually.until("nobody to lead without the store", Duration.ofSeconds(20),
        () -> !a.migrations().leading() && !b.migrations().leading());

    store.restartStore();
    Eventually.until("a replica to lead again", Duration.ofSeconds(20),
        () -> a.migrations().leading() || b.migrations().leading());
    var result = b.routing().route("orders", Endpoint.parse("10.0.0.3:5432")).get(30, TimeUnit.SECONDS);
    assertThat(result.ack().ackedBy()).containsExactlyInAnyOrder("node-a", "node-b", "node-late");
    assertThat(onA.endpointOf("orders")).isEqualTo("10.0.0.3:5432");
  }

  @Test
  void aReplicaGoneForAnHour_isForgottenWithItsReports_whileOneGoneLessLongIsStillListed() throws Exception {
    ControlPlane a = store.replica("cp-a");
    Eventually.until("cp-a to lead", Duration.ofSeconds(10), () -> a.migrations().leading());
    ControlPlane b = store.replica("cp-b");
    SimulatedSidecar onB = store.sidecar(b, "node-b");
    SharedStoreFixture.awaitSeededRoute(onB);
    a.routing().route("orders", Endpoint.parse("10.0.0.2:5432")).get(30, TimeUnit.SECONDS);
    Eventually.until("cp-b to publish its sidecar", Duration.ofSeconds(10),
        () -> storeSays("select string_agg(node, ',') from turnout.nodes where replica = 'cp-b'").equals("node-b"));
    store.stop(b);
    SharedRoutes shared = store.onlooker().replicas(); // what any replica reads
    Eventually.until("cp-b to be listed as gone", Duration.ofSeconds(10),
        () -> reports(shared).stream().anyMatch(r -> r.replica().equals("cp-b") && !r.live()));
    Thread.sleep(1_000); // five of the leader's ticks (lease 1 s)
    assertThat(shared.reports()).as("gone for less than an hour: still listed, with what its sidecar ACKed")
        .anySatisfy(r -> {
          assertThat(r.replica()).isEqualTo("cp-b");
          assertThat(r.ackedBy()).containsExactly("node-b");
        });

    try (Connection c = store.connect(); Statement s = c.createStatement()) {
      s.execute("update turnout.replicas set heartbeat_at = now() - interval '61 minutes' where id = 'cp-b'");
    }
    Eventually.until("the leader to forget cp-b", Duration.ofSeconds(10),
        () -> reports(shared).stream().noneMatch(r -> r.replica().equals("cp-b")));
    try (Connection c = store.connect(); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select (select count(*) from turnout.acks where replica = 'cp-b'),"
             + " (select string_agg(id, ',') from turnout.replicas),"
             + " (select string_agg(replica || '/' || node, ',') from turnout.nodes)")) {
      rs.next();
      assertThat(rs.getLong(1)).as("cp-b's reports").isZero();
      assertThat(rs.getString(2)).as("the replicas still listed").isEqualTo("cp-a");
      assertThat(rs.getString(3)).as("the sidecars still listed (cp-b's went with it)").isNull();
    }
    assertThat(shared.reports()).as("the live replica's report stays").anyMatch(r -> r.replica().equals("cp-a"));
  }

  @Test
  void turnoutNodes_onAnyReplica_listsEveryReplicasSidecars_sayingWhichReplicaServesEach() throws Exception {
    ControlPlane a = store.replica("cp-a");
    ControlPlane b = store.replica("cp-b");
    SimulatedSidecar onA = store.sidecar(a, "node-a");
    SimulatedSidecar onB = store.sidecar(b, "node-b");
    SharedStoreFixture.awaitSeededRoute(onA, onB);
    String admin = "127.0.0.1:" + a.adminPort();
    Eventually.until("cp-a to list the sidecar on cp-b and what it ACKed", Duration.ofSeconds(10), () -> {
      String nodeB = line(Cli.run("nodes", "--admin", admin).out(), "node-b");
      return nodeB.contains("on cp-b") && nodeB.contains("EDS");
    });

    Cli.Result listed = Cli.run("nodes", "--admin", admin);
    assertThat(listed.exit()).as(listed.err()).isZero();
    assertThat(line(listed.out(), "node-a")).contains("orders", "connected", "on cp-a", "EDS");
    assertThat(line(listed.out(), "node-b")).contains("orders", "connected", "on cp-b", "EDS");

    store.stop(b); // its sidecar is no longer connected to any replica
    Eventually.until("cp-a to list the sidecar on cp-b as gone", Duration.ofSeconds(10),
        () -> line(Cli.run("nodes", "--admin", admin).out(), "node-b").contains("gone"));
    assertThat(line(Cli.run("nodes", "--admin", admin).out(), "node-a")).contains("connected", "on cp-a");
  }

  @Test
  void aStoreOfAnEarlierSchema_isMigratedAtOpen_andOneNewerThanThisTurnoutIsRefused() throws Exception {
    store.open("cp-a").close();
    Migration old = Migration.plan("old1", new Migration.Spec("orders", new ServerAddress("10.0.0.1", 5432),
        new ServerAddress("10.0.0.2", 5432), Migration.Options.defaults()), Instant.parse("2026-11-27T10:00:00Z"));
    try (Connection c = store.connect(); Statement s = c.createStatement()) { // as version 1 left it
      s.execute("drop table turnout.audit");
      s.execute("drop table turnout.nodes");
      s.execute("drop table turnout.route_history");
      s.execute("alter table turnout.migrations drop column revision");
      s.execute("delete from turnout.schema_migrations where version >= 2");
      new dev.turnout.controlplane.store.FileMigrationStore(dir.resolve("legacy")).save(old);
      String body = java.nio.file.Files.readAllLines(dir.resolve("legacy/migrations/old1.log")).get(0)
          .substring(9) // behind its checksum
          .replaceAll(",\\s*\"revision\"\\s*:\\s*1", "");
      assertThat(body).doesNotContain("revision");
      s.execute("insert into turnout.migrations (id, database, phase, epoch, body) values ('old1', 'orders',"
          + " 'PLANNED', 1, '" + body.replace("'", "''") + "')");
      s.execute("update turnout.leader set epoch = 7, holder = 'cp-a'");
    }
    try (PostgresStore opened = store.open("cp-a")) {
      Migration loaded = opened.migrations().loadAll().get(0);
      assertThat(loaded).as("a migration saved before revisions were kept is at revision 0").isEqualTo(old);
      setEpoch(opened, 7);
      Migration saved = opened.migrations().save(loaded.to(dev.turnout.migrator.Phase.PREFLIGHT, Instant.now(), ""));
      assertThat(saved.revision()).isEqualTo(1);
      assertThatThrownBy(() -> opened.migrations().save(loaded.to(dev.turnout.migrator.Phase.ROLLING_BACK,
          Instant.now(), "stale")))
          .isInstanceOf(dev.turnout.migrator.RevisionConflictException.class)
          .hasMessageContaining("migration old1 of database 'orders' changed meanwhile: this change to ROLLING_BACK"
              + " was read at revision 0, the store holds revision 1 (PREFLIGHT)");
      assertThatThrownBy(() -> opened.migrations().save(Migration.plan("old1", loaded.spec(), Instant.now())))
          .as("a second first save").isInstanceOf(dev.turnout.migrator.RevisionConflictException.class);
      assertThat(opened.migrations().loadAll()).containsExactly(saved);

      opened.replicas().publishNodes(List.of(new SharedRoutes.NodeRow("", true, "node-x", "orders", true,
          ImmutableList.of(new SharedRoutes.TypeRow("EDS", 3, 2, "port in use", 3)))));
      assertThat(opened.replicas().nodes()).singleElement().satisfies(n -> {
        assertThat(n.replica()).isEqualTo("cp-a");
        assertThat(n.node()).isEqualTo("node-x");
        assertThat(n.types()).containsExactly(new SharedRoutes.TypeRow("EDS", 3, 2, "port in use", 3));
      });
    }

    try (Connection c = store.connect(); Statement s = c.createStatement()) {
      s.execute("insert into turnout.schema_migrations (version) values (99)");
    }
    assertThatThrownBy(() -> store.open("cp-a"))
        .hasMessageContaining("schema is at version 99, newer than this turnout knows");
  }

  /** The one text value {@code query} returns from the metadata database ("" for null). */
  private String storeSays(String query) {
    try (Connection c = store.connect(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(query)) {
      rs.next();
      return rs.getString(1) == null ? "" : rs.getString(1);
    } catch (java.sql.SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The line of {@code out} that starts with {@code node}, or an empty string. */
  private static String line(String out, String node) {
    return out.lines().filter(l -> l.startsWith(node + " ")).findFirst().orElse("");
  }

  private static List<SharedRoutes.Report> reports(SharedRoutes shared) {
    try {
      return shared.reports();
    } catch (dev.turnout.controlplane.store.StoreException e) {
      throw new IllegalStateException(e);
    }
  }

  private long leaderEpoch() throws Exception {
    try (Connection c = store.connect(); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select epoch from turnout.leader")) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private static void setEpoch(PostgresStore opened, long epoch) throws Exception {
    var m = PostgresStore.class.getDeclaredMethod("leadingAt", long.class);
    m.setAccessible(true);
    m.invoke(opened, epoch);
  }

  @Test
  void badStoreSettings_areRefusedWithWhatIsWrong() {
    assertThatThrownBy(() -> ConfigLoader.parse("""
        store:
          postgres:
            url: postgres://nope
            password_env: 1BAD
            replica_id: "has space"
            lease: 100ms
        databases: []
        """, "turnout.yaml", dir)).isInstanceOf(ConfigException.class)
        .hasMessageContaining("store.postgres.url: 'postgres://nope' is not a jdbc:postgresql:// URL")
        .hasMessageContaining("store.postgres.password_env")
        .hasMessageContaining("store.postgres.replica_id")
        .hasMessageContaining("store.postgres.lease: at least 1s");
  }
}
