package dev.turnout.controlplane.xds;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.turnout.envoy.RoutingTable;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Holds the routing table as xDS resources ({@link XdsSnapshot}) and tells every open ADS stream when a new one is
 * published. Streams filter the one snapshot by their node's service; nothing here grows with the number of
 * services or sidecars but the set of open streams.
 */
public final class SnapshotPublisher {

  /** An open stream: told that a newer snapshot exists; it must not block (it queues work of its own). */
  interface Subscriber {
    void published();
  }

  private final Object lock = new Object();

  /** Written under {@code lock} (versions must rise in order); read without it by the streams. */
  @GuardedBy("lock")
  private volatile XdsSnapshot current = XdsSnapshot.EMPTY;

  private final Set<Subscriber> subscribers = ConcurrentHashMap.newKeySet();

  /** Publishes {@code newTable}: resources whose content changed get {@code newVersion}, the others keep theirs. */
  public void publish(RoutingTable newTable, long newVersion) {
    synchronized (lock) {
      if (newVersion <= current.version()) {
        throw new IllegalArgumentException("version " + newVersion + " is not above the published "
            + current.version());
      }
      current = XdsSnapshot.next(current, newTable, newVersion);
    }
    // Outside the lock: each stream only queues its own work.
    for (Subscriber s : subscribers) {
      s.published();
    }
  }

  XdsSnapshot current() {
    return current;
  }

  void subscribe(Subscriber subscriber) {
    subscribers.add(subscriber);
  }

  void unsubscribe(Subscriber subscriber) {
    subscribers.remove(subscriber);
  }

  public long version() {
    return current.version();
  }

  public RoutingTable table() {
    return current.table();
  }
}
