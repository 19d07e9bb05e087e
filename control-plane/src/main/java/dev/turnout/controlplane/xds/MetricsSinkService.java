package dev.turnout.controlplane.xds;

import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.metrics.v3.MetricsServiceGrpc;
import io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage;
import io.envoyproxy.envoy.service.metrics.v3.StreamMetricsResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Envoy's metrics service ({@code envoy.service.metrics.v3.MetricsService/StreamMetrics}), served beside ADS on the
 * same server and under the same rules: the first message names the node ({@code identifier.node}, id and cluster),
 * and over mTLS the client certificate's CN must be the node's cluster, as for an ADS stream. The counters that
 * matter go to {@link SidecarStats}; the rest of what a sidecar sends is read and dropped.
 */
final class MetricsSinkService extends MetricsServiceGrpc.MetricsServiceImplBase {
  private static final Logger log = LoggerFactory.getLogger(MetricsSinkService.class);
  private final SidecarStats stats;
  private final boolean requireIdentity;
  private final LogLimiter refusals;

  /** @param requireIdentity the server runs mTLS: a node's certificate CN must equal its node.cluster */
  MetricsSinkService(SidecarStats stats, boolean requireIdentity, java.time.Clock clock) {
    this.stats = stats;
    this.requireIdentity = requireIdentity;
    this.refusals = new LogLimiter(clock, java.time.Duration.ofSeconds(10), 20);
  }

  @Override
  public StreamObserver<StreamMetricsMessage> streamMetrics(StreamObserver<StreamMetricsResponse> responses) {
    String identity = dev.turnout.controlplane.security.PeerIdentity.KEY.get();
    return new StreamObserver<>() {
      // gRPC delivers one stream's messages one at a time: no lock for these two.
      private SidecarStats.Stream stream;
      private boolean over;

      @Override
      public void onNext(StreamMetricsMessage message) {
        if (over) {
          return;
        }
        try {
          Node node = message.getIdentifier().getNode();
          if (stream == null) {
            if (!message.hasIdentifier() || node.getId().isEmpty() || node.getCluster().isEmpty()) {
              throw new AdsService.ClientError(Status.Code.INVALID_ARGUMENT,
                  "the first message on a metrics stream must carry identifier.node with id and cluster");
            }
            AdsService.checkField("node.id", node.getId());
            AdsService.checkField("node.cluster", node.getCluster());
            if (requireIdentity && (identity == null || !identity.equals(node.getCluster()))) {
              throw new AdsService.ClientError(Status.Code.PERMISSION_DENIED, "node " + node.getId()
                  + " reports metrics as service '" + node.getCluster() + "' but its certificate is for '"
                  + identity + "'");
            }
            stream = stats.open(node.getId(), node.getCluster());
          } else if (message.hasIdentifier()
              && (!node.getId().equals(stream.node) || !node.getCluster().equals(stream.cluster))) {
            throw new AdsService.ClientError(Status.Code.INVALID_ARGUMENT, "this metrics stream belongs to node "
                + stream.node + " (service " + stream.cluster + "); a message cannot name node "
                + AdsService.printable(node.getId()) + " (service " + AdsService.printable(node.getCluster()) + ")");
          }
          if (!stats.report(stream, message.getEnvoyMetricsList())) {
            throw new AdsService.ClientError(Status.Code.RESOURCE_EXHAUSTED, "node " + stream.node + " reports more"
                + " than " + SidecarStats.MAX_SERIES_PER_STREAM + " connect-failure and hold-timeout counters on one"
                + " stream; the rest were dropped");
          }
        } catch (AdsService.ClientError e) {
          refusals.warn(log, "metrics stream refused: {}", e.getMessage());
          end();
          try {
            responses.onError(e.status.asRuntimeException());
          } catch (IllegalStateException | StatusRuntimeException ignored) {
            // the call is already over
          }
        }
      }

      @Override
      public void onError(Throwable t) {
        end();
      }

      @Override
      public void onCompleted() {
        end();
        try {
          responses.onNext(StreamMetricsResponse.getDefaultInstance());
          responses.onCompleted();
        } catch (IllegalStateException | StatusRuntimeException ignored) {
          // the call is already over
        }
      }

      private void end() {
        over = true;
        if (stream != null) {
          stats.close(stream);
        }
      }
    };
  }
}
