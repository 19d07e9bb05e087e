package dev.turnout.controlplane.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.ListDatabasesRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.cli.Turnout;
import dev.turnout.controlplane.config.ConfigLoader;
import dev.turnout.controlplane.config.TurnoutConfig;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ConnectException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Where the admin API listens, as bound: without TLS only this machine reaches it (xDS stays where sidecars reach
 * it), unless the configuration says {@code insecure: true}, which the log then says loudly.
 */
class AdminBindingTest {
  @TempDir Path dir;

  private static final String CONFIG = """
      server:
        bind_address: 0.0.0.0
      %s
        xds_port: 0
        admin_port: 0
        http_port: 0
      store:
        directory: store
      databases:
        - name: orders
          port: 15432
          endpoint: 10.0.0.5:5432
      """;

  private TurnoutConfig config(String adminLines) throws Exception {
    return ConfigLoader.parse(CONFIG.formatted(adminLines), "turnout.yaml", dir);
  }

  @Test
  void byDefault_withoutTls_theAdminApiIsOnLoopbackOnly_whileXdsIsReachableFromTheNetwork() throws Exception {
    InetAddress host = nonLoopbackAddress();
    try (ControlPlane plane = ControlPlane.start(config(""))) {
      InetSocketAddress admin = plane.adminAddress();
      assertThat(admin.getAddress().isLoopbackAddress()).as("bound to " + admin).isTrue();
      assertThat(databases("127.0.0.1", plane.adminPort())).as("reachable here").isEqualTo(1);

      assumeTrue(host != null, "this machine has no non-loopback IPv4 address to try from");
      assertThatThrownBy(() -> new Socket(host, plane.adminPort()).close())
          .as("the admin port on " + host.getHostAddress()).isInstanceOf(ConnectException.class);
      try (Socket xds = new Socket(host, plane.xdsPort())) {
        assertThat(xds.isConnected()).as("sidecars reach xDS on " + host.getHostAddress()).isTrue();
      }
    }
  }

  @Test
  void withInsecureTrue_theAdminApiListensWhereAsked_andTheLogSaysSoLoudly() throws Exception {
    InetAddress host = nonLoopbackAddress();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream stderr = System.err;
    ControlPlane plane;
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      plane = ControlPlane.start(config("  admin_bind_address: 0.0.0.0\n  insecure: true"));
    } finally {
      System.setErr(stderr);
    }
    try (plane) {
      assertThat(plane.adminAddress().getAddress().isAnyLocalAddress()).isTrue();
      String address = "0.0.0.0:" + plane.adminPort();
      assertThat(err.toString(StandardCharsets.UTF_8).lines().filter(l -> l.contains("WARN")))
          .anySatisfy(l -> assertThat(l).contains("INSECURE: admin API (turnout.admin.v1.Admin) on " + address
              + " in plain text with no authentication (server.insecure: true)"));
      assumeTrue(host != null, "this machine has no non-loopback IPv4 address to try from");
      assertThat(databases(host.getHostAddress(), plane.adminPort())).isEqualTo(1);
    }
  }

  @Test
  void turnoutServer_refusesANonLoopbackAdminApiWithoutTls_withExit2_namingTheLine() throws Exception {
    Path file = dir.resolve("turnout.yaml");
    Files.writeString(file, CONFIG.formatted("  admin_bind_address: 0.0.0.0"));
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream stderr = System.err;
    int exit;
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      exit = Turnout.run("server", "-c", file.toString());
    } finally {
      System.setErr(stderr);
    }
    assertThat(exit).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8))
        .contains("line 3: server.admin_bind_address: 0.0.0.0 is not a loopback address and server.tls is not"
            + " configured");
    assertThat(dir.resolve("store")).as("nothing started").doesNotExist();
  }

  @Test
  void aConfigurationMadeInCode_isRefusedTheSameWay_beforeTheStoreIsOpened() {
    TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("0.0.0.0", 0,
        new TurnoutConfig.Admin("0.0.0.0", 0, false), 0, Optional.empty()), dir.resolve("store"),
        java.time.Duration.ofSeconds(1), com.google.common.collect.ImmutableList.of(),
        TurnoutConfig.MigratorSettings.DEFAULT);
    assertThatThrownBy(() -> ControlPlane.start(config)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("0.0.0.0 is not a loopback address");
    assertThat(dir.resolve("store")).doesNotExist();
  }

  private static int databases(String host, int port) {
    ManagedChannel channel = NettyChannelBuilder.forAddress(host, port).usePlaintext().build();
    try {
      return AdminGrpc.newBlockingStub(channel).withDeadlineAfter(10, java.util.concurrent.TimeUnit.SECONDS)
          .listDatabases(ListDatabasesRequest.getDefaultInstance()).getDatabasesCount();
    } finally {
      channel.shutdownNow();
    }
  }

  /** An IPv4 address of this machine's that is not loopback, or null. */
  private static InetAddress nonLoopbackAddress() throws Exception {
    for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
      if (!nic.isUp() || nic.isLoopback()) {
        continue;
      }
      for (InetAddress a : Collections.list(nic.getInetAddresses())) {
        if (a instanceof Inet4Address && !a.isLoopbackAddress() && !a.isLinkLocalAddress()) {
          return a;
        }
      }
    }
    return null;
  }
}
