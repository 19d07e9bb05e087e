package dev.turnout.it;

import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * An ADS client written in the test from the xDS protocol (Envoy's protos), not from Turnout's sidecar: it sends
 * exactly the requests a test builds (node or no node, any names, ACK or NACK of any nonce) and records every
 * response it gets, so a test can say what a conformant (or careless) client sees on the wire.
 */
final class RawAdsClient<Q, R> implements AutoCloseable {
  static final String LDS = "type.googleapis.com/envoy.config.listener.v3.Listener";
  static final String CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
  static final String EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

  private final StreamObserver<Q> requests;
  private final BlockingQueue<R> responses = new LinkedBlockingQueue<>();
  private final CompletableFuture<Status> ended = new CompletableFuture<>();

  private RawAdsClient(java.util.function.Function<StreamObserver<R>, StreamObserver<Q>> open) {
    this.requests = open.apply(new StreamObserver<>() {
      @Override public void onNext(R r) { responses.add(r); }
      @Override public void onError(Throwable t) { ended.complete(Status.fromThrowable(t)); }
      @Override public void onCompleted() { ended.complete(Status.OK); }
    });
  }

  static RawAdsClient<DiscoveryRequest, DiscoveryResponse> sotw(ManagedChannel channel) {
    return new RawAdsClient<>(AggregatedDiscoveryServiceGrpc.newStub(channel)::streamAggregatedResources);
  }

  static RawAdsClient<DeltaDiscoveryRequest, DeltaDiscoveryResponse> delta(ManagedChannel channel) {
    return new RawAdsClient<>(AggregatedDiscoveryServiceGrpc.newStub(channel)::deltaAggregatedResources);
  }

  static Node node(String id, String service) {
    return Node.newBuilder().setId(id).setCluster(service).build();
  }

  synchronized void send(Q request) {
    requests.onNext(request);
  }

  /** The next response within {@code timeout}, or null. */
  R next(Duration timeout) throws InterruptedException {
    return responses.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The next response; fails the test if none comes within 5 s. */
  R expect(String what) throws InterruptedException {
    R r = next(Duration.ofSeconds(5));
    if (r == null) {
      throw new AssertionError("no response within 5 s: expected " + what
          + (ended.isDone() ? "; the stream ended with " + ended.join() : ""));
    }
    return r;
  }

  /** Every response that arrives within {@code window}. */
  List<R> collect(Duration window) throws InterruptedException {
    List<R> got = new ArrayList<>();
    long deadline = System.nanoTime() + window.toNanos();
    while (true) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return got;
      }
      R r = responses.poll(left, TimeUnit.NANOSECONDS);
      if (r != null) {
        got.add(r);
      }
    }
  }

  /** How the server ended the stream, waiting up to 5 s. */
  Status ended() throws Exception {
    return ended.get(5, TimeUnit.SECONDS);
  }

  boolean isOpen() {
    return !ended.isDone();
  }

  @Override
  public void close() {
    try {
      requests.onCompleted();
    } catch (IllegalStateException e) {
      // already ended
    }
  }
}
