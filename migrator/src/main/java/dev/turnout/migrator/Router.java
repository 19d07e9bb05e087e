package dev.turnout.migrator;

import com.google.common.collect.ImmutableSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The routing side of a migration, implemented by the control plane: each future completes when every sidecar
 * subscribed to the databases has ACKed the change, and fails naming the stragglers otherwise. A change of several
 * databases is published to the sidecars as one version. Both changes are idempotent: routing to the current
 * endpoint only waits for the ACKs again.
 */
public interface Router {
  CompletableFuture<Void> route(List<String> databases, ServerAddress endpoint);

  CompletableFuture<Void> drain(List<String> databases);

  /** The databases routed to {@code server} now (by its address, or a name that resolved to it). */
  ImmutableSet<String> routedTo(ServerAddress server) throws MigrationException;
}
