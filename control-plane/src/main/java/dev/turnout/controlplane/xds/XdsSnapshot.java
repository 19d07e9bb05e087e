package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import com.google.protobuf.Any;
import com.google.protobuf.Message;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.EnvoyResources;
import dev.turnout.envoy.RoutingTable;
import java.util.Collection;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * The xDS resources of one routing-table version: every database's Listener, Cluster and ClusterLoadAssignment
 * (each named after the database), each with the version at which its content last changed.
 *
 * <p>There is one snapshot for the whole fleet, not one per service: a stream filters it by its node's service
 * ({@link Entry#visibleTo}), so a thousand distinct {@code node.cluster} values cost nothing here. Resource
 * versions only grow, so "a node has version V of a resource" means it has the content published at V.
 */
final class XdsSnapshot {

  /** One resource as served, with the route it came from (whose services decide who may see it). */
  record Entry(String name, Message message, Any resource, long version, DatabaseRoute route) {
    boolean visibleTo(String service) {
      return route.allows(service);
    }
  }

  /** One publication: the databases whose resources (or who may see them) differ between the two versions. */
  record Step(long previousVersion, long version, ImmutableSet<String> changed) {}

  /**
   * How many publications back a stream can catch up from the databases that changed, rather than a pass over
   * every database. Enough for a stream that fell behind by seconds of a busy campaign; the log holds names only.
   */
  static final int STEPS_KEPT = 256;

  static final XdsSnapshot EMPTY =
      new XdsSnapshot(0, ImmutableList.of(), RoutingTable.EMPTY, new EnumMap<>(XdsType.class));

  private final long version;
  /** The latest publications, oldest first, this one last (none for {@link #EMPTY}); at most {@link #STEPS_KEPT}. */
  private final ImmutableList<Step> steps;
  private final RoutingTable table;
  private final Map<XdsType, ImmutableMap<String, Entry>> byType;

  private XdsSnapshot(long version, ImmutableList<Step> steps, RoutingTable table,
      Map<XdsType, ImmutableMap<String, Entry>> byType) {
    this.version = version;
    this.steps = steps;
    this.table = table;
    this.byType = byType;
  }

  /** The types Turnout serves, each from a database route. */
  private static final ImmutableMap<XdsType, Function<DatabaseRoute, Message>> TRANSLATIONS = ImmutableMap.of(
      XdsType.LDS, EnvoyResources::listener,
      XdsType.CDS, EnvoyResources::cluster,
      XdsType.EDS, EnvoyResources::loadAssignment);

  /**
   * The snapshot of {@code table} at {@code version}: a resource whose content is unchanged since {@code previous}
   * keeps its version (so a node that has it is not sent it again); a changed or new one takes {@code version}.
   */
  static XdsSnapshot next(XdsSnapshot previous, RoutingTable table, long version) {
    Map<XdsType, ImmutableMap<String, Entry>> byType = new EnumMap<>(XdsType.class);
    ImmutableSet.Builder<String> changed = ImmutableSet.builder();
    for (DatabaseRoute route : table.databases().values()) {
      if (!route.equals(previous.table.databases().get(route.name()))) {
        changed.add(route.name());
      }
    }
    for (String name : previous.table.databases().keySet()) {
      if (!table.databases().containsKey(name)) {
        changed.add(name);
      }
    }
    for (Map.Entry<XdsType, Function<DatabaseRoute, Message>> t : TRANSLATIONS.entrySet()) {
      ImmutableMap<String, Entry> before = previous.byType.getOrDefault(t.getKey(), ImmutableMap.of());
      // Hash lookups by name (every stream asks by name on every change); iteration in the table's name order.
      ImmutableMap.Builder<String, Entry> entries = ImmutableMap.builderWithExpectedSize(table.databases().size());
      for (DatabaseRoute route : table.databases().values()) {
        Entry old = before.get(route.name());
        if (old != null && old.route().equals(route)) {
          entries.put(route.name(), old);
          continue;
        }
        Message message = t.getValue().apply(route);
        entries.put(route.name(), old != null && old.message().equals(message)
            ? new Entry(route.name(), message, old.resource(), old.version(), route) // only who may see it changed
            : new Entry(route.name(), message, Any.pack(message), version, route));
      }
      byType.put(t.getKey(), entries.buildOrThrow());
    }
    int from = Math.max(0, previous.steps.size() + 1 - STEPS_KEPT);
    ImmutableList<Step> steps = ImmutableList.<Step>builderWithExpectedSize(previous.steps.size() - from + 1)
        .addAll(previous.steps.subList(from, previous.steps.size()))
        .add(new Step(previous.version, version, changed.build()))
        .build();
    return new XdsSnapshot(version, steps, table, byType);
  }

  long version() {
    return version;
  }

  /** The version this one was made from: a stream that saw it need only look at {@link #changed}. */
  long previousVersion() {
    return steps.isEmpty() ? -1 : steps.get(steps.size() - 1).previousVersion();
  }

  /** The databases whose resources (or who may see them) differ from {@link #previousVersion}'s. */
  ImmutableSet<String> changed() {
    return steps.isEmpty() ? ImmutableSet.of() : steps.get(steps.size() - 1).changed();
  }

  /**
   * The databases whose resources (or who may see them) differ between the published snapshot at {@code seen} and
   * this one: the union of the publications since, when the log reaches back to {@code seen} and the union stays
   * smaller than {@code atMost}; otherwise null, meaning a look at every database. A stream that missed a few
   * versions (it was busy while they were published) looks only at what changed in them.
   */
  Set<String> changedSince(long seen, int atMost) {
    if (seen == version) {
      return ImmutableSet.of();
    }
    int last = steps.size() - 1;
    if (last >= 0 && steps.get(last).previousVersion() == seen) {
      return steps.get(last).changed();
    }
    if (seen < 0 || last < 0 || seen < steps.get(0).previousVersion()) {
      return null;
    }
    Set<String> union = new HashSet<>();
    for (int i = last; i >= 0; i--) {
      Step step = steps.get(i);
      union.addAll(step.changed());
      if (union.size() > atMost) {
        return null;
      }
      if (step.previousVersion() == seen) {
        return union;
      }
      if (step.previousVersion() < seen) {
        return null; // not a version published here (another process's, or never): look at everything
      }
    }
    return null;
  }

  RoutingTable table() {
    return table;
  }

  /** The resource {@code name} of {@code type}, or null when there is none (whoever asks). */
  Entry get(XdsType type, String name) {
    Map<String, Entry> entries = byType.get(type);
    return entries == null ? null : entries.get(name);
  }

  Collection<Entry> all(XdsType type) {
    Map<String, Entry> entries = byType.get(type);
    return entries == null ? java.util.List.of() : entries.values();
  }
}
