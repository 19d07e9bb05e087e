package dev.turnout.controlplane.xds;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.turnout.controlplane.store.RouteRecord;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.controlplane.store.StoreException;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.envoy.RoutingTable;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The authoritative routing table inside the process: {@link #route} and {@link #drain} change one database's
 * endpoint atomically, journaled before publication, and return a future that completes when every sidecar
 * subscribed to that database has ACKed the new version (or fails naming the stragglers at the deadline).
 */
public final class RoutingService {
  private static final Logger log = LoggerFactory.getLogger(RoutingService.class);

  /** A route change and its acknowledgement. */
  public record RouteResult(String database, Optional<Endpoint> previous, Optional<Endpoint> current, long version,
      AckTracker.AckReport ack) {}

  /** Resolves a DNS name to the address sidecars connect to; Envoy's EDS accepts IP addresses only. */
  public interface Resolver {
    Endpoint resolve(Endpoint endpoint) throws UnknownHostException;

    Resolver SYSTEM = endpoint -> endpoint.isIpLiteral() ? endpoint
        : new Endpoint(InetAddress.getByName(endpoint.host()).getHostAddress(), endpoint.port());
  }

  private final RouteStore store;
  private final SnapshotPublisher publisher;
  private final AckTracker tracker;
  private final ScheduledExecutorService scheduler;
  private final Executor callbacks;
  private final Resolver resolver;
  private final Duration ackTimeout;
  private final Object lock = new Object();
  private final java.util.List<java.util.function.Consumer<RouteResult>> ackListeners =
      new java.util.concurrent.CopyOnWriteArrayList<>();

  @GuardedBy("lock")
  private RoutingTable table = RoutingTable.EMPTY;

  /** Per database routed by DNS name: the name, resolved again by {@link #refreshDns}. */
  @GuardedBy("lock")
  private final Map<String, String> hostnames = new HashMap<>();

  /** Per database: the version at which its endpoint last changed. */
  @GuardedBy("lock")
  private final Map<String, Long> endpointVersions = new HashMap<>();

  @GuardedBy("lock")
  private long version;

  RoutingService(RouteStore store, SnapshotPublisher publisher, AckTracker tracker, ScheduledExecutorService scheduler,
      Executor callbacks, Resolver resolver, Duration ackTimeout) {
    this.store = store;
    this.publisher = publisher;
    this.tracker = tracker;
    this.scheduler = scheduler;
    this.callbacks = callbacks;
    this.resolver = resolver;
    this.ackTimeout = ackTimeout;
  }

  /**
   * Loads the store, seeds databases it does not know from {@code configured}, takes listener settings (port,
   * services) from the configuration, and publishes under a version above every earlier one.
   */
  void start(List<DatabaseRoute> configured) throws StoreException {
    synchronized (lock) {
      RouteStore.State state = store.load();
      version = state.highestVersion();
      List<DatabaseRoute> routes = new ArrayList<>();
      for (DatabaseRoute wanted : configured) {
        RouteRecord stored = state.routes().get(wanted.name());
        DatabaseRoute route;
        if (stored == null) {
          Endpoint configuredEndpoint = wanted.endpoint().orElseThrow();
          route = wanted.withEndpoint(Optional.of(resolve(wanted.name(), configuredEndpoint)));
          Optional<String> hostname = hostnameOf(Optional.of(configuredEndpoint));
          store.append(new RouteRecord(route, ++version, "seed", hostname));
          hostname.ifPresent(h -> hostnames.put(route.name(), h));
          endpointVersions.put(route.name(), version);
          log.info("database {} seeded from configuration: endpoint {}, version {}", route.name(),
              describe(route.endpoint()), version);
        } else {
          route = wanted.withEndpoint(stored.route().endpoint());
          endpointVersions.put(route.name(), stored.version());
          stored.hostname().ifPresent(h -> hostnames.put(wanted.name(), h));
          if (!route.equals(stored.route())) {
            store.append(new RouteRecord(route, ++version, "config", stored.hostname()));
            log.info("database {} listener settings changed by configuration: port {}, services {}; endpoint stays {}"
                + " (the store is the truth for endpoints)", route.name(), route.listenPort(),
                route.services().isEmpty() ? "all" : route.services(), describe(route.endpoint()));
          } else if (!stored.route().endpoint().equals(wanted.endpoint())) {
            log.info("database {} is served at {} as the store says (configuration says {})", route.name(),
                describe(route.endpoint()), describe(wanted.endpoint()));
          }
        }
        routes.add(route);
      }
      for (String name : state.routes().keySet()) {
        if (configured.stream().noneMatch(r -> r.name().equals(name))) {
          log.warn("database {} is in the store but not in the configuration: not served; its endpoint {} is kept"
              + " in the store", name, describe(state.routes().get(name).route().endpoint()));
        }
      }
      table = RoutingTable.of(routes);
      store.reserveVersion(++version);
      publisher.publish(table, version);
      log.info("serving {} databases at version {}", table.databases().size(), version);
    }
  }

  private Endpoint resolve(String database, Endpoint endpoint) {
    try {
      return resolver.resolve(endpoint);
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("database '" + database + "': cannot resolve endpoint host '"
          + endpoint.host() + "'", e);
    }
  }

  /** Routes {@code database} to {@code endpoint}; see the class comment. Routing to the current endpoint is a no-op that still waits for ACKs. */
  public CompletableFuture<RouteResult> route(String database, Endpoint endpoint) throws StoreException {
    return change(database, Optional.of(endpoint), "route");
  }

  /** Empties {@code database}'s assignment: sidecars open no new connections to any server for it. */
  public CompletableFuture<RouteResult> drain(String database) throws StoreException {
    return change(database, Optional.empty(), "drain");
  }

  private static Optional<String> hostnameOf(Optional<Endpoint> endpoint) {
    return endpoint.filter(e -> !e.isIpLiteral()).map(Endpoint::host);
  }

  private CompletableFuture<RouteResult> change(String database, Optional<Endpoint> requested, String cause)
      throws StoreException {
    Optional<Endpoint> target = requested.map(e -> resolve(database, e));
    Optional<String> hostname = hostnameOf(requested);
    Optional<Endpoint> previous;
    long waitFor;
    DatabaseRoute current;
    synchronized (lock) {
      current = table.get(database).orElseThrow(() -> new UnknownDatabaseException(database, table.databases().keySet()));
      previous = current.endpoint();
      if (previous.equals(target) && hostname.equals(Optional.ofNullable(hostnames.get(database)))) {
        waitFor = endpointVersions.get(database);
      } else {
        waitFor = publish(current.withEndpoint(target), cause, hostname);
      }
    }
    CompletableFuture<AckTracker.AckReport> acks = tracker.awaitAck(database, waitFor, current::allows);
    long settle = tracker.untilSettled().toMillis();
    if (settle > 0) {
      scheduler.schedule(tracker::reevaluate, settle + 1, TimeUnit.MILLISECONDS);
    }
    var timeout = scheduler.schedule(() -> tracker.expire(acks), ackTimeout.toMillis(), TimeUnit.MILLISECONDS);
    return acks.whenComplete((r, e) -> {
      timeout.cancel(false);
      if (e == null) {
        log.info("route {}: {} -> {} version {} acked by {} node(s) in {} ms", database, describe(previous),
            describe(target), waitFor, r.ackedBy().size(), r.elapsed().toMillis());
      } else {
        log.warn("route {}: {} -> {} version {} NOT acked: {}", database, describe(previous), describe(target),
            waitFor, e.getMessage());
      }
    }).thenApplyAsync(r -> {
      RouteResult result = new RouteResult(database, previous, target, waitFor, r);
      ackListeners.forEach(l -> l.accept(result));
      return result;
    }, callbacks);
  }

  /** Journals {@code changed} (durable before anyone can see it), then publishes it; returns its version. */
  @GuardedBy("lock")
  private long publish(DatabaseRoute changed, String cause, Optional<String> hostname) throws StoreException {
    long next = version + 1;
    store.append(new RouteRecord(changed, next, cause, hostname));
    version = next;
    table = table.with(changed);
    endpointVersions.put(changed.name(), next);
    hostname.ifPresentOrElse(h -> hostnames.put(changed.name(), h), () -> hostnames.remove(changed.name()));
    publisher.publish(table, next);
    return next;
  }

  /**
   * Resolves again every endpoint that was routed by DNS name and publishes the ones whose address changed
   * (no ACK wait: nobody is waiting). A name that does not resolve keeps its last address. Returns the
   * databases republished.
   */
  public List<String> refreshDns() {
    Map<String, String> names;
    synchronized (lock) {
      names = new HashMap<>(hostnames);
    }
    List<String> changed = new ArrayList<>();
    for (Map.Entry<String, String> e : names.entrySet()) {
      Endpoint resolved;
      try {
        DatabaseRoute route = table().get(e.getKey()).orElse(null);
        if (route == null || route.endpoint().isEmpty()) {
          continue;
        }
        resolved = resolver.resolve(new Endpoint(e.getValue(), route.endpoint().get().port()));
      } catch (UnknownHostException ex) {
        log.warn("database {}: endpoint host {} does not resolve now; keeping its last address", e.getKey(), e.getValue());
        continue;
      }
      synchronized (lock) {
        DatabaseRoute current = table.get(e.getKey()).orElse(null);
        // Re-checked under the lock: a route change since the lookup wins over what the lookup found.
        if (current == null || !e.getValue().equals(hostnames.get(e.getKey()))
            || current.endpoint().isEmpty() || current.endpoint().get().equals(resolved)) {
          continue;
        }
        try {
          long v = publish(current.withEndpoint(Optional.of(resolved)), "dns", Optional.of(e.getValue()));
          log.info("database {}: endpoint host {} now resolves to {} (was {}): published version {}", e.getKey(),
              e.getValue(), resolved, describe(current.endpoint()), v);
          changed.add(e.getKey());
        } catch (StoreException ex) {
          log.warn("database {}: cannot record the new address {} of {}: {}", e.getKey(), resolved, e.getValue(),
              ex.getMessage());
        }
      }
    }
    return changed;
  }

  /** Called with every route change every subscribed node ACKed (for the ACK-latency metric). */
  public void onAcked(java.util.function.Consumer<RouteResult> listener) {
    ackListeners.add(listener);
  }

  public RoutingTable table() {
    synchronized (lock) {
      return table;
    }
  }

  public long version() {
    synchronized (lock) {
      return version;
    }
  }

  /** The version at which {@code database}'s endpoint last changed. */
  public long endpointVersion(String database) {
    synchronized (lock) {
      Long v = endpointVersions.get(database);
      if (v == null) {
        throw new UnknownDatabaseException(database, table.databases().keySet());
      }
      return v;
    }
  }

  private static String describe(Optional<Endpoint> endpoint) {
    return endpoint.map(Endpoint::toString).orElse("(drained)");
  }
}
