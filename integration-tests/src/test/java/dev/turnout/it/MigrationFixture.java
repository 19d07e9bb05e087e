package dev.turnout.it;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.demo.CdcConsumer;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.platform.postgres.SameHostReplica;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;

/**
 * A database "app" on a real PostgreSQL 15 source with a streaming standby as the migration target, a control
 * plane on a fixed xDS port (so it can be restarted under the same sidecar), and a sidecar in front.
 */
final class MigrationFixture implements AutoCloseable {
  final Path dir;
  final PostgresServer source;
  /** Null when the migration makes the target itself: then it listens on {@link #targetPort}. */
  final PostgresServer target;
  final int targetPort;
  final Path bin;
  final boolean migrationMakesReplica;
  final int appPort;
  final int xdsPort;
  ControlPlane plane;
  private final TurnoutConfig.MigratorSettings settings;
  final Roles roles;
  private boolean restarted;
  final Sidecar sidecar;
  /** Null: plain text everywhere. */
  private final Tls tls;

  MigrationFixture(Path dir, Migrator.Failpoint failpoint) throws Exception {
    this(dir, failpoint, PostgresServer.BIN, false);
  }

  /**
   * @param bin the PostgreSQL binaries of both servers
   * @param sqlBackup make the standby with the migrator's {@link SameHostReplica} (SQL backup API) instead of
   *     pg_basebackup
   */
  MigrationFixture(Path dir, Migrator.Failpoint failpoint, Path bin, boolean sqlBackup) throws Exception {
    this(dir, failpoint, bin, sqlBackup, false);
  }

  /** @param migrationMakesReplica no target is made here: the migration creates and starts it */
  MigrationFixture(Path dir, Migrator.Failpoint failpoint, Path bin, boolean sqlBackup, boolean migrationMakesReplica,
      String... extraTargetSettings) throws Exception {
    this(dir, failpoint, bin, sqlBackup, migrationMakesReplica, TurnoutConfig.MigratorSettings.DEFAULT,
        extraTargetSettings);
  }

  /** @param settings the control plane's migrator section (AWS settings, say) */
  MigrationFixture(Path dir, Migrator.Failpoint failpoint, Path bin, boolean sqlBackup, boolean migrationMakesReplica,
      TurnoutConfig.MigratorSettings settings, String... extraTargetSettings) throws Exception {
    this(dir, failpoint, new Roles("postgres", "postgres", java.util.List.of()), bin, sqlBackup, migrationMakesReplica,
        settings, null, extraTargetSettings);
  }

  /**
   * Mutual TLS for the control plane (xDS, admin API, the HTTPS console) and the sidecar's certificate.
   *
   * @param server the control plane's {@code server.tls}
   * @param sidecar the sidecar's certificate (CN "app", its service), key and the CA
   */
  record Tls(TurnoutConfig.Tls server, SidecarConfig.Tls sidecar) {}

  /** The default fixture with mutual TLS everywhere. */
  static MigrationFixture withTls(Path dir, Tls tls) throws Exception {
    return new MigrationFixture(dir, Migrator.Failpoint.NONE, new Roles("postgres", "postgres", java.util.List.of()),
        PostgresServer.BIN, false, false, TurnoutConfig.MigratorSettings.DEFAULT, tls);
  }

  /**
   * Who is who on the servers, and settings both of them get.
   *
   * @param migrator the role the migrator connects as; made here (superuser, replication) unless it is postgres
   * @param standby the role the standby streams as (made with the SQL backup API when not postgres)
   */
  record Roles(String migrator, String standby, java.util.List<String> serverSettings) {}

  /**
   * A fixture whose migrator connects as its own role rather than as the bootstrap superuser, so a fence can be
   * tried on postgres itself; the standby is made with the SQL backup API, streaming as {@code roles.standby()}.
   */
  static MigrationFixture withRoles(Path dir, Migrator.Failpoint failpoint, Path bin, Roles roles) throws Exception {
    return new MigrationFixture(dir, failpoint, roles, bin, true, false,
        new TurnoutConfig.MigratorSettings(roles.migrator(), Optional.empty()), null);
  }

  private MigrationFixture(Path dir, Migrator.Failpoint failpoint, Roles roles, Path bin, boolean sqlBackup,
      boolean migrationMakesReplica, TurnoutConfig.MigratorSettings settings, Tls tls, String... extraTargetSettings)
      throws Exception {
    this.dir = dir;
    this.tls = tls;
    this.settings = settings;
    this.bin = bin;
    this.roles = roles;
    this.migrationMakesReplica = migrationMakesReplica;
    java.util.List<String> serverSettings = new java.util.ArrayList<>(java.util.List.of("wal_level=logical",
        "max_wal_senders=10", "max_replication_slots=10"));
    serverSettings.addAll(roles.serverSettings());
    String[] both = serverSettings.toArray(String[]::new);
    source = PostgresServer.start(bin, dir.resolve("source"), both);
    source.createApplication();
    try (Connection c = source.connect(); Statement s = c.createStatement()) {
      for (String role : new java.util.LinkedHashSet<>(java.util.List.of(roles.migrator(), roles.standby()))) {
        if (!role.equals("postgres")) {
          s.execute("create role " + role + (role.equals(roles.migrator()) ? " superuser" : "") + " login replication");
        }
      }
    }
    if (migrationMakesReplica) {
      target = null;
    } else if (sqlBackup) {
      Path data = dir.resolve("target").resolve("data");
      Files.createDirectories(data.getParent());
      int port = PostgresServer.freePort();
      try (Connection c = source.connect()) {
        SameHostReplica.create(c, new SameHostReplica.Plan(source.dataDir(), data,
            new ServerAddress("127.0.0.1", source.port()), port, "turnout_standby", roles.standby()));
      }
      // In the configuration file, not on the command line, so the migrator can change them (ALTER SYSTEM).
      StringBuilder conf = new StringBuilder();
      for (String setting : extraTargetSettings) {
        int eq = setting.indexOf('=');
        conf.append(setting, 0, eq).append(" = '").append(setting.substring(eq + 1)).append("'\n");
      }
      Files.writeString(data.resolve("postgresql.auto.conf"), conf, java.nio.file.StandardOpenOption.APPEND);
      target = PostgresServer.open(bin, data, port, both);
    } else {
      target = PostgresServer.startStandby(dir.resolve("target"), source, "turnout_standby", both);
    }
    targetPort = target == null ? PostgresServer.freePort() : target.port();
    appPort = PostgresServer.freePort();
    xdsPort = PostgresServer.freePort();
    startPlane(failpoint);
    SidecarConfig sidecarConfig = SidecarConfig.of("127.0.0.1", xdsPort, "app-1", "app")
        .withHoldTimeout(Duration.ofSeconds(30)).withStaleGrace(Duration.ofMillis(500))
        // Its counters reach the control plane within a bake's first read.
        .withStatsFlushInterval(Duration.ofMillis(500));
    sidecar = Sidecar.start(tls == null ? sidecarConfig : sidecarConfig.withTls(tls.sidecar()));
    SQLException last = null;
    for (int i = 0; i < 600; i++) {
      try (Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(appPort))) {
        return;
      } catch (SQLException e) {
        last = e;
        Thread.sleep(50);
      }
    }
    throw new AssertionError("sidecar never served on port " + appPort + " in 30 s: " + last.getMessage(), last);
  }

  /** A connection to {@code server} as the migrator's role (the one role the fence leaves able to log in). */
  Connection asMigrator(PostgresServer server) throws SQLException {
    return DriverManager.getConnection(server.jdbcUrl().replace("user=postgres", "user=" + roles.migrator()));
  }

  void startPlane(Migrator.Failpoint failpoint) throws Exception {
    plane = ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", xdsPort, 0, 0,
        Optional.ofNullable(tls).map(Tls::server)),
        dir.resolve("store"), Duration.ofSeconds(10), ImmutableList.of(new DatabaseRoute("app", appPort,
            Optional.of(new Endpoint("127.0.0.1", source.port())), Set.of())), settings)
            // A restarted control plane must give the sidecar time to come back before calling a route done.
            .withReconnectGrace(restarted ? java.time.Duration.ofSeconds(5) : java.time.Duration.ZERO),
        RoutingService.Resolver.SYSTEM, failpoint);
    restarted = true;
  }

  /** Stops the control plane as a crash would, as far as the store can tell: nothing more is recorded. */
  void crashPlane() throws Exception {
    plane.close();
    plane = null;
  }

  Migrator migrator() {
    return plane.migrator();
  }

  Migration.Spec spec(Duration window, Duration phaseDeadline) {
    return new Migration.Spec("app", new ServerAddress("127.0.0.1", source.port()),
        new ServerAddress("127.0.0.1", targetPort),
        new Migration.Options(window, 16L * 1024 * 1024, phaseDeadline, false,
            migrationMakesReplica ? java.util.Optional.of(new Migration.Replica(source.dataDir(), replicaDataDir(), bin))
                : java.util.Optional.empty()));
  }

  Path replicaDataDir() {
    return dir.resolve("replica").resolve("data");
  }

  Migration awaitPhase(String id, Predicate<Phase> done, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    Migration m = plane.migrator().get(id).orElseThrow();
    while (!done.test(m.phase())) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("migration stuck in " + m.phase() + "; history:\n" + history(m));
      }
      Thread.sleep(50);
      m = plane.migrator().get(id).orElseThrow();
    }
    return m;
  }

  static String history(Migration m) {
    StringBuilder b = new StringBuilder();
    m.history().forEach(e -> b.append("  ").append(e.phase()).append(": ").append(e.note()).append('\n'));
    m.progress().error().ifPresent(e -> b.append("  error: ").append(e).append('\n'));
    return b.toString();
  }

  static Set<Long> seqs(PostgresServer server) throws SQLException {
    try (Connection c = server.connect()) {
      return dev.turnout.controlplane.demo.Writer.seqsOn(c);
    }
  }

  /**
   * The values of {@code expected} that {@code actual} lacks, in order: a containsAll check that names what is
   * missing. AssertJ's own {@code containsAll} scans the actual collection once per expected value, which at
   * tens of thousands of commits took minutes.
   */
  static java.util.SortedSet<Long> missing(java.util.Collection<Long> expected, java.util.Collection<Long> actual) {
    Set<Long> present = actual instanceof Set<Long> set ? set : new HashSet<>(actual);
    java.util.SortedSet<Long> missing = new java.util.TreeSet<>();
    for (Long value : expected) {
      if (!present.contains(value)) {
        missing.add(value);
      }
    }
    return missing;
  }

  /**
   * Waits up to 30 s for the consumer to have seen every acknowledged commit, stops it, and asserts each was
   * seen exactly once: no gap, and a redelivery at the same LSN counts once. Returns how many distinct
   * commits it saw.
   */
  static int assertEveryCommitSeenOnce(CdcConsumer consumer, Set<Long> acknowledged) throws InterruptedException {
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
    java.util.Map<Long, Set<Long>> lsnsBySeq = new java.util.HashMap<>();
    while (true) {
      lsnsBySeq.clear();
      consumer.changes().forEach(ch -> lsnsBySeq.computeIfAbsent(ch.seq(), k -> new HashSet<>()).add(ch.lsn()));
      if (lsnsBySeq.keySet().containsAll(acknowledged) || System.nanoTime() > deadline) {
        break;
      }
      Thread.sleep(100);
    }
    consumer.close();
    org.assertj.core.api.Assertions.assertThat(missing(acknowledged, lsnsBySeq.keySet()))
        .as("no gap: every acknowledged commit reached the consumer").isEmpty();
    org.assertj.core.api.Assertions.assertThat(lsnsBySeq.values())
        .as("exactly once (a redelivery at the same LSN is deduplicated)")
        .allSatisfy(lsns -> org.assertj.core.api.Assertions.assertThat(lsns).hasSize(1));
    return lsnsBySeq.size();
  }

  /** The port of the server a connection as {@code user} on {@code port} reaches. */
  static int serverPortOf(int port, String user) throws SQLException {
    try (Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(port).replace("user=postgres", "user=" + user));
         Statement s = c.createStatement(); ResultSet rs = s.executeQuery("select current_setting('port')")) {
      rs.next();
      return Integer.parseInt(rs.getString(1));
    }
  }

  @Override
  public void close() throws Exception {
    sidecar.close();
    if (plane != null) {
      plane.close();
    }
    if (target != null) {
      target.close();
    } else if (java.nio.file.Files.exists(replicaDataDir().resolve("postmaster.pid"))) {
      PostgresServer.stopWithPgCtl(bin, replicaDataDir());
    }
    source.close();
  }
}
