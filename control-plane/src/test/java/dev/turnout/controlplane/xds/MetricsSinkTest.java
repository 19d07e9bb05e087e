package dev.turnout.controlplane.xds;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.TestConfigs;
import dev.turnout.migrator.bake.Workload;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.metrics.v3.MetricsServiceGrpc;
import io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage;
import io.envoyproxy.envoy.service.metrics.v3.StreamMetricsResponse;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.prometheus.client.Metrics.Counter;
import io.prometheus.client.Metrics.LabelPair;
import io.prometheus.client.Metrics.Metric;
import io.prometheus.client.Metrics.MetricFamily;
import io.prometheus.client.Metrics.MetricType;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A metrics service client written here from Envoy's protos, as Envoy's {@code envoy.stat_sinks.metrics_service}
 * streams (the node in the first message, cumulative Prometheus-model counters), over a real socket to the xDS port:
 * the control plane keeps each node's last connect failures and hold timeouts, sums each database's rises into
 * totals that survive the stream, and counts nothing for a database the node's service may not reach.
 */
class MetricsSinkTest {
  @TempDir Path dir;

  private ControlPlane plane;
  private ManagedChannel channel;

  @BeforeEach
  void start() throws Exception {
    plane = ControlPlane.start(TestConfigs.config(dir, Duration.ofSeconds(5), List.of(
        database("orders", 15432, "10.0.0.5:5432", "checkout"),
        database("ledger", 15433, "10.0.0.7:5432", "billing"),
        database("shared", 15434, "10.0.0.9:5432"))));
    channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.xdsPort()).usePlaintext().build();
  }

  @AfterEach
  void stop() throws Exception {
    channel.shutdownNow();
    plane.close();
  }

  private static MetricFamily counter(String name, long value, LabelPair... labels) {
    return MetricFamily.newBuilder().setName(name).setType(MetricType.COUNTER).addMetric(Metric.newBuilder()
        .setCounter(Counter.newBuilder().setValue(value)).addAllLabel(List.of(labels))
        .setTimestampMs(System.currentTimeMillis())).build();
  }

  private static StreamMetricsMessage flush(Optional<Node> node, MetricFamily... families) {
    StreamMetricsMessage.Builder m = StreamMetricsMessage.newBuilder().addAllEnvoyMetrics(List.of(families));
    node.ifPresent(n -> m.getIdentifierBuilder().setNode(n));
    return m.build();
  }

  /** Envoy's flush: every counter it has; the two that matter among others. */
  private static StreamMetricsMessage checkoutFlush(Optional<Node> node, long ordersFailures, long ordersTimeouts,
      long sharedFailures) {
    return flush(node,
        counter("cluster.orders.upstream_cx_connect_fail", ordersFailures),
        counter("cluster.orders.upstream_cx_total", 1000),
        counter("tcp.orders.on_demand_cluster_timeout", ordersTimeouts),
        counter("cluster.xds_cluster.upstream_cx_connect_fail", 99),
        // Not this service's database: a sidecar cannot raise another service's signal.
        counter("cluster.ledger.upstream_cx_connect_fail", ordersFailures * 10),
        // emit_tags_as_labels: the tag-extracted name, the database in a label.
        counter("cluster.upstream_cx_connect_fail", sharedFailures,
            LabelPair.newBuilder().setName("envoy.cluster_name").setValue("shared").build()));
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(20);
    }
  }

  @Test
  void envoysStatsSinkStream_showsEachNodesCounters_andTheirRisesPerDatabase_keptAfterTheStreamEnds()
      throws Exception {
    SidecarStats stats = plane.xds().sidecarStats();
    assertThat(stats.read(List.of("orders"))).as("no sidecar has reported: not available, not zero").isEmpty();

    CompletableFuture<Status> ended = new CompletableFuture<>();
    StreamObserver<StreamMetricsMessage> envoy = MetricsServiceGrpc.newStub(channel).streamMetrics(
        new StreamObserver<StreamMetricsResponse>() {
          @Override
          public void onNext(StreamMetricsResponse value) {}

          @Override
          public void onError(Throwable t) {
            ended.complete(Status.fromThrowable(t));
          }

          @Override
          public void onCompleted() {
            ended.complete(Status.OK);
          }
        });
    Node node = Node.newBuilder().setId("checkout-1").setCluster("checkout").build();
    envoy.onNext(checkoutFlush(Optional.of(node), 3, 1, 2)); // what it counted before: where it starts
    await("the first flush", () -> !stats.nodes().isEmpty());
    assertThat(stats.read(List.of("orders"))).contains(new Workload.Sidecars(0, 0, 1));

    envoy.onNext(checkoutFlush(Optional.empty(), 7, 2, 5));
    await("the second flush", () -> stats.read(List.of("orders")).orElseThrow().connectFailures() == 4);
    assertThat(stats.nodes()).containsExactly(
        new SidecarStats.NodeCounters("checkout-1", "checkout", "orders", 7, 2),
        new SidecarStats.NodeCounters("checkout-1", "checkout", "shared", 5, 0));
    assertThat(stats.read(List.of("orders"))).contains(new Workload.Sidecars(4, 1, 1));
    assertThat(stats.read(List.of("shared"))).contains(new Workload.Sidecars(3, 0, 1));
    assertThat(stats.read(List.of("orders", "shared"))).contains(new Workload.Sidecars(7, 1, 1));
    assertThat(stats.read(List.of("ledger"))).as("billing's database, reported by checkout").isEmpty();
    String metrics = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
        java.net.URI.create("http://127.0.0.1:" + plane.httpPort() + "/metrics")).build(),
        java.net.http.HttpResponse.BodyHandlers.ofString()).body();
    assertThat(metrics).containsPattern("turnout_sidecar_connect_failures\\{database=\"orders\",?\\} 4(\\.0)?\n")
        .containsPattern("turnout_sidecar_hold_timeouts\\{database=\"orders\",?\\} 1(\\.0)?\n")
        .containsPattern("turnout_sidecar_reporting_nodes\\{database=\"shared\",?\\} 1(\\.0)?\n")
        .doesNotContainPattern("turnout_sidecar_[a-z_]+\\{database=\"ledger\"");

    envoy.onCompleted();
    assertThat(ended.get(5, TimeUnit.SECONDS).isOk()).isTrue();
    await("the stream's end", () -> stats.nodes().isEmpty());
    assertThat(stats.read(List.of("orders"))).as("its share stays; no sidecar reports now")
        .contains(new Workload.Sidecars(4, 1, 0));
  }

  @Test
  void aStreamWhoseFirstMessageNamesNoNode_isRefusedAsAnInvalidArgument() throws Exception {
    CompletableFuture<Status> ended = new CompletableFuture<>();
    StreamObserver<StreamMetricsMessage> client = MetricsServiceGrpc.newStub(channel).streamMetrics(
        new StreamObserver<StreamMetricsResponse>() {
          @Override
          public void onNext(StreamMetricsResponse value) {}

          @Override
          public void onError(Throwable t) {
            ended.complete(Status.fromThrowable(t));
          }

          @Override
          public void onCompleted() {
            ended.complete(Status.OK);
          }
        });
    client.onNext(flush(Optional.empty(), counter("cluster.orders.upstream_cx_connect_fail", 3)));
    Status status = ended.get(5, TimeUnit.SECONDS);
    assertThat(status.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(status.getDescription()).contains("identifier.node");
    assertThat(plane.xds().sidecarStats().read(List.of("orders"))).isEmpty();
  }
}
