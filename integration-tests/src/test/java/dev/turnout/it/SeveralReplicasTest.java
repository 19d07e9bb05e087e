package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.GetMigrationRequest;
import dev.turnout.admin.v1.MigrationOptions;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.controlplane.demo.Writer;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three {@code turnout server} processes on loopback sharing a real PostgreSQL metadata database: sidecars
 * connected to different replicas all follow a migration's route changes; killing the leader mid-migration hands
 * the migration to another replica, which completes it; a leader paused with SIGSTOP that wakes after another took
 * over changes nothing.
 */
class SeveralReplicasTest {
  private static final Duration LEASE = Duration.ofSeconds(2);

  @TempDir Path dir;
  private PostgresServer meta;
  private PostgresServer source;
  private PostgresServer target;
  private final ServerProcess[] replicas = new ServerProcess[3];
  private final int[] xdsPorts = new int[3];
  private final int[] adminPorts = new int[3];
  private int appPort;
  private final List<AutoCloseable> closing = new ArrayList<>();

  @BeforeEach
  void servers() throws Exception {
    meta = PostgresServer.start(dir.resolve("meta"));
    source = PostgresServer.start(dir.resolve("source"), "wal_level=logical", "max_wal_senders=10");
    source.createApplication();
    target = PostgresServer.startStandby(dir.resolve("target"), source, "turnout_standby", "wal_level=logical",
        "max_wal_senders=10");
    appPort = PostgresServer.freePort();
    for (int i = 0; i < 3; i++) {
      xdsPorts[i] = PostgresServer.freePort();
      adminPorts[i] = PostgresServer.freePort();
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    for (int i = closing.size() - 1; i >= 0; i--) {
      closing.get(i).close();
    }
    for (ServerProcess r : replicas) {
      if (r != null) {
        r.close();
      }
    }
    target.close();
    source.close();
    meta.close();
  }

  /** Replica {@code i} (cp-1, cp-2, cp-3), same databases, its own ports, the shared store. */
  private ServerProcess startReplica(int i, String failpoint) throws Exception {
    Path config = dir.resolve("cp-" + (i + 1) + ".yaml");
    Files.writeString(config, """
        server:
          bind_address: 127.0.0.1
          xds_port: %d
          admin_port: %d
          http_port: 0
        store:
          postgres:
            url: jdbc:postgresql://127.0.0.1:%d/postgres
            user: postgres
            replica_id: cp-%d
            lease: %ds
        xds:
          ack_timeout: 10s
          reconnect_grace: 1s
        databases:
          - name: app
            port: %d
            endpoint: 127.0.0.1:%d
        """.formatted(xdsPorts[i], adminPorts[i], meta.port(), i + 1, LEASE.toSeconds(), appPort, source.port()));
    replicas[i] = ServerProcess.start(config, failpoint);
    return replicas[i];
  }

  private AdminGrpc.AdminBlockingStub admin(int i) {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", adminPorts[i]).usePlaintext().build();
    closing.add(channel::shutdownNow);
    return AdminGrpc.newBlockingStub(channel);
  }

  private SimulatedSidecar simulated(int replica, String node) {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", xdsPorts[replica]).usePlaintext().build();
    closing.add(channel::shutdownNow);
    SimulatedSidecar s = new SimulatedSidecar(channel, node, "app");
    closing.add(s::close);
    return s;
  }

  /** The application's sidecar, on replica {@code replica}; returns once connections through it work. */
  private void realSidecar(int replica) throws Exception {
    Sidecar sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", xdsPorts[replica], "app-1", "app")
        .withHoldTimeout(Duration.ofSeconds(60)).withStaleGrace(Duration.ofMillis(500)));
    closing.add(sidecar::close);
    Eventually.until("the sidecar to serve", Duration.ofSeconds(60), () -> {
      try (Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(appPort))) {
        return true;
      } catch (SQLException e) {
        return false;
      }
    });
  }

  private static StartMigrationRequest migrate(int targetPort, long validationSeconds) {
    return StartMigrationRequest.newBuilder().setDatabase("app").setTarget("127.0.0.1:" + targetPort)
        .setOptions(MigrationOptions.newBuilder().setBake(com.google.protobuf.Duration.getDefaultInstance())
            .setValidationWindow(com.google.protobuf.Duration.newBuilder().setSeconds(validationSeconds))
            .setPhaseDeadline(com.google.protobuf.Duration.newBuilder().setSeconds(60))).build();
  }

  private static String phaseOn(AdminGrpc.AdminBlockingStub admin, String id) {
    try {
      return admin.getMigration(GetMigrationRequest.newBuilder().setId(id).build()).getPhase();
    } catch (StatusRuntimeException e) {
      return "unknown: " + e.getStatus();
    }
  }

  private boolean routedTo(PostgresServer server) {
    try {
      return MigrationFixture.serverPortOf(appPort, "app") == server.port();
    } catch (SQLException e) {
      return false;
    }
  }

  private String store(String sql) throws SQLException {
    try (Connection c = meta.connect(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
      StringBuilder out = new StringBuilder();
      while (rs.next()) {
        for (int col = 1; col <= rs.getMetaData().getColumnCount(); col++) {
          out.append(rs.getString(col)).append(col == rs.getMetaData().getColumnCount() ? "\n" : " | ");
        }
      }
      return out.toString();
    }
  }

  @Test
  void sidecarsOnEveryReplicaFollowTheCutover_andKillingTheLeaderMidMigration_handsItOver() throws Exception {
    ServerProcess leader = startReplica(0, "CATCHING_UP:AFTER_SAVE");
    startReplica(1, null);
    startReplica(2, null);
    SimulatedSidecar onLeader = simulated(0, "app-on-cp1");
    SimulatedSidecar onSecond = simulated(1, "app-on-cp2");
    realSidecar(2);
    String sourceAt = "127.0.0.1:" + source.port();
    Eventually.until("every sidecar to get the route", Duration.ofSeconds(30),
        () -> onLeader.endpointOf("app").equals(sourceAt) && onSecond.endpointOf("app").equals(sourceAt));

    assertThatThrownBy(() -> admin(1).startMigration(migrate(target.port(), 1)))
        .as("a replica that does not lead refuses, naming the leader")
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE))
        .hasMessageContaining("cp-1").hasMessageContaining(Integer.toString(adminPorts[0]));

    try (Writer writer = new Writer(appPort, "app").start()) {
      Thread.sleep(300);
      // The operator lists the replicas; the CLI skips the one that does not lead.
      Cli.Result started = Cli.run("migrate", "start", "app", "--target", "127.0.0.1:" + target.port(),
          "--window", "1s", "--deadline", "60s", "--bake", "0",
          "--admin", "127.0.0.1:" + adminPorts[1] + ",127.0.0.1:" + adminPorts[0]);
      assertThat(started.exit()).as(started.err()).isZero();
      assertThat(started.err()).contains("does not run migrations now").contains("trying 127.0.0.1:" + adminPorts[0]);
      java.util.regex.Matcher idOf = java.util.regex.Pattern.compile("migration (\\w+) of database 'app' started")
          .matcher(started.out());
      assertThat(idOf.find()).as(started.out()).isTrue();
      String id = idOf.group(1);
      Eventually.until("the leader to fence the source and stop", Duration.ofSeconds(90),
          () -> leader.said("test failpoint CATCHING_UP"), leader::output);
      assertThat(onSecond.endpointOf("app")).as("the drain reached the sidecar on another replica").isEmpty();

      long killed = System.nanoTime();
      leader.killNine();
      Eventually.until("another replica to lead", Duration.ofSeconds(30),
          () -> replicas[1].said("is the migration leader at epoch") || replicas[2].said("is the migration leader at epoch"),
          () -> replicas[1].output() + replicas[2].output());
      double handover = (System.nanoTime() - killed) / 1e9;
      AdminGrpc.AdminBlockingStub survivor = admin(1);
      Eventually.until("the migration to complete on the new leader", Duration.ofSeconds(90),
          () -> phaseOn(survivor, id).equals("COMPLETED"), () -> replicas[1].output() + replicas[2].output());
      Thread.sleep(500);
      writer.close();

      String targetAt = "127.0.0.1:" + target.port();
      assertThat(onSecond.endpointOf("app")).as("the sidecar on cp-2 routes to the target").isEqualTo(targetAt);
      Eventually.until("the application's sidecar on cp-3 to route to the target", Duration.ofSeconds(30),
          () -> routedTo(target));
      assertThat(MigrationFixture.missing(writer.acknowledged(), MigrationFixture.seqs(target)))
          .as("no acknowledged commit lost").isEmpty();
      assertThat(writer.acknowledged()).isNotEmpty();
      assertThat(KillNineTest.appCanWrite(source)).as("the source stays fenced").isFalse();
      assertThat(store("select epoch from turnout.migrations")).as("written by the new leader's epoch").isEqualTo("2\n");
      Cli.Result routes = Cli.run("routes", "--admin", "127.0.0.1:" + adminPorts[1]);
      assertThat(routes.out()).as("an SRE on any replica sees every replica's sidecars")
          .contains("nodes above: those on replica cp-2")
          .containsPattern("cp-2 +live +app at version \\d+: acked by app-on-cp2")
          .containsPattern("cp-3 +live +app at version \\d+: acked by app-1")
          .containsPattern("cp-1 +gone");
      System.out.printf("leader killed in CATCHING_UP: another replica led after %.1f s; COMPLETED, %d commits,"
          + " longest write gap %.0f ms%n", handover, writer.acknowledged().size(), writer.longestGapMillis());
    }
  }

  @Test
  void aLeaderPausedMidMigration_isReplaced_andWhenItWakesChangesNothing() throws Exception {
    ServerProcess old = startReplica(0, null);
    startReplica(1, null);
    startReplica(2, null);
    SimulatedSidecar onSecond = simulated(1, "app-on-cp2");
    realSidecar(2);
    try (Writer writer = new Writer(appPort, "app").start()) {
      Thread.sleep(300);
      String id = admin(0).startMigration(migrate(target.port(), 6)).getId();
      AdminGrpc.AdminBlockingStub follower = admin(1);
      Eventually.until("the migration to replicate", Duration.ofSeconds(60),
          () -> Set.of("REPLICATING", "VALIDATED").contains(phaseOn(follower, id)), old::output);
      old.signal("STOP");
      long paused = System.nanoTime();
      Eventually.until("another replica to lead", Duration.ofSeconds(30),
          () -> replicas[1].said("is the migration leader at epoch") || replicas[2].said("is the migration leader at epoch"),
          () -> replicas[1].output() + replicas[2].output());
      double takeover = (System.nanoTime() - paused) / 1e9;

      Eventually.until("the migration to complete under another leader", Duration.ofSeconds(120),
          () -> phaseOn(follower, id).equals("COMPLETED"), () -> replicas[1].output() + replicas[2].output());
      Thread.sleep(500);
      writer.close();
      String migrationRow = store("select phase, epoch, updated_at, body from turnout.migrations");
      String routeRows = store("select database, version, record from turnout.routes");
      String leaderRow = store("select epoch, holder from turnout.leader");
      assertThat(leaderRow).doesNotContain("cp-1");

      old.signal("CONT");
      Eventually.until("the old leader to notice", Duration.ofSeconds(30),
          () -> old.said("is no longer the migration leader"), old::output);
      Thread.sleep(3 * LEASE.toMillis()); // time to act on whatever it was doing, if it could

      assertThat(store("select phase, epoch, updated_at, body from turnout.migrations"))
          .as("the migration as the new leader left it").isEqualTo(migrationRow);
      assertThat(store("select database, version, record from turnout.routes")).as("the routes unchanged")
          .isEqualTo(routeRows);
      assertThat(store("select epoch, holder from turnout.leader")).isEqualTo(leaderRow);
      assertThat(onSecond.endpointOf("app")).isEqualTo("127.0.0.1:" + target.port());
      assertThat(MigrationFixture.serverPortOf(appPort, "app")).isEqualTo(target.port());
      assertThat(KillNineTest.appCanWrite(source)).as("the source stays fenced").isFalse();
      assertThat(MigrationFixture.missing(writer.acknowledged(), MigrationFixture.seqs(target)))
          .as("no acknowledged commit lost").isEmpty();
      assertThat(phaseOn(admin(0), id)).as("the woken replica reads the store's state").isEqualTo("COMPLETED");
      System.out.printf("leader paused in REPLICATING: another replica led after %.1f s; after waking the old one"
          + " said:%n%s%n", takeover, String.join("\n", old.output.subList(Math.max(0, old.output.size() - 8),
          old.output.size())));
    }
  }
}
