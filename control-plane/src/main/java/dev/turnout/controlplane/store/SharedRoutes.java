package dev.turnout.controlplane.store;

import com.google.common.collect.ImmutableList;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * The routing side of a store several control-plane replicas share. Each replica serves its own sidecars: it
 * learns every change (a notification, and a periodic re-read so a lost one only delays), waits for its own
 * sidecars' ACKs and reports the outcome; the replica that made a change waits for every live replica's report.
 */
public interface SharedRoutes {

  /** Calls {@code listener} when the routing table may have changed elsewhere (and now and then regardless). */
  void onChange(Runnable listener);

  /**
   * Records what this replica's sidecars did with {@code version} of {@code database}: ACKed by {@code nodes},
   * or failed ({@code failure} not empty: the stragglers and their errors).
   */
  void report(String database, long version, ImmutableList<String> nodes, String failure);

  /** One replica's latest report on one database, for operators. */
  record Report(String replica, boolean live, String database, long version, ImmutableList<String> ackedBy,
      String failure) {}

  /** This replica's name in the store. */
  String replicaId();

  /** Every replica's latest report per database, live ones first. */
  ImmutableList<Report> reports() throws StoreException;

  /** One sidecar as the replica it is connected to last published it, for operators. */
  record NodeRow(String replica, boolean live, String node, String cluster, boolean connected,
      ImmutableList<TypeRow> types) {}

  /** What one sidecar did with one resource type: versions sent and ACKed, its last NACK (none: empty error). */
  record TypeRow(String type, long sentVersion, long ackedVersion, String nackError, long nackedVersion) {}

  /** Replaces the sidecars this replica has published with {@code nodes} (their replica and live are ignored). */
  void publishNodes(java.util.List<NodeRow> nodes) throws StoreException;

  /** Every replica's published sidecars, live replicas first; a gone replica's are as it last published them. */
  ImmutableList<NodeRow> nodes() throws StoreException;

  /** Live replicas' reports at {@code version} or later: completes with every node that ACKed, fails naming the rest. */
  CompletableFuture<ImmutableList<String>> awaitReports(String database, long version, Duration timeout);

  /**
   * Replaces this process's sidecar counter totals by database (connect failures, hold timeouts, nodes reporting
   * now) with {@code totals}; {@code incarnation} tells this process's rows from an earlier one's of this replica.
   */
  void publishSidecarCounters(String incarnation,
      java.util.Map<String, dev.turnout.migrator.bake.Workload.Sidecars> totals) throws StoreException;

  /**
   * Every replica's sidecar counters over {@code databases} but {@code incarnation}'s (the caller's own, which it
   * reads fresher itself): the sums over every row, a gone replica's included (its share stays), and the nodes
   * live replicas report; empty when no row names these databases.
   */
  java.util.Optional<dev.turnout.migrator.bake.Workload.Sidecars> sidecarCounters(
      java.util.Collection<String> databases, String incarnation) throws StoreException;
}
