package dev.turnout.controlplane.xds;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.Status;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * A real ADS client for tests, behaving as Envoy does: subscribes to Listeners and Clusters (wildcard), then to
 * the ClusterLoadAssignments of the clusters it received, and ACKs what it accepts. EDS responses can be held
 * (to prove a route future waits) or rejected (NACK with an error_detail).
 */
final class AdsTestClient implements AutoCloseable {
  enum Mode { STATE_OF_THE_WORLD, DELTA }

  private final String nodeId;
  private final Mode mode;
  private final Node node;
  private StreamObserver<DiscoveryRequest> sotw;
  private StreamObserver<DeltaDiscoveryRequest> delta;

  // Guarded by this.
  private final Map<String, Listener> listeners = new TreeMap<>();
  private final Map<String, Cluster> clusters = new TreeMap<>();
  private final Map<String, ClusterLoadAssignment> assignments = new TreeMap<>();
  private final Map<String, String> acceptedVersion = new TreeMap<>();
  private boolean holdEds;
  private Function<ClusterLoadAssignment, String> edsRejection = cla -> null;
  private final Deque<Runnable> held = new ArrayDeque<>();
  private Throwable streamError;
  private boolean closed;

  AdsTestClient(ManagedChannel channel, String nodeId, String cluster, Mode mode) {
    this.nodeId = nodeId;
    this.mode = mode;
    this.node = Node.newBuilder().setId(nodeId).setCluster(cluster).build();
    var stub = AggregatedDiscoveryServiceGrpc.newStub(channel);
    if (mode == Mode.STATE_OF_THE_WORLD) {
      sotw = stub.streamAggregatedResources(new StreamObserver<>() {
        @Override public void onNext(DiscoveryResponse r) { onSotw(r); }
        @Override public void onError(Throwable t) { failed(t); }
        @Override public void onCompleted() {}
      });
    } else {
      delta = stub.deltaAggregatedResources(new StreamObserver<>() {
        @Override public void onNext(DeltaDiscoveryResponse r) { onDelta(r); }
        @Override public void onError(Throwable t) { failed(t); }
        @Override public void onCompleted() {}
      });
    }
    subscribe(XdsType.CDS.typeUrl(), List.of());
    subscribe(XdsType.LDS.typeUrl(), List.of());
  }

  String nodeId() {
    return nodeId;
  }

  /** While held, EDS responses are neither ACKed nor applied. */
  synchronized void holdEds(boolean hold) {
    holdEds = hold;
    if (!hold) {
      while (!held.isEmpty()) {
        held.poll().run();
      }
      notifyAll();
    }
  }

  /** EDS responses containing an assignment for which {@code why} returns non-null are NACKed with that error. */
  synchronized void rejectEdsWhen(Function<ClusterLoadAssignment, String> why) {
    edsRejection = why;
  }

  private synchronized void subscribe(String typeUrl, List<String> names) {
    if (mode == Mode.STATE_OF_THE_WORLD) {
      DiscoveryRequest.Builder b = DiscoveryRequest.newBuilder().setTypeUrl(typeUrl).addAllResourceNames(names)
          .setVersionInfo(acceptedVersion.getOrDefault(typeUrl, ""));
      b.setNode(node); // on every request, as Envoy does by default
      sotw.onNext(b.build());
    } else {
      DeltaDiscoveryRequest.Builder b = DeltaDiscoveryRequest.newBuilder().setTypeUrl(typeUrl)
          .addAllResourceNamesSubscribe(names);
      b.setNode(node); // on every request, as Envoy does by default
      delta.onNext(b.build());
    }
  }

  private synchronized void onSotw(DiscoveryResponse r) {
    Runnable apply = () -> {
      // State of the world: Listeners and Clusters come whole; an assignment absent from a response is unchanged.
      String error = apply(r.getTypeUrl(), r.getResourcesList(), List.of(),
          !r.getTypeUrl().equals(XdsType.EDS.typeUrl()));
      DiscoveryRequest.Builder reply = DiscoveryRequest.newBuilder().setNode(node).setTypeUrl(r.getTypeUrl())
          .setResponseNonce(r.getNonce());
      if (r.getTypeUrl().equals(XdsType.EDS.typeUrl())) {
        reply.addAllResourceNames(clusters.keySet());
      }
      if (error == null) {
        acceptedVersion.put(r.getTypeUrl(), r.getVersionInfo());
        reply.setVersionInfo(r.getVersionInfo());
      } else {
        reply.setVersionInfo(acceptedVersion.getOrDefault(r.getTypeUrl(), ""))
            .setErrorDetail(Status.newBuilder().setCode(3).setMessage(error));
      }
      sotw.onNext(reply.build());
      afterApply(r.getTypeUrl(), error);
    };
    deliver(r.getTypeUrl(), apply);
  }

  private synchronized void onDelta(DeltaDiscoveryResponse r) {
    Runnable apply = () -> {
      List<Any> resources = r.getResourcesList().stream().map(Resource::getResource).toList();
      String error = apply(r.getTypeUrl(), resources, r.getRemovedResourcesList(), false);
      DeltaDiscoveryRequest.Builder reply = DeltaDiscoveryRequest.newBuilder().setNode(node).setTypeUrl(r.getTypeUrl())
          .setResponseNonce(r.getNonce());
      if (error != null) {
        reply.setErrorDetail(Status.newBuilder().setCode(3).setMessage(error));
      } else {
        acceptedVersion.put(r.getTypeUrl(), r.getSystemVersionInfo());
      }
      delta.onNext(reply.build());
      afterApply(r.getTypeUrl(), error);
    };
    deliver(r.getTypeUrl(), apply);
  }

  private void deliver(String typeUrl, Runnable apply) {
    if (typeUrl.equals(XdsType.EDS.typeUrl()) && holdEds) {
      held.add(apply);
    } else {
      apply.run();
    }
    notifyAll();
  }

  /** Like Envoy: after new clusters arrive, (re)subscribe EDS to exactly their names. */
  private void afterApply(String typeUrl, String error) {
    if (error == null && typeUrl.equals(XdsType.CDS.typeUrl())) {
      subscribe(XdsType.EDS.typeUrl(), List.copyOf(clusters.keySet()));
    }
  }

  private String apply(String typeUrl, List<Any> resources, List<String> removed, boolean replaceAll) {
    try {
      if (typeUrl.equals(XdsType.EDS.typeUrl())) {
        for (Any any : resources) {
          String why = edsRejection.apply(any.unpack(ClusterLoadAssignment.class));
          if (why != null) {
            return why;
          }
        }
      }
      if (typeUrl.equals(XdsType.LDS.typeUrl())) {
        replace(listeners, resources, Listener.class, Listener::getName, removed, replaceAll);
      } else if (typeUrl.equals(XdsType.CDS.typeUrl())) {
        replace(clusters, resources, Cluster.class, Cluster::getName, removed, replaceAll);
      } else if (typeUrl.equals(XdsType.EDS.typeUrl())) {
        replace(assignments, resources, ClusterLoadAssignment.class, ClusterLoadAssignment::getClusterName, removed,
            replaceAll);
      }
      return null;
    } catch (InvalidProtocolBufferException e) {
      return "cannot decode: " + e.getMessage();
    }
  }

  private static <T extends com.google.protobuf.Message> void replace(Map<String, T> into, List<Any> resources,
      Class<T> type, Function<T, String> name, List<String> removed, boolean replaceAll)
      throws InvalidProtocolBufferException {
    if (replaceAll) {
      into.clear();
    }
    for (Any any : resources) {
      T t = any.unpack(type);
      into.put(name.apply(t), t);
    }
    removed.forEach(into::remove);
  }

  private synchronized void failed(Throwable t) {
    System.err.println(nodeId + " stream failed: " + t);
    streamError = t;
    notifyAll();
  }

  synchronized Map<String, Listener> listeners() {
    return Map.copyOf(listeners);
  }

  synchronized Map<String, ClusterLoadAssignment> assignments() {
    return Map.copyOf(assignments);
  }

  /** The endpoint this client would connect to for {@code database}: "host:port", or "" when drained/unknown. */
  synchronized String endpointOf(String database) {
    ClusterLoadAssignment cla = assignments.get(database);
    if (cla == null || cla.getEndpointsCount() == 0) {
      return "";
    }
    var address = cla.getEndpoints(0).getLbEndpoints(0).getEndpoint().getAddress().getSocketAddress();
    return address.getAddress() + ":" + address.getPortValue();
  }

  /** Waits until {@code condition} holds on this client's state. */
  synchronized void await(String what, Predicate<AdsTestClient> condition) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (!condition.test(this)) {
      if (streamError != null) {
        throw new AssertionError(nodeId + ": stream failed while waiting for " + what, streamError);
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError(nodeId + ": timed out waiting for " + what + "; has listeners " + listeners.keySet()
            + ", assignments " + assignments.keySet());
      }
      wait(Math.max(1, left / 1_000_000));
    }
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (sotw != null) {
      sotw.onCompleted();
    } else {
      delta.onCompleted();
    }
  }
}
