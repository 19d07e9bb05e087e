package dev.turnout.controlplane.demo;

import com.google.common.collect.ImmutableList;
import com.google.protobuf.Duration;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.MigrationOptions;
import dev.turnout.admin.v1.ReplicaPlan;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.cli.Turnout;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Sleeper;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code turnout demo}: the whole product on one machine with nothing installed but Java. A PostgreSQL 17
 * source from Maven-delivered binaries, the control plane, a sidecar, an application writing through it and a
 * CDC consumer reading through it; then a migration to a same-host replica the migrator makes itself, watched
 * live; then a summary, and everything cleaned up.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = "Run a live migration on this machine: PostgreSQL, control plane, sidecar, load, CDC; then clean up.")
public final class DemoCommand implements Turnout.Extension {

  @Option(names = "--load-seconds", defaultValue = "3", description = "Write load before the migration (default 3)")
  int loadSeconds;

  @Option(names = "--window", defaultValue = "3", description = "Validation window in seconds (default 3)")
  int window;

  @Option(names = "--keep", description = "Keep the demo's directory (servers are stopped)")
  boolean keep;

  private static final Sleeper SLEEP = Sleeper.SYSTEM;

  @Override
  public Integer call() throws Exception {
    Path dir = Files.createTempDirectory("turnout-demo");
    Path source = dir.resolve("source");
    Path replica = dir.resolve("replica");
    Path bin = null;
    ControlPlane plane = null;
    Sidecar sidecar = null;
    try {
      say("1/6 PostgreSQL 17 binaries from Maven Central into " + dir);
      bin = LocalPostgres.extract(dir.resolve("pg"));
      int sourcePort = freePort();
      int replicaPort = freePort();
      int appPort = freePort();
      say("2/6 source server on 127.0.0.1:" + sourcePort);
      LocalPostgres.initdb(bin, source, List.of("port=" + sourcePort, "listen_addresses=127.0.0.1",
          "unix_socket_directories=", "wal_level=logical", "max_wal_senders=10", "max_replication_slots=10",
          "shared_buffers=32MB", "fsync=off"));
      LocalPostgres.start(bin, source);
      try (Connection c = DriverManager.getConnection(url(sourcePort, "postgres")); Statement s = c.createStatement()) {
        s.execute("create role app login");
        s.execute("create table writes(id bigserial primary key, seq bigint not null, at timestamptz default now())");
        s.execute("grant all on writes, writes_id_seq to app");
        s.execute("select pg_create_logical_replication_slot('demo_cdc', 'test_decoding')");
      }
      say("3/6 control plane, and a sidecar routing database 'app' (port " + appPort + ") to the source");
      plane = ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0), dir.resolve("store"),
          java.time.Duration.ofSeconds(10), ImmutableList.of(new DatabaseRoute("app", appPort,
              Optional.of(new Endpoint("127.0.0.1", sourcePort)), Set.of())), TurnoutConfig.MigratorSettings.DEFAULT));
      sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", plane.xdsPort(), "demo-app-1", "app"));
      awaitServing(appPort);
      say("4/6 an application writing through the sidecar, and a CDC consumer reading through it");
      try (Writer writer = new Writer(appPort, "app").start();
           CdcConsumer cdc = new CdcConsumer(appPort, "demo_cdc").start()) {
        SLEEP.sleep(java.time.Duration.ofSeconds(loadSeconds));
        say("5/6 migrating 'app' to a replica the migrator makes on 127.0.0.1:" + replicaPort);
        writer.resetGap();
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext().build();
        int watched;
        try {
          var m = AdminGrpc.newBlockingStub(channel).startMigration(StartMigrationRequest.newBuilder()
              .setDatabase("app").setTarget("127.0.0.1:" + replicaPort).setOptions(MigrationOptions.newBuilder()
                  // No bake: the demo shows the cutover in seconds (an operator's migration bakes 2m by default).
                  .setBake(com.google.protobuf.Duration.getDefaultInstance())
                  .setValidationWindow(Duration.newBuilder().setSeconds(window))
                  .setCreateReplica(ReplicaPlan.newBuilder().setSourceDataDir(source.resolve("").toString())
                      .setTargetDataDir(replica.toString()).setBinDir(bin.toString()))).build());
          watched = Turnout.watch(channel, m.getId(), System.out);
        } finally {
          channel.shutdownNow();
        }
        SLEEP.sleep(java.time.Duration.ofSeconds(1));
        writer.close();
        Set<Long> acknowledged = new HashSet<>(writer.acknowledged());
        long deadline = System.nanoTime() + java.time.Duration.ofSeconds(20).toNanos();
        while (!seen(cdc).containsAll(acknowledged) && System.nanoTime() < deadline) {
          SLEEP.sleep(java.time.Duration.ofMillis(100));
        }
        cdc.close();
        Set<Long> onReplica = rows(replicaPort);
        long lost = acknowledged.stream().filter(s -> !onReplica.contains(s)).count();
        Map<Long, Set<Long>> lsnsBySeq = new HashMap<>();
        cdc.changes().forEach(ch -> lsnsBySeq.computeIfAbsent(ch.seq(), k -> new HashSet<>()).add(ch.lsn()));
        long missed = acknowledged.stream().filter(s -> !lsnsBySeq.containsKey(s)).count();
        long twice = lsnsBySeq.values().stream().filter(l -> l.size() > 1).count();
        say("6/6 summary");
        System.out.printf("  migration:                     %s%n", watched == 0 ? "COMPLETED" : "did not complete");
        System.out.printf("  write unavailability (longest gap between commits): %.0f ms%n", writer.longestGapMillis());
        System.out.printf("  commits acknowledged:          %d%n", acknowledged.size());
        System.out.printf("  lost commits:                  %d%n", lost);
        System.out.printf("  CDC: %d changes, %d acknowledged commits missed, %d seen twice, %d connection(s)%n",
            cdc.changes().size(), missed, twice, cdc.connections());
        return watched == 0 && lost == 0 && missed == 0 && twice == 0 ? 0 : 1;
      }
    } finally {
      say("cleaning up");
      if (sidecar != null) {
        sidecar.close();
      }
      if (plane != null) {
        plane.close();
      }
      if (bin != null) {
        LocalPostgres.stop(bin, replica);
        LocalPostgres.stop(bin, source);
      }
      if (!keep) {
        delete(dir);
      }
    }
  }

  private static Set<Long> seen(CdcConsumer cdc) {
    Set<Long> seqs = new HashSet<>();
    cdc.changes().forEach(ch -> seqs.add(ch.seq()));
    return seqs;
  }

  private static Set<Long> rows(int port) throws SQLException {
    try (Connection c = DriverManager.getConnection(url(port, "postgres"))) {
      return Writer.seqsOn(c);
    }
  }

  private static void awaitServing(int port) throws Exception {
    for (int i = 0; i < 300; i++) {
      try (Connection c = DriverManager.getConnection(url(port, "postgres"))) {
        return;
      } catch (SQLException e) {
        SLEEP.sleep(java.time.Duration.ofMillis(50));
      }
    }
    throw new IllegalStateException("the sidecar never served database 'app'");
  }

  private static String url(int port, String user) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/postgres?user=" + user + "&sslmode=disable&connectTimeout=10";
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static void say(String line) {
    System.out.println("\n== " + line);
  }

  private static void delete(Path dir) throws IOException {
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
