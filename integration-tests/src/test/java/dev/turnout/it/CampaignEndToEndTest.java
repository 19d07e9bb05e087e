package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.Campaign;
import dev.turnout.admin.v1.CampaignId;
import dev.turnout.admin.v1.CampaignMember;
import dev.turnout.admin.v1.CampaignRequest;
import dev.turnout.admin.v1.GetRoutingSnapshotRequest;
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
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Campaigns on real PostgreSQL servers, each with its streaming standby, run by a real {@code turnout server}
 * process, with a sidecar in front of every database and writers through it.
 */
class CampaignEndToEndTest {
  @TempDir Path dir;
  final List<PostgresServer> servers = new ArrayList<>();
  final List<Writer> writers = new ArrayList<>();
  Sidecar sidecar;
  ServerProcess plane;
  ManagedChannel admin;
  Path config;

  /** One source server, the databases on it, and its standby. */
  record Source(PostgresServer server, List<String> databases, PostgresServer standby) {
    String address() {
      return "127.0.0.1:" + server.port();
    }
  }

  /** Every database's sidecar port, in the order they were made. */
  final Map<String, Integer> ports = new LinkedHashMap<>();

  @AfterEach
  void tearDown() throws Exception {
    for (Writer w : writers) {
      w.close();
    }
    if (admin != null) {
      admin.shutdownNow();
    }
    if (sidecar != null) {
      sidecar.close();
    }
    if (plane != null) {
      plane.close();
    }
    for (PostgresServer s : servers) {
      s.close();
    }
  }

  /** A source holding {@code databases} (each with a writes table the application may write) and its standby. */
  Source source(String name, String... databases) throws Exception {
    String[] settings = {"wal_level=logical", "max_wal_senders=10", "max_replication_slots=10"};
    PostgresServer s = PostgresServer.start(dir.resolve(name), settings);
    servers.add(s);
    try (Connection c = s.connect(); Statement st = c.createStatement()) {
      st.execute("create role app login");
      for (String d : databases) {
        st.execute("create database " + d);
      }
    }
    for (String d : databases) {
      try (Connection c = DriverManager.getConnection(s.jdbcUrl().replace("/postgres?", "/" + d + "?"));
           Statement st = c.createStatement()) {
        st.execute("create table writes(id bigserial primary key, seq bigint not null, at timestamptz default now())");
        st.execute("grant all on writes, writes_id_seq to app");
      }
      ports.put(d, PostgresServer.freePort());
    }
    PostgresServer standby = PostgresServer.startStandby(dir.resolve(name + "-standby"), s, "turnout_standby", settings);
    servers.add(standby);
    return new Source(s, List.of(databases), standby);
  }

  /** Starts {@code turnout server} on a configuration routing every database to its source, and a sidecar. */
  void startPlane(List<Source> sources) throws Exception {
    int xdsPort = PostgresServer.freePort();
    int adminPort = PostgresServer.freePort();
    StringBuilder yaml = new StringBuilder("""
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
        """.formatted(xdsPort, adminPort));
    for (Source s : sources) {
      for (String d : s.databases()) {
        yaml.append("  - name: ").append(d).append("\n    port: ").append(ports.get(d))
            .append("\n    endpoint: ").append(s.address()).append('\n');
      }
    }
    config = dir.resolve("turnout.yaml");
    Files.writeString(config, yaml);
    plane = ServerProcess.start(config, null);
    sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", xdsPort, "app-1", "app")
        .withHoldTimeout(Duration.ofSeconds(60)).withStaleGrace(Duration.ofMillis(500)));
    admin = NettyChannelBuilder.forAddress("127.0.0.1", adminPort).usePlaintext().build();
    for (Source s : sources) {
      for (String d : s.databases()) {
        Eventually.until("the sidecar to serve " + d, Duration.ofSeconds(60), () -> {
          try {
            return MigrationFixture.serverPortOf(ports.get(d), "app") == s.server().port();
          } catch (SQLException e) {
            return false;
          }
        }, () -> plane.output());
      }
    }
  }

  AdminGrpc.AdminBlockingStub stub() {
    return AdminGrpc.newBlockingStub(admin);
  }

  Campaign get(String id) {
    return stub().getCampaign(CampaignId.newBuilder().setId(id).build());
  }

  Campaign await(String id, String what, Predicate<Campaign> done, Duration timeout) throws InterruptedException {
    Campaign[] last = {null};
    Eventually.until(what, timeout, () -> {
      try {
        last[0] = get(id);
        return done.test(last[0]);
      } catch (StatusRuntimeException e) {
        return false; // a restarting control plane
      }
    }, () -> String.valueOf(last[0]) + plane.output());
    return last[0];
  }

  /**
   * Watches every 25 ms that no database is routed to a server that would refuse its writes (fenced, or a standby):
   * a route read, the server's state read, the route read again, so a change between the two reads is not counted.
   */
  final class FencedRouteWatch implements AutoCloseable {
    final List<String> violations = new CopyOnWriteArrayList<>();
    final AtomicBoolean running = new AtomicBoolean(true);
    final Map<Integer, Connection> connections = new HashMap<>();
    final Thread thread = new Thread(this::run, "fenced-route-watch");
    int looks;

    FencedRouteWatch start() {
      thread.start();
      return this;
    }

    Map<String, String> routes() {
      Map<String, String> out = new HashMap<>();
      try {
        stub().getRoutingSnapshot(GetRoutingSnapshotRequest.getDefaultInstance()).getDatabasesList()
            .forEach(d -> out.put(d.getDatabase().getName(), d.getDatabase().getEndpoint()));
      } catch (StatusRuntimeException e) {
        return null; // the control plane is restarting
      }
      return out;
    }

    boolean writable(int port) {
      try {
        Connection c = connections.get(port);
        if (c == null || c.isClosed()) {
          c = DriverManager.getConnection(PostgresServer.jdbcUrl(port) + "&loginTimeout=2");
          connections.put(port, c);
        }
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("select not pg_is_in_recovery()"
            + " and current_setting('default_transaction_read_only') = 'off'")) {
          rs.next();
          return rs.getBoolean(1);
        }
      } catch (SQLException e) {
        connections.remove(port); // ended by a fence: look again next time
        return true;
      }
    }

    void run() {
      while (running.get()) {
        Map<String, String> before = routes();
        if (before != null) {
          looks++;
          for (Map.Entry<String, String> r : before.entrySet()) {
            if (r.getValue().isEmpty()) {
              continue; // drained: sidecars hold new connections
            }
            int port = Integer.parseInt(r.getValue().substring(r.getValue().lastIndexOf(':') + 1));
            if (!writable(port)) {
              Map<String, String> after = routes();
              if (after != null && r.getValue().equals(after.get(r.getKey()))) {
                violations.add(Instant.now() + ": " + r.getKey() + " routed to " + r.getValue() + ", which refuses"
                    + " writes");
              }
            }
          }
        }
        try {
          Thread.sleep(25);
        } catch (InterruptedException e) {
          return;
        }
      }
    }

    @Override
    public void close() throws Exception {
      running.set(false);
      thread.join();
      for (Connection c : connections.values()) {
        c.close();
      }
    }
  }

  static String campaignFile(String name, String policy, List<Source> sources) {
    StringBuilder yaml = new StringBuilder("name: " + name + "\npolicy:\n" + policy.indent(2)
        + "migration:\n  window: 1s\n  deadline: 60s\n  quiesce_grace: 500ms\nservers:\n");
    for (Source s : sources) {
      yaml.append("  - server: ").append(s.address()).append("\n    target: 127.0.0.1:").append(s.standby().port())
          .append('\n');
    }
    return yaml.toString();
  }

  String start(String yaml) {
    return stub().startCampaign(CampaignRequest.newBuilder().setYaml(yaml).setFileName("campaign.yaml").build())
        .getId();
  }

  void writeEverywhere() {
    for (String d : ports.keySet()) {
      writers.add(new Writer(ports.get(d), "app", d).start());
    }
  }

  static long count(Campaign c, String status) {
    return c.getMembersList().stream().filter(m -> m.getStatus().equals(status)).count();
  }

  @Test
  void sixServers_canaryThenWavesOfTwo_allMoveUnderLoad_losingNothing_neverRoutedToAFencedServer_andSurviveKillNine()
      throws Exception {
    List<Source> sources = List.of(source("s1", "orders1", "billing1"), source("s2", "orders2", "billing2"),
        source("s3", "shop3"), source("s4", "shop4"), source("s5", "shop5"), source("s6", "shop6"));
    startPlane(sources);
    writeEverywhere();
    String yaml = campaignFile("fleet", """
        canary: 1
        wave_size: 2
        max_concurrent: 2
        max_concurrent_per_host: 2
        max_failures: 1
        """, sources);

    try (FencedRouteWatch watch = new FencedRouteWatch().start()) {
      String id = start(yaml);
      Campaign canaryDone = await(id, "the canary to finish and wait for approval", c -> c.getStatus()
          .equals("WAITING_APPROVAL"), Duration.ofSeconds(120));
      assertThat(count(canaryDone, "SUCCEEDED")).as("the canary alone").isEqualTo(1);
      assertThat(count(canaryDone, "PENDING")).isEqualTo(5);
      CampaignMember canary = canaryDone.getMembersList().stream().filter(m -> m.getStatus().equals("SUCCEEDED"))
          .findFirst().orElseThrow();
      assertThat(canary.getPhase()).isEqualTo("COMPLETED");
      assertThat(canary.getWriteGapMs()).isPositive();

      stub().approveCampaign(CampaignId.newBuilder().setId(id).build());
      await(id, "a member of the first wave to replicate", c -> c.getMembersList().stream()
          .anyMatch(m -> m.getWave() == 1 && Set.of("REPLICATING", "VALIDATED", "QUIESCING").contains(m.getPhase())),
          Duration.ofSeconds(60));
      plane.killNine();
      plane = ServerProcess.start(config, null);

      Campaign done = await(id, "the campaign to complete after the restart", c -> c.getStatus().equals("COMPLETED")
          || c.getStatus().equals("HALTED"), Duration.ofSeconds(240));
      assertThat(done.getStatus()).as(done.toString()).isEqualTo("COMPLETED");
      assertThat(done.getMembersList()).allSatisfy(m -> {
        assertThat(m.getStatus()).isEqualTo("SUCCEEDED");
        assertThat(m.getPhase()).isEqualTo("COMPLETED");
      });
      assertThat(done.getMembersList()).filteredOn(m -> m.getServer().equals(sources.get(0).address()))
          .singleElement().satisfies(m -> assertThat(m.getDatabasesList()).containsExactly("billing1", "orders1"));
      Thread.sleep(300);
      for (Writer w : writers) {
        w.close();
      }
      assertThat(watch.looks).isGreaterThan(100);
      assertThat(watch.violations).as("never routed to a server that refuses writes").isEmpty();
    }
    for (Source s : sources) {
      for (String d : s.databases()) {
        Writer w = writers.get(new ArrayList<>(ports.keySet()).indexOf(d));
        assertThat(MigrationFixture.serverPortOf(ports.get(d), "app")).as(d + " now on its standby")
            .isEqualTo(s.standby().port());
        try (Connection c = DriverManager.getConnection(s.standby().jdbcUrl().replace("/postgres?", "/" + d + "?"))) {
          assertThat(MigrationFixture.missing(w.acknowledged(), Writer.seqsOn(c)))
              .as("no acknowledged commit to " + d + " lost").isEmpty();
        }
        assertThat(w.acknowledged()).hasSizeGreaterThan(10);
      }
    }
  }

  @Test
  void aMaintenanceWindowThatClosesMidCampaign_holdsTheRestAtValidated_nothingCutsOverOutsideIt() throws Exception {
    List<Source> sources = List.of(source("s1", "first"), source("s2", "second"), source("s3", "third"));
    startPlane(sources);
    // A window opened at the start of the minute before this one that closes 14 s from now: after the first member
    // (a 5 s validation) has cut over, and before the last can. (Its length in seconds, 74 to 133, so the test need
    // not wait for a particular second of the clock.)
    java.time.ZonedDateTime now = java.time.ZonedDateTime.now(java.time.ZoneOffset.UTC);
    java.time.ZonedDateTime opened = now.withSecond(0).withNano(0).minusMinutes(1);
    Instant closes = now.withNano(0).plusSeconds(14).toInstant();
    long lasts = Duration.between(opened.toInstant(), closes).toSeconds();
    String yaml = campaignFile("windowed", """
        canary: 0
        wave_size: 3
        max_concurrent: 1
        max_failures: 1
        windows:
          - cron: "%d %d * * *"
            duration: %ds
            zone: UTC
        """.formatted(opened.getMinute(), opened.getHour(), lasts), sources).replace("window: 1s", "window: 5s");
    String id = start(yaml);

    Campaign held = await(id, "a member held at VALIDATED after the window closed", c -> c.getMembersList().stream()
        .anyMatch(m -> m.getPhase().equals("VALIDATED") && !m.getHeld().isEmpty()), Duration.ofSeconds(60));
    Thread.sleep(2000);
    Campaign later = get(id);
    for (CampaignMember m : later.getMembersList()) {
      if (m.getMigrationId().isEmpty()) {
        continue;
      }
      var history = stub().getMigration(dev.turnout.admin.v1.GetMigrationRequest.newBuilder()
          .setId(m.getMigrationId()).build()).getHistoryList();
      history.stream().filter(e -> e.getPhase().equals("QUIESCING")).findFirst().ifPresent(q ->
          assertThat(Instant.ofEpochSecond(q.getAt().getSeconds(), q.getAt().getNanos()))
              .as(m.getServer() + " began its cutover inside the window").isBefore(closes));
    }
    CampaignMember waiting = later.getMembersList().stream().filter(m -> m.getPhase().equals("VALIDATED"))
        .findFirst().orElseThrow();
    assertThat(waiting.getHeld()).contains("outside the member's maintenance windows");
    assertThat(Instant.ofEpochSecond(later.getNextWindow().getSeconds())).as("the next window: the same minute tomorrow")
        .isEqualTo(opened.plusDays(1).toInstant());
    assertThat(MigrationFixture.serverPortOf(ports.get(
        sources.stream().filter(s -> s.address().equals(waiting.getServer())).findFirst().orElseThrow()
            .databases().get(0)), "app")).as("a held member is not drained: it still serves from its source")
        .isEqualTo(sources.stream().filter(s -> s.address().equals(waiting.getServer())).findFirst().orElseThrow()
            .server().port());
    assertThat(held.getMembersList()).as("held after the window closed: the hold is not the start of the campaign")
        .anySatisfy(m -> assertThat(m.getStatus()).isEqualTo("SUCCEEDED"));

    stub().abortCampaign(CampaignId.newBuilder().setId(id).build());
    Campaign aborted = await(id, "the abort to finish", c -> c.getStatus().equals("ABORTED"), Duration.ofSeconds(60));
    assertThat(aborted.getMembersList()).filteredOn(m -> m.getServer().equals(waiting.getServer())).singleElement()
        .satisfies(m -> assertThat(m.getPhase()).isEqualTo("ROLLED_BACK"));
  }

  @Test
  void aMemberWhoseStandbyIsKilled_rollsBack_andTheCampaignHaltsAtMaxFailuresOne_leavingTheOthersUntouched()
      throws Exception {
    List<Source> sources = List.of(source("s1", "first"), source("s2", "second"), source("s3", "third"));
    startPlane(sources);
    sources.get(0).standby().close(); // the first member's target is gone
    String id = start(campaignFile("halting", """
        canary: 0
        wave_size: 3
        max_concurrent: 1
        max_failures: 1
        """, sources));

    Campaign halted = await(id, "the campaign to halt", c -> c.getStatus().equals("HALTED"), Duration.ofSeconds(90));
    assertThat(halted.getReason()).isNotEmpty();
    assertThat(halted.getFailures()).isEqualTo(1);
    CampaignMember first = halted.getMembers(0);
    assertThat(first.getServer()).isEqualTo(sources.get(0).address());
    assertThat(first.getPhase()).isEqualTo("ROLLED_BACK");
    assertThat(halted.getMembersList().subList(1, 3)).as("the others untouched")
        .allSatisfy(m -> assertThat(m.getStatus()).isEqualTo("PENDING"));
    Thread.sleep(2000);
    assertThat(count(get(id), "PENDING")).as("still nothing started while halted").isEqualTo(2);
    for (Source s : sources) {
      assertThat(MigrationFixture.serverPortOf(ports.get(s.databases().get(0)), "app")).isEqualTo(s.server().port());
    }
  }
}
