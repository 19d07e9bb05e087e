package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.xds.NodeStatus;
import dev.turnout.controlplane.xds.XdsType;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Applications' JDBC connections through the built-in sidecar reach the server the control plane's route names,
 * on real PostgreSQL servers, a real control plane and real sockets.
 */
class SidecarEndToEndTest {
  @TempDir static Path servers;
  @TempDir Path dir;

  static PostgresServer first;
  static PostgresServer second;

  private ControlPlane plane;
  private Sidecar sidecar;
  private int appPort;

  @BeforeAll
  static void startServers() throws Exception {
    first = PostgresServer.start(servers.resolve("first"));
    second = PostgresServer.start(servers.resolve("second"));
  }

  @AfterAll
  static void stopServers() throws Exception {
    first.close();
    second.close();
  }

  private void startPlane(int xdsPort, DatabaseRoute... databases) throws Exception {
    plane = ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", xdsPort, 0, 0),
        dir.resolve("store"), Duration.ofSeconds(10), ImmutableList.copyOf(databases),
        TurnoutConfig.MigratorSettings.DEFAULT));
  }

  private void startSidecar(Duration holdTimeout) throws Exception {
    sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", plane.xdsPort(), "app-node-1", "app")
        .withHoldTimeout(holdTimeout).withStaleGrace(Duration.ofMillis(300)).withMetricsPort(0));
  }

  private DatabaseRoute app(PostgresServer server) throws Exception {
    appPort = PostgresServer.freePort();
    return new DatabaseRoute("app", appPort, Optional.of(new Endpoint("127.0.0.1", server.port())), Set.of("app"));
  }

  private Connection viaSidecar() throws SQLException {
    return DriverManager.getConnection(PostgresServer.jdbcUrl(appPort));
  }

  /** The port of the PostgreSQL server a connection reached. */
  private static int serverPort(Connection c) throws SQLException {
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("select current_setting('port')")) {
      rs.next();
      return Integer.parseInt(rs.getString(1));
    }
  }

  private void awaitServing() throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (true) {
      try (Connection c = viaSidecar()) {
        return;
      } catch (SQLException e) {
        if (System.nanoTime() > deadline) {
          throw e;
        }
        Thread.sleep(50);
      }
    }
  }

  @Test
  void connectionsReachTheRoutedServer_andNewOnesFollowARouteChange_whileOldOnesAreClosedAfterTheGrace()
      throws Exception {
    startPlane(0, app(first));
    startSidecar(Duration.ofSeconds(10));
    awaitServing();

    Connection before = viaSidecar();
    assertThat(serverPort(before)).isEqualTo(first.port());

    plane.routing().route("app", new Endpoint("127.0.0.1", second.port())).get(10, TimeUnit.SECONDS);
    try (Connection after = viaSidecar()) {
      assertThat(serverPort(after)).as("a new connection after the route change").isEqualTo(second.port());
    }

    Thread.sleep(1000); // the stale grace is 300 ms
    assertThatThrownBy(() -> serverPort(before)).isInstanceOf(SQLException.class);
    assertThat(sidecar.stats("app").orElseThrow().staleClosed()).isEqualTo(1);
    before.close();
  }

  @Test
  void whileDrained_aNewConnectionWaits_andCompletesWhenTheRouteReturns() throws Exception {
    startPlane(0, app(first));
    startSidecar(Duration.ofSeconds(20));
    awaitServing();

    plane.routing().drain("app").get(10, TimeUnit.SECONDS);
    CompletableFuture<Integer> waiting = CompletableFuture.supplyAsync(() -> {
      try (Connection c = viaSidecar()) {
        return serverPort(c);
      } catch (SQLException e) {
        throw new IllegalStateException(e);
      }
    });
    // The hold is timed from the sidecar's accept, which comes a moment after the client starts: wait for it.
    Eventually.until("the connection to be held", Duration.ofSeconds(10),
        () -> sidecar.stats("app").orElseThrow().heldNow() == 1);
    Thread.sleep(700);
    assertThat(waiting).as("held, not refused").isNotDone();
    assertThat(sidecar.stats("app").orElseThrow().heldNow()).isEqualTo(1);

    plane.routing().route("app", new Endpoint("127.0.0.1", second.port())).get(10, TimeUnit.SECONDS);

    assertThat(waiting.get(10, TimeUnit.SECONDS)).isEqualTo(second.port());
    var stats = sidecar.stats("app").orElseThrow();
    // At least the one: on a loaded CI machine pgjdbc's own retry (a second socket) was held too, and completed.
    assertThat(stats.heldTotal()).isGreaterThanOrEqualTo(1);
    assertThat(stats.heldNow()).as("none is left held once the route returned").isZero();
    assertThat(stats.holdNanosTotal()).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(700));
  }

  /**
   * A TCP relay in front of {@code server} that holds the server's first answer back for {@code delay}: a login
   * that takes that long (a slow authentication, a busy server).
   */
  private static ServerSocket slowLogin(PostgresServer server, Duration delay) throws Exception {
    ServerSocket listener = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
    Thread accept = new Thread(() -> {
      while (!listener.isClosed()) {
        try {
          java.net.Socket client = listener.accept();
          java.net.Socket upstream = new java.net.Socket("127.0.0.1", server.port());
          pump(client.getInputStream(), upstream.getOutputStream(), Duration.ZERO);
          pump(upstream.getInputStream(), client.getOutputStream(), delay);
        } catch (java.io.IOException e) {
          return;
        }
      }
    }, "slow-login-accept");
    accept.setDaemon(true);
    accept.start();
    return listener;
  }

  private static void pump(java.io.InputStream in, java.io.OutputStream out, Duration firstDelay) {
    Thread t = new Thread(() -> {
      byte[] buf = new byte[8192];
      boolean first = true;
      try (in; out) {
        for (int n; (n = in.read(buf)) >= 0; ) {
          if (first && !firstDelay.isZero()) {
            Thread.sleep(firstDelay.toMillis());
          }
          first = false;
          out.write(buf, 0, n);
          out.flush();
        }
      } catch (java.io.IOException | InterruptedException e) {
        // one side closed
      }
    }, "slow-login-pump");
    t.setDaemon(true);
    t.start();
  }

  @Test
  void aDrainIsAcked_onlyOnceTheConnectionsAcceptedBeforeItHaveLoggedIn() throws Exception {
    try (ServerSocket slow = slowLogin(first, Duration.ofMillis(800))) {
      appPort = PostgresServer.freePort();
      startPlane(0, new DatabaseRoute("app", appPort, Optional.of(new Endpoint("127.0.0.1", slow.getLocalPort())),
          Set.of("app")));
      startSidecar(Duration.ofSeconds(20));
      awaitServing();

      for (String sslmode : List.of("disable", "prefer")) { // prefer: an SSLRequest first, declined by the server
        CompletableFuture<Connection> loggingIn = CompletableFuture.supplyAsync(() -> {
          try {
            return DriverManager.getConnection(PostgresServer.jdbcUrl(appPort).replace("sslmode=disable",
                "sslmode=" + sslmode));
          } catch (SQLException e) {
            throw new IllegalStateException(e);
          }
        });
        Thread.sleep(200); // accepted and relayed; the server has not answered yet
        long start = System.nanoTime();
        plane.routing().drain("app").get(10, TimeUnit.SECONDS);
        long ackMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);

        assertThat(loggingIn).as(sslmode + ": logged in when the drain was ACKed (after " + ackMillis + " ms)")
            .succeedsWithin(Duration.ofMillis(200));
        assertThat(ackMillis).as(sslmode).isGreaterThanOrEqualTo(300);
        try (Connection c = loggingIn.join()) {
          assertThat(serverPort(c)).isEqualTo(first.port());
        }
        plane.routing().route("app", new Endpoint("127.0.0.1", slow.getLocalPort())).get(10, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void aConnectionHeldPastTheTimeout_getsAClearPostgresError() throws Exception {
    startPlane(0, app(first));
    startSidecar(Duration.ofMillis(500));
    awaitServing();
    plane.routing().drain("app").get(10, TimeUnit.SECONDS);

    // sslmode=prefer makes pgjdbc open with an SSLRequest: the sidecar must decline it before the error.
    assertThatThrownBy(() -> DriverManager.getConnection(PostgresServer.jdbcUrl(appPort).replace("sslmode=disable",
        "sslmode=prefer")))
        .isInstanceOf(SQLException.class)
        .hasMessageContaining("database \"app\" has no endpoint")
        .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("57P03"));
    assertThat(sidecar.stats("app").orElseThrow().holdTimeouts()).isEqualTo(1);
  }

  @Test
  void aListenerThatCannotBind_isNacked_andTheControlPlaneShowsWhy_whileTheOthersServe() throws Exception {
    try (ServerSocket squatter = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
      DatabaseRoute app = app(first);
      startPlane(0, app, new DatabaseRoute("blocked", squatter.getLocalPort(),
          Optional.of(new Endpoint("127.0.0.1", second.port())), Set.of()));
      startSidecar(Duration.ofSeconds(10));
      awaitServing();

      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      NodeStatus status;
      do {
        status = plane.tracker().node("app-node-1").orElseThrow();
        Thread.sleep(20);
      } while (status.types().get(XdsType.LDS).lastNack().isEmpty() && System.nanoTime() < deadline);

      var nack = status.types().get(XdsType.LDS).lastNack().orElseThrow();
      assertThat(nack.error()).contains("listener 'blocked' cannot listen on 127.0.0.1:" + squatter.getLocalPort());
      try (Connection c = viaSidecar()) {
        assertThat(serverPort(c)).isEqualTo(first.port());
      }
    }
  }

  @Test
  void withoutTheControlPlane_theSidecarKeepsServing_andReconnectsWhenItReturns() throws Exception {
    int xdsPort = PostgresServer.freePort();
    DatabaseRoute app = app(first);
    startPlane(xdsPort, app);
    startSidecar(Duration.ofSeconds(10));
    awaitServing();

    plane.close();
    plane = null;
    Thread.sleep(300);
    try (Connection c = viaSidecar()) {
      assertThat(serverPort(c)).as("last good configuration").isEqualTo(first.port());
    }
    assertThat(sidecar.connectedToControlPlane()).isFalse();

    startPlane(xdsPort, app);
    // A restarted control plane knows only the nodes that have reconnected since: wait for this one.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (plane.tracker().node("app-node-1").map(n -> n.ackedVersion(XdsType.EDS)).orElse(0L) == 0) {
      assertThat(System.nanoTime()).as("sidecar reconnected").isLessThan(deadline);
      Thread.sleep(20);
    }
    assertThat(sidecar.connectedToControlPlane()).isTrue();
    var result = plane.routing().route("app", new Endpoint("127.0.0.1", second.port())).get(15, TimeUnit.SECONDS);
    assertThat(result.ack().ackedBy()).containsExactly("app-node-1");
    try (Connection c = viaSidecar()) {
      assertThat(serverPort(c)).isEqualTo(second.port());
    }
  }

  @Test
  void countersAreServedAsPrometheusText() throws Exception {
    startPlane(0, app(first));
    startSidecar(Duration.ofSeconds(10));
    awaitServing();
    try (Connection c = viaSidecar()) {
      serverPort(c);
    }

    String body = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + sidecar.metricsPort().orElseThrow() + "/metrics")).build(),
        HttpResponse.BodyHandlers.ofString()).body();

    assertThat(body).contains("# TYPE turnout_sidecar_connections_total counter");
    assertThat(body).containsPattern("turnout_sidecar_connections_total\\{database=\"app\"} [2-9]");
    assertThat(body).containsPattern("turnout_sidecar_bytes_to_client_total\\{database=\"app\"} [1-9]\\d*");
  }

  @AfterEach
  void stop() throws Exception {
    if (sidecar != null) {
      sidecar.close();
    }
    if (plane != null) {
      plane.close();
    }
  }
}
