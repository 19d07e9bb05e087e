package dev.turnout.controlplane.xds;

import dev.turnout.controlplane.store.RouteRecord;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.controlplane.store.StoreException;

/**
 * What of the store {@link RoutingService} takes into its table beyond what it decided itself: nothing when this
 * process is the store's only writer ({@link LocalRouteFeed}); when several replicas share the store
 * ({@link ReplicaRouteFeed}), the store as it is now, since other replicas record changes in it too.
 */
public interface RouteFeed {

  /** The records to take into the table before deciding on a change, so it is decided on what the store says now. */
  RouteStore.State recordedElsewhere() throws StoreException;

  /**
   * The records to take into the table (and publish, as one version) once this process recorded {@code recorded}:
   * those, or every one the store holds up to now, so a version names the same table on every replica.
   */
  RouteStore.State afterRecording(java.util.List<RouteRecord> recorded) throws StoreException;

  /** Calls {@code listener} when the table may have changed elsewhere (and now and then regardless); alone, never. */
  void onChange(Runnable listener);
}
