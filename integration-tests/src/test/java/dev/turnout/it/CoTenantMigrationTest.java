package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.demo.Writer;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Migrator;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One PostgreSQL server holding two routed databases, {@code orders} and {@code billing} (as one RDS instance often
 * does), moved as an operator would with the CLI: the migration moves the server, so both go together, under
 * write load on each through the sidecar, and neither is left routed to the fenced source.
 */
class CoTenantMigrationTest {
  static final List<String> ROUTED = List.of("orders", "billing");

  @TempDir Path dir;
  PostgresServer source;
  PostgresServer target;
  ControlPlane plane;
  Sidecar sidecar;
  int ordersPort;
  int billingPort;

  @AfterEach
  void tearDown() throws Exception {
    for (AutoCloseable c : new AutoCloseable[] {sidecar, plane, target, source}) {
      if (c != null) {
        c.close();
      }
    }
  }

  private Cli.Result turnout(String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.add("--admin");
    all.add("127.0.0.1:" + plane.adminPort());
    return Cli.run(all.toArray(String[]::new));
  }

  private Connection connect(PostgresServer server, String database) throws SQLException {
    return DriverManager.getConnection(server.jdbcUrl().replace("/postgres?", "/" + database + "?"));
  }

  @Test
  void ordersAndBillingOnOneServer_moveTogether_throughTheCli_andAnUnroutedThirdBlocksPreflightUntilGone()
      throws Exception {
    String[] settings = {"wal_level=logical", "max_wal_senders=10", "max_replication_slots=10"};
    source = PostgresServer.start(dir.resolve("source"), settings);
    try (Connection c = source.connect(); Statement s = c.createStatement()) {
      s.execute("create role app login");
      for (String database : List.of("orders", "billing", "reports")) {
        s.execute("create database " + database);
      }
    }
    for (String database : ROUTED) {
      try (Connection c = connect(source, database); Statement s = c.createStatement()) {
        s.execute("create table writes(id bigserial primary key, seq bigint not null, at timestamptz default now())");
        s.execute("grant all on writes, writes_id_seq to app");
      }
    }
    target = PostgresServer.startStandby(dir.resolve("target"), source, "turnout_standby", settings);
    ordersPort = PostgresServer.freePort();
    billingPort = PostgresServer.freePort();
    int xdsPort = PostgresServer.freePort();
    Optional<Endpoint> onSource = Optional.of(new Endpoint("127.0.0.1", source.port()));
    plane = ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", xdsPort, 0, 0),
            dir.resolve("store"), Duration.ofSeconds(10), ImmutableList.of(
                new DatabaseRoute("orders", ordersPort, onSource, Set.of()),
                new DatabaseRoute("billing", billingPort, onSource, Set.of())),
            TurnoutConfig.MigratorSettings.DEFAULT).withReconnectGrace(Duration.ZERO),
        RoutingService.Resolver.SYSTEM, Migrator.Failpoint.NONE);
    sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", xdsPort, "app-1", "app")
        .withHoldTimeout(Duration.ofSeconds(30)).withStaleGrace(Duration.ofMillis(500)));
    Eventually.until("the sidecar serves both databases", Duration.ofSeconds(15), () -> {
      try {
        return MigrationFixture.serverPortOf(ordersPort, "app") == source.port()
            && MigrationFixture.serverPortOf(billingPort, "app") == source.port();
      } catch (SQLException e) {
        return false;
      }
    });
    String targetAddress = "127.0.0.1:" + target.port();
    String sourceAddress = "127.0.0.1:" + source.port();

    // A database on the server that no route points to: its clients would lose their writes at the fence.
    Cli.Result blocked = turnout("migrate", "start", "orders", "--target", targetAddress, "--window", "1s");
    assertThat(blocked.exit()).as(blocked.out() + blocked.err()).isEqualTo(3);
    assertThat(blocked.err()).contains("every database on the source is routed: moving billing, orders; not counted:"
        + " postgres (maintenance); no route points to [reports]").contains("--allow-unrouted-databases");
    assertThat(MigrationFixture.serverPortOf(billingPort, "app")).as("nothing moved").isEqualTo(source.port());
    Cli.Result wouldStop = turnout("migrate", "start", "orders", "--target", targetAddress, "--dry-run");
    assertThat(wouldStop.exit()).as("a dry run that would not complete exits as the start would").isEqualTo(3);
    assertThat(wouldStop.out()).contains("no route points to [reports]").contains("ROLLED_BACK");
    assertThat(wouldStop.err()).contains("the migration would not complete");
    try (Connection c = source.connect(); Statement s = c.createStatement()) {
      s.execute("drop database reports");
    }

    Cli.Result dry = turnout("migrate", "start", "orders", "--target", targetAddress, "--dry-run");
    assertThat(dry.exit()).as(dry.err()).isZero();
    assertThat(dry.out()).contains("dry run: migration of databases 'orders', 'billing' (every database routed to "
            + sourceAddress + ") from " + sourceAddress + " to " + targetAddress + " would:")
        .contains("planned: " + sourceAddress + " -> " + targetAddress + "; moving every database routed to the source"
            + " together: orders, billing")
        .contains("drain routes 'orders', 'billing'")
        .contains("route 'orders', 'billing' to " + targetAddress + " in one version");

    Cli.Result started;
    try (Writer orders = new Writer(ordersPort, "app", "orders").start();
         Writer billing = new Writer(billingPort, "app", "billing").start()) {
      Thread.sleep(300);
      started = turnout("migrate", "start", "--server", sourceAddress, "--target", targetAddress, "--window", "1s",
          "--bake", "0", "--watch");
      Thread.sleep(300);
      orders.close();
      billing.close();
      assertThat(started.exit()).as(started.out() + started.err()).isZero();
      assertThat(started.out()).contains("migration ").contains(" of databases 'billing', 'orders'")
          .contains(": COMPLETED");
      for (Writer w : List.of(orders, billing)) {
        assertThat(w.acknowledged()).as("writes went on through the move").hasSizeGreaterThan(10);
      }
      assertThat(MigrationFixture.missing(orders.acknowledged(), seqs(target, "orders")))
          .as("no acknowledged commit to orders lost").isEmpty();
      assertThat(MigrationFixture.missing(billing.acknowledged(), seqs(target, "billing")))
          .as("no acknowledged commit to billing lost").isEmpty();
    }
    // The way back applies for every database within a moment of the promotion: PostgreSQL 15's launcher starts
    // apply workers once a wal_retrieve_retry_interval (5 s by default), which the migration makes 100 ms there.
    long completed = System.nanoTime();
    Eventually.until("every reverse subscription on the source has its apply worker", Duration.ofSeconds(2), () -> {
      try (Connection c = source.connect(); Statement s = c.createStatement();
           java.sql.ResultSet rs = s.executeQuery("select count(*), count(w.pid) from pg_subscription x"
               + " left join pg_stat_subscription w on w.subid = x.oid and w.relid is null"
               + " where x.subname like 'turnout\\_reverse\\_%'")) {
        rs.next();
        return rs.getLong(1) == 3 && rs.getLong(2) == 3; // postgres, orders, billing
      } catch (SQLException e) {
        return false;
      }
    });
    System.out.printf("every reverse apply worker running %d ms after COMPLETED%n",
        (System.nanoTime() - completed) / 1_000_000);
    String id = id(started.out());
    assertThat(MigrationFixture.serverPortOf(ordersPort, "app")).isEqualTo(target.port());
    assertThat(MigrationFixture.serverPortOf(billingPort, "app")).as("the co-tenant moved too").isEqualTo(target.port());
    assertThat(turnout("routes").out()).contains("orders (port " + ordersPort + "): " + targetAddress)
        .contains("billing (port " + billingPort + "): " + targetAddress);
    assertThat(turnout("migrate", "status", id).out()).contains("of databases 'billing', 'orders'");

    Cli.Result second = turnout("migrate", "start", "orders", "--target", sourceAddress);
    assertThat(second.exit()).isEqualTo(2);
    assertThat(second.err()).contains("ALREADY_EXISTS").contains("already has migration " + id);
  }

  private Set<Long> seqs(PostgresServer server, String database) throws SQLException {
    try (Connection c = connect(server, database)) {
      return Writer.seqsOn(c);
    }
  }

  private static String id(String out) {
    Matcher m = Pattern.compile("migration (\\w+) of databases").matcher(out);
    assertThat(m.find()).as(out).isTrue();
    return m.group(1);
  }
}
