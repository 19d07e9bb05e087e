package dev.turnout.sidecar;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * The facts a sidecar starts with, the same an Envoy bootstrap holds: where the control plane is, who this
 * node is, and how to behave while a database has no endpoint.
 *
 * @param xds the control plane's xDS address, or several replicas' in the order to try them (see {@link Sidecar})
 * @param holdTimeout how long a new connection to a drained database waits for an endpoint before it is refused
 * @param staleGrace how long a connection to an endpoint that is no longer assigned may live on
 * @param metricsPort loopback port of the HTTP {@code /metrics} endpoint; 0 picks a free one, empty disables it
 * @param statsFlushInterval how often the counters are streamed to the control plane as Envoy's metrics service stats
 *     sink does (Envoy's {@code stats_flush_interval}); zero disables it
 */
public record SidecarConfig(List<XdsAddress> xds, String nodeId, String cluster, Duration holdTimeout,
    Duration staleGrace, Optional<Integer> metricsPort, Optional<Tls> tls, Duration statsFlushInterval) {

  /** I/O threads relaying bytes: one per core, at most 4 (measured with the sidecar benchmark). */
  public int ioThreads() {
    return Integer.getInteger("turnout.sidecar.ioThreads", Math.min(4, Runtime.getRuntime().availableProcessors()));
  }

  /** PEM files for mTLS to the control plane. */
  public record Tls(Path certificateChain, Path privateKey, Path trustedCa) {}

  public static final Duration DEFAULT_HOLD_TIMEOUT = Duration.ofSeconds(30);
  public static final Duration DEFAULT_STALE_GRACE = Duration.ofSeconds(5);
  /** Envoy's default {@code stats_flush_interval}. */
  public static final Duration DEFAULT_STATS_FLUSH = Duration.ofSeconds(5);

  public SidecarConfig {
    if (xds == null || xds.isEmpty()) {
      throw new IllegalArgumentException("the control plane's xDS address is required");
    }
    xds = List.copyOf(xds);
    if (nodeId == null || nodeId.isBlank()) {
      throw new IllegalArgumentException("node id is required");
    }
    if (cluster == null || cluster.isBlank()) {
      throw new IllegalArgumentException("node cluster (the service) is required");
    }
    if (holdTimeout.isNegative() || staleGrace.isNegative()) {
      throw new IllegalArgumentException("hold timeout and stale grace must not be negative");
    }
    statsFlushInterval = statsFlushInterval == null ? DEFAULT_STATS_FLUSH : statsFlushInterval;
    if (statsFlushInterval.isNegative() || (!statsFlushInterval.isZero() && statsFlushInterval.toMillis() < 100)) {
      throw new IllegalArgumentException("stats flush interval " + statsFlushInterval + " must be zero (no stats"
          + " sink) or at least 100 ms");
    }
    metricsPort = metricsPort == null ? Optional.empty() : metricsPort;
    tls = tls == null ? Optional.empty() : tls;
  }

  /** A plain-text sidecar with default timeouts and no metrics endpoint. */
  public static SidecarConfig of(String xdsHost, int xdsPort, String nodeId, String cluster) {
    return of(List.of(new XdsAddress(xdsHost, xdsPort)), nodeId, cluster);
  }

  /** A plain-text sidecar of several control-plane replicas, tried in this order. */
  public static SidecarConfig of(List<XdsAddress> xds, String nodeId, String cluster) {
    return new SidecarConfig(xds, nodeId, cluster, DEFAULT_HOLD_TIMEOUT, DEFAULT_STALE_GRACE, Optional.empty(),
        Optional.empty(), DEFAULT_STATS_FLUSH);
  }

  public SidecarConfig withHoldTimeout(Duration d) {
    return new SidecarConfig(xds, nodeId, cluster, d, staleGrace, metricsPort, tls, statsFlushInterval);
  }

  public SidecarConfig withStaleGrace(Duration d) {
    return new SidecarConfig(xds, nodeId, cluster, holdTimeout, d, metricsPort, tls, statsFlushInterval);
  }

  public SidecarConfig withMetricsPort(int port) {
    return new SidecarConfig(xds, nodeId, cluster, holdTimeout, staleGrace, Optional.of(port), tls, statsFlushInterval);
  }

  public SidecarConfig withStatsFlushInterval(Duration d) {
    return new SidecarConfig(xds, nodeId, cluster, holdTimeout, staleGrace, metricsPort, tls, d);
  }

  public SidecarConfig withTls(Tls t) {
    return new SidecarConfig(xds, nodeId, cluster, holdTimeout, staleGrace, metricsPort, Optional.of(t), statsFlushInterval);
  }
}
