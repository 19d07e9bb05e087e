package dev.turnout.controlplane.store;

import com.google.common.collect.ImmutableMap;

/** The durable home of the routing table: a change is recorded here before it is published to sidecars. */
public interface RouteStore extends AutoCloseable {

  /** What the store holds: each database's latest record, and the highest version ever handed out. */
  record State(ImmutableMap<String, RouteRecord> routes, long highestVersion) {}

  State load() throws StoreException;

  /** Durably records {@code record} (fsynced) before returning. */
  void append(RouteRecord record) throws StoreException;

  /**
   * Durably reserves a version above every version handed out so far, so a process that publishes
   * without a route change (at start) never reuses a version an earlier process published.
   */
  void reserveVersion(long version) throws StoreException;

  @Override
  void close() throws StoreException;
}
