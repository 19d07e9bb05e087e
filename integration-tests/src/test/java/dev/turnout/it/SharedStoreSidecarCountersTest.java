package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.controlplane.ControlPlane;
import dev.turnout.migrator.bake.Workload;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.metrics.v3.MetricsServiceGrpc;
import io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage;
import io.envoyproxy.envoy.service.metrics.v3.StreamMetricsResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.prometheus.client.Metrics.Counter;
import io.prometheus.client.Metrics.Metric;
import io.prometheus.client.Metrics.MetricFamily;
import io.prometheus.client.Metrics.MetricType;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two replicas share a store; an Envoy streams its counters (Envoy's metrics service, a client written here from its
 * protos) to the one that is not the leader: the leader's bake still sees its connect failures, through the store,
 * and keeps them counted after that replica goes away.
 */
class SharedStoreSidecarCountersTest {
  @TempDir Path dir;

  private static StreamMetricsMessage flush(long connectFailures, boolean first) {
    StreamMetricsMessage.Builder m = StreamMetricsMessage.newBuilder().addEnvoyMetrics(MetricFamily.newBuilder()
        .setName("cluster.orders.upstream_cx_connect_fail").setType(MetricType.COUNTER)
        .addMetric(Metric.newBuilder().setCounter(Counter.newBuilder().setValue(connectFailures))));
    if (first) {
      m.getIdentifierBuilder().setNode(Node.newBuilder().setId("envoy-b-1").setCluster("checkout"));
    }
    return m.build();
  }

  @Test
  void anEnvoyStreamingToAnotherReplica_isCountedByTheLeadersBake_andStaysCountedWhenThatReplicaGoes()
      throws Exception {
    try (SharedStoreFixture f = new SharedStoreFixture(dir)) {
      ControlPlane leader = f.replica("cp-a");
      Eventually.until("cp-a to lead", Duration.ofSeconds(20), () -> leader.migrator() != null);
      ControlPlane other = f.replica("cp-b");
      assertThat(leader.sidecarCounters().read(List.of("orders"))).as("no sidecar reports anywhere").isEmpty();

      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", other.xdsPort()).usePlaintext().build();
      try {
        StreamObserver<StreamMetricsMessage> envoy = MetricsServiceGrpc.newStub(channel).streamMetrics(
            new StreamObserver<StreamMetricsResponse>() {
              @Override
              public void onNext(StreamMetricsResponse value) {}

              @Override
              public void onError(Throwable t) {}

              @Override
              public void onCompleted() {}
            });
        envoy.onNext(flush(1, true));
        Thread.sleep(200);
        envoy.onNext(flush(6, false));
        Eventually.until("the leader to see cp-b's sidecar's 5 connect failures", Duration.ofSeconds(20),
            () -> leader.sidecarCounters().read(List.of("orders")).equals(Optional.of(new Workload.Sidecars(5, 0, 1))));

        f.stop(other);
        Eventually.until("cp-b's lease to lapse", Duration.ofSeconds(20),
            () -> leader.sidecarCounters().read(List.of("orders")).orElseThrow().nodes() == 0);
        assertThat(leader.sidecarCounters().read(List.of("orders"))).as("a gone replica's share stays counted")
            .contains(new Workload.Sidecars(5, 0, 0));
      } finally {
        channel.shutdownNow();
      }
    }
  }
}
