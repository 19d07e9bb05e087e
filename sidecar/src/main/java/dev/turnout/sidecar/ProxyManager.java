package dev.turnout.sidecar;

import com.google.common.collect.ImmutableList;
import io.netty.channel.ChannelFuture;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The sidecar's data plane: one {@link DatabaseProxy} per Listener, fed endpoints from ClusterLoadAssignments.
 * Called by the xDS client only, from one thread at a time.
 */
final class ProxyManager {
  /** A Listener as the sidecar understands it: a port to listen on and the cluster (database) behind it. */
  record ListenerSpec(String name, InetSocketAddress address, String cluster) {}

  private final Transport transport;
  private final Duration holdTimeout;
  private final Duration staleGrace;
  /** By cluster name. Replaced, never mutated in place, so readers need no lock. */
  private volatile Map<String, DatabaseProxy> proxies = Map.of();
  private final Map<String, Optional<InetSocketAddress>> endpoints = new HashMap<>();

  ProxyManager(Transport transport, Duration holdTimeout, Duration staleGrace) {
    this.transport = transport;
    this.holdTimeout = holdTimeout;
    this.staleGrace = staleGrace;
  }

  /**
   * Makes the listeners exactly {@code specs}. As Envoy does, a listener that cannot bind is rejected on its
   * own: the others are applied, and the error names each port that failed and why (it goes back as a NACK).
   */
  void applyListeners(List<ListenerSpec> specs) throws InvalidResourceException {
    Map<String, DatabaseProxy> current = proxies;
    Map<String, DatabaseProxy> next = new LinkedHashMap<>();
    List<String> failures = new ArrayList<>();
    for (ListenerSpec spec : specs) {
      DatabaseProxy existing = current.get(spec.cluster());
      if (existing != null && existing.listenAddress().equals(spec.address())) {
        next.put(spec.cluster(), existing);
        continue;
      }
      DatabaseProxy proxy = new DatabaseProxy(spec.cluster(), spec.address(), transport, holdTimeout, staleGrace);
      ChannelFuture bound = proxy.bind().awaitUninterruptibly();
      if (!bound.isSuccess()) {
        failures.add("listener '" + spec.name() + "' cannot listen on " + spec.address().getHostString() + ":"
            + spec.address().getPort() + ": " + bound.cause().getMessage());
        if (existing != null) {
          next.put(spec.cluster(), existing); // keep serving where it was
        }
        continue;
      }
      proxy.setEndpoint(endpoints.getOrDefault(spec.cluster(), Optional.empty()));
      next.put(spec.cluster(), proxy);
    }
    proxies = Map.copyOf(next);
    for (Map.Entry<String, DatabaseProxy> e : current.entrySet()) {
      if (next.get(e.getKey()) != e.getValue()) {
        e.getValue().close();
      }
    }
    if (!failures.isEmpty()) {
      throw new InvalidResourceException(String.join("; ", failures));
    }
  }

  /** Sets the endpoint of each assignment's cluster; a cluster with no assignment keeps what it had. */
  void applyEndpoints(Map<String, Optional<InetSocketAddress>> assignments) {
    endpoints.putAll(assignments);
    Map<String, DatabaseProxy> current = proxies;
    assignments.forEach((cluster, endpoint) -> {
      DatabaseProxy proxy = current.get(cluster);
      if (proxy != null) {
        proxy.setEndpoint(endpoint);
      }
    });
  }

  /** Forgets endpoints of clusters that are gone; their listeners are removed through LDS. */
  void retainClusters(java.util.Set<String> clusters) {
    endpoints.keySet().retainAll(clusters);
  }

  ImmutableList<DatabaseStats> stats() {
    return proxies.values().stream().map(DatabaseProxy::stats).collect(ImmutableList.toImmutableList());
  }

  Optional<InetSocketAddress> listenAddress(String database) {
    return Optional.ofNullable(proxies.get(database)).map(DatabaseProxy::listenAddress);
  }

  void close() {
    proxies.values().forEach(DatabaseProxy::close);
    proxies = Map.of();
  }
}
