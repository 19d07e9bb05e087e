package dev.turnout.controlplane.xds;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import io.envoyproxy.envoy.config.core.v3.Node;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A control plane alone with its store waits for its own sidecars, as its {@link AckTracker} sees them. */
class LocalAckWaitTest {
  private static final DatabaseRoute ORDERS =
      new DatabaseRoute("orders", 16432, Optional.of(Endpoint.parse("10.0.0.2:5432")), Set.of());

  private final ScheduledThreadPoolExecutor scheduler = new ScheduledThreadPoolExecutor(1);

  LocalAckWaitTest() {
    scheduler.setRemoveOnCancelPolicy(true);
  }

  @AfterEach
  void stop() {
    scheduler.shutdownNow();
  }

  /** Sidecar {@code node} on stream {@code stream}, subscribed to orders' endpoints and sent {@code version}. */
  private static void subscribedAndSent(AckTracker tracker, long stream, String node, long version) {
    tracker.onRequest(stream, Node.newBuilder().setId(node).setCluster("checkout").build(), XdsType.EDS, false,
        Set.of("orders"), "", "");
    tracker.onResponse(stream, XdsType.EDS, version, "nonce-" + version);
  }

  private static void acks(AckTracker tracker, long stream, String node, long version) {
    tracker.onRequest(stream, Node.newBuilder().setId(node).setCluster("checkout").build(), XdsType.EDS, false,
        Set.of("orders"), "nonce-" + version, "");
  }

  @Test
  void aChangeEverySidecarAcks_completesNamingThem_andItsDeadlineIsCancelled() throws Exception {
    AckTracker tracker = new AckTracker(Clock.systemUTC());
    subscribedAndSent(tracker, 1, "checkout-1", 5);
    subscribedAndSent(tracker, 2, "checkout-2", 5);
    var acked = new LocalAckWait(tracker, scheduler, Duration.ofMinutes(1)).await(ORDERS, 5);
    assertThat(acked).isNotDone();
    assertThat(scheduler.getQueue()).as("the deadline").hasSize(1);

    acks(tracker, 1, "checkout-1", 5);
    acks(tracker, 2, "checkout-2", 5);

    AckTracker.AckReport report = acked.get(5, TimeUnit.SECONDS);
    assertThat(report.database()).isEqualTo("orders");
    assertThat(report.version()).isEqualTo(5);
    assertThat(report.ackedBy()).containsExactly("checkout-1", "checkout-2");
    assertThat(scheduler.getQueue()).as("the deadline, cancelled").isEmpty();
  }

  @Test
  void aSidecarThatDoesNotAnswer_failsTheChangeAtTheDeadline_namingIt() {
    AckTracker tracker = new AckTracker(Clock.systemUTC());
    subscribedAndSent(tracker, 1, "checkout-1", 5);
    subscribedAndSent(tracker, 2, "checkout-2", 5);
    acks(tracker, 1, "checkout-1", 5);

    var acked = new LocalAckWait(tracker, scheduler, Duration.ofMillis(100)).await(ORDERS, 5);

    assertThatThrownBy(() -> acked.get(5, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
        .cause().isInstanceOf(RouteNotAcknowledgedException.class)
        .hasMessageContaining("within the deadline").hasMessageContaining("checkout-2")
        .hasMessageNotContaining("checkout-1");
  }

  @Test
  void whileSidecarsMayStillBeReconnecting_aChangeCompletesOnlyOnceTheGraceIsOver() throws Exception {
    AckTracker tracker = new AckTracker(Clock.systemUTC(), Duration.ofMillis(300));
    subscribedAndSent(tracker, 1, "checkout-1", 5);
    acks(tracker, 1, "checkout-1", 5);

    var acked = new LocalAckWait(tracker, scheduler, Duration.ofMinutes(1)).await(ORDERS, 5);

    assertThat(acked).as("a sidecar of the control plane's previous run may not be back yet").isNotDone();
    assertThat(acked.get(5, TimeUnit.SECONDS).ackedBy()).containsExactly("checkout-1");
  }

  @Test
  void publishing_tellsNobody() {
    AckTracker tracker = new AckTracker(Clock.systemUTC());
    subscribedAndSent(tracker, 1, "checkout-1", 5);

    new LocalAckWait(tracker, scheduler, Duration.ofMinutes(1)).published(ORDERS, 5);

    assertThat(scheduler.getQueue()).as("no wait started").isEmpty();
  }
}
