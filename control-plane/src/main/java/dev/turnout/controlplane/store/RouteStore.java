package dev.turnout.controlplane.store;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import java.time.Instant;
import java.util.Optional;

/** The durable home of the routing table: a change is recorded here before it is published to sidecars. */
public interface RouteStore extends AutoCloseable {

  /** What the store holds: each database's latest record, and the highest version ever handed out. */
  record State(ImmutableMap<String, RouteRecord> routes, long highestVersion) {}

  /** Who may make a change: any replica (an operator's route), or only the migration leader (a migration step). */
  enum Writer { ANY_REPLICA, LEADER }

  State load() throws StoreException;

  /**
   * Durably records {@code record} before returning, and returns the version it was recorded under: the
   * record's own in a store one process owns; in a store several replicas share, the next version of the shared
   * sequence (the record's is ignored), so versions rise in the order changes were recorded. A change for the
   * {@link Writer#LEADER} is refused, changing nothing, unless this replica still holds the leadership.
   */
  long append(RouteRecord record, Writer writer) throws StoreException;

  default long append(RouteRecord record) throws StoreException {
    return append(record, Writer.ANY_REPLICA);
  }

  /**
   * Durably records every one of {@code records}, in order, or none of them (a store that cannot promise that
   * records a prefix: what is durable was never published, since publishing waits for this to return), and returns
   * the version each was recorded under, as {@link #append} does for one. Concurrent route changes are journaled
   * together this way: one disk flush, or one transaction, for all of them.
   */
  default java.util.List<Long> appendAll(java.util.List<RouteRecord> records, Writer writer) throws StoreException {
    java.util.List<Long> versions = new java.util.ArrayList<>(records.size());
    for (RouteRecord r : records) {
      versions.add(append(r, writer));
    }
    return versions;
  }

  /**
   * Durably reserves a version above every version handed out so far (at least {@code version}), so a process
   * that publishes without a route change (at start) never reuses a version an earlier one published. Returns it.
   */
  long reserveVersion(long version) throws StoreException;

  /**
   * One entry of a database's route history: the record, and when the store recorded it (empty for records
   * written before the store kept the time).
   */
  record Recorded(RouteRecord record, Optional<Instant> at) {}

  /**
   * {@code database}'s changes, newest first: at most {@code limit} of those below {@code beforeVersion} (every
   * one when it is {@link Long#MAX_VALUE}), so a caller pages back by passing the oldest version it got.
   */
  ImmutableList<Recorded> history(String database, long beforeVersion, int limit) throws StoreException;

  /** Where the admin API's writes are recorded: in this same store, so they live and move with it. */
  AuditLog audit() throws StoreException;

  @Override
  void close() throws StoreException;
}
