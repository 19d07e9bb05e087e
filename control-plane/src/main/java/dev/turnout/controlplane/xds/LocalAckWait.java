package dev.turnout.controlplane.xds;

import dev.turnout.envoy.DatabaseRoute;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The ACK wait of a control plane alone with its store: the sidecars connected to this process are all there
 * are, so a change waits for the {@link AckTracker} to see each of them ACK it, failing at the ACK deadline.
 */
public final class LocalAckWait implements AckWait {
  private final AckTracker tracker;
  private final ScheduledExecutorService scheduler;
  private final Duration ackTimeout;

  /** @param scheduler runs the deadlines (and the re-check once the reconnect grace is over); never blocked */
  public LocalAckWait(AckTracker tracker, ScheduledExecutorService scheduler, Duration ackTimeout) {
    this.tracker = tracker;
    this.scheduler = scheduler;
    this.ackTimeout = ackTimeout;
  }

  @Override
  public CompletableFuture<AckTracker.AckReport> await(DatabaseRoute route, long version) {
    CompletableFuture<AckTracker.AckReport> acks = tracker.awaitAck(route.name(), version, route::allows);
    long settle = tracker.untilSettled().toMillis();
    if (settle > 0) {
      // Waiters do not complete while restarted sidecars may still be reconnecting: look again once they had time.
      scheduler.schedule(tracker::reevaluate, settle + 1, TimeUnit.MILLISECONDS);
    }
    var timeout = scheduler.schedule(() -> tracker.expire(acks), ackTimeout.toMillis(), TimeUnit.MILLISECONDS);
    acks.whenComplete((r, e) -> timeout.cancel(false));
    return acks;
  }

  /** Nobody else waits for this process's sidecars. */
  @Override
  public void published(DatabaseRoute route, long version) {}
}
