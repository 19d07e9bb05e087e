package dev.turnout.controlplane.xds;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.TestConfigs;
import dev.turnout.migrator.bake.Workload;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The built-in sidecar's stats sink, end to end over real sockets: a database whose server refuses connections makes
 * the sidecar's connect failures rise, and the control plane counts them for that database.
 */
class SidecarStatsSinkTest {
  @TempDir Path dir;

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(20);
    }
  }

  @Test
  void aServerThatRefusesTheSidecarsConnections_raisesItsDatabasesConnectFailuresAtTheControlPlane()
      throws Exception {
    int refusing = freePort(); // nothing listens there
    try (ControlPlane plane = ControlPlane.start(TestConfigs.config(dir, Duration.ofSeconds(5), List.of(
        database("orders", freePort(), "127.0.0.1:" + refusing, "checkout"))));
        Sidecar sidecar = Sidecar.start(SidecarConfig.of("127.0.0.1", plane.xdsPort(), "checkout-1", "checkout")
            .withStatsFlushInterval(Duration.ofMillis(200)))) {
      SidecarStats stats = plane.xds().sidecarStats();
      await("the sidecar's listener and its first flush",
          () -> sidecar.listenAddress("orders").isPresent() && !stats.nodes().isEmpty());
      assertThat(stats.read(List.of("orders"))).contains(new Workload.Sidecars(0, 0, 1));

      InetSocketAddress proxy = sidecar.listenAddress("orders").get();
      for (int i = 0; i < 3; i++) {
        try (Socket client = new Socket(proxy.getAddress(), proxy.getPort())) {
          client.setSoTimeout(5000);
          // A PostgreSQL StartupMessage (protocol 3.0, user postgres), as a client's first bytes.
          byte[] params = "user\0postgres\0\0".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
          client.getOutputStream().write(java.nio.ByteBuffer.allocate(8 + params.length).putInt(8 + params.length)
              .putInt(196608).put(params).array());
          InputStream in = client.getInputStream();
          while (in.read() >= 0) {
            // the sidecar answers with an error and closes
          }
        }
      }

      await("three connect failures counted", () -> stats.read(List.of("orders"))
          .equals(Optional.of(new Workload.Sidecars(3, 0, 1))));
      assertThat(stats.nodes()).containsExactly(new SidecarStats.NodeCounters("checkout-1", "checkout", "orders", 3, 0));
    }
  }
}
