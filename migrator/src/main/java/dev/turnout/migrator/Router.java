package dev.turnout.migrator;

import java.util.concurrent.CompletableFuture;

/**
 * The routing side of a migration, implemented by the control plane: each future completes when every sidecar
 * subscribed to the database has ACKed the change, and fails naming the stragglers otherwise. Both calls are
 * idempotent: routing to the current endpoint only waits for the ACKs again.
 */
public interface Router {
  CompletableFuture<Void> route(String database, ServerAddress endpoint);

  CompletableFuture<Void> drain(String database);
}
