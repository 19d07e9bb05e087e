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
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The authoritative routing table inside the process: {@link #route} and {@link #drain} change one database's
 * endpoint atomically, journaled before publication, and return a future that completes when every sidecar
 * subscribed to that database has ACKed the new version (or fails naming the stragglers at the deadline).
 *
 * <p>Changes are committed in groups: those that arrive while a batch is being written are decided in order,
 * journaled together (one flush, or one transaction) and published as one version, and each caller returns once
 * its own change is durable and published, then waits for the ACKs of the version it was recorded under. Fifty
 * migrations cutting over at once wait for one or two flushes, not fifty in a row.
 *
 * <p>Whether this process is the only control plane or one of several replicas sharing a store is not its
 * concern: its {@link Ports} say what of the store to take into the table ({@link RouteFeed}) and how a change
 * waits for its ACKs ({@link AckWait}).
 */
public final class RoutingService {
  private static final Logger log = LoggerFactory.getLogger(RoutingService.class);

  /** A route change and its acknowledgement. */
  public record RouteResult(String database, Optional<Endpoint> previous, Optional<Endpoint> current, long version,
      AckTracker.AckReport ack) {}

  /**
   * A change an operator makes by hand: who and why (recorded with it), and the endpoint they expect to replace
   * (the change is made only if the database is routed there now), when they said.
   */
  public record ByHand(RouteRecord.Operator operator, Optional<Endpoint> expectedCurrent) {}

  /**
   * What the routing table rests on: the store changes are recorded in, what of that store to take into the table
   * beyond this process's own changes, and how a change waits for the sidecars' ACKs.
   */
  public record Ports(RouteStore store, RouteFeed feed, AckWait acks) {}

  /** Resolves a DNS name to the address sidecars connect to; Envoy's EDS accepts IP addresses only. */
  public interface Resolver {
    Endpoint resolve(Endpoint endpoint) throws UnknownHostException;

    Resolver SYSTEM = endpoint -> endpoint.isIpLiteral() ? endpoint
        : new Endpoint(InetAddress.getByName(endpoint.host()).getHostAddress(), endpoint.port());
  }

  private final RouteStore store;
  private final RouteFeed feed;
  private final AckWait acks;
  private final SnapshotPublisher publisher;
  private final Executor callbacks;
  private final Resolver resolver;
  /** Held by whoever journals and publishes changes (a batch of them), always before {@code lock}. */
  private final Object commitLock = new Object();
  /** Changes waiting for the next batch, in arrival order. */
  @GuardedBy("queue")
  private final java.util.ArrayDeque<Pending> queue = new java.util.ArrayDeque<>();
  /** Guards the table and its bookkeeping; held only briefly, never across a flush by a change. */
  private final Object lock = new Object();
  private final java.util.List<java.util.function.Consumer<RouteResult>> ackListeners =
      new java.util.concurrent.CopyOnWriteArrayList<>();

  @GuardedBy("lock")
  private RoutingTable table = RoutingTable.EMPTY;

  /** Per database routed by DNS name: the name, resolved again by {@link #refreshDns}. */
  @GuardedBy("lock")
  private final Map<String, String> hostnames = new HashMap<>();

  /**
   * Per database seeded from the configuration whose endpoint name did not resolve at the start: the configured
   * name and port. It is served drained (sidecars hold its new connections) and kept out of the store, so the
   * configuration still seeds it, until {@link #refreshDns} resolves the name and seeds it.
   */
  @GuardedBy("lock")
  private final Map<String, Endpoint> unseeded = new HashMap<>();

  /** Per database whose endpoint name did not resolve at its last lookup: why. Cleared when it resolves. */
  @GuardedBy("lock")
  private final Map<String, String> unresolved = new HashMap<>();

  /** Per database: the version at which its endpoint last changed. */
  @GuardedBy("lock")
  private final Map<String, Long> endpointVersions = new HashMap<>();

  /** Per database: the version of the latest store record applied (a shared store's re-read skips older ones). */
  @GuardedBy("lock")
  private final Map<String, Long> recordVersions = new HashMap<>();

  @GuardedBy("lock")
  private long version;

  /** @param callbacks where ACK listeners and the callers' continuations run, off the ACK tracker's thread */
  RoutingService(Ports ports, SnapshotPublisher publisher, Executor callbacks, Resolver resolver) {
    this.store = ports.store();
    this.feed = ports.feed();
    this.acks = ports.acks();
    this.publisher = publisher;
    this.callbacks = callbacks;
    this.resolver = resolver;
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
        Optional<Endpoint> seed = stored == null ? resolveAtStart(wanted) : Optional.empty();
        if (stored == null && seed.isEmpty()) {
          // One name that does not resolve (yet) must not keep every other database unserved.
          route = wanted.withEndpoint(Optional.empty());
          unseeded.put(route.name(), wanted.endpoint().orElseThrow());
          log.error("database {}: {} and the store has no address for it: served DRAINED (sidecars hold its new"
              + " connections) until the name resolves; looked up again at every DNS refresh", route.name(),
              unresolved.get(route.name()));
        } else if (stored == null) {
          Endpoint configuredEndpoint = wanted.endpoint().orElseThrow();
          route = wanted.withEndpoint(seed);
          Optional<String> hostname = hostnameOf(Optional.of(configuredEndpoint));
          version = store.append(new RouteRecord(route, version + 1, "seed", hostname));
          hostname.ifPresent(h -> hostnames.put(route.name(), h));
          endpointVersions.put(route.name(), version);
          recordVersions.put(route.name(), version);
          log.info("database {} seeded from configuration: endpoint {}, version {}", route.name(),
              describe(route.endpoint()), version);
        } else {
          route = wanted.withEndpoint(stored.route().endpoint());
          endpointVersions.put(route.name(), stored.version());
          recordVersions.put(route.name(), stored.version());
          stored.hostname().ifPresent(h -> hostnames.put(wanted.name(), h));
          if (!route.equals(stored.route())) {
            version = store.append(new RouteRecord(route, version + 1, "config", stored.hostname()));
            recordVersions.put(route.name(), version);
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
      version = store.reserveVersion(version + 1);
      for (String name : unseeded.keySet()) {
        endpointVersions.put(name, version); // drained from the first version it is served at
      }
      // What other replicas recorded while this one started: publish exactly the store's table at its version.
      applyStored(feed.recordedElsewhere());
      publisher.publish(table, version);
      log.info("serving {} databases at version {}", table.databases().size(), version);
      // Replicas waiting on a change count this one from now on: say what its sidecars make of each route.
      for (DatabaseRoute route : table.databases().values()) {
        acks.published(route, endpointVersions.get(route.name()));
      }
    }
    feed.onChange(this::refresh);
  }

  /**
   * Applies what other replicas recorded in a shared store since the last look and, when an endpoint changed,
   * publishes under the store's version. A version names the same table on every replica (all records up to it,
   * read in one snapshot), so a sidecar that moves to another replica is never left on stale content that
   * carries a current version. Returns the databases republished.
   */
  public List<String> refresh() {
    synchronized (lock) {
      try {
        return publishStored(feed.recordedElsewhere());
      } catch (StoreException e) {
        log.warn("cannot re-read the routing table from the store: {}; serving the last one read", e.getMessage());
        return List.of();
      }
    }
  }

  @GuardedBy("lock")
  private List<String> publishStored(RouteStore.State state) {
    List<String> changed = applyStored(state);
    if (!changed.isEmpty()) {
      publisher.publish(table, version);
      for (String database : changed) {
        acks.published(table.get(database).orElseThrow(), endpointVersions.get(database));
      }
    }
    return changed;
  }

  /** Takes every newer record's endpoint into the table and the store's version; publishes nothing. */
  @GuardedBy("lock")
  private List<String> applyStored(RouteStore.State state) {
    List<String> changed = new ArrayList<>();
    for (DatabaseRoute current : table.databases().values()) {
      RouteRecord stored = state.routes().get(current.name());
      if (stored == null || stored.version() <= recordVersions.getOrDefault(current.name(), 0L)) {
        continue;
      }
      recordVersions.put(current.name(), stored.version());
      if (unseeded.remove(current.name()) != null) {
        unresolved.remove(current.name()); // another replica seeded it
      }
      boolean sameHost = stored.hostname().equals(Optional.ofNullable(hostnames.get(current.name())));
      if (stored.route().endpoint().equals(current.endpoint()) && sameHost) {
        continue;
      }
      table = table.with(current.withEndpoint(stored.route().endpoint()));
      endpointVersions.put(current.name(), stored.version());
      stored.hostname().ifPresentOrElse(h -> hostnames.put(current.name(), h), () -> hostnames.remove(current.name()));
      changed.add(current.name());
      log.info("database {}: routed to {} at version {} (as recorded in the store)", current.name(),
          describe(stored.route().endpoint()), stored.version());
    }
    version = Math.max(version, state.highestVersion());
    return changed;
  }

  /** A configured endpoint's address, or empty (and why recorded) when its name does not resolve. */
  @GuardedBy("lock")
  private Optional<Endpoint> resolveAtStart(DatabaseRoute wanted) {
    Endpoint endpoint = wanted.endpoint().orElseThrow();
    try {
      return Optional.of(resolver.resolve(endpoint));
    } catch (UnknownHostException e) {
      unresolved.put(wanted.name(), why(endpoint.host(), e));
      return Optional.empty();
    }
  }

  private static String why(String host, UnknownHostException e) {
    String detail = e.getMessage() == null || e.getMessage().equals(host) ? "unknown host" : e.getMessage();
    return "endpoint host " + host + " does not resolve: " + detail;
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
    return route(database, endpoint, RouteStore.Writer.ANY_REPLICA);
  }

  /** As {@link #route(String, Endpoint)}; a migration's change is refused unless this replica is its leader. */
  public CompletableFuture<RouteResult> route(String database, Endpoint endpoint, RouteStore.Writer writer)
      throws StoreException {
    return change(database, Optional.of(endpoint), "route", writer, Optional.empty());
  }

  /** Empties {@code database}'s assignment: sidecars open no new connections to any server for it. */
  public CompletableFuture<RouteResult> drain(String database) throws StoreException {
    return drain(database, RouteStore.Writer.ANY_REPLICA);
  }

  public CompletableFuture<RouteResult> drain(String database, RouteStore.Writer writer) throws StoreException {
    return change(database, Optional.empty(), "drain", writer, Optional.empty());
  }

  /**
   * A migration's change of every database on one server: routes each of {@code databases} to {@code endpoint}, or
   * drains each when empty, journaled one record each and published to the sidecars as one version (an EDS response
   * that moves them all), so no sidecar routes one of them to the new server and another to the old. The future
   * completes when every sidecar subscribed to any of them has ACKed, and fails as {@link #route} does. Refused
   * unless this replica leads migrations, when {@code writer} says so.
   */
  public CompletableFuture<List<RouteResult>> changeAll(List<String> databases, Optional<Endpoint> endpoint,
      RouteStore.Writer writer) throws StoreException {
    List<Wanted> wanted = new ArrayList<>(databases.size());
    for (String database : databases) {
      wanted.add(new Wanted(database, endpoint.map(e -> resolve(database, e))));
    }
    Pending pending = new Pending(wanted, endpoint.isPresent() ? "route" : "drain", hostnameOf(endpoint), writer,
        Optional.empty());
    commit(pending);
    List<CompletableFuture<RouteResult>> each = new ArrayList<>();
    for (int i = 0; i < databases.size(); i++) {
      each.add(awaitAcks(databases.get(i), pending.currents.get(i), pending.currents.get(i).endpoint(),
          wanted.get(i).target(), pending.waitFor[i]));
    }
    return CompletableFuture.allOf(each.toArray(CompletableFuture[]::new))
        .thenApply(done -> each.stream().map(CompletableFuture::join).toList());
  }

  /**
   * An operator's change: routes {@code database} to {@code endpoint}, or drains it when empty, recorded with who
   * and why. When {@link ByHand#expectedCurrent} is set and the database is routed elsewhere now, fails with
   * {@link RouteConflictException} and changes nothing. Made as a migration's are: only while this replica leads,
   * so it cannot interleave with one (the caller refuses it while the database has an unfinished migration).
   */
  public CompletableFuture<RouteResult> changeByHand(String database, Optional<Endpoint> endpoint, ByHand byHand)
      throws StoreException {
    return change(database, endpoint, endpoint.isPresent() ? "route" : "drain", RouteStore.Writer.LEADER,
        Optional.of(byHand));
  }

  /** {@code database}'s route changes, newest first, below {@code beforeVersion}; see {@link RouteStore#history}. */
  public com.google.common.collect.ImmutableList<RouteStore.Recorded> history(String database, long beforeVersion,
      int limit) throws StoreException {
    RoutingTable now = table();
    if (now.get(database).isEmpty()) {
      throw new UnknownDatabaseException(database, now.databases().keySet());
    }
    return store.history(database, beforeVersion, limit);
  }

  private static Optional<String> hostnameOf(Optional<Endpoint> endpoint) {
    return endpoint.filter(e -> !e.isIpLiteral()).map(Endpoint::host);
  }

  private CompletableFuture<RouteResult> change(String database, Optional<Endpoint> requested, String cause,
      RouteStore.Writer writer, Optional<ByHand> byHand) throws StoreException {
    Optional<Endpoint> target = requested.map(e -> resolve(database, e));
    Pending pending = new Pending(List.of(new Wanted(database, target)), cause, hostnameOf(requested), writer, byHand);
    commit(pending);
    DatabaseRoute current = pending.currents.get(0);
    return awaitAcks(database, current, current.endpoint(), target, pending.waitFor[0]);
  }

  /** One database of a change: where it is to be routed (empty: drained). */
  private record Wanted(String database, Optional<Endpoint> target) {}

  /** A database's route as decided by an earlier change of the batch being committed, and that change's record. */
  private record Planned(DatabaseRoute route, Optional<String> hostname, int record) {}

  /**
   * One caller's change on its way to the journal. Queued by its caller, then taken by whichever caller commits
   * the next batch; its outcome is written by that committer and read by its caller, both under {@code commitLock}.
   */
  private static final class Pending {
    final List<Wanted> wanted;
    final String cause;
    final Optional<String> hostname;
    final RouteStore.Writer writer;
    final Optional<ByHand> byHand;
    /** Per database: its route before this change (its services say whose ACKs count). */
    final List<DatabaseRoute> currents = new ArrayList<>();
    /** Per database: the index of the batch's record it waits for, or -1 when it waits for {@link #waitFor}. */
    final int[] record;
    /** Per database: the version whose ACKs the caller waits for. */
    final long[] waitFor;
    /** Whether this change wrote a record of its own (not only waits for one an earlier change of the batch wrote). */
    boolean recordsOwn;
    Exception failure;
    boolean done;

    Pending(List<Wanted> wanted, String cause, Optional<String> hostname, RouteStore.Writer writer,
        Optional<ByHand> byHand) {
      this.wanted = wanted;
      this.cause = cause;
      this.hostname = hostname;
      this.writer = writer;
      this.byHand = byHand;
      this.record = new int[wanted.size()];
      this.waitFor = new long[wanted.size()];
    }

    String what() {
      return wanted.size() == 1 ? "database '" + wanted.get(0).database() + "'"
          : "databases " + wanted.stream().map(Wanted::database).toList();
    }

    boolean recordsAny() {
      return java.util.Arrays.stream(record).anyMatch(r -> r >= 0);
    }

    void fail(Exception e) {
      failure = e;
      done = true;
    }

    void recorded(List<Long> versions) {
      for (int i = 0; i < record.length; i++) {
        if (record[i] >= 0) {
          waitFor[i] = versions.get(record[i]);
        }
      }
      done = true;
    }

    void rethrow() throws StoreException {
      if (failure instanceof StoreException e) {
        throw e;
      } else if (failure instanceof RuntimeException e) {
        throw e;
      } else if (failure != null) {
        throw new IllegalStateException(failure);
      }
    }
  }

  /**
   * Group commit: queues {@code pending} and returns once it is journaled and published (or refused). Whoever holds
   * {@code commitLock} journals every change queued by then with one write and one flush (one transaction in a
   * shared store) and publishes them as one version, so changes arriving while a batch is written wait for one
   * flush together instead of one each behind a lock. Changes are decided in the order they are taken, each on
   * the table as the changes before it in the batch leave it.
   */
  private void commit(Pending pending) throws StoreException {
    synchronized (queue) {
      queue.add(pending);
    }
    synchronized (commitLock) {
      while (!pending.done) {
        commitBatch();
      }
    }
    pending.rethrow();
  }

  /** How many changes wait for the batch being written to finish. */
  @com.google.common.annotations.VisibleForTesting
  int queuedChanges() {
    synchronized (queue) {
      return queue.size();
    }
  }

  /** Takes the queued changes that share the first one's writer (a leader's changes are journaled as the leader's). */
  private List<Pending> takeBatch() {
    synchronized (queue) {
      List<Pending> batch = new ArrayList<>(queue.size());
      RouteStore.Writer writer = queue.getFirst().writer;
      for (java.util.Iterator<Pending> it = queue.iterator(); it.hasNext(); ) {
        Pending p = it.next();
        if (p.writer == writer) {
          batch.add(p);
          it.remove();
        }
      }
      return batch;
    }
  }

  @GuardedBy("commitLock")
  private void commitBatch() {
    List<Pending> batch = takeBatch();
    List<Pending> decided = new ArrayList<>(batch.size());
    List<RouteRecord> records = new ArrayList<>();
    synchronized (lock) {
      try {
        publishStored(feed.recordedElsewhere()); // decide on what the store says now, not on the last notification
      } catch (StoreException e) {
        for (Pending p : batch) {
          p.fail(new StoreException("cannot " + p.cause + " " + p.what() + ": " + e.getMessage(), e));
        }
        return;
      }
      Map<String, Planned> planned = new HashMap<>();
      for (Pending p : batch) {
        try {
          decide(p, planned, records);
          decided.add(p);
        } catch (RuntimeException e) {
          p.fail(e);
        }
      }
    }
    if (records.isEmpty()) {
      decided.forEach(p -> p.recorded(List.of()));
      return;
    }
    // Outside the table's lock, so readers of the table are not held by the flush; every writer holds commitLock,
    // so the table's version cannot move under the versions the records were given.
    List<Long> versions;
    try {
      versions = store.appendAll(records, batch.get(0).writer);
    } catch (StoreException | RuntimeException e) {
      for (Pending p : decided) {
        if (p.recordsAny()) {
          p.fail(e);
        } else {
          p.recorded(List.of()); // it changed nothing and waits for a version published before
        }
      }
      return;
    }
    List<RouteRecord> stored = new ArrayList<>(records.size());
    for (int i = 0; i < records.size(); i++) {
      stored.add(records.get(i).withVersion(versions.get(i)));
    }
    synchronized (lock) {
      for (RouteRecord r : stored) {
        unseeded.remove(r.route().name()); // a recorded route, by anyone's hand, supersedes the configuration's
        unresolved.remove(r.route().name());
      }
      publishRecorded(stored);
    }
    for (Pending p : decided) {
      p.recorded(versions);
      p.byHand.ifPresent(h -> {
        Wanted w = p.wanted.get(0);
        if (p.recordsOwn) {
          log.info("route {} changed by hand by {}: {} -> {} version {}; reason: {}", w.database(),
              h.operator().identity(), describe(p.currents.get(0).endpoint()), describe(w.target()), p.waitFor[0],
              h.operator().reason());
        }
      });
    }
    if (batch.size() > 1) {
      log.debug("{} route changes ({} records) journaled together and published at version {}", decided.size(),
          stored.size(), versions.get(versions.size() - 1));
    }
  }

  /**
   * Decides {@code p} on the table as the batch's earlier changes ({@code planned}) leave it: all of it, adding its
   * records to {@code records}, or none of it (throwing: an unknown database, a conflict with what the operator
   * expected).
   */
  @GuardedBy("lock")
  private void decide(Pending p, Map<String, Planned> planned, List<RouteRecord> records) {
    List<DatabaseRoute> currents = new ArrayList<>(p.wanted.size());
    List<Optional<String>> hostnamesNow = new ArrayList<>(p.wanted.size());
    for (Wanted w : p.wanted) {
      Planned before = planned.get(w.database());
      DatabaseRoute current = before != null ? before.route() : table.get(w.database())
          .orElseThrow(() -> new UnknownDatabaseException(w.database(), table.databases().keySet()));
      currents.add(current);
      hostnamesNow.add(before != null ? before.hostname() : Optional.ofNullable(hostnames.get(w.database())));
    }
    Optional<Endpoint> expected = p.byHand.flatMap(ByHand::expectedCurrent);
    for (int i = 0; i < currents.size() && expected.isPresent(); i++) {
      if (!isRoutedTo(currents.get(i).endpoint(), hostnamesNow.get(i), expected.get())) {
        throw new RouteConflictException(p.wanted.get(i).database(), expected.get(), currents.get(i).endpoint());
      }
    }
    for (int i = 0; i < currents.size(); i++) {
      Wanted w = p.wanted.get(i);
      DatabaseRoute current = currents.get(i);
      p.currents.add(current);
      Planned before = planned.get(w.database());
      if (current.endpoint().equals(w.target()) && p.hostname.equals(hostnamesNow.get(i))) {
        p.record[i] = before != null ? before.record() : -1;
        p.waitFor[i] = before != null ? 0 : endpointVersions.get(w.database());
      } else {
        DatabaseRoute changed = current.withEndpoint(w.target());
        // Versions in order after the table's: a store one process owns keeps them; a shared one hands out its own.
        records.add(new RouteRecord(changed, version + 1 + records.size(), p.cause, p.hostname,
            p.byHand.map(h -> h.operator())));
        p.record[i] = records.size() - 1;
        p.recordsOwn = true;
        planned.put(w.database(), new Planned(changed, p.hostname, records.size() - 1));
      }
    }
  }

  private CompletableFuture<RouteResult> awaitAcks(String database, DatabaseRoute current, Optional<Endpoint> previous,
      Optional<Endpoint> target, long waitFor) {
    return acks.await(current, waitFor).whenComplete((r, e) -> {
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

  /** Whether {@code database}, routed to {@code current}, is routed to {@code expected} (an address, or the DNS name it was routed by). */
  private static boolean isRoutedTo(Optional<Endpoint> current, Optional<String> hostname, Endpoint expected) {
    return current.equals(Optional.of(expected)) || (current.isPresent() && current.get().port() == expected.port()
        && hostname.filter(expected.host()::equalsIgnoreCase).isPresent());
  }

  /**
   * Journals {@code changed} (durable before anyone can see it), then publishes it — with every change recorded
   * before it, under the store's version, when the store is shared; returns its version.
   */
  @GuardedBy("lock")
  private long publish(DatabaseRoute changed, String cause, Optional<String> hostname, RouteStore.Writer writer,
      Optional<RouteRecord.Operator> operator) throws StoreException {
    RouteRecord recorded = record(changed, cause, hostname, writer, operator);
    publishRecorded(List.of(recorded));
    return recorded.version();
  }

  /** Journals {@code changed} (durable before anyone can see it) and returns the record at its version. */
  @GuardedBy("lock")
  private RouteRecord record(DatabaseRoute changed, String cause, Optional<String> hostname, RouteStore.Writer writer,
      Optional<RouteRecord.Operator> operator) throws StoreException {
    RouteRecord record = new RouteRecord(changed, version + 1, cause, hostname, operator);
    long next = store.append(record, writer);
    unseeded.remove(changed.name()); // a recorded route, by anyone's hand, supersedes the configuration's
    unresolved.remove(changed.name());
    return record.withVersion(next);
  }

  /** Publishes {@code recorded} (with every change recorded before them, when the store is shared) as one version. */
  @GuardedBy("lock")
  private void publishRecorded(List<RouteRecord> recorded) {
    try {
      publishStored(feed.afterRecording(recorded));
    } catch (StoreException e) {
      log.warn("route(s) of {} recorded but the store could not be re-read ({}); published at the next re-read",
          recorded.stream().map(r -> r.route().name() + " at version " + r.version()).toList(), e.getMessage());
    }
  }

  /**
   * Resolves again every endpoint that was routed by DNS name and publishes the ones whose address changed
   * (no ACK wait: nobody is waiting), and seeds the configured databases whose name did not resolve at the start
   * once it does. A name that does not resolve keeps its last address and is reported by {@link #unresolved}.
   * Returns the databases republished.
   */
  public List<String> refreshDns() {
    Map<String, String> names;
    Map<String, Endpoint> pending;
    synchronized (lock) {
      names = new HashMap<>(hostnames);
      pending = new HashMap<>(unseeded);
    }
    List<String> changed = new ArrayList<>();
    pending.forEach((database, configured) -> {
      if (seedResolved(database, configured)) {
        changed.add(database);
      }
    });
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
        synchronized (lock) {
          if (e.getValue().equals(hostnames.get(e.getKey()))) {
            unresolved.put(e.getKey(), why(e.getValue(), ex) + "; serving its last address");
          }
        }
        continue;
      }
      synchronized (commitLock) { // a change of its own, in order with the batches
        synchronized (lock) {
          if (e.getValue().equals(hostnames.get(e.getKey()))) {
            unresolved.remove(e.getKey());
          }
          DatabaseRoute current = table.get(e.getKey()).orElse(null);
          // Re-checked under the lock: a route change since the lookup wins over what the lookup found.
          if (current == null || !e.getValue().equals(hostnames.get(e.getKey()))
              || current.endpoint().isEmpty() || current.endpoint().get().equals(resolved)) {
            continue;
          }
          try {
            long v = publish(current.withEndpoint(Optional.of(resolved)), "dns", Optional.of(e.getValue()),
                RouteStore.Writer.ANY_REPLICA, Optional.empty());
            log.info("database {}: endpoint host {} now resolves to {} (was {}): published version {}", e.getKey(),
                e.getValue(), resolved, describe(current.endpoint()), v);
            changed.add(e.getKey());
          } catch (StoreException ex) {
            log.warn("database {}: cannot record the new address {} of {}: {}", e.getKey(), resolved, e.getValue(),
                ex.getMessage());
          }
        }
      }
    }
    return changed;
  }

  /** Seeds a database served drained since the start because its name did not resolve, if it resolves now. */
  private boolean seedResolved(String database, Endpoint configured) {
    Endpoint resolved;
    try {
      resolved = resolver.resolve(configured);
    } catch (UnknownHostException ex) {
      synchronized (lock) {
        if (configured.equals(unseeded.get(database))) {
          unresolved.put(database, why(configured.host(), ex) + "; served drained");
        }
      }
      log.warn("database {}: endpoint host {} still does not resolve; still served drained", database, configured.host());
      return false;
    }
    synchronized (commitLock) { // a change of its own, in order with the batches
      synchronized (lock) {
        DatabaseRoute current = table.get(database).orElse(null);
        if (current == null || !configured.equals(unseeded.get(database))) {
          return false; // routed (or seeded by another replica) since the lookup: that wins
        }
        try {
          long v = publish(current.withEndpoint(Optional.of(resolved)), "seed", hostnameOf(Optional.of(configured)),
              RouteStore.Writer.ANY_REPLICA, Optional.empty());
          log.info("database {}: endpoint host {} resolves now, to {}: seeded and published at version {}", database,
              configured.host(), resolved, v);
          return true;
        } catch (StoreException ex) {
          log.warn("database {}: cannot record the first address {} of {}: {}", database, resolved, configured.host(),
              ex.getMessage());
          return false;
        }
      }
    }
  }

  /**
   * Why {@code database}'s endpoint name did not resolve at its last lookup, while it does not: it is then served
   * at its last address, or drained when it never had one. Empty for a name that resolves and an address.
   */
  public Optional<String> unresolved(String database) {
    synchronized (lock) {
      return Optional.ofNullable(unresolved.get(database));
    }
  }

  /** The DNS name {@code database} is routed by (its endpoint is the address the name resolved to), if any. */
  public Optional<String> hostname(String database) {
    synchronized (lock) {
      return Optional.ofNullable(hostnames.get(database))
          .or(() -> Optional.ofNullable(unseeded.get(database)).map(Endpoint::host));
    }
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
