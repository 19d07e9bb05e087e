package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.common.collect.ImmutableList;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.store.StoreException;
import dev.turnout.controlplane.xds.XdsType;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane's store on a real, small file system (a 512 KiB tmpfs, mounted for the test; it needs
 * root and is skipped without it) that fills up: changes are refused with the reason, nothing half-written is
 * journaled or served, and everything works again once there is room.
 */
class StoreFullTest {
  @TempDir Path dir;
  Path store;
  ControlPlane plane;
  ManagedChannel channel;

  @BeforeEach
  void mount() throws Exception {
    store = dir.resolve("store");
    Files.createDirectories(store);
    Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", store.toString())
        .redirectErrorStream(true).start();
    String out = new String(mount.getInputStream().readAllBytes());
    assumeTrue(mount.waitFor() == 0, "cannot mount a small tmpfs here (needs root): " + out);
  }

  @AfterEach
  void unmount() throws Exception {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (plane != null) {
      plane.close();
    }
    new ProcessBuilder("umount", "-l", store.toString()).start().waitFor();
  }

  private ControlPlane start() throws Exception {
    return ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0), store,
        Duration.ofSeconds(10), ImmutableList.of(new DatabaseRoute("app", PostgresServer.freePort(),
            Optional.of(Endpoint.parse("127.0.0.1:5432")), Set.of())), TurnoutConfig.MigratorSettings.DEFAULT));
  }

  /** Writes until the file system says it is full; returns the file to delete to make room. */
  private Path fill() throws IOException {
    Path filler = store.resolve("filler");
    try (OutputStream out = Files.newOutputStream(filler)) {
      byte[] chunk = new byte[16 * 1024];
      while (true) {
        out.write(chunk);
        out.flush();
      }
    } catch (IOException full) {
      assertThat(full.getMessage()).contains("No space left on device");
    }
    return filler;
  }

  @Test
  void aFullStore_refusesChanges_sayingWhy_servesTheLastRoute_andRecoversWhenThereIsRoom() throws Exception {
    plane = start();
    channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort()).usePlaintext().build();
    new SimulatedSidecar(channel, "app-1", "app");
    long initial = plane.routing().version();
    Eventually.until("the node to ACK", Duration.ofSeconds(10), () -> plane.tracker().node("app-1")
        .map(n -> n.ackedVersion(XdsType.EDS) >= initial).orElse(false));
    Path filler = fill();

    // The journal's last page may still have room for a few lines: change until the file system refuses.
    StoreException refused = null;
    for (int i = 0; i < 200 && refused == null; i++) {
      try {
        plane.routing().route("app", Endpoint.parse("127.0.0.1:" + (5433 + i % 2))).get(10, TimeUnit.SECONDS);
      } catch (StoreException e) {
        refused = e;
      }
    }
    assertThat(refused).as("a change refused for want of room").isNotNull();
    assertThat(refused.getMessage()).contains("No space left on device");
    long version = plane.routing().version();
    Endpoint served = plane.routing().table().get("app").orElseThrow().endpoint().orElseThrow();
    assertThatThrownBy(() -> plane.routing().route("app", Endpoint.parse("127.0.0.1:6543")))
        .isInstanceOf(StoreException.class).hasMessageContaining("No space left on device");
    assertThatThrownBy(() -> AdminGrpc.newBlockingStub(NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort())
        .usePlaintext().build()).startMigration(StartMigrationRequest.newBuilder().setDatabase("app")
            .setTarget("127.0.0.1:6543").build()))
        .isInstanceOf(StatusRuntimeException.class).hasMessageContaining("UNAVAILABLE")
        .hasMessageContaining("No space left on device");
    assertThat(plane.routing().version()).as("no version was published").isEqualTo(version);
    assertThat(plane.routing().table().get("app").orElseThrow().endpoint()).contains(served);
    assertThat(plane.tracker().node("app-1").orElseThrow().types().get(XdsType.EDS).sentVersion())
        .as("the sidecar was sent nothing new").isEqualTo(version);
    assertThat(plane.migrator().list()).isEmpty();

    Files.delete(filler);
    plane.routing().route("app", Endpoint.parse("127.0.0.1:6543")).get(10, TimeUnit.SECONDS);
    assertThat(plane.routing().version()).isGreaterThan(version);

    plane.close();
    plane = start();
    assertThat(plane.routing().table().get("app").orElseThrow().endpoint())
        .as("the journal reopens whole, with the change made after the room came back")
        .contains(Endpoint.parse("127.0.0.1:6543"));
  }

}
