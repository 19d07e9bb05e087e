package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.store.SharedRoutes;
import dev.turnout.envoy.DatabaseRoute;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ACK wait of one of several control-plane replicas sharing a store. Each replica serves its own sidecars:
 * for every version it publishes it waits for them ({@link LocalAckWait}) and reports the outcome in the store;
 * the replica that made a change waits for every live replica's report, failing with the first that failed.
 */
public final class ReplicaAckWait implements AckWait {
  private static final Logger log = LoggerFactory.getLogger(ReplicaAckWait.class);

  /** How much longer than the ACK timeout a change waits for replicas that learn it from the store. */
  private static final Duration REPORT_MARGIN = Duration.ofSeconds(10);

  private final SharedRoutes replicas;
  private final AckWait ownSidecars;
  private final Executor callbacks;
  private final Duration ackTimeout;

  /**
   * @param ownSidecars the wait for this replica's own sidecars, whose outcome it reports
   * @param callbacks where reports are written: a store that hangs must not hold up the ACK tracker's thread
   */
  public ReplicaAckWait(SharedRoutes replicas, AckWait ownSidecars, Executor callbacks, Duration ackTimeout) {
    this.replicas = replicas;
    this.ownSidecars = ownSidecars;
    this.callbacks = callbacks;
    this.ackTimeout = ackTimeout;
  }

  @Override
  public CompletableFuture<AckTracker.AckReport> await(DatabaseRoute route, long version) {
    long started = System.nanoTime();
    // Every live replica reports its own sidecars; the ones that learn the change later get the time to.
    return replicas.awaitReports(route.name(), version, ackTimeout.plus(REPORT_MARGIN))
        .thenApply(nodes -> new AckTracker.AckReport(route.name(), version, nodes,
            Duration.ofNanos(System.nanoTime() - started)));
  }

  /** Waits for this replica's own sidecars to ACK {@code version} of {@code route} and reports it. */
  @Override
  public void published(DatabaseRoute route, long version) {
    ownSidecars.await(route, version).whenCompleteAsync((report, error) -> {
      try {
        if (error == null) {
          replicas.report(route.name(), version, report.ackedBy(), "");
        } else {
          Throwable cause = error instanceof CompletionException ? error.getCause() : error;
          replicas.report(route.name(), version, ImmutableList.of(), "replica's " + cause.getMessage());
        }
      } catch (RuntimeException e) {
        log.warn("database {}: cannot report the ACKs of version {}: {}", route.name(), version, e.getMessage());
      }
    }, callbacks);
  }
}
