package dev.turnout.migrator;

import com.google.common.collect.ImmutableSet;
import java.util.HashMap;
import java.util.List;
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

  /** A database routed to {@code endpoint} outside the migration (by hand), journalled as nothing. */
  synchronized void routeByHand(String database, ServerAddress endpoint) {
    endpoints.put(database, endpoint.toString());
  }

  @Override
  public synchronized CompletableFuture<Void> route(List<String> databases, ServerAddress endpoint) {
    return change("route " + String.join(", ", databases) + " to " + endpoint, databases, endpoint.toString());
  }

  @Override
  public synchronized CompletableFuture<Void> drain(List<String> databases) {
    return change("drain " + String.join(", ", databases), databases, "drained");
  }

  @Override
  public synchronized ImmutableSet<String> routedTo(ServerAddress server) {
    return endpoints.entrySet().stream().filter(e -> e.getValue().equals(server.toString())).map(Map.Entry::getKey)
        .collect(ImmutableSet.toImmutableSet());
  }

  private CompletableFuture<Void> change(String line, List<String> databases, String endpoint) {
    journal.add(line);
    databases.forEach(d -> endpoints.put(d, endpoint));
    CompletableFuture<Void> f = held.remove(line);
    return f != null ? f : CompletableFuture.completedFuture(null);
  }
}
