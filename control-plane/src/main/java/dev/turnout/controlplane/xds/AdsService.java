package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableSet;
import com.google.common.util.concurrent.MoreExecutors;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turnout's Aggregated Discovery Service, state of the world and delta, written to the xDS protocol so that any
 * conformant client can live with it (Envoy in its common configurations, gRPC's xDS clients):
 * <ul>
 *   <li>the node is required on a stream's first request only and kept for the stream; a later request naming
 *       another node is refused;
 *   <li>a NACK is answered with nothing: the node is sent nothing more of that type until the content it would
 *       get changes or its subscription does (no resend storm), and each NACK is logged once, rate-limited, and
 *       counted;
 *   <li>a request by name is answered at once with what exists and the node's service may see; a forbidden name
 *       looks exactly like an unknown one (in delta both are named in {@code removed_resources});
 *   <li>explicit subscriptions are honoured for every type; the wildcard only when asked for (LDS and CDS:
 *       an empty first request, or {@code "*"});
 *   <li>state of the world sends Listeners and Clusters whole, as the protocol requires, but only the
 *       ClusterLoadAssignments that changed (clients do not read an absent assignment as removed);
 *   <li>every response carries an unguessable nonce, and an ACK counts only for a nonce sent on that stream;
 *   <li>a client's mistake (no node, an unknown type, oversized fields) ends its stream with INVALID_ARGUMENT
 *       naming the mistake and one rate-limited log line, never a stack trace.
 * </ul>
 *
 * <p>Each stream's state is confined to its own sequential executor (over a shared pool): requests and
 * "a snapshot was published" events queue there, so a stream needs no lock and publishing never waits on one.
 */
final class AdsService extends AggregatedDiscoveryServiceGrpc.AggregatedDiscoveryServiceImplBase {
  private static final Logger log = LoggerFactory.getLogger(AdsService.class);

  /** Bounds on what a client may send: enough for any real fleet, small enough that no client can poison state. */
  static final int MAX_NODE_FIELD = 256;
  static final int MAX_NAMES = 10_000;
  static final int MAX_NAME = 256;
  static final int MAX_ERROR_DETAIL = 1024;
  private static final int NONCES_REMEMBERED = 16;
  /** A delta client's name it was told does not exist (or that it may not see). */
  private static final long ABSENT = -1;

  /** Told of every NACK, to count it (Prometheus {@code turnout_xds_nacks_total{type,database}}). */
  interface NackListener {
    void nacked(XdsType type, String database);
  }

  private final SnapshotPublisher publisher;
  private final AckTracker tracker;
  private final Executor pool;
  private final boolean requireIdentity;
  private final NackListener nacks;
  private final LogLimiter nackLog;
  private final LogLimiter clientErrorLog;
  private final AtomicLong streamIds = new AtomicLong();
  private final SecureRandom random = fastRandom();

  /** @param requireIdentity the server runs mTLS: a node's certificate CN must equal its node.cluster */
  AdsService(SnapshotPublisher publisher, AckTracker tracker, Executor pool, boolean requireIdentity,
      NackListener nacks, Clock clock) {
    this.publisher = publisher;
    this.tracker = tracker;
    this.pool = pool;
    this.requireIdentity = requireIdentity;
    this.nacks = nacks;
    this.nackLog = new LogLimiter(clock, Duration.ofSeconds(10), 20);
    this.clientErrorLog = new LogLimiter(clock, Duration.ofSeconds(10), 20);
  }

  @Override
  public StreamObserver<DiscoveryRequest> streamAggregatedResources(StreamObserver<DiscoveryResponse> responses) {
    return new SotwStream(streamIds.incrementAndGet(), responses, identity());
  }

  @Override
  public StreamObserver<DeltaDiscoveryRequest> deltaAggregatedResources(
      StreamObserver<DeltaDiscoveryResponse> responses) {
    return new DeltaStream(streamIds.incrementAndGet(), responses, identity());
  }

  private static String identity() {
    return dev.turnout.controlplane.security.PeerIdentity.KEY.get();
  }

  /**
   * SHA1PRNG seeded once from /dev/urandom: pure Java per call (NativePRNG reads the device on every call under a
   * lock), and never blocking at start as DRBG's seeding from /dev/random can on a quiet virtual machine.
   */
  private static SecureRandom fastRandom() {
    try {
      SecureRandom random = SecureRandom.getInstance("SHA1PRNG");
      random.setSeed(SecureRandom.getInstance("NativePRNGNonBlocking").generateSeed(32));
      return random;
    } catch (java.security.NoSuchAlgorithmException e) {
      return new SecureRandom();
    }
  }

  String nonce() {
    byte[] bytes = new byte[12];
    random.nextBytes(bytes);
    return HexFormat.of().formatHex(bytes);
  }

  /** A request the protocol does not allow: the stream ends with {@link #status}. */
  static final class ClientError extends Exception {
    final Status status;

    ClientError(Status.Code code, String description) {
      super(description, null, false, false);
      this.status = Status.fromCode(code).withDescription(description);
    }
  }

  /** Per resource type on one stream: what the client subscribed to and what it has been sent. */
  static final class TypeState {
    boolean requested;
    /** State of the world, LDS and CDS: an empty list means the wildcard until a non-empty one was sent. */
    boolean legacyWildcard = true;
    boolean wildcard;
    /** Replaced, never mutated, so the ACK tracker can keep the same set. */
    ImmutableSet<String> names = ImmutableSet.of();
    /** Name to the version the client was last sent (or, delta, says it has; {@link #ABSENT}: told it is gone). */
    final Map<String, Long> known = new HashMap<>();
    /** State of the world: the latest response's nonce; a request with another nonce is stale. */
    String lastNonce = "";
    /** After a NACK: the next response carries every subscribed resource, not only changed ones. */
    boolean resendAll;
    /** Recent responses by nonce: their version, and the database when they carried one (the NACK counter's). */
    final LinkedHashMap<String, Sent> recent = new LinkedHashMap<>(NONCES_REMEMBERED * 2);
    long nackLoggedVersion = -1;
    /** The snapshot version this type was last brought up to date with. */
    long seenVersion = -1;

    void remember(String nonce, long version, String database) {
      recent.put(nonce, new Sent(version, database));
      if (recent.size() > NONCES_REMEMBERED) {
        Iterator<String> it = recent.keySet().iterator();
        it.next();
        it.remove();
      }
    }
  }

  record Sent(long version, String database) {}

  /** One ADS stream: its node, its per-type state, its executor. */
  private abstract class Stream<Q, R> implements StreamObserver<Q>, SnapshotPublisher.Subscriber {
    final long id;
    final StreamObserver<R> responses;
    final String identity;
    final Executor executor = MoreExecutors.newSequentialExecutor(pool);
    final AtomicBoolean publishQueued = new AtomicBoolean();
    final Map<XdsType, TypeState> types = new EnumMap<>(XdsType.class);
    Node node;
    boolean closed;

    Stream(long id, StreamObserver<R> responses, String identity) {
      this.id = id;
      this.responses = responses;
      this.identity = identity;
      if (responses instanceof io.grpc.stub.ServerCallStreamObserver<R> call) {
        // A client that goes away cancels the call: the stream ends quietly (no exception on the next send).
        call.setOnCancelHandler(() -> run(() -> {
          if (!closed) {
            close();
          }
        }));
      }
    }

    /** Sends one response; a call the client has just cancelled ends the stream quietly. */
    void deliver(R response) {
      try {
        responses.onNext(response);
      } catch (StatusRuntimeException | IllegalStateException e) {
        if (!closed) {
          close();
        }
      }
    }

    abstract void handle(Q request) throws ClientError;

    abstract void onSnapshot(XdsSnapshot snapshot);

    abstract String kind();

    /** Queues {@code task} on this stream's executor; nothing runs once the server is stopping. */
    void run(Runnable task) {
      try {
        executor.execute(task);
      } catch (java.util.concurrent.RejectedExecutionException e) {
        // the xDS server is shutting down
      }
    }

    @Override
    public void onNext(Q request) {
      run(() -> {
        if (closed) {
          return;
        }
        try {
          handle(request);
        } catch (ClientError e) {
          clientErrorLog.warn(log, "xDS {} stream {} from {}: refused: {}", kind(), id, who(),
              e.status.getDescription());
          fail(e.status);
        } catch (RuntimeException e) {
          log.error("xDS {} stream {} from {}: internal error", kind(), id, who(), e);
          fail(Status.INTERNAL.withDescription("internal error in Turnout's xDS server: " + e));
        }
      });
    }

    @Override
    public void onError(Throwable t) {
      run(() -> {
        if (!closed) {
          Status status = Status.fromThrowable(t);
          if (status.getCode() != Status.Code.CANCELLED) {
            log.debug("xDS stream {} from {} ended: {}", id, who(), status);
          }
          close();
        }
      });
    }

    @Override
    public void onCompleted() {
      run(() -> {
        if (!closed) {
          close();
          try {
            responses.onCompleted();
          } catch (IllegalStateException | StatusRuntimeException e) {
            // the call is already over
          }
        }
      });
    }

    @Override
    public void published() {
      if (publishQueued.compareAndSet(false, true)) {
        run(() -> {
          publishQueued.set(false); // a publish after this point queues another look
          if (!closed && node != null) {
            try {
              onSnapshot(publisher.current());
            } catch (RuntimeException e) {
              log.error("xDS {} stream {} to {}: internal error", kind(), id, who(), e);
              fail(Status.INTERNAL.withDescription("internal error in Turnout's xDS server: " + e));
            }
          }
        });
      }
    }

    void fail(Status status) {
      close();
      try {
        responses.onError(status.asRuntimeException());
      } catch (IllegalStateException | StatusRuntimeException e) {
        // the call is already over
      }
    }

    void close() {
      closed = true;
      publisher.unsubscribe(this);
      tracker.onStreamClosed(id);
    }

    String who() {
      return node == null ? "(no node yet)" : "node " + node.getId() + " (service " + node.getCluster() + ")";
    }

    /** The stream's node: required on its first request, optional after, never another. */
    void checkNode(boolean present, Node requested) throws ClientError {
      if (node == null) {
        if (!present || requested.getId().isEmpty()) {
          throw new ClientError(Status.Code.INVALID_ARGUMENT,
              "the first request on an xDS stream must carry node.id and node.cluster");
        }
        checkField("node.id", requested.getId());
        checkField("node.cluster", requested.getCluster());
        if (requireIdentity && (identity == null || !identity.equals(requested.getCluster()))) {
          // The service decides which databases a node gets: a certificate for one service cannot ask for another's.
          throw new ClientError(Status.Code.PERMISSION_DENIED, "node " + requested.getId() + " asks as service '"
              + requested.getCluster() + "' but its certificate is for '" + identity + "'");
        }
        node = Node.newBuilder().setId(requested.getId()).setCluster(requested.getCluster()).build();
        publisher.subscribe(this);
        return;
      }
      if (present && (!requested.getId().equals(node.getId()) || !requested.getCluster().equals(node.getCluster()))) {
        throw new ClientError(Status.Code.INVALID_ARGUMENT, "this stream belongs to " + who()
            + "; a request cannot name node " + printable(requested.getId()) + " (service "
            + printable(requested.getCluster()) + ")");
      }
    }

    XdsType typeOf(String typeUrl) throws ClientError {
      if (typeUrl.isEmpty()) {
        throw new ClientError(Status.Code.INVALID_ARGUMENT, "type_url is empty (ADS requests must name their type)");
      }
      return XdsType.ofTypeUrl(typeUrl).orElseThrow(() -> new ClientError(Status.Code.INVALID_ARGUMENT,
          "type_url '" + printable(typeUrl) + "' is not served here (Turnout serves " + XdsType.servedTypeUrls()
              + ")"));
    }

    TypeState state(XdsType type) {
      return types.computeIfAbsent(type, t -> new TypeState());
    }

    /** The resources of {@code type} this node asks for and may see, by name. */
    Map<String, XdsSnapshot.Entry> visible(XdsType type, TypeState st, XdsSnapshot snapshot) {
      Map<String, XdsSnapshot.Entry> result = new LinkedHashMap<>();
      String service = node.getCluster();
      if (st.wildcard) {
        for (XdsSnapshot.Entry e : snapshot.all(type)) {
          if (e.visibleTo(service)) {
            result.put(e.name(), e);
          }
        }
      }
      for (String name : st.names) {
        XdsSnapshot.Entry e = snapshot.get(type, name);
        if (e != null && e.visibleTo(service)) {
          result.put(name, e);
        }
      }
      return result;
    }

    /** The last answer of {@link #changedSince}, for the other types brought up to date from the same version. */
    private long sinceSeen = -2;
    /** By version, not the snapshot itself: a stream must not keep an old snapshot alive. */
    private long sinceVersion = -2;
    private Collection<String> sinceChanged;

    /**
     * The databases to look at for {@code type} in {@code snapshot}: when the snapshot's log of publications reaches
     * back to the one the type was last brought up to date with, only those that changed since (so a change of one
     * endpoint costs each of thousands of streams a few lookups, not a pass over every database, even when the
     * stream was busy while several versions were published); otherwise null, meaning all.
     */
    Collection<String> changedSince(TypeState st, XdsSnapshot snapshot) {
      if (st.seenVersion != sinceSeen || snapshot.version() != sinceVersion) {
        sinceSeen = st.seenVersion;
        sinceVersion = snapshot.version();
        // Past half the databases a pass over all of them costs no more than a look at each changed one.
        sinceChanged = snapshot.changedSince(st.seenVersion, snapshot.table().databases().size() / 2);
      }
      return sinceChanged;
    }

    /** Whether {@code name} is asked for, and visible, in {@code snapshot}: its entry, or null. */
    XdsSnapshot.Entry wanted(XdsType type, TypeState st, XdsSnapshot snapshot, String name) {
      if (!st.wildcard && !st.names.contains(name)) {
        return null;
      }
      XdsSnapshot.Entry e = snapshot.get(type, name);
      return e != null && e.visibleTo(node.getCluster()) ? e : null;
    }

    /** A NACK of a response: logged once per node, type and version (rate-limited), and counted. */
    void nacked(XdsType type, TypeState st, String nonce, String error) {
      Sent sent = st.recent.get(nonce);
      if (sent == null) {
        return; // not a nonce of ours (or one too old to matter): neither ACK nor NACK
      }
      String database = sent.database();
      long version = sent.version();
      nacks.nacked(type, database);
      if (st.nackLoggedVersion != version) {
        st.nackLoggedVersion = version;
        nackLog.warn(log, "{} NACKed {} version {}{}: {}; it is sent nothing more of {} until that changes",
            who(), type, version, database.isEmpty() ? "" : " (" + database + ")", error, type);
      }
    }
  }

  private final class SotwStream extends Stream<DiscoveryRequest, DiscoveryResponse> {
    SotwStream(long id, StreamObserver<DiscoveryResponse> responses, String identity) {
      super(id, responses, identity);
    }

    @Override
    String kind() {
      return "state-of-the-world";
    }

    @Override
    void handle(DiscoveryRequest request) throws ClientError {
      checkNode(request.hasNode(), request.getNode());
      XdsType type = typeOf(request.getTypeUrl());
      checkNames(request.getResourceNamesList());
      TypeState st = state(type);
      String nonce = request.getResponseNonce();
      String error = request.hasErrorDetail() ? boundedError(request.getErrorDetail().getMessage()) : "";
      boolean first = !st.requested;
      st.requested = true;
      if (!first && !nonce.isEmpty() && !nonce.equals(st.lastNonce)) {
        // Stale: answers an older response while a newer one is on its way. The protocol says ignore it, except
        // that the tracker may still learn the older version was accepted.
        tracker.onRequest(id, node, type, st.wildcard, st.names, nonce, error);
        return;
      }
      boolean changed = subscribe(type, st, request.getResourceNamesList()) || first;
      tracker.onRequest(id, node, type, st.wildcard, st.names, nonce, error);
      if (!error.isEmpty() && !nonce.isEmpty()) {
        st.resendAll = true;
        nacked(type, st, nonce, error);
      }
      if (changed) {
        send(type, st, publisher.current(), true);
      }
    }

    /** Replaces the subscription with {@code requested}; returns whether it changed. */
    private boolean subscribe(XdsType type, TypeState st, List<String> requested) {
      if (!requested.isEmpty() && requested.size() == st.names.size() && !st.wildcard
          && st.names.containsAll(requested)) {
        return false; // the same names again: an ACK (Envoy repeats its subscription on every request)
      }
      boolean wildcard;
      Set<String> names = new java.util.HashSet<>(requested);
      if (names.remove("*")) {
        wildcard = true;
      } else {
        wildcard = requested.isEmpty() && st.legacyWildcard && XdsType.wildcardByDefault(type);
      }
      if (!requested.isEmpty()) {
        st.legacyWildcard = false;
      }
      if (wildcard == st.wildcard && names.equals(st.names)) {
        return false;
      }
      st.wildcard = wildcard;
      st.names = ImmutableSet.copyOf(names);
      return true;
    }

    @Override
    void onSnapshot(XdsSnapshot snapshot) {
      for (Map.Entry<XdsType, TypeState> t : types.entrySet()) {
        if (t.getValue().requested) {
          update(t.getKey(), t.getValue(), snapshot, changedSince(t.getValue(), snapshot));
        }
      }
    }

    /**
     * Brings {@code type} up to date with {@code snapshot}, looking only at the databases in {@code only} when
     * given: an assignment that changed is sent alone; a Listener or Cluster change sends them all.
     */
    private void update(XdsType type, TypeState st, XdsSnapshot snapshot, Collection<String> only) {
      if (only == null) {
        send(type, st, snapshot, false);
        return;
      }
      List<XdsSnapshot.Entry> changed = new ArrayList<>(only.size());
      boolean gone = false;
      for (String name : only) {
        XdsSnapshot.Entry e = wanted(type, st, snapshot, name);
        if (e != null) {
          if (!Objects.equals(st.known.get(name), e.version())) {
            changed.add(e);
          }
        } else if (st.known.containsKey(name)) {
          gone = true;
        }
      }
      if (XdsType.wildcardByDefault(type) || st.resendAll) {
        if (changed.isEmpty() && !gone) {
          st.seenVersion = snapshot.version();
          return;
        }
        send(type, st, snapshot, false);
        return;
      }
      for (String name : only) {
        if (wanted(type, st, snapshot, name) == null) {
          st.known.remove(name); // an absent assignment means nothing in state of the world: nothing to send
        }
      }
      st.seenVersion = snapshot.version();
      if (!changed.isEmpty()) {
        respond(type, st, snapshot, changed);
      }
    }

    /**
     * Sends what the node lacks of {@code type}. Listeners and Clusters go whole whenever any of them changed
     * (the protocol reads an absent one as removed); assignments only the changed ones unless {@code full}.
     */
    private void send(XdsType type, TypeState st, XdsSnapshot snapshot, boolean full) {
      st.seenVersion = snapshot.version();
      Map<String, XdsSnapshot.Entry> visible = visible(type, st, snapshot);
      boolean whole = full || st.resendAll || XdsType.wildcardByDefault(type);
      List<XdsSnapshot.Entry> changed = new ArrayList<>();
      for (XdsSnapshot.Entry e : visible.values()) {
        if (!Objects.equals(st.known.get(e.name()), e.version())) {
          changed.add(e);
        }
      }
      boolean gone = st.known.keySet().stream().anyMatch(name -> !visible.containsKey(name));
      if (!full && changed.isEmpty() && !(gone && XdsType.wildcardByDefault(type))) {
        st.known.keySet().retainAll(visible.keySet());
        return;
      }
      st.known.keySet().retainAll(visible.keySet());
      respond(type, st, snapshot, whole ? visible.values() : changed);
    }

    private void respond(XdsType type, TypeState st, XdsSnapshot snapshot, Collection<XdsSnapshot.Entry> resources) {
      DiscoveryResponse.Builder response = DiscoveryResponse.newBuilder()
          .setTypeUrl(type.typeUrl())
          .setVersionInfo(Long.toString(snapshot.version()))
          .setNonce(nonce());
      for (XdsSnapshot.Entry e : resources) {
        response.addResources(e.resource());
      }
      for (XdsSnapshot.Entry e : resources) {
        st.known.put(e.name(), e.version());
      }
      st.lastNonce = response.getNonce();
      st.resendAll = false;
      st.remember(response.getNonce(), snapshot.version(), resources.size() == 1 ? resources.iterator().next().name() : "");
      tracker.onResponse(id, type, snapshot.version(), response.getNonce());
      deliver(response.build());
    }
  }

  private final class DeltaStream extends Stream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
    DeltaStream(long id, StreamObserver<DeltaDiscoveryResponse> responses, String identity) {
      super(id, responses, identity);
    }

    @Override
    String kind() {
      return "delta";
    }

    @Override
    void handle(DeltaDiscoveryRequest request) throws ClientError {
      checkNode(request.hasNode(), request.getNode());
      XdsType type = typeOf(request.getTypeUrl());
      checkNames(request.getResourceNamesSubscribeList());
      checkNames(request.getResourceNamesUnsubscribeList());
      TypeState st = state(type);
      boolean first = !st.requested;
      st.requested = true;
      boolean changed = first;
      if (first) {
        if (request.getInitialResourceVersionsCount() > MAX_NAMES) {
          throw new ClientError(Status.Code.INVALID_ARGUMENT, "initial_resource_versions names "
              + request.getInitialResourceVersionsCount() + " resources; at most " + MAX_NAMES + " are accepted");
        }
        // What a reconnecting client already has is not sent again.
        request.getInitialResourceVersionsMap().forEach((name, version) -> st.known.put(name, parseVersion(version)));
        if (request.getResourceNamesSubscribeCount() == 0 && XdsType.wildcardByDefault(type)) {
          st.wildcard = true;
        }
      }
      Set<String> names = new java.util.HashSet<>(st.names);
      for (String name : request.getResourceNamesSubscribeList()) {
        if (name.equals("*")) {
          changed |= !st.wildcard;
          st.wildcard = true;
        } else {
          changed |= names.add(name);
        }
      }
      for (String name : request.getResourceNamesUnsubscribeList()) {
        if (name.equals("*")) {
          st.wildcard = false;
        } else {
          names.remove(name);
          st.known.remove(name); // the client forgot it; nothing to tell it
        }
      }
      if (names.size() > MAX_NAMES) {
        throw new ClientError(Status.Code.INVALID_ARGUMENT, "subscribed to " + names.size() + " "
            + type + " resources; at most " + MAX_NAMES + " are accepted");
      }
      if (!names.equals(st.names)) {
        st.names = ImmutableSet.copyOf(names);
      }
      String nonce = request.getResponseNonce();
      String error = request.hasErrorDetail() ? boundedError(request.getErrorDetail().getMessage()) : "";
      tracker.onRequest(id, node, type, st.wildcard, st.names, nonce, error);
      if (!nonce.isEmpty() && !error.isEmpty()) {
        // What was rejected stays "known", so the same versions are not sent again until they change.
        nacked(type, st, nonce, error);
      }
      if (changed || !request.getResourceNamesUnsubscribeList().isEmpty()) {
        send(type, st, publisher.current());
      }
    }

    @Override
    void onSnapshot(XdsSnapshot snapshot) {
      for (Map.Entry<XdsType, TypeState> t : types.entrySet()) {
        if (t.getValue().requested) {
          Collection<String> only = changedSince(t.getValue(), snapshot);
          if (only == null) {
            send(t.getKey(), t.getValue(), snapshot);
          } else {
            update(t.getKey(), t.getValue(), snapshot, only);
          }
        }
      }
    }

    /** As {@link #send}, looking only at the databases in {@code only}. */
    private void update(XdsType type, TypeState st, XdsSnapshot snapshot, Collection<String> only) {
      st.seenVersion = snapshot.version();
      DeltaDiscoveryResponse.Builder response = DeltaDiscoveryResponse.newBuilder().setTypeUrl(type.typeUrl());
      String single = "";
      for (String name : only) {
        XdsSnapshot.Entry e = wanted(type, st, snapshot, name);
        Long known = st.known.get(name);
        if (e != null) {
          if (!Objects.equals(known, e.version())) {
            response.addResources(Resource.newBuilder().setName(name).setVersion(Long.toString(e.version()))
                .setResource(e.resource()));
            st.known.put(name, e.version());
            single = name;
          }
        } else if (st.names.contains(name)) {
          if (!Objects.equals(known, ABSENT)) {
            response.addRemovedResources(name);
            st.known.put(name, ABSENT);
            single = name;
          }
        } else if (known != null) {
          if (known != ABSENT) {
            response.addRemovedResources(name);
            single = name;
          }
          st.known.remove(name);
        }
      }
      respond(type, st, snapshot, response, single);
    }

    /** Sends the resources whose version the client lacks, and names the ones it has that are gone. */
    private void send(XdsType type, TypeState st, XdsSnapshot snapshot) {
      st.seenVersion = snapshot.version();
      Map<String, XdsSnapshot.Entry> visible = visible(type, st, snapshot);
      DeltaDiscoveryResponse.Builder response = DeltaDiscoveryResponse.newBuilder().setTypeUrl(type.typeUrl());
      String single = "";
      for (XdsSnapshot.Entry e : visible.values()) {
        if (!Objects.equals(st.known.get(e.name()), e.version())) {
          response.addResources(Resource.newBuilder().setName(e.name()).setVersion(Long.toString(e.version()))
              .setResource(e.resource()));
          st.known.put(e.name(), e.version());
          single = e.name();
        }
      }
      // Asked for by name but absent or not for this service: said once, the same way for both.
      for (String name : st.names) {
        if (!visible.containsKey(name) && !Objects.equals(st.known.get(name), ABSENT)) {
          response.addRemovedResources(name);
          st.known.put(name, ABSENT);
          single = name;
        }
      }
      // Had through the wildcard (or told at the start) and gone since.
      for (Iterator<Map.Entry<String, Long>> it = st.known.entrySet().iterator(); it.hasNext(); ) {
        Map.Entry<String, Long> k = it.next();
        if (!visible.containsKey(k.getKey()) && !st.names.contains(k.getKey())) {
          if (k.getValue() != ABSENT) {
            response.addRemovedResources(k.getKey());
            single = k.getKey();
          }
          it.remove();
        }
      }
      respond(type, st, snapshot, response, single);
    }

    private void respond(XdsType type, TypeState st, XdsSnapshot snapshot, DeltaDiscoveryResponse.Builder response,
        String single) {
      if (response.getResourcesCount() == 0 && response.getRemovedResourcesCount() == 0) {
        return;
      }
      response.setSystemVersionInfo(Long.toString(snapshot.version())).setNonce(nonce());
      st.remember(response.getNonce(), snapshot.version(),
          response.getResourcesCount() + response.getRemovedResourcesCount() == 1 ? single : "");
      tracker.onResponse(id, type, snapshot.version(), response.getNonce());
      deliver(response.build());
    }
  }

  static void checkNames(List<String> names) throws ClientError {
    if (names.size() > MAX_NAMES) {
      throw new ClientError(Status.Code.INVALID_ARGUMENT, "a request names " + names.size()
          + " resources; at most " + MAX_NAMES + " are accepted");
    }
    for (String name : names) {
      if (name.length() > MAX_NAME) {
        throw new ClientError(Status.Code.INVALID_ARGUMENT, "resource name '" + printable(name.substring(0, 40))
            + "...' is " + name.length() + " characters; at most " + MAX_NAME + " are accepted");
      }
    }
  }

  static void checkField(String field, String value) throws ClientError {
    if (value.length() > MAX_NODE_FIELD) {
      throw new ClientError(Status.Code.INVALID_ARGUMENT, field + " is " + value.length()
          + " characters; at most " + MAX_NODE_FIELD + " are accepted");
    }
    for (int i = 0; i < value.length(); i++) {
      if (Character.isISOControl(value.charAt(i))) {
        throw new ClientError(Status.Code.INVALID_ARGUMENT, field + " '" + printable(value)
            + "' contains control characters");
      }
    }
  }

  /** A client's error_detail as kept and shown: control characters escaped, at most {@link #MAX_ERROR_DETAIL}. */
  static String boundedError(String message) {
    String shown = printable(message.length() > MAX_ERROR_DETAIL ? message.substring(0, MAX_ERROR_DETAIL) : message);
    if (message.length() > MAX_ERROR_DETAIL) {
      shown += "... (" + (message.length() - MAX_ERROR_DETAIL) + " more characters)";
    }
    return shown.isEmpty() ? "(NACK without a message)" : shown;
  }

  static String printable(String text) {
    return dev.turnout.controlplane.Printable.of(text);
  }

  private static long parseVersion(String version) {
    try {
      return Long.parseLong(version);
    } catch (NumberFormatException e) {
      return -2; // not one of ours: send the resource again
    }
  }
}
