package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.GetMigrationRequest;
import dev.turnout.admin.v1.MigrationOptions;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.controlplane.demo.Writer;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import io.grpc.ManagedChannel;
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
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@code kill -9} of a real {@code turnout server} process in every phase of a migration, then a restart on the
 * same store: the migration ends COMPLETED or ROLLED_BACK, the route and the fence agree, no acknowledged commit
 * is lost, and a watcher connecting as the application to both servers every 25 ms never finds both writable.
 * The server stops at the step through its test failpoint ({@code TURNOUT_TEST_FAILPOINT}), so the kill lands
 * exactly there.
 */
class KillNineTest {
  @TempDir Path dir;
  private PostgresServer source;
  private PostgresServer target;
  private ServerProcess server;
  private Sidecar sidecar;
  private ManagedChannel admin;
  private int xdsPort;
  private int adminPort;
  private int appPort;

  /** A source with the application, its streaming standby, and a control plane's configuration routing app to it. */
  private Path startServersAndWriteConfig() throws Exception {
    source = PostgresServer.start(dir.resolve("source"), "wal_level=logical", "max_wal_senders=10");
    source.createApplication();
    target = PostgresServer.startStandby(dir.resolve("target"), source, "turnout_standby", "wal_level=logical",
        "max_wal_senders=10");
    xdsPort = PostgresServer.freePort();
    adminPort = PostgresServer.freePort();
    appPort = PostgresServer.freePort();
    Path config = dir.resolve("turnout.yaml");
    Files.writeString(config, """
        server:
          bind_address: 127.0.0.1
          xds_port: %d
          admin_port: %d
          http_port: 0
        store:
          directory: data
        xds:
          ack_timeout: 10s
        databases:
          - name: app
            port: %d
            endpoint: 127.0.0.1:%d
        """.formatted(xdsPort, adminPort, appPort, source.port()));
    return config;
  }

  @AfterEach
  void tearDown() throws Exception {
    if (admin != null) {
      admin.shutdownNow();
    }
    if (sidecar != null) {
      sidecar.close();
    }
    if (server != null) {
      server.close();
    }
    if (target != null) {
      target.close();
    }
    if (source != null) {
      source.close();
    }
  }

  static boolean appCanWrite(PostgresServer server) {
    try (Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(server.port())
        .replace("user=postgres", "user=app") + "&connectTimeout=2&loginTimeout=2");
         Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select not pg_is_in_recovery()"
             + " and current_setting('default_transaction_read_only') = 'off'")) {
      return rs.next() && rs.getBoolean(1);
    } catch (SQLException e) {
      return false; // refused (fenced, or down): not writable for the application
    }
  }

  @ParameterizedTest(name = "kill -9 in {0}")
  @EnumSource(value = dev.turnout.migrator.Phase.class, names = {"PREFLIGHT", "REPLICATING", "VALIDATED", "QUIESCING",
      "CATCHING_UP", "PROMOTING", "SHIFTING", "VERIFYING", "BAKING"})
  void killNineInAnyPhase_thenRestart_endsWholeWithNoLostCommit_andNeverTwoWritableServers(
      dev.turnout.migrator.Phase phase) throws Exception {
    Path config = startServersAndWriteConfig();
    server = ServerProcess.start(config, phase + ":AFTER_SAVE");
    List<String> firstRun = server.output;
    sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", xdsPort, "app-1", "app")
        .withHoldTimeout(Duration.ofSeconds(60)).withStaleGrace(Duration.ofMillis(500)));
    Eventually.until("the sidecar to serve", Duration.ofSeconds(90), () -> {
      try (Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(appPort))) {
        return true;
      } catch (SQLException e) {
        return false;
      }
    }, () -> output(firstRun));
    admin = NettyChannelBuilder.forAddress("127.0.0.1", adminPort).usePlaintext().build();
    var stub = AdminGrpc.newBlockingStub(admin);

    List<String> violations = new CopyOnWriteArrayList<>();
    AtomicBoolean watching = new AtomicBoolean(true);
    Thread watcher = new Thread(() -> {
      while (watching.get()) {
        if (appCanWrite(source) && appCanWrite(target)) {
          violations.add(java.time.Instant.now() + ": both servers accept the application's writes");
        }
        try {
          Thread.sleep(25);
        } catch (InterruptedException e) {
          return;
        }
      }
    }, "two-writers-watcher");
    watcher.start();
    Writer writer = new Writer(appPort, "app").start();
    String id;
    try {
      Thread.sleep(300);
      id = stub.startMigration(StartMigrationRequest.newBuilder().setDatabase("app")
          .setTarget("127.0.0.1:" + target.port()).setOptions(MigrationOptions.newBuilder().setBake(com.google.protobuf.Duration.newBuilder()
                  .setSeconds(phase == dev.turnout.migrator.Phase.BAKING ? 3 : 0)) // no bake, but where it is killed
              .setValidationWindow(com.google.protobuf.Duration.newBuilder().setSeconds(1))
              .setPhaseDeadline(com.google.protobuf.Duration.newBuilder().setSeconds(60))).build()).getId();
      Eventually.until("the failpoint in " + phase, Duration.ofSeconds(90),
          () -> firstRun.stream().anyMatch(l -> l.contains("test failpoint " + phase)), () -> output(firstRun));

      server.killNine();
      assertThat(server.process.isAlive()).isFalse();
      server = ServerProcess.start(config, null);
      List<String> secondRun = server.output;
      String[] phaseNow = {""};
      Eventually.until("the migration to settle after the restart", Duration.ofSeconds(90), () -> {
        try {
          phaseNow[0] = stub.getMigration(GetMigrationRequest.newBuilder().setId(id).build()).getPhase();
        } catch (StatusRuntimeException e) {
          return false;
        }
        return Set.of("COMPLETED", "ROLLED_BACK", "HALTED").contains(phaseNow[0]);
      }, () -> output(secondRun));
      Thread.sleep(500);
      writer.close();
      watching.set(false);
      watcher.join();

      var m = stub.getMigration(GetMigrationRequest.newBuilder().setId(id).build());
      assertThat(m.getPhase()).as(m.getHistoryList().toString()).isIn("COMPLETED", "ROLLED_BACK");
      PostgresServer winner = m.getPhase().equals("COMPLETED") ? target : source;
      PostgresServer other = winner == target ? source : target;
      // A sidecar still backing off its reconnect when the restarted server finished keeps the old route until
      // it is back; the old route is to the fenced source, where it cannot write. It must converge.
      Eventually.until("the sidecar to route to " + winner.port(), Duration.ofSeconds(90), () -> {
        try {
          return MigrationFixture.serverPortOf(appPort, "app") == winner.port();
        } catch (SQLException e) {
          return false;
        }
      });
      assertThat(appCanWrite(winner)).as("the routed server takes writes").isTrue();
      assertThat(appCanWrite(other)).as("the other does not (fenced, or a standby)").isFalse();
      assertThat(MigrationFixture.missing(writer.acknowledged(), MigrationFixture.seqs(winner)))
          .as("no acknowledged commit lost").isEmpty();
      assertThat(writer.acknowledged()).isNotEmpty();
      assertThat(violations).as("never two writable servers").isEmpty();
      System.out.printf("kill -9 in %s: %s, %d commits acknowledged, longest write gap %.0f ms%n", phase, m.getPhase(),
          writer.acknowledged().size(), writer.longestGapMillis());
    } finally {
      watching.set(false);
      writer.close();
    }
  }

  /**
   * The lossless rollback after promotion (issue 19, part 2), killed the moment it is recorded: the operator's
   * rollback of a completed migration, while the writer goes on on the target, stops the process with SIGKILL right
   * after ROLLING_BACK is saved; the restarted process resumes it over the reverse replication, and every commit the
   * target took is on the source, which is routed and writable, with never two writable servers.
   */
  @org.junit.jupiter.api.Test
  void killNineAsALosslessRollbackAfterPromotionBegins_thenRestart_endsOnTheSourceWithEveryCommit() throws Exception {
    Path config = startServersAndWriteConfig();
    server = ServerProcess.start(config, "ROLLING_BACK:AFTER_SAVE");
    List<String> firstRun = server.output;
    sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", xdsPort, "app-1", "app")
        .withHoldTimeout(Duration.ofSeconds(60)).withStaleGrace(Duration.ofMillis(500)));
    Eventually.until("the sidecar to serve", Duration.ofSeconds(90), () -> {
      try (Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(appPort))) {
        return true;
      } catch (SQLException e) {
        return false;
      }
    }, () -> output(firstRun));
    admin = NettyChannelBuilder.forAddress("127.0.0.1", adminPort).usePlaintext().build();
    var stub = AdminGrpc.newBlockingStub(admin);
    Writer writer = new Writer(appPort, "app").start();
    try {
      Thread.sleep(300);
      String id = stub.startMigration(StartMigrationRequest.newBuilder().setDatabase("app")
          .setTarget("127.0.0.1:" + target.port()).setOptions(MigrationOptions.newBuilder()
              .setBake(com.google.protobuf.Duration.getDefaultInstance())
              .setValidationWindow(com.google.protobuf.Duration.newBuilder().setSeconds(1))
              .setPhaseDeadline(com.google.protobuf.Duration.newBuilder().setSeconds(60))).build()).getId();
      Eventually.until("the migration to complete", Duration.ofSeconds(90), () -> "COMPLETED".equals(
          stub.getMigration(GetMigrationRequest.newBuilder().setId(id).build()).getPhase()), () -> output(firstRun));
      int onTarget = writer.acknowledged().size();
      Eventually.until("writes on the target", Duration.ofSeconds(30),
          () -> writer.acknowledged().size() > onTarget + 100, () -> output(firstRun));
      // No consent: the way back is healthy. The call stops at the failpoint with the process.
      Thread rollback = new Thread(() -> {
        try {
          stub.withDeadlineAfter(60, TimeUnit.SECONDS).rollbackMigration(
              dev.turnout.admin.v1.RollbackMigrationRequest.newBuilder().setId(id).build());
        } catch (StatusRuntimeException killed) {
          // the process is killed under it
        }
      }, "rollback");
      rollback.start();
      Eventually.until("the failpoint in ROLLING_BACK", Duration.ofSeconds(60),
          () -> firstRun.stream().anyMatch(l -> l.contains("test failpoint ROLLING_BACK")), () -> output(firstRun));

      server.killNine();
      rollback.join(10_000);
      server = ServerProcess.start(config, null);
      List<String> secondRun = server.output;
      Eventually.until("the rollback to end after the restart", Duration.ofSeconds(90), () -> {
        try {
          return Set.of("ROLLED_BACK", "HALTED").contains(
              stub.getMigration(GetMigrationRequest.newBuilder().setId(id).build()).getPhase());
        } catch (StatusRuntimeException e) {
          return false;
        }
      }, () -> output(secondRun));
      Eventually.until("the sidecar to route to the source", Duration.ofSeconds(90), () -> {
        try {
          return MigrationFixture.serverPortOf(appPort, "app") == source.port();
        } catch (SQLException e) {
          return false;
        }
      });
      Thread.sleep(300);
      writer.close();

      var m = stub.getMigration(GetMigrationRequest.newBuilder().setId(id).build());
      assertThat(m.getPhase()).as(m.getHistoryList().toString()).isEqualTo("ROLLED_BACK");
      assertThat(m.getHistoryList().toString()).contains("with every write the target took");
      assertThat(appCanWrite(source)).as("the source takes writes").isTrue();
      assertThat(appCanWrite(target)).as("the target is fenced").isFalse();
      assertThat(MigrationFixture.missing(writer.acknowledged(), MigrationFixture.seqs(source)))
          .as("no acknowledged commit lost, those the target took included").isEmpty();
      System.out.printf("kill -9 as a lossless rollback began: %d commits acknowledged, %d of them after the cutover%n",
          writer.acknowledged().size(), writer.acknowledged().size() - onTarget);
    } finally {
      writer.close();
    }
  }

  private static String output(List<String> lines) {
    return "; server output:\n" + String.join("\n", lines);
  }
}
