package dev.turnout.envoy;

import com.google.common.collect.ImmutableList;
import com.google.protobuf.Any;

import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.AggregatedConfigSource;
import io.envoyproxy.envoy.config.core.v3.ApiVersion;
import io.envoyproxy.envoy.config.core.v3.ConfigSource;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import io.envoyproxy.envoy.config.listener.v3.FilterChain;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy;
import io.envoyproxy.envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
import java.util.List;

/**
 * Translates routing-table entries into the three Envoy v3 resources a sidecar needs per database, each named
 * after the database: a Listener, a Cluster fed by EDS over ADS, and the ClusterLoadAssignment naming the one
 * server the database lives on.
 */
public final class EnvoyResources {

  /** Network filter names Envoy registers for the two filters of every database listener. */
  public static final String POSTGRES_PROXY_FILTER = "envoy.filters.network.postgres_proxy";
  public static final String TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy";

  /** Sidecars accept application connections on loopback only: the application is on the same host. */
  public static final String LISTEN_ADDRESS = "127.0.0.1";

  private static final com.google.protobuf.Duration CONNECT_TIMEOUT =
      com.google.protobuf.Duration.newBuilder().setSeconds(5).build();

  private EnvoyResources() {}

  /** The resources of a set of databases, in the order given. */
  public record Bundle(
      ImmutableList<Listener> listeners,
      ImmutableList<Cluster> clusters,
      ImmutableList<ClusterLoadAssignment> loadAssignments) {}

  public static Bundle translate(List<DatabaseRoute> routes) {
    ImmutableList.Builder<Listener> listeners = ImmutableList.builder();
    ImmutableList.Builder<Cluster> clusters = ImmutableList.builder();
    ImmutableList.Builder<ClusterLoadAssignment> assignments = ImmutableList.builder();
    for (DatabaseRoute route : routes) {
      listeners.add(listener(route));
      clusters.add(cluster(route));
      assignments.add(loadAssignment(route));
    }
    return new Bundle(listeners.build(), clusters.build(), assignments.build());
  }

  /** Accepts on loopback, decodes the PostgreSQL protocol for statistics, then proxies TCP to the cluster. */
  public static Listener listener(DatabaseRoute route) {
    PostgresProxy postgres = PostgresProxy.newBuilder()
        .setStatPrefix(route.name())
        // SQL parsing only feeds metadata we do not use; leaving it off keeps the filter cheap.
        .setEnableSqlParsing(com.google.protobuf.BoolValue.of(false))
        .build();
    TcpProxy tcp = TcpProxy.newBuilder().setStatPrefix(route.name()).setCluster(route.name()).build();
    return Listener.newBuilder()
        .setName(route.name())
        .setAddress(socketAddress(LISTEN_ADDRESS, route.listenPort()))
        .addFilterChains(FilterChain.newBuilder()
            // Order matters: postgres_proxy is a read filter that must see the bytes before tcp_proxy forwards them.
            .addFilters(Filter.newBuilder().setName(POSTGRES_PROXY_FILTER).setTypedConfig(Any.pack(postgres)))
            .addFilters(Filter.newBuilder().setName(TCP_PROXY_FILTER).setTypedConfig(Any.pack(tcp))))
        .build();
  }

  public static Cluster cluster(DatabaseRoute route) {
    return Cluster.newBuilder()
        .setName(route.name())
        .setType(Cluster.DiscoveryType.EDS)
        .setConnectTimeout(CONNECT_TIMEOUT)
        .setEdsClusterConfig(Cluster.EdsClusterConfig.newBuilder()
            .setEdsConfig(ConfigSource.newBuilder()
                .setAds(AggregatedConfigSource.getDefaultInstance())
                .setResourceApiVersion(ApiVersion.V3)))
        .build();
  }

  /** One endpoint, or none while the database is drained (sidecars then open no new connections). */
  public static ClusterLoadAssignment loadAssignment(DatabaseRoute route) {
    ClusterLoadAssignment.Builder builder = ClusterLoadAssignment.newBuilder().setClusterName(route.name());
    // gRPC's xDS clients drop a locality without a weight (and with it the endpoint): give the one locality 1.
    route.endpoint().ifPresent(endpoint -> builder.addEndpoints(LocalityLbEndpoints.newBuilder()
        .setLoadBalancingWeight(com.google.protobuf.UInt32Value.of(1))
        .addLbEndpoints(LbEndpoint.newBuilder()
            .setEndpoint(io.envoyproxy.envoy.config.endpoint.v3.Endpoint.newBuilder()
                .setAddress(socketAddress(endpoint.host(), endpoint.port()))))));
    return builder.build();
  }

  private static Address socketAddress(String host, int port) {
    return Address.newBuilder()
        .setSocketAddress(SocketAddress.newBuilder().setAddress(host).setPortValue(port))
        .build();
  }
}
