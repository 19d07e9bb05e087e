package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.controlplane.demo.Writer;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.controlplane.xds.XdsType;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The parts around a migration failing mid-way — the replica or the source server dying, a sidecar going away
 * or refusing the new route — on real PostgreSQL 15 servers, the sidecar, and ADS nodes that stand for more
 * sidecars. Each asserts what an operator would check: where the route points, who can write, what is lost.
 */
class ComponentFailuresTest {
  @TempDir Path dir;
  MigrationFixture f;
  private ManagedChannel channel;
  private Sidecar restarted;

  @AfterEach
  void tearDown() throws Exception {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (restarted != null) {
      restarted.close();
    }
    if (f != null) {
      f.close();
    }
  }

  private Migration settle(String id) throws InterruptedException {
    return f.awaitPhase(id, p -> p.isTerminal() || p == Phase.HALTED || p == Phase.COMPLETED, Duration.ofSeconds(90));
  }

  private SimulatedSidecar node(String id, java.util.function.Predicate<
      io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment> refuse) throws InterruptedException {
    if (channel == null) {
      channel = NettyChannelBuilder.forAddress("127.0.0.1", f.xdsPort).usePlaintext().build();
    }
    SimulatedSidecar node = new SimulatedSidecar(channel, id, "app", refuse);
    Eventually.until(id + " to ACK the route", Duration.ofSeconds(30), () -> f.plane.tracker().node(id)
        .map(n -> n.ackedVersion(XdsType.EDS) > 0).orElse(false));
    return node;
  }

  @ParameterizedTest(name = "replica dies in {0}")
  @EnumSource(value = Phase.class, names = {"REPLICATING", "CATCHING_UP"})
  void theReplicaDying_rollsTheMigrationBack_leavingTheSourceRoutedAndWritable(Phase phase) throws Exception {
    MigrationFaultsTest.Stop stop = new MigrationFaultsTest.Stop(phase, Migrator.Failpoint.Point.AFTER_SAVE);
    f = new MigrationFixture(dir, stop);
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(300);
      Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(20)));
      stop.awaitReached();
      f.target.kill();
      stop.release.countDown();
      Migration done = settle(started.id());
      Thread.sleep(500);
      writer.close();

      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
      assertThat(done.progress().error().orElseThrow()).as("names the server that failed")
          .contains("127.0.0.1:" + f.target.port());
      assertThat(f.plane.routing().table().get("app").orElseThrow().endpoint())
          .contains(new Endpoint("127.0.0.1", f.source.port()));
      assertThat(MigrationFixture.missing(writer.acknowledged(), MigrationFixture.seqs(f.source)))
          .as("every acknowledged commit is on the source")
          .isEmpty();
    }
    assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.source.port());
    try (Connection c = java.sql.DriverManager.getConnection(PostgresServer.jdbcUrl(f.appPort).replace("user=postgres", "user=app"));
         Statement s = c.createStatement()) {
      assertThat(s.executeUpdate("insert into writes(seq) values (-1)")).as("writable through the sidecar").isEqualTo(1);
    }
  }

  @Test
  void theSourceDyingWhileQuiescing_haltsTheMigration_sayingWhatTheOperatorMustDecide() throws Exception {
    MigrationFaultsTest.Stop stop = new MigrationFaultsTest.Stop(Phase.QUIESCING, Migrator.Failpoint.Point.AFTER_SAVE);
    f = new MigrationFixture(dir, stop);
    Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(20)));
    stop.awaitReached();
    f.source.kill();
    stop.release.countDown();
    Migration done = settle(started.id());

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.HALTED);
    assertThat(done.history().get(done.history().size() - 1).note())
        .contains("the source is unreachable while quiescing").contains("the route is drained")
        .contains("Decide: bring the source back and roll back, or promote the target by hand");
    assertThat(f.plane.routing().table().get("app").orElseThrow().endpoint()).as("routed nowhere").isEmpty();
    try (Connection c = f.target.connect(); Statement s = c.createStatement();
         java.sql.ResultSet rs = s.executeQuery("select pg_is_in_recovery()")) {
      rs.next();
      assertThat(rs.getBoolean(1)).as("the target was not promoted").isTrue();
    }
  }

  @Test
  void aSidecarDisconnectedDuringShifting_isNotWaitedFor_andGetsTheLatestRouteWhenItReconnects() throws Exception {
    MigrationFaultsTest.Stop stop = new MigrationFaultsTest.Stop(Phase.SHIFTING, Migrator.Failpoint.Point.AFTER_SAVE);
    f = new MigrationFixture(dir, stop);
    node("app-2", cla -> false);
    List<RoutingService.RouteResult> acked = new CopyOnWriteArrayList<>();
    f.plane.routing().onAcked(acked::add);
    Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(20)));
    stop.awaitReached();
    f.sidecar.close();
    Eventually.until("app-1 to be seen gone", Duration.ofSeconds(30),
        () -> f.plane.tracker().node("app-1").map(n -> !n.connected()).orElse(true));
    stop.release.countDown();
    Migration done = settle(started.id());

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
    RoutingService.RouteResult shift = acked.stream()
        .filter(r -> r.current().equals(Optional.of(new Endpoint("127.0.0.1", f.target.port())))).findFirst().orElseThrow();
    assertThat(shift.ack().ackedBy()).as("the shift waited for the connected node only").containsExactly("app-2");

    restarted = Sidecar.start(SidecarConfig.of("127.0.0.1", f.xdsPort, "app-1", "app")
        .withHoldTimeout(Duration.ofSeconds(30)).withStaleGrace(Duration.ofMillis(500)));
    Eventually.until("app-1 to ACK the latest version", Duration.ofSeconds(30), () -> f.plane.tracker().node("app-1")
        .map(n -> n.connected() && n.ackedVersion(XdsType.EDS) >= shift.version()).orElse(false));
    Eventually.until("the reconnected sidecar to route to the target", Duration.ofSeconds(30), () -> {
      try {
        return MigrationFixture.serverPortOf(f.appPort, "app") == f.target.port();
      } catch (SQLException e) {
        return false;
      }
    });
  }

  @Test
  void aSidecarThatNacksTheShift_isNamedAsAStraggler_andTheSourceStaysFenced_untilTheOperatorResumesWithoutIt()
      throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    SimulatedSidecar picky = node("app-picky", cla -> cla.getEndpointsList().stream().flatMap(e -> e.getLbEndpointsList().stream())
        .anyMatch(e -> e.getEndpoint().getAddress().getSocketAddress().getPortValue() == f.target.port()));
    Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(20)));
    Migration done = settle(started.id());

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.HALTED);
    assertThat(done.progress().error().orElseThrow()).contains("app-picky")
        .contains("simulated sidecar refuses the assignment of app");
    assertThat(f.plane.tracker().node("app-picky").orElseThrow().types().get(XdsType.EDS).lastNack()).isPresent();
    assertThatThrownBy(() -> MigrationFixture.serverPortOf(f.source.port(), "app")).as("the source stays fenced")
        .isInstanceOf(SQLException.class).hasMessageContaining("not permitted to log in");
    assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).as("the sidecar that ACKed routes to the target")
        .isEqualTo(f.target.port());

    // The operator takes the picky sidecar out of service, then resumes through the CLI: SHIFTING runs again.
    picky.close();
    Eventually.until("app-picky to be seen gone", Duration.ofSeconds(30),
        () -> f.plane.tracker().node("app-picky").map(n -> !n.connected()).orElse(true));
    Cli.Result resumed = Cli.run("migrate", "resume", done.id(), "--watch", "--admin",
        "127.0.0.1:" + f.plane.adminPort());
    assertThat(resumed.exit()).as(resumed.out() + resumed.err()).isZero();
    assertThat(resumed.out()).contains("migration " + done.id() + " resumed in SHIFTING")
        .contains("resumed by the operator in SHIFTING").contains("migration " + done.id() + ": COMPLETED");
    Cli.Result again = Cli.run("migrate", "resume", done.id(), "--admin", "127.0.0.1:" + f.plane.adminPort());
    assertThat(again.exit()).as("a second resume is refused: " + again.err()).isNotZero();
    assertThat(again.err()).contains("FAILED_PRECONDITION").contains("only a HALTED migration can be resumed");
  }
}
