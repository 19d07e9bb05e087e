package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableList;
import com.google.common.util.concurrent.ThreadFactoryBuilder;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.security.PeerIdentity;
import dev.turnout.controlplane.security.Tls;
import dev.turnout.controlplane.store.StoreException;
import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/** The gRPC server sidecars subscribe to: Turnout's ADS ({@link AdsService}, state of the world and delta) over Netty. */
public final class XdsServer {
  private final AckTracker tracker;
  private final SnapshotPublisher publisher;
  private final RoutingService routing;
  private final AdsService ads;
  private final ExecutorService streams;
  private final Server server;
  private final List<AdsService.NackListener> nackListeners;
  private final SidecarStats sidecarStats;
  private final MetricsSinkService metrics;

  private XdsServer(AckTracker tracker, SnapshotPublisher publisher, RoutingService routing, AdsService ads,
      ExecutorService streams, Server server, List<AdsService.NackListener> nackListeners, SidecarStats sidecarStats,
      MetricsSinkService metrics) {
    this.sidecarStats = sidecarStats;
    this.metrics = metrics;
    this.tracker = tracker;
    this.publisher = publisher;
    this.routing = routing;
    this.ads = ads;
    this.streams = streams;
    this.server = server;
    this.nackListeners = nackListeners;
  }

  /**
   * Loads the routing state from the store and publishes it; the server is not listening yet.
   *
   * @param tracker the sidecars' ACKs, which {@code ports}'s ACK wait also reads
   */
  public static XdsServer create(RoutingService.Ports ports, AckTracker tracker, TurnoutConfig config, Clock clock,
      Executor callbacks, RoutingService.Resolver resolver) throws StoreException, java.io.IOException {
    SnapshotPublisher publisher = new SnapshotPublisher();
    RoutingService routing = new RoutingService(ports, publisher, callbacks, resolver);
    routing.start(config.databases());
    boolean mtls = config.servers().tls().isPresent();
    // Every stream's work runs on its own sequential executor over this pool: one thread per core is enough,
    // since no stream task blocks.
    ExecutorService streams = Executors.newFixedThreadPool(Math.max(2, Runtime.getRuntime().availableProcessors()),
        new ThreadFactoryBuilder().setNameFormat("turnout-xds-%d").setDaemon(true).build());
    List<AdsService.NackListener> nackListeners = new CopyOnWriteArrayList<>();
    AdsService ads = new AdsService(publisher, tracker, streams, mtls,
        (type, database) -> nackListeners.forEach(l -> l.nacked(type, database)), clock);
    // Only counters of databases the routing table holds and the node's service may reach are kept.
    SidecarStats sidecarStats = new SidecarStats((service, database) -> publisher.table().get(database)
        .map(r -> r.allows(service)).orElse(false));
    MetricsSinkService metrics = new MetricsSinkService(sidecarStats, mtls, clock);
    NettyServerBuilder builder = NettyServerBuilder
        .forAddress(new InetSocketAddress(config.servers().bindAddress(), config.servers().xdsPort()))
        // Sidecars keep one long-lived stream; keepalives find dead peers so their ACK state stops counting.
        .permitKeepAliveTime(10, TimeUnit.SECONDS)
        .permitKeepAliveWithoutCalls(true)
        // The ADS handlers never block (a request only queues work on its stream's executor), so they run on the
        // transport threads: no hop per message, and nothing for a stopped executor to reject at shutdown.
        .directExecutor();
    if (mtls) {
      builder.sslContext(Tls.serverContext(config.servers().tls().get()));
    }
    for (BindableService service : services(ads, metrics)) {
      builder.addService(ServerInterceptors.intercept(service, new PeerIdentity()));
    }
    return new XdsServer(tracker, publisher, routing, ads, streams, builder.build(), nackListeners, sidecarStats,
        metrics);
  }

  /** ADS, and Envoy's metrics service (the stats sink's stream), under the same identity rules. */
  static List<BindableService> services(AdsService ads, MetricsSinkService metrics) {
    return ImmutableList.of(ads, metrics);
  }

  /** The xDS services, to bind on another server too (tests use an in-process one). */
  public List<BindableService> services() {
    return services(ads, metrics);
  }

  /** The counters this replica's sidecars report (connect failures, hold timeouts), for the bake. */
  public SidecarStats sidecarStats() {
    return sidecarStats;
  }

  /** Called with every NACK a sidecar sends: its type, and the database when the rejected response held one. */
  public void onNack(java.util.function.BiConsumer<XdsType, String> listener) {
    nackListeners.add(listener::accept);
  }

  public void start() throws IOException {
    server.start();
  }

  public int port() {
    return server.getPort();
  }

  public void shutdown() {
    server.shutdownNow();
    try {
      server.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    streams.shutdownNow();
  }

  public AckTracker tracker() {
    return tracker;
  }

  public RoutingService routing() {
    return routing;
  }

  SnapshotPublisher publisher() {
    return publisher;
  }
}
