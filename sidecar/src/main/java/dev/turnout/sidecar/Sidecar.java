package dev.turnout.sidecar;

import com.google.common.collect.ImmutableList;
import com.google.common.util.concurrent.ThreadFactoryBuilder;
import com.sun.net.httpserver.HttpServer;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The built-in sidecar: an xDS-driven PostgreSQL TCP proxy for machines without Envoy. It subscribes to the
 * control plane as an Envoy node does, listens where the Listeners say and connects where EDS says.
 */
public final class Sidecar implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Sidecar.class);
  private static final int CONNECT_TIMEOUT_MILLIS = 1000;
  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

  private final SidecarConfig config;
  private final EventLoopGroup group;
  private final ScheduledExecutorService xdsThread;
  private final ManagedChannel channel;
  private final ProxyManager proxies;
  private final XdsClient xds;
  private final HttpServer metrics;
  /** Null when the flush interval is zero. */
  private StatsSink statsSink;

  private Sidecar(SidecarConfig config, EventLoopGroup group, ScheduledExecutorService xdsThread,
      ManagedChannel channel, ProxyManager proxies, XdsClient xds, HttpServer metrics) {
    this.config = config;
    this.group = group;
    this.xdsThread = xdsThread;
    this.channel = channel;
    this.proxies = proxies;
    this.xds = xds;
    this.metrics = metrics;
  }

  /** Starts subscribing; listeners open as the control plane's Listeners arrive. */
  public static Sidecar start(SidecarConfig config) throws IOException {
    Transport transport = Transport.create(config.ioThreads());
    EventLoopGroup group = transport.group();
    ScheduledExecutorService xdsThread = Executors.newSingleThreadScheduledExecutor(
        new ThreadFactoryBuilder().setNameFormat("sidecar-xds").setDaemon(true).build());
    ManagedChannel channel;
    try {
      channel = channel(config);
    } catch (SSLException | IllegalArgumentException e) {
      group.shutdownGracefully();
      xdsThread.shutdownNow();
      throw new IOException("cannot load the sidecar's TLS files: " + e.getMessage(), e);
    }
    ProxyManager proxies = new ProxyManager(transport, config.holdTimeout(), config.staleGrace());
    Node node = Node.newBuilder().setId(config.nodeId()).setCluster(config.cluster()).build();
    XdsClient xds = new XdsClient(channel, node, proxies, xdsThread,
        new ReconnectBackoff(() -> ThreadLocalRandom.current().nextDouble()));
    HttpServer metrics = null;
    if (config.metricsPort().isPresent()) {
      metrics = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), config.metricsPort().get()), 0);
      Sidecar.serveMetrics(metrics, proxies);
      metrics.start();
    }
    Sidecar sidecar = new Sidecar(config, group, xdsThread, channel, proxies, xds, metrics);
    xds.start();
    if (!config.statsFlushInterval().isZero()) {
      // On the xDS thread, like everything that reads the proxies.
      sidecar.statsSink = new StatsSink(channel, node, proxies::stats, xdsThread, config.statsFlushInterval(),
          java.time.Clock.systemUTC());
      sidecar.statsSink.start();
    }
    log.info("sidecar node {} (service {}) subscribing to {}; {} I/O thread(s) on {}", config.nodeId(),
        config.cluster(), config.xds().size() == 1 ? config.xds().get(0) : "the first that answers of " + config.xds(),
        config.ioThreads(), transport.name());
    return sidecar;
  }

  /**
   * One channel to the control plane. One address goes through gRPC's DNS resolver, a list through
   * {@link ReplicaListResolver}; either way pick_first holds one connection to the first address that answers
   * and, when it breaks, walks the addresses again from the first, so a dead replica is skipped for the next.
   */
  private static ManagedChannel channel(SidecarConfig config) throws SSLException {
    NettyChannelBuilder builder = config.xds().size() == 1
        ? NettyChannelBuilder.forAddress(config.xds().get(0).host(), config.xds().get(0).port())
        : NettyChannelBuilder.forTarget(ReplicaListResolver.target(config.xds()));
    builder.defaultLoadBalancingPolicy("pick_first")
        // A replica whose machine is gone answers no SYN: give up on it within the reconnect goal and try the
        // next address, rather than after the operating system's minutes or Netty's 30 s.
        .withOption(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MILLIS)
        .keepAliveTime(30, TimeUnit.SECONDS)
        .keepAliveWithoutCalls(true);
    if (config.tls().isPresent()) {
      SidecarConfig.Tls tls = config.tls().get();
      builder.sslContext(GrpcSslContexts.forClient()
          .keyManager(tls.certificateChain().toFile(), tls.privateKey().toFile())
          .trustManager(tls.trustedCa().toFile())
          .build());
    } else {
      builder.usePlaintext();
    }
    return builder.build();
  }

  private static void serveMetrics(HttpServer server, ProxyManager proxies) {
    server.createContext("/metrics", exchange -> {
      byte[] body = prometheus(proxies.stats()).getBytes(StandardCharsets.UTF_8);
      exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4");
      exchange.sendResponseHeaders(200, body.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(body);
      }
    });
  }

  /** The counters in Prometheus text format, one series per database. */
  static String prometheus(ImmutableList<DatabaseStats> stats) {
    StringBuilder out = new StringBuilder();
    metric(out, stats, "turnout_sidecar_connections_active", "gauge", "Open client connections", DatabaseStats::active);
    metric(out, stats, "turnout_sidecar_connections_total", "counter", "Client connections accepted", DatabaseStats::total);
    metric(out, stats, "turnout_sidecar_bytes_to_server_total", "counter", "Bytes relayed to the server",
        DatabaseStats::bytesToServer);
    metric(out, stats, "turnout_sidecar_bytes_to_client_total", "counter", "Bytes relayed to the client",
        DatabaseStats::bytesToClient);
    metric(out, stats, "turnout_sidecar_held_connections", "gauge", "Connections held while the database has no endpoint",
        DatabaseStats::heldNow);
    metric(out, stats, "turnout_sidecar_held_connections_total", "counter", "Connections that were held",
        DatabaseStats::heldTotal);
    out.append("# HELP turnout_sidecar_hold_seconds_total Time connections spent held\n")
        .append("# TYPE turnout_sidecar_hold_seconds_total counter\n");
    for (DatabaseStats s : stats) {
      out.append("turnout_sidecar_hold_seconds_total{database=\"").append(s.database()).append("\"} ")
          .append(s.holdNanosTotal() / 1e9).append('\n');
    }
    metric(out, stats, "turnout_sidecar_hold_timeouts_total", "counter", "Held connections refused at the hold timeout",
        DatabaseStats::holdTimeouts);
    metric(out, stats, "turnout_sidecar_stale_closed_total", "counter",
        "Connections closed because their endpoint was no longer assigned", DatabaseStats::staleClosed);
    metric(out, stats, "turnout_sidecar_connect_failures_total", "counter", "Failed connections to the server",
        DatabaseStats::connectFailures);
    return out.toString();
  }

  private static void metric(StringBuilder out, ImmutableList<DatabaseStats> stats, String name, String type,
      String help, java.util.function.ToLongFunction<DatabaseStats> value) {
    out.append("# HELP ").append(name).append(' ').append(help).append('\n');
    out.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    for (DatabaseStats s : stats) {
      out.append(name).append("{database=\"").append(s.database()).append("\"} ").append(value.applyAsLong(s)).append('\n');
    }
  }

  public ImmutableList<DatabaseStats> stats() {
    return proxies.stats();
  }

  public Optional<DatabaseStats> stats(String database) {
    return stats().stream().filter(s -> s.database().equals(database)).findFirst();
  }

  /** Where the sidecar listens for {@code database}, once its Listener has been applied. */
  public Optional<InetSocketAddress> listenAddress(String database) {
    return proxies.listenAddress(database);
  }

  /** Whether the xDS stream is up: a response has come on it since it was (re)opened. */
  public boolean connectedToControlPlane() {
    return xds.connected();
  }

  /** The control-plane replica the xDS stream is on, while it is up. */
  public Optional<SocketAddress> controlPlaneAddress() {
    return xds.remoteAddress();
  }

  /** Responses applied (and ACKed) since start, over every stream. */
  public long xdsResponsesApplied() {
    return xds.responsesApplied();
  }

  /** The port of the {@code /metrics} endpoint, if enabled. */
  public Optional<Integer> metricsPort() {
    return Optional.ofNullable(metrics).map(m -> m.getAddress().getPort());
  }

  public SidecarConfig config() {
    return config;
  }

  /** Stops serving and leaves the control plane; a second call does nothing. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    if (statsSink != null) {
      statsSink.stop();
    }
    xds.stop();
    try {
      xdsThread.submit(proxies::close).get(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
      log.warn("closing the listeners: {}", e.toString());
    }
    xdsThread.shutdownNow(); // drops a pending reconnect
    channel.shutdownNow();
    if (metrics != null) {
      metrics.stop(0);
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }
}
