package dev.turnout.controlplane.xds;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.collect.ImmutableSet;
import io.envoyproxy.envoy.config.core.v3.Node;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;

/** What the tracker remembers of sidecars that come and go, on a clock the test moves. */
class AckTrackerTest {

  /** A clock that moves only when told. */
  static final class TestClock extends Clock {
    Instant now = Instant.parse("2026-12-01T00:00:00Z");

    @Override public java.time.ZoneId getZone() { return ZoneOffset.UTC; }
    @Override public Clock withZone(java.time.ZoneId zone) { return this; }
    @Override public Instant instant() { return now; }
  }

  private static void connect(AckTracker tracker, long stream, String node) {
    tracker.onRequest(stream, Node.newBuilder().setId(node).setCluster("app").build(), XdsType.CDS, true,
        ImmutableSet.of(), "", "");
  }

  @Test
  void aSidecarGoneLongerThanTheLimit_isForgotten_andCounted_whileOneThatCameBackIsKept() {
    TestClock clock = new TestClock();
    AckTracker tracker = new AckTracker(clock);
    connect(tracker, 1, "pod-a");
    connect(tracker, 2, "pod-b");
    connect(tracker, 3, "pod-c");
    tracker.onStreamClosed(1);
    tracker.onStreamClosed(2);
    clock.now = clock.now.plus(Duration.ofMinutes(9));
    connect(tracker, 4, "pod-b"); // came back on a new stream

    assertThat(tracker.forgetDisconnected(Duration.ofMinutes(10))).isZero();
    clock.now = clock.now.plus(Duration.ofMinutes(2));
    assertThat(tracker.forgetDisconnected(Duration.ofMinutes(10))).isEqualTo(1);

    assertThat(tracker.nodes()).extracting(NodeStatus::nodeId).containsExactly("pod-b", "pod-c");
    assertThat(tracker.counts()).isEqualTo(new AckTracker.NodeCounts(2, 0, 1));
  }

  @Test
  void aSidecarWithAnOpenStream_isNeverForgotten() {
    TestClock clock = new TestClock();
    AckTracker tracker = new AckTracker(clock);
    connect(tracker, 1, "pod-a");
    clock.now = clock.now.plus(Duration.ofDays(3));

    assertThat(tracker.forgetDisconnected(Duration.ofMinutes(10))).isZero();
    assertThat(tracker.counts()).isEqualTo(new AckTracker.NodeCounts(1, 0, 0));
  }
}
