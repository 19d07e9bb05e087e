package dev.turnout.controlplane.migration;

import dev.turnout.controlplane.store.SharedRoutes;
import dev.turnout.controlplane.store.StoreException;
import dev.turnout.controlplane.xds.SidecarStats;
import dev.turnout.migrator.bake.SidecarCounters;
import dev.turnout.migrator.bake.Workload;
import java.util.Collection;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The sidecars' counters over every control-plane replica sharing the store: a sidecar streams to one replica, the
 * bake runs on the leader. Each replica publishes its totals ({@link #publish}, every lease/5 when they changed);
 * the leader adds every other replica's published rows to its own live totals. A replica's rows lag by at most a
 * publication; a gone replica's stay counted (its share of the sums), so the sums only grow.
 */
public final class ReplicaSidecarCounters implements SidecarCounters {
  private static final Logger log = LoggerFactory.getLogger(ReplicaSidecarCounters.class);

  private final SidecarStats own;
  private final SharedRoutes store;

  public ReplicaSidecarCounters(SidecarStats own, SharedRoutes store) {
    this.own = own;
    this.store = store;
  }

  /** Writes this replica's totals to the store. */
  public void publish() throws StoreException {
    store.publishSidecarCounters(own.incarnation(), own.totals());
  }

  /**
   * Empty when neither this replica nor the store has counters for {@code databases}, and when the store cannot be
   * read: a read without the other replicas' sidecars would make their share look like a fall (so the bake leaves
   * the two signals out of that read rather than judge half the fleet).
   */
  @Override
  public Optional<Workload.Sidecars> read(Collection<String> databases) {
    Optional<Workload.Sidecars> mine = own.read(databases);
    Optional<Workload.Sidecars> others;
    try {
      others = store.sidecarCounters(databases, own.incarnation());
    } catch (StoreException | RuntimeException e) {
      log.warn("databases {}: cannot read the other replicas' sidecar counters: {}", databases, e.getMessage());
      return Optional.empty();
    }
    if (mine.isEmpty()) {
      return others;
    }
    if (others.isEmpty()) {
      return mine;
    }
    return Optional.of(new Workload.Sidecars(mine.get().connectFailures() + others.get().connectFailures(),
        mine.get().holdTimeouts() + others.get().holdTimeouts(), mine.get().nodes() + others.get().nodes()));
  }
}
