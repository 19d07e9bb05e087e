package dev.turnout.sidecar;

import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.metrics.v3.MetricsServiceGrpc;
import io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage;
import io.envoyproxy.envoy.service.metrics.v3.StreamMetricsResponse;
import io.grpc.Channel;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.prometheus.client.Metrics.Counter;
import io.prometheus.client.Metrics.Metric;
import io.prometheus.client.Metrics.MetricFamily;
import io.prometheus.client.Metrics.MetricType;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Streams the sidecar's counters to the control plane the way Envoy's metrics service stats sink does
 * ({@code envoy.service.metrics.v3.MetricsService/StreamMetrics}, {@code transport_api_version: V3}, cumulative
 * counters, names without labels): every flush interval one {@code StreamMetricsMessage}, the node in the first
 * message of each stream. It goes over the xDS channel, so to the replica the ADS stream is on. Per database:
 * {@code cluster.<database>.upstream_cx_connect_fail} (connections to the endpoint that failed) and
 * {@code tcp.<database>.on_demand_cluster_timeout} (held connections refused at the hold timeout, the nearest of
 * Envoy's tcp_proxy stats).
 */
final class StatsSink {
  private static final Logger log = LoggerFactory.getLogger(StatsSink.class);

  private final MetricsServiceGrpc.MetricsServiceStub stub;
  private final Node node;
  private final Supplier<List<DatabaseStats>> stats;
  private final ScheduledExecutorService executor;
  private final Duration every;
  private final Clock clock;
  /** Confined to {@code executor}: the open stream, null between streams. */
  private ClientCallStreamObserver<StreamMetricsMessage> stream;
  private ScheduledFuture<?> flushes;
  /** Confined to {@code executor}: so a refused stream is logged once, not at every flush. */
  private String lastError = "";

  StatsSink(Channel channel, Node node, Supplier<List<DatabaseStats>> stats, ScheduledExecutorService executor,
      Duration every, Clock clock) {
    this.stub = MetricsServiceGrpc.newStub(channel);
    this.node = node;
    this.stats = stats;
    this.executor = executor;
    this.every = every;
    this.clock = clock;
  }

  void start() {
    flushes = executor.scheduleWithFixedDelay(this::flush, every.toMillis(), every.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** Ends the stream (the control plane forgets this node's last values, not what they added). */
  void stop() {
    executor.execute(() -> {
      if (flushes != null) {
        flushes.cancel(false);
      }
      if (stream != null) {
        stream.onCompleted();
        stream = null;
      }
    });
  }

  /**
   * Runs {@code task} on the executor, unless the sidecar has shut it down meanwhile: the stream's end then comes
   * from the sidecar's own shutdown, and nothing is left to do about it.
   */
  private void confined(Runnable task) {
    try {
      executor.execute(task);
    } catch (java.util.concurrent.RejectedExecutionException shutDown) {
      // the sidecar is stopping
    }
  }

  private void flush() {
    boolean first = stream == null;
    if (first) {
      open();
    }
    if (!first && !stream.isReady()) {
      return; // the control plane is slow to read: skip this flush rather than queue (the next one carries all)
    }
    StreamMetricsMessage.Builder message = StreamMetricsMessage.newBuilder();
    if (first) {
      message.getIdentifierBuilder().setNode(node);
    }
    long now = clock.millis();
    for (DatabaseStats s : stats.get()) {
      message.addEnvoyMetrics(counter("cluster." + s.database() + ".upstream_cx_connect_fail", s.connectFailures(), now));
      message.addEnvoyMetrics(counter("tcp." + s.database() + ".on_demand_cluster_timeout", s.holdTimeouts(), now));
    }
    stream.onNext(message.build());
  }

  private static MetricFamily counter(String name, long value, long now) {
    return MetricFamily.newBuilder().setName(name).setType(MetricType.COUNTER)
        .addMetric(Metric.newBuilder().setCounter(Counter.newBuilder().setValue(value)).setTimestampMs(now)).build();
  }

  private void open() {
    stub.streamMetrics(new ClientResponseObserver<StreamMetricsMessage, StreamMetricsResponse>() {
      private ClientCallStreamObserver<StreamMetricsMessage> mine;

      @Override
      public void beforeStart(ClientCallStreamObserver<StreamMetricsMessage> requests) {
        mine = requests;
        stream = requests;
      }

      @Override
      public void onNext(StreamMetricsResponse value) {}

      @Override
      public void onError(Throwable t) {
        confined(() -> {
          String error = io.grpc.Status.fromThrowable(t).toString();
          if (!error.equals(lastError)) {
            log.warn("stats sink: the metrics stream to the control plane ended: {}; opened again at the next flush",
                error);
            lastError = error;
          }
          if (stream == mine) {
            stream = null;
          }
        });
      }

      @Override
      public void onCompleted() {
        confined(() -> {
          if (stream == mine) {
            stream = null;
          }
        });
      }
    });
  }
}
