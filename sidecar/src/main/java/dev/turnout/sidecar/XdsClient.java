package dev.turnout.sidecar;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.Status;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The sidecar's ADS subscription (state of the world), behaving toward the control plane as Envoy does:
 * Listeners and Clusters by wildcard, then the ClusterLoadAssignments of the clusters received; every response
 * is validated and applied, then ACKed, or NACKed with the reason when it cannot be applied. On a broken
 * stream it keeps serving the last good configuration and reconnects, paced by {@link ReconnectBackoff}.
 *
 * <p>Reconnecting, the stream is opened wait-for-ready: it goes out the moment the channel has a connection,
 * rather than failing fast while the channel is in TRANSIENT_FAILURE. gRPC's channel retries a connection on a
 * backoff of its own (1 s growing ×1.6 to 120 s) that would decide how late the sidecar notices a control
 * plane that is back; until a response arrives, every step of our backoff cuts that short with
 * {@link ManagedChannel#resetConnectBackoff()}, so connection attempts follow ours (at most {@link
 * ReconnectBackoff#CAP} apart). The backoff resets only on a response, which proves the stream works.
 *
 * <p>All state is confined to the one thread of {@code executor}: gRPC callbacks and reconnects run there.
 */
final class XdsClient {
  private static final Logger log = LoggerFactory.getLogger(XdsClient.class);

  static final String LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener";
  static final String CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
  static final String ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

  private final ManagedChannel channel;
  private final Node node;
  private final ProxyManager proxies;
  private final ScheduledExecutorService executor;
  private final ReconnectBackoff backoff;

  private StreamObserver<DiscoveryRequest> requests;
  private Object current;
  private boolean answered; // whether the current stream has had a response
  private boolean warned; // whether the loss of the control plane has been logged since the last response
  private final Map<String, String> acceptedVersions = new HashMap<>();
  private Set<String> clusters = new TreeSet<>();
  private volatile boolean connected;
  private volatile java.net.SocketAddress remote;
  private volatile boolean stopped;
  private volatile long responses;

  XdsClient(ManagedChannel channel, Node node, ProxyManager proxies, ScheduledExecutorService executor,
      ReconnectBackoff backoff) {
    this.channel = channel;
    this.node = node;
    this.proxies = proxies;
    this.executor = executor;
    this.backoff = backoff;
  }

  void start() {
    executor.execute(this::open);
  }

  void stop() {
    stopped = true;
    executor.execute(() -> {
      if (requests != null) {
        requests.onCompleted();
      }
    });
  }

  boolean connected() {
    return connected;
  }

  long responsesApplied() {
    return responses;
  }

  Optional<java.net.SocketAddress> remoteAddress() {
    return connected ? Optional.ofNullable(remote) : Optional.empty();
  }

  private void open() {
    if (stopped) {
      return;
    }
    Object stream = new Object();
    current = stream;
    answered = false;
    // Events of a stream already replaced by a reconnect are ignored.
    StreamObserver<DiscoveryResponse> responses = new StreamObserver<>() {
      @Override
      public void onNext(DiscoveryResponse response) {
        post(() -> {
          if (current == stream) {
            handle(response);
          }
        });
      }

      @Override
      public void onError(Throwable t) {
        post(() -> {
          if (current == stream) {
            broken("stream failed: " + t.getMessage());
          }
        });
      }

      @Override
      public void onCompleted() {
        post(() -> {
          if (current == stream) {
            broken("stream closed by the control plane");
          }
        });
      }
    };
    channel.resetConnectBackoff();
    Channel observed = ClientInterceptors.intercept(channel,
        new RemoteAddressInterceptor(address -> post(() -> {
          if (current == stream) {
            remote = address;
          }
        })));
    requests = AggregatedDiscoveryServiceGrpc.newStub(observed).withWaitForReady()
        .streamAggregatedResources(responses);
    // On a reconnect the versions we run go along, so an unchanged control plane need not resend.
    send(LISTENER, List.of());
    send(CLUSTER, List.of());
    if (!clusters.isEmpty()) {
      send(ENDPOINT, List.copyOf(clusters));
    }
    kickUntilAnswered(stream);
  }

  /** While {@code stream} waits for a connection, has the channel try again at each step of our backoff. */
  private void kickUntilAnswered(Object stream) {
    executor.schedule(() -> {
      if (current == stream && !answered && !stopped) {
        ConnectivityState state = channel.getState(false);
        // Some 2 s without a connection, or 10 s connected without an answer, is worth one line.
        if (!warned && backoff.attempts() >= (state == ConnectivityState.READY ? 15 : 6)) {
          warned = true;
          log.warn("xDS: no answer from the control plane yet (channel {}); serving the last good configuration,"
              + " trying at most {} ms apart", state, ReconnectBackoff.CAP.toMillis());
        }
        channel.resetConnectBackoff(); // does nothing unless the channel is waiting out its own backoff
        kickUntilAnswered(stream);
      }
    }, backoff.next().toMillis(), TimeUnit.MILLISECONDS);
  }

  /** Runs on the client's thread; after {@link #stop} the thread is gone and late stream events are dropped. */
  private void post(Runnable task) {
    try {
      executor.execute(task);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      if (!stopped) {
        throw e;
      }
    }
  }

  private void broken(String why) {
    connected = false;
    requests = null;
    current = null;
    if (stopped) {
      return;
    }
    // A stream that fails before any response (a control plane that refuses this node) waits longer each
    // time, up to the cap; one that worked is retried at once, within the first step.
    long delay = backoff.next().toMillis();
    if (!warned) {
      warned = true; // one line per outage, not one per attempt
      log.warn("xDS {}; serving the last good configuration, reconnecting (attempts at most {} ms apart)", why,
          ReconnectBackoff.CAP.toMillis());
    } else {
      log.debug("xDS {}; reconnecting in {} ms", why, delay);
    }
    executor.schedule(this::open, delay, TimeUnit.MILLISECONDS);
  }

  private void send(String typeUrl, List<String> names) {
    if (requests == null) {
      return;
    }
    requests.onNext(DiscoveryRequest.newBuilder().setNode(node).setTypeUrl(typeUrl).addAllResourceNames(names)
        .setVersionInfo(acceptedVersions.getOrDefault(typeUrl, "")).build());
  }

  private void handle(DiscoveryResponse response) {
    if (!answered) {
      answered = true;
      if (responses == 0) {
        log.info("xDS stream up on {}", describe(remote));
      } else if (warned) {
        log.info("xDS stream up again on {} after {} attempt(s)", describe(remote), backoff.attempts());
      }
      backoff.reset(); // a response proves the stream works; opening one does not
      warned = false;
    }
    connected = true;
    String type = response.getTypeUrl();
    String error = null;
    try {
      switch (type) {
        case LISTENER -> proxies.applyListeners(listeners(response.getResourcesList()));
        case CLUSTER -> applyClusters(response.getResourcesList());
        case ENDPOINT -> proxies.applyEndpoints(assignments(response.getResourcesList()));
        default -> throw new InvalidResourceException("resource type " + type + " is not used by this sidecar");
      }
    } catch (InvalidResourceException | InvalidProtocolBufferException e) {
      error = e.getMessage();
    }
    DiscoveryRequest.Builder reply = DiscoveryRequest.newBuilder().setNode(node).setTypeUrl(type)
        .setResponseNonce(response.getNonce());
    if (type.equals(ENDPOINT)) {
      reply.addAllResourceNames(clusters);
    }
    if (error == null) {
      acceptedVersions.put(type, response.getVersionInfo());
      reply.setVersionInfo(response.getVersionInfo());
      this.responses++;
    } else {
      reply.setVersionInfo(acceptedVersions.getOrDefault(type, ""))
          .setErrorDetail(Status.newBuilder().setCode(io.grpc.Status.Code.INVALID_ARGUMENT.value()).setMessage(error));
    }
    long delay = nackDelay(type, response.getVersionInfo(), error);
    if (delay == 0) {
      requests.onNext(reply.build());
    } else {
      // A state-of-the-world server answers a NACK by sending the same version again; repeating the NACK
      // at once would spin. The first NACK of a version goes at once, repeats back off.
      StreamObserver<DiscoveryRequest> stream = requests;
      executor.schedule(() -> {
        if (requests == stream) {
          stream.onNext(reply.build());
        }
      }, delay, TimeUnit.MILLISECONDS);
    }
  }

  private final Map<String, String> nackedVersion = new HashMap<>();
  private final Map<String, Integer> nackRepeats = new HashMap<>();

  private long nackDelay(String type, String version, String error) {
    if (error == null) {
      nackedVersion.remove(type);
      nackRepeats.remove(type);
      return 0;
    }
    if (!version.equals(nackedVersion.put(type, version))) {
      nackRepeats.put(type, 0);
      log.warn("NACK {} version {}: {}", shortName(type), version, error);
      return 0;
    }
    int repeats = nackRepeats.merge(type, 1, Integer::sum);
    return Math.min(30_000L, 250L << Math.min(repeats, 7));
  }

  private void applyClusters(List<Any> resources) throws InvalidResourceException, InvalidProtocolBufferException {
    Set<String> names = new TreeSet<>();
    for (Any any : resources) {
      Cluster cluster = any.unpack(Cluster.class);
      if (cluster.getType() != Cluster.DiscoveryType.EDS) {
        throw new InvalidResourceException("cluster '" + cluster.getName() + "' is " + cluster.getType()
            + "; this sidecar takes endpoints from EDS only");
      }
      names.add(cluster.getName());
    }
    boolean changed = !names.equals(clusters);
    clusters = names;
    proxies.retainClusters(names);
    if (changed) {
      send(ENDPOINT, List.copyOf(names));
    }
  }

  static List<ProxyManager.ListenerSpec> listeners(List<Any> resources)
      throws InvalidResourceException, InvalidProtocolBufferException {
    List<ProxyManager.ListenerSpec> specs = new ArrayList<>();
    Map<Integer, String> ports = new LinkedHashMap<>();
    for (Any any : resources) {
      Listener listener = any.unpack(Listener.class);
      SocketAddress address = listener.getAddress().getSocketAddress();
      if (address.getPortValue() == 0) {
        throw new InvalidResourceException("listener '" + listener.getName() + "' has no socket address port");
      }
      String cluster = null;
      for (var chain : listener.getFilterChainsList()) {
        for (Filter filter : chain.getFiltersList()) {
          if (filter.getTypedConfig().is(TcpProxy.class)) {
            cluster = filter.getTypedConfig().unpack(TcpProxy.class).getCluster();
          }
        }
      }
      if (cluster == null || cluster.isEmpty()) {
        throw new InvalidResourceException("listener '" + listener.getName() + "' has no tcp_proxy filter naming a cluster");
      }
      String other = ports.putIfAbsent(address.getPortValue(), listener.getName());
      if (other != null) {
        throw new InvalidResourceException("listeners '" + other + "' and '" + listener.getName()
            + "' both want port " + address.getPortValue());
      }
      specs.add(new ProxyManager.ListenerSpec(listener.getName(),
          new InetSocketAddress(address.getAddress().isEmpty() ? "127.0.0.1" : address.getAddress(),
              address.getPortValue()), cluster));
    }
    return specs;
  }

  static Map<String, Optional<InetSocketAddress>> assignments(List<Any> resources)
      throws InvalidResourceException, InvalidProtocolBufferException {
    Map<String, Optional<InetSocketAddress>> result = new LinkedHashMap<>();
    for (Any any : resources) {
      ClusterLoadAssignment cla = any.unpack(ClusterLoadAssignment.class);
      List<SocketAddress> addresses = new ArrayList<>();
      for (LocalityLbEndpoints locality : cla.getEndpointsList()) {
        for (LbEndpoint lb : locality.getLbEndpointsList()) {
          addresses.add(lb.getEndpoint().getAddress().getSocketAddress());
        }
      }
      if (addresses.size() > 1) {
        // Two endpoints would mean two writable servers: never route to more than the one the table names.
        throw new InvalidResourceException("assignment '" + cla.getClusterName() + "' names " + addresses.size()
            + " endpoints; a database lives on exactly one server");
      }
      Optional<InetSocketAddress> endpoint = Optional.empty();
      if (addresses.size() == 1) {
        SocketAddress a = addresses.get(0);
        if (a.getAddress().isEmpty() || a.getPortValue() == 0) {
          throw new InvalidResourceException("assignment '" + cla.getClusterName() + "' has an endpoint without address or port");
        }
        endpoint = Optional.of(new InetSocketAddress(a.getAddress(), a.getPortValue()));
      }
      result.put(cla.getClusterName(), endpoint);
    }
    return result;
  }

  private static String describe(java.net.SocketAddress address) {
    return address instanceof InetSocketAddress inet && inet.getAddress() != null
        ? inet.getAddress().getHostAddress() + ":" + inet.getPort() : String.valueOf(address);
  }

  private static String shortName(String typeUrl) {
    return switch (typeUrl) {
      case LISTENER -> "LDS";
      case CLUSTER -> "CDS";
      case ENDPOINT -> "EDS";
      default -> typeUrl;
    };
  }
}
