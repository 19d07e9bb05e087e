package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Predicate;

/**
 * Per node and resource type: the version last sent, last ACKed, and the last NACK's error, built from the xDS
 * stream callbacks; and the waiters of route changes that complete when every subscribed node has ACKed.
 *
 * <p>A response is matched to its ACK or NACK by nonce, for state-of-the-world and delta streams alike: the
 * {@code version_info} of a NACK is the version the node still runs, not the one it rejected.
 */
public final class AckTracker {

  /** The outcome of waiting for a version: which nodes ACKed it, and how long it took. */
  public record AckReport(String database, long version, ImmutableList<String> ackedBy, Duration elapsed) {}

  private static final int NONCES_REMEMBERED = 16;

  private final Clock clock;
  private final Object lock = new Object();

  @GuardedBy("lock")
  private final Map<Long, Stream> streams = new HashMap<>();

  @GuardedBy("lock")
  private final Map<String, Node> nodes = new LinkedHashMap<>();

  @GuardedBy("lock")
  private final List<Waiter> waiters = new ArrayList<>();

  /** Until then waiters do not complete: sidecars of a restarted control plane may still be reconnecting. */
  private final java.time.Instant settleUntil;

  public AckTracker(Clock clock) {
    this(clock, Duration.ZERO);
  }

  public AckTracker(Clock clock, Duration reconnectGrace) {
    this.clock = clock;
    this.settleUntil = clock.instant().plus(reconnectGrace);
  }

  /** How long until waiters may first complete (zero once the reconnect grace is over). */
  public Duration untilSettled() {
    Duration left = Duration.between(clock.instant(), settleUntil);
    return left.isNegative() ? Duration.ZERO : left;
  }

  /** Re-checks every waiter (the reconnect grace has passed). */
  public void reevaluate() {
    List<Runnable> completions;
    synchronized (lock) {
      completions = evaluate();
    }
    completions.forEach(Runnable::run);
  }

  private static final class TypeState {
    long sentVersion;
    long ackedVersion;
    Instant ackedAt;
    NodeStatus.Nack lastNack;
  }

  private static final class Node {
    final String id;
    String cluster;
    int openStreams;
    /** When its last stream closed (while it has none open). */
    Instant disconnectedAt;
    final Map<XdsType, TypeState> types = new EnumMap<>(XdsType.class);

    Node(String id, String cluster) {
      this.id = id;
      this.cluster = cluster;
    }

    TypeState type(XdsType t) {
      return types.computeIfAbsent(t, k -> new TypeState());
    }
  }

  private static final class Stream {
    Node node;
    /** Per type: what the stream subscribed to. */
    final Map<XdsType, Subscription> subscriptions = new EnumMap<>(XdsType.class);
    /** Per type: nonce to version of the responses sent recently. */
    final Map<XdsType, LinkedHashMap<String, Long>> sent = new EnumMap<>(XdsType.class);

    boolean subscribedTo(XdsType type, String name) {
      Subscription s = subscriptions.get(type);
      return s != null && (s.wildcard() || s.names().contains(name));
    }

    void remember(XdsType type, String nonce, long version) {
      LinkedHashMap<String, Long> map = sent.computeIfAbsent(type, k -> new LinkedHashMap<>());
      map.put(nonce, version);
      if (map.size() > NONCES_REMEMBERED) {
        Iterator<String> it = map.keySet().iterator();
        it.next();
        it.remove();
      }
    }

    Long versionOf(XdsType type, String nonce) {
      LinkedHashMap<String, Long> map = sent.get(type);
      return map == null ? null : map.get(nonce);
    }
  }

  private final class Waiter {
    final String database;
    final long version;
    final Predicate<String> clusterAllowed;
    final Instant started;
    final CompletableFuture<AckReport> future = new CompletableFuture<>();
    /** Nodes counted and not yet answered at this version; refreshed by a full evaluation, shrunk by ACKs. */
    final Set<String> pending = new HashSet<>();

    Waiter(String database, long version, Predicate<String> clusterAllowed) {
      this.database = database;
      this.version = version;
      this.clusterAllowed = clusterAllowed;
      this.started = clock.instant();
    }
  }

  /**
   * A request arrived on a stream: records the node, the stream's subscription to {@code type} as it now stands
   * (the ADS server keeps it; the same set is passed until it changes), and an ACK or NACK of {@code nonce}.
   * A nonce this stream was not sent counts for nothing.
   */
  public void onRequest(long streamId, io.envoyproxy.envoy.config.core.v3.Node node, XdsType type,
      boolean wildcard, Set<String> names, String nonce, String errorDetail) {
    List<Runnable> completions;
    synchronized (lock) {
      Stream stream = streams.computeIfAbsent(streamId, id -> new Stream());
      if (stream.node == null) {
        Node n = nodes.computeIfAbsent(node.getId(), id -> new Node(id, node.getCluster()));
        n.cluster = node.getCluster();
        n.openStreams++;
        n.disconnectedAt = null;
        stream.node = n;
      }
      Subscription previous = stream.subscriptions.get(type);
      boolean subscriptionChanged = previous == null || previous.wildcard() != wildcard
          || previous.names() != names && !previous.names().equals(names);
      if (subscriptionChanged) {
        stream.subscriptions.put(type, new Subscription(wildcard, names));
      }
      boolean answered = false;
      if (!nonce.isEmpty()) {
        Long version = stream.versionOf(type, nonce);
        if (version != null) {
          TypeState state = stream.node.type(type);
          answered = true;
          if (errorDetail.isEmpty()) {
            if (version >= state.ackedVersion) {
              state.ackedVersion = version;
              state.ackedAt = clock.instant();
              state.lastNack = null;
            }
          } else {
            state.lastNack = new NodeStatus.Nack(version, errorDetail, clock.instant());
          }
        }
      }
      if (type != XdsType.EDS) {
        return; // waiters depend on EDS subscriptions and answers only
      }
      // Thousands of nodes ACK each change: an ACK re-checks only its node; a new or changed subscription
      // re-evaluates everything.
      completions = subscriptionChanged ? evaluate() : answered ? evaluateNode(stream.node) : List.of();
    }
    completions.forEach(Runnable::run);
  }

  /** What a stream subscribed to of one type: every resource (wildcard), and these by name. */
  private record Subscription(boolean wildcard, Set<String> names) {}

  /** A response was sent on a stream. */
  public void onResponse(long streamId, XdsType type, long version, String nonce) {
    synchronized (lock) {
      Stream stream = streams.get(streamId);
      if (stream == null || stream.node == null) {
        return;
      }
      stream.remember(type, nonce, version);
      TypeState state = stream.node.type(type);
      state.sentVersion = Math.max(state.sentVersion, version);
    }
  }

  /** A stream ended: its node no longer counts as subscribed through it. */
  public void onStreamClosed(long streamId) {
    List<Runnable> completions;
    synchronized (lock) {
      Stream stream = streams.remove(streamId);
      if (stream == null) {
        return;
      }
      if (stream.node != null && --stream.node.openStreams == 0) {
        stream.node.disconnectedAt = clock.instant();
      }
      completions = evaluate();
    }
    completions.forEach(Runnable::run);
  }

  /**
   * Returns a future completing when every node with an open stream subscribed to {@code database}'s endpoints
   * (and whose service may reach it) has ACKed a version at or above {@code version}. It fails, naming the
   * stragglers, once every node has answered and some rejected it; {@link #expire} fails it at a deadline.
   */
  public CompletableFuture<AckReport> awaitAck(String database, long version, Predicate<String> clusterAllowed) {
    Waiter waiter = new Waiter(database, version, clusterAllowed);
    List<Runnable> completions;
    synchronized (lock) {
      waiters.add(waiter);
      // Only the new waiter needs counting: the others' pending nodes are kept current by ACKs and re-counted on
      // any subscription change, so a wave of fifty changes does not re-count fifty waiters over every stream.
      for (Stream s : streams.values()) {
        if (counts(s, waiter) && !answered(s.node, waiter)) {
          waiter.pending.add(s.node.id);
        }
      }
      completions = finishSettled(new ArrayList<>());
    }
    completions.forEach(Runnable::run);
    return waiter.future;
  }

  /** Fails the waiter behind {@code future} with its stragglers if it has not completed. */
  public void expire(CompletableFuture<AckReport> future) {
    RouteNotAcknowledgedException failure = null;
    synchronized (lock) {
      for (Iterator<Waiter> it = waiters.iterator(); it.hasNext(); ) {
        Waiter w = it.next();
        if (w.future == future) {
          it.remove();
          failure = new RouteNotAcknowledgedException(w.database, w.version,
              "was not acknowledged by every subscribed sidecar within the deadline", stragglers(w));
        }
      }
    }
    if (failure != null) {
      future.completeExceptionally(failure);
    }
  }

  /** Recomputes every waiter's pending nodes from every stream; completes the ones nobody is pending on. */
  @GuardedBy("lock")
  private List<Runnable> evaluate() {
    List<Runnable> done = new ArrayList<>();
    for (Waiter w : waiters) {
      w.pending.clear();
      for (Stream s : streams.values()) {
        if (counts(s, w) && !answered(s.node, w)) {
          w.pending.add(s.node.id);
        }
      }
    }
    return finishSettled(done);
  }

  /** After {@code node} answered: it is no longer pending for the versions it answered. */
  @GuardedBy("lock")
  private List<Runnable> evaluateNode(Node node) {
    List<Runnable> done = new ArrayList<>();
    boolean any = false;
    for (Waiter w : waiters) {
      if (w.pending.contains(node.id) && answered(node, w)) {
        w.pending.remove(node.id);
        any = true;
      }
    }
    return any ? finishSettled(done) : done;
  }

  private static boolean answered(Node node, Waiter w) {
    TypeState state = node.type(XdsType.EDS);
    return state.ackedVersion >= w.version || state.lastNack != null && state.lastNack.version() >= w.version;
  }

  /** Completes each waiter with no pending node: with the nodes that ACKed, or failing with those that NACKed. */
  @GuardedBy("lock")
  private List<Runnable> finishSettled(List<Runnable> done) {
    if (clock.instant().isBefore(settleUntil)) {
      return done; // nodes that predate this process may not have reconnected yet
    }
    for (Iterator<Waiter> it = waiters.iterator(); it.hasNext(); ) {
      Waiter w = it.next();
      if (w.future.isDone()) {
        it.remove();
        continue;
      }
      if (!w.pending.isEmpty()) {
        continue;
      }
      it.remove();
      Set<String> acked = new HashSet<>();
      for (Stream s : streams.values()) {
        if (counts(s, w) && s.node.type(XdsType.EDS).ackedVersion >= w.version) {
          acked.add(s.node.id);
        }
      }
      ImmutableList<RouteNotAcknowledgedException.Straggler> stragglers = stragglers(w);
      if (stragglers.isEmpty()) {
        AckReport report = new AckReport(w.database, w.version, ImmutableList.sortedCopyOf(acked),
            Duration.between(w.started, clock.instant()));
        done.add(() -> w.future.complete(report));
      } else {
        RouteNotAcknowledgedException failure =
            new RouteNotAcknowledgedException(w.database, w.version, "was rejected", stragglers);
        done.add(() -> w.future.completeExceptionally(failure));
      }
    }
    return done;
  }

  @GuardedBy("lock")
  private ImmutableList<RouteNotAcknowledgedException.Straggler> stragglers(Waiter w) {
    Map<String, RouteNotAcknowledgedException.Straggler> byNode = new LinkedHashMap<>();
    for (Stream s : streams.values()) {
      if (!counts(s, w)) {
        continue;
      }
      TypeState state = s.node.type(XdsType.EDS);
      if (state.ackedVersion < w.version) {
        String error = state.lastNack != null && state.lastNack.version() >= w.version ? state.lastNack.error() : "";
        byNode.put(s.node.id, new RouteNotAcknowledgedException.Straggler(s.node.id, s.node.cluster,
            state.ackedVersion, error));
      }
    }
    return ImmutableList.copyOf(byNode.values());
  }

  private static boolean counts(Stream s, Waiter w) {
    return s.node != null && w.clusterAllowed.test(s.node.cluster) && s.subscribedTo(XdsType.EDS, w.database);
  }

  @GuardedBy("lock")
  private long forgotten;

  /**
   * Forgets every node that has had no open stream for {@code after}: sidecars of pods that are gone. Returns how
   * many were forgotten now.
   */
  public int forgetDisconnected(Duration after) {
    Instant before = clock.instant().minus(after);
    int count = 0;
    synchronized (lock) {
      for (Iterator<Node> it = nodes.values().iterator(); it.hasNext(); ) {
        Node n = it.next();
        if (n.openStreams == 0 && n.disconnectedAt != null && n.disconnectedAt.isBefore(before)) {
          it.remove();
          count++;
        }
      }
      forgotten += count;
    }
    return count;
  }

  /** How many nodes are connected now, remembered while disconnected, and forgotten since start. */
  public record NodeCounts(long connected, long disconnected, long forgotten) {}

  public NodeCounts counts() {
    synchronized (lock) {
      long connected = nodes.values().stream().filter(n -> n.openStreams > 0).count();
      return new NodeCounts(connected, nodes.size() - connected, forgotten);
    }
  }

  /** Every node seen since start and not forgotten, connected or not, in the order first seen. */
  public ImmutableList<NodeStatus> nodes() {
    synchronized (lock) {
      ImmutableList.Builder<NodeStatus> result = ImmutableList.builder();
      for (Node n : nodes.values()) {
        ImmutableMap.Builder<XdsType, NodeStatus.TypeStatus> types = ImmutableMap.builder();
        n.types.forEach((t, s) -> types.put(t, new NodeStatus.TypeStatus(s.sentVersion, s.ackedVersion,
            Optional.ofNullable(s.lastNack), Optional.ofNullable(s.ackedAt))));
        result.add(new NodeStatus(n.id, n.cluster, n.openStreams > 0, types.buildOrThrow()));
      }
      return result.build();
    }
  }

  public Optional<NodeStatus> node(String nodeId) {
    return nodes().stream().filter(n -> n.nodeId().equals(nodeId)).findFirst();
  }
}
