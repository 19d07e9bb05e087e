package dev.turnout.migrator;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The routing side as a test scripts it: each change is journalled and, by default, ACKed at once; a change the
 * test {@link #hold}s returns a future the test completes (or fails, as a NACK), or never does.
 */
final class ScriptedRouter implements Router {
  private final Journal journal;
  /** Guarded by this: changes to hold, by their journal line, and the futures handed out for them. */
  private final Map<String, CompletableFuture<Void>> held = new HashMap<>();
  private final Map<String, String> endpoints = new HashMap<>();

  ScriptedRouter(Journal journal) {
    this.journal = journal;
  }

  /** The next change journalled as {@code line} (e.g. {@code "drain app"}) waits for the returned future. */
  synchronized CompletableFuture<Void> hold(String line) {
    return held.computeIfAbsent(line, l -> new CompletableFuture<>());
  }

  /** The next change journalled as {@code line} is NACKed by a sidecar. */
  synchronized void nack(String line, String why) {
    hold(line).completeExceptionally(new IllegalStateException(why));
  }

  /** Where {@code database} is routed now: an endpoint, "drained", or null if never changed. */
  synchronized String endpoint(String database) {
    return endpoints.get(database);
  }

  @Override
  public synchronized CompletableFuture<Void> route(String database, ServerAddress endpoint) {
    return change("route " + database + " to " + endpoint, database, endpoint.toString());
  }

  @Override
  public synchronized CompletableFuture<Void> drain(String database) {
    return change("drain " + database, database, "drained");
  }

  private CompletableFuture<Void> change(String line, String database, String endpoint) {
    journal.add(line);
    endpoints.put(database, endpoint);
    CompletableFuture<Void> f = held.remove(line);
    return f != null ? f : CompletableFuture.completedFuture(null);
  }
}
