package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableList;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.turnout.envoy.EnvoyResources;
import dev.turnout.envoy.RoutingTable;
import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns the routing table into one java-control-plane snapshot per service (node group: the node's
 * {@code cluster}), each holding only the databases that service may reach.
 *
 * <p>Each resource type of a group keeps its version until its content changes, so a change of one database's
 * endpoint sends sidecars an EDS update only, under the new global version. Versions only grow, so "ACKed
 * version at or above V" means "has the content published at V".
 */
public final class SnapshotPublisher {

  private final SimpleCache<String> cache;
  private final Object lock = new Object();

  @GuardedBy("lock")
  private RoutingTable table = RoutingTable.EMPTY;

  @GuardedBy("lock")
  private long version;

  @GuardedBy("lock")
  private final Map<String, Published> groups = new HashMap<>();

  private record Published(EnvoyResources.Bundle bundle, long listeners, long clusters, long endpoints) {}

  public SnapshotPublisher(SimpleCache<String> cache) {
    this.cache = cache;
  }

  /** Publishes {@code newTable} to every known group; content that changed gets {@code newVersion}. */
  public void publish(RoutingTable newTable, long newVersion) {
    synchronized (lock) {
      if (newVersion <= version) {
        throw new IllegalArgumentException("version " + newVersion + " is not above the published " + version);
      }
      table = newTable;
      version = newVersion;
      for (String group : List.copyOf(groups.keySet())) {
        publishGroup(group);
      }
    }
  }

  /** Makes sure a group seen for the first time (a new service connecting) has a snapshot. */
  public void ensureGroup(String group) {
    synchronized (lock) {
      if (version > 0 && !groups.containsKey(group)) {
        publishGroup(group);
      }
    }
  }

  @GuardedBy("lock")
  private void publishGroup(String group) {
    EnvoyResources.Bundle bundle = EnvoyResources.translate(table.forService(group));
    Published previous = groups.get(group);
    long listeners = previous != null && previous.bundle.listeners().equals(bundle.listeners())
        ? previous.listeners : version;
    long clusters = previous != null && previous.bundle.clusters().equals(bundle.clusters())
        ? previous.clusters : version;
    long endpoints = previous != null && previous.bundle.loadAssignments().equals(bundle.loadAssignments())
        ? previous.endpoints : version;
    Published published = new Published(bundle, listeners, clusters, endpoints);
    groups.put(group, published);
    if (previous != null && previous.equals(published)) {
      return;
    }
    cache.setSnapshot(group, Snapshot.create(
        bundle.clusters(), Long.toString(clusters),
        bundle.loadAssignments(), Long.toString(endpoints),
        bundle.listeners(), Long.toString(listeners),
        ImmutableList.of(), "0",
        ImmutableList.of(), "0"));
  }

  public long version() {
    synchronized (lock) {
      return version;
    }
  }

  public RoutingTable table() {
    synchronized (lock) {
      return table;
    }
  }
}
