package dev.turnout.envoy;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableSortedMap;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/** The immutable set of databases Turnout routes, by name. */
public record RoutingTable(ImmutableSortedMap<String, DatabaseRoute> databases) {

  public static final RoutingTable EMPTY = new RoutingTable(ImmutableSortedMap.of());

  public RoutingTable {
    Map<Integer, String> byPort = new HashMap<>();
    for (DatabaseRoute route : databases.values()) {
      String other = byPort.putIfAbsent(route.listenPort(), route.name());
      if (other != null) {
        throw new IllegalArgumentException("listen port " + route.listenPort() + " is used by both '"
            + other + "' and '" + route.name() + "'");
      }
    }
  }

  public static RoutingTable of(Collection<DatabaseRoute> routes) {
    ImmutableSortedMap.Builder<String, DatabaseRoute> builder = ImmutableSortedMap.naturalOrder();
    for (DatabaseRoute route : routes) {
      builder.put(route.name(), route);
    }
    return new RoutingTable(builder.buildOrThrow());
  }

  public Optional<DatabaseRoute> get(String name) {
    return Optional.ofNullable(databases.get(name));
  }

  /** A copy with {@code route} added or replaced. */
  public RoutingTable with(DatabaseRoute route) {
    Map<String, DatabaseRoute> copy = new HashMap<>(databases);
    copy.put(route.name(), route);
    return new RoutingTable(ImmutableSortedMap.copyOf(copy));
  }

  /** The databases a sidecar of {@code service} may reach, in name order. */
  public ImmutableList<DatabaseRoute> forService(String service) {
    return databases.values().stream().filter(r -> r.allows(service)).collect(ImmutableList.toImmutableList());
  }
}
