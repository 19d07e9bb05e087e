package dev.turnout.migrator.bake;

import java.util.Collection;
import java.util.Optional;

/**
 * The counters the sidecars in front of some databases report to the control plane (Envoy's metrics service stats
 * sink), for the bake's {@link Signal#CONNECT_FAILURES} and {@link Signal#HOLD_TIMEOUTS}. The migrator defines it;
 * the control plane, which receives the sidecars' streams, implements it.
 */
@FunctionalInterface
public interface SidecarCounters {
  /**
   * The counters summed over {@code databases} (each one's sidecars: the cluster named after it), growing only;
   * empty when no sidecar has reported a counter for any of them, which leaves the two signals not available rather
   * than zero.
   */
  Optional<Workload.Sidecars> read(Collection<String> databases);

  /** No sidecar reports: what a dry run and a migrator without a control plane get. */
  SidecarCounters NONE = databases -> Optional.empty();
}
