package dev.turnout.controlplane.xds;

import dev.turnout.envoy.DatabaseRoute;
import java.util.concurrent.CompletableFuture;

/**
 * How a route change waits for the sidecars to ACK it: this process's own sidecars ({@link LocalAckWait}) when it
 * is the only control plane, or every live replica's when several share a store ({@link ReplicaAckWait}), each
 * replica reporting its own.
 */
public interface AckWait {

  /**
   * Completes when every sidecar subscribed to {@code route}'s database has ACKed {@code version} (or a later
   * one), with who did; fails at the deadline, or when one rejects it, naming the stragglers.
   */
  CompletableFuture<AckTracker.AckReport> await(DatabaseRoute route, long version);

  /**
   * This process now serves {@code version} of {@code route}: where other replicas wait for this one's sidecars,
   * it waits for them and reports what they did. Returns at once. Alone, there is no one to tell.
   */
  void published(DatabaseRoute route, long version);
}
