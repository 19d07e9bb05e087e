package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.controlplane.store.StoreException;
import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import dev.turnout.controlplane.security.PeerIdentity;
import dev.turnout.controlplane.security.Tls;
import io.grpc.BindableService;
import io.grpc.ServerInterceptors;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/** The gRPC server sidecars subscribe to: java-control-plane's ADS (state-of-the-world and delta) over Netty. */
public final class XdsServer {
  private final AckTracker tracker;
  private final SnapshotPublisher publisher;
  private final RoutingService routing;
  private final V3DiscoveryServer discovery;
  private final Server server;

  private XdsServer(AckTracker tracker, SnapshotPublisher publisher, RoutingService routing,
      V3DiscoveryServer discovery, Server server) {
    this.tracker = tracker;
    this.publisher = publisher;
    this.routing = routing;
    this.discovery = discovery;
    this.server = server;
  }

  /** Loads the routing state from the store and publishes it; the server is not listening yet. */
  public static XdsServer create(RouteStore store, TurnoutConfig config, Clock clock,
      ScheduledExecutorService scheduler, Executor callbacks, RoutingService.Resolver resolver)
      throws StoreException, java.io.IOException {
    AckTracker tracker = new AckTracker(clock, config.xds().reconnectGrace());
    SimpleCache<String> cache = new SimpleCache<>(node -> node.getCluster());
    SnapshotPublisher publisher = new SnapshotPublisher(cache);
    RoutingService routing = new RoutingService(store, publisher, tracker, scheduler, callbacks, resolver,
        config.ackTimeout());
    routing.start(config.databases());
    boolean mtls = config.servers().tls().isPresent();
    V3DiscoveryServer discovery = new V3DiscoveryServer(new XdsCallbacks(tracker, publisher, mtls), cache);
    NettyServerBuilder builder = NettyServerBuilder
        .forAddress(new InetSocketAddress(config.servers().bindAddress(), config.servers().xdsPort()))
        // Sidecars keep one long-lived stream; keepalives find dead peers so their ACK state stops counting.
        .permitKeepAliveTime(10, TimeUnit.SECONDS)
        .permitKeepAliveWithoutCalls(true);
    if (mtls) {
      builder.sslContext(Tls.serverContext(config.servers().tls().get()));
    }
    for (BindableService service : services(discovery)) {
      builder.addService(ServerInterceptors.intercept(service, new PeerIdentity()));
    }
    return new XdsServer(tracker, publisher, routing, discovery, builder.build());
  }

  static List<BindableService> services(V3DiscoveryServer discovery) {
    return ImmutableList.of(discovery.getAggregatedDiscoveryServiceImpl());
  }

  /** The xDS services, to bind on another server too (tests use an in-process one). */
  public List<BindableService> services() {
    return services(discovery);
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
