package dev.turnout.controlplane;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.controlplane.store.StoreException;
import dev.turnout.envoy.Endpoint;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** After a restart the control plane serves what the store says, and its versions keep increasing. */
class RestartTest {
  @TempDir Path dir;

  @Test
  void aRoutedDatabase_keepsItsNewEndpointAcrossARestart_andVersionsKeepIncreasing() throws Exception {
    var config = TestConfigs.config(dir, Duration.ofSeconds(5), List.of(
        database("orders", 15432, "10.0.0.5:5432"), database("ledger", 15433, "10.0.0.7:5432")));
    long versionBeforeStop;
    try (ControlPlane first = ControlPlane.start(config)) {
      first.routing().route("orders", Endpoint.parse("10.0.0.6:5432")).get(5, TimeUnit.SECONDS);
      versionBeforeStop = first.routing().version();
    }

    try (ControlPlane second = ControlPlane.start(config)) {
      assertThat(second.routing().table().get("orders").orElseThrow().endpoint())
          .as("the store, not the config file, decides the endpoint").contains(Endpoint.parse("10.0.0.6:5432"));
      assertThat(second.routing().table().get("ledger").orElseThrow().endpoint())
          .contains(Endpoint.parse("10.0.0.7:5432"));
      assertThat(second.routing().version()).isGreaterThan(versionBeforeStop);
      long afterRestart = second.routing().version();
      var result = second.routing().drain("orders").get(5, TimeUnit.SECONDS);
      assertThat(result.version()).isGreaterThan(afterRestart);
    }
  }

  @Test
  void aRestartWithoutAnyChange_stillNeverReusesAVersion() throws Exception {
    var config = TestConfigs.config(dir, Duration.ofSeconds(5), List.of(database("orders", 15432, "10.0.0.5:5432")));
    long first;
    try (ControlPlane plane = ControlPlane.start(config)) {
      first = plane.routing().version();
    }
    try (ControlPlane plane = ControlPlane.start(config)) {
      assertThat(plane.routing().version()).isGreaterThan(first);
    }
  }

  @Test
  void aDatabaseAddedToTheConfig_isSeeded_whileExistingOnesKeepTheirStoredEndpoint() throws Exception {
    try (ControlPlane plane = ControlPlane.start(TestConfigs.config(dir, Duration.ofSeconds(5),
        List.of(database("orders", 15432, "10.0.0.5:5432"))))) {
      plane.routing().route("orders", Endpoint.parse("10.0.0.6:5432")).get(5, TimeUnit.SECONDS);
    }
    try (ControlPlane plane = ControlPlane.start(TestConfigs.config(dir, Duration.ofSeconds(5), List.of(
        database("orders", 15440, "10.0.0.5:5432", "checkout"), database("ledger", 15433, "10.0.0.7:5432"))))) {
      var orders = plane.routing().table().get("orders").orElseThrow();
      assertThat(orders.endpoint()).contains(Endpoint.parse("10.0.0.6:5432"));
      assertThat(orders.listenPort()).as("listener settings come from the config").isEqualTo(15440);
      assertThat(orders.services()).containsExactly("checkout");
      assertThat(plane.routing().table().get("ledger").orElseThrow().endpoint())
          .contains(Endpoint.parse("10.0.0.7:5432"));
    }
  }

  @Test
  void aRouteRightAfterAStart_waitsTheReconnectGrace_andCountsASidecarThatComesBackDuringIt() throws Exception {
    var config = TestConfigs.config(dir, Duration.ofSeconds(10), List.of(database("orders", 15432, "10.0.0.5:5432")))
        .withReconnectGrace(Duration.ofMillis(1500));
    try (ControlPlane plane = ControlPlane.start(config)) {
      long start = System.nanoTime();
      var change = plane.routing().route("orders", Endpoint.parse("10.0.0.6:5432"));
      Thread.sleep(300);
      assertThat(change).as("no sidecar yet, but the grace is not over").isNotDone();
      try (var returning = dev.turnout.controlplane.xds.AdsTestClientAccess.connect(plane.xdsPort(), "back-1", "svc")) {
        var result = change.get(10, TimeUnit.SECONDS);
        assertThat(result.ack().ackedBy()).containsExactly("back-1");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(1400));
      }
    }
  }

  @Test
  void twoProcessesCannotShareADataDirectory() throws Exception {
    var config = TestConfigs.config(dir, Duration.ofSeconds(5), List.of(database("orders", 15432, "10.0.0.5:5432")));
    try (ControlPlane plane = ControlPlane.start(config)) {
      assertThatThrownBy(() -> ControlPlane.start(config))
          .isInstanceOf(StoreException.class)
          .hasMessageContaining("in use by another turnout process");
    }
  }
}
