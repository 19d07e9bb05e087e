package dev.turnout.controlplane.xds;

import dev.turnout.controlplane.store.RouteRecord;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.controlplane.store.SharedRoutes;
import dev.turnout.controlplane.store.StoreException;

/**
 * The feed of one of several replicas sharing a store: the table is re-read, in one snapshot, whenever the store
 * announces a change, before this replica decides on one and after it records one, so every replica publishes
 * under a version exactly the records up to it.
 */
public final class ReplicaRouteFeed implements RouteFeed {
  private final RouteStore store;
  private final SharedRoutes replicas;

  public ReplicaRouteFeed(RouteStore store, SharedRoutes replicas) {
    this.store = store;
    this.replicas = replicas;
  }

  @Override
  public RouteStore.State recordedElsewhere() throws StoreException {
    return store.load();
  }

  /** The whole store: changes other replicas recorded just before this one are published with it. */
  @Override
  public RouteStore.State afterRecording(java.util.List<RouteRecord> recorded) throws StoreException {
    return store.load();
  }

  @Override
  public void onChange(Runnable listener) {
    replicas.onChange(listener);
  }
}
