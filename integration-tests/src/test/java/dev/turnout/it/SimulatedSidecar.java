package dev.turnout.it;

import com.google.protobuf.InvalidProtocolBufferException;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * An ADS stream that behaves toward the control plane as Envoy does — LDS and CDS by wildcard, then EDS for the
 * clusters, the node on every request, ACK with the version and nonce — but proxies nothing: the benchmarks'
 * thousands of sidecars, and the odd node a fault test needs (one that NACKs an assignment, say).
 */
public final class SimulatedSidecar {
  static final String LDS = "type.googleapis.com/envoy.config.listener.v3.Listener";
  static final String CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
  static final String EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

  private final StreamObserver<DiscoveryRequest> requests;
  private final StreamObserver<io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest> deltaRequests;
  private final Node node;
  private final Predicate<ClusterLoadAssignment> refuse;
  /** Guarded by {@code this}. */
  private List<String> clusters = List.of();
  /** Guarded by {@code this}: the EDS version last ACKed. */
  private String edsVersion = "";

  /** A node that ACKs everything. */
  public SimulatedSidecar(ManagedChannel channel, String id, String cluster) {
    this(channel, id, cluster, cla -> false);
  }

  /** A node that NACKs every EDS response holding an assignment {@code refuse} matches, and ACKs the rest. */
  public SimulatedSidecar(ManagedChannel channel, String id, String cluster, Predicate<ClusterLoadAssignment> refuse) {
    this.node = Node.newBuilder().setId(id).setCluster(cluster).build();
    this.refuse = refuse;
    this.deltaRequests = null;
    requests = AggregatedDiscoveryServiceGrpc.newStub(channel).streamAggregatedResources(new StreamObserver<>() {
      @Override
      public void onNext(DiscoveryResponse r) {
        handle(r);
      }

      @Override
      public void onError(Throwable t) {}

      @Override
      public void onCompleted() {}
    });
    send(DiscoveryRequest.newBuilder().setTypeUrl(CDS));
    send(DiscoveryRequest.newBuilder().setTypeUrl(LDS));
  }

  /**
   * A node on the incremental (delta) ADS protocol, as Envoy with {@code api_type: DELTA_GRPC}: a change of one
   * database's assignment is sent as that one resource instead of every assignment the node subscribes to.
   */
  public static SimulatedSidecar delta(ManagedChannel channel, String id, String cluster) {
    return new SimulatedSidecar(channel, id, cluster, true);
  }

  private SimulatedSidecar(ManagedChannel channel, String id, String cluster, boolean delta) {
    this.node = Node.newBuilder().setId(id).setCluster(cluster).build();
    this.refuse = cla -> false;
    this.requests = null;
    deltaRequests = AggregatedDiscoveryServiceGrpc.newStub(channel).deltaAggregatedResources(new StreamObserver<>() {
      @Override
      public void onNext(io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse r) {
        handleDelta(r);
      }

      @Override
      public void onError(Throwable t) {}

      @Override
      public void onCompleted() {}
    });
    sendDelta(io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest.newBuilder().setTypeUrl(CDS));
    sendDelta(io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest.newBuilder().setTypeUrl(LDS));
  }

  private synchronized void sendDelta(io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest.Builder b) {
    deltaRequests.onNext(b.setNode(node).build());
  }

  private synchronized void handleDelta(io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse r) {
    sendDelta(io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest.newBuilder().setTypeUrl(r.getTypeUrl())
        .setResponseNonce(r.getNonce()));
    if (r.getTypeUrl().equals(CDS)) {
      List<String> added = new ArrayList<>();
      for (var resource : r.getResourcesList()) {
        String name = unpack(resource.getResource(), Cluster.class).getName();
        if (!clusters.contains(name)) {
          added.add(name);
        }
      }
      if (!added.isEmpty()) {
        List<String> all = new ArrayList<>(clusters);
        all.addAll(added);
        clusters = all;
        sendDelta(io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest.newBuilder().setTypeUrl(EDS)
            .addAllResourceNamesSubscribe(added));
      }
    }
  }

  private synchronized void send(DiscoveryRequest.Builder b) {
    requests.onNext(b.setNode(node).build());
  }

  private synchronized void handle(DiscoveryResponse r) {
    DiscoveryRequest.Builder answer = DiscoveryRequest.newBuilder().setTypeUrl(r.getTypeUrl())
        .setResponseNonce(r.getNonce());
    if (r.getTypeUrl().equals(EDS)) {
      answer.addAllResourceNames(clusters);
      String refused = refused(r);
      if (refused != null) {
        // A NACK names the version still applied and says why, as Envoy does.
        send(answer.setVersionInfo(edsVersion).setErrorDetail(com.google.rpc.Status.newBuilder().setCode(3)
            .setMessage("simulated sidecar refuses the assignment of " + refused)));
        return;
      }
      edsVersion = r.getVersionInfo();
      for (var any : r.getResourcesList()) {
        ClusterLoadAssignment cla = unpack(any, ClusterLoadAssignment.class);
        String at = cla.getEndpointsCount() == 0 || cla.getEndpoints(0).getLbEndpointsCount() == 0 ? ""
            : cla.getEndpoints(0).getLbEndpoints(0).getEndpoint().getAddress().getSocketAddress().getAddress() + ":"
                + cla.getEndpoints(0).getLbEndpoints(0).getEndpoint().getAddress().getSocketAddress().getPortValue();
        endpoints.put(cla.getClusterName(), at);
      }
    }
    send(answer.setVersionInfo(r.getVersionInfo()));
    if (r.getTypeUrl().equals(CDS)) {
      List<String> names = new ArrayList<>();
      for (var any : r.getResourcesList()) {
        names.add(unpack(any, Cluster.class).getName());
      }
      if (!names.equals(clusters)) {
        clusters = names;
        send(DiscoveryRequest.newBuilder().setTypeUrl(EDS).addAllResourceNames(names));
      }
    }
  }

  private String refused(DiscoveryResponse r) {
    for (var any : r.getResourcesList()) {
      ClusterLoadAssignment cla = unpack(any, ClusterLoadAssignment.class);
      if (refuse.test(cla)) {
        return cla.getClusterName();
      }
    }
    return null;
  }

  private static <T extends com.google.protobuf.Message> T unpack(com.google.protobuf.Any any, Class<T> type) {
    try {
      return any.unpack(type);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException(e);
    }
  }

  /** State of the world only: each database's endpoint as last applied ({@code host:port}, empty when drained). */
  public String endpointOf(String database) {
    return endpoints.getOrDefault(database, "(none received)");
  }

  private final java.util.Map<String, String> endpoints = new java.util.concurrent.ConcurrentHashMap<>();

  public synchronized void close() {
    if (requests != null) {
      requests.onCompleted();
    } else {
      deltaRequests.onCompleted();
    }
  }
}
