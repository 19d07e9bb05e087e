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
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The sidecar's ADS subscription (state of the world), behaving toward the control plane as Envoy does:
 * Listeners and Clusters by wildcard, then the ClusterLoadAssignments of the clusters received; every response
 * is validated and applied, then ACKed, or NACKed with the reason when it cannot be applied. On a broken
 * stream it reconnects with backoff and keeps serving the last good configuration meanwhile.
 *
 * <p>All state is confined to the one thread of {@code executor}: gRPC callbacks and reconnects run there.
 */
final class XdsClient {
  private static final Logger log = LoggerFactory.getLogger(XdsClient.class);

  static final String LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener";
  static final String CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
  static final String ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

  private static final Duration MIN_BACKOFF = Duration.ofMillis(100);
  private static final Duration MAX_BACKOFF = Duration.ofSeconds(10);

  private final ManagedChannel channel;
  private final Node node;
  private final ProxyManager proxies;
  private final ScheduledExecutorService executor;

  private StreamObserver<DiscoveryRequest> requests;
  private Object current;
  private final Map<String, String> acceptedVersions = new HashMap<>();
  private Set<String> clusters = new TreeSet<>();
  private Duration backoff = MIN_BACKOFF;
  private volatile boolean connected;
  private volatile boolean stopped;
  private volatile long responses;

  XdsClient(ManagedChannel channel, Node node, ProxyManager proxies, ScheduledExecutorService executor) {
    this.channel = channel;
    this.node = node;
    this.proxies = proxies;
    this.executor = executor;
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

  private void open() {
    if (stopped) {
      return;
    }
    Object stream = new Object();
    current = stream;
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
    requests = AggregatedDiscoveryServiceGrpc.newStub(channel).streamAggregatedResources(responses);
    // On a reconnect the versions we run go along, so an unchanged control plane need not resend.
    send(LISTENER, List.of());
    send(CLUSTER, List.of());
    if (!clusters.isEmpty()) {
      send(ENDPOINT, List.copyOf(clusters));
    }
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
    long delay = ThreadLocalRandom.current().nextLong(backoff.toMillis() / 2, backoff.toMillis() + 1);
    log.warn("xDS {}; serving the last good configuration, reconnecting in {} ms", why, delay);
    backoff = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
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
    backoff = MIN_BACKOFF;
    connected = true; // a response proves the stream is up; opening one does not
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

  private static String shortName(String typeUrl) {
    return switch (typeUrl) {
      case LISTENER -> "LDS";
      case CLUSTER -> "CDS";
      case ENDPOINT -> "EDS";
      default -> typeUrl;
    };
  }
}
