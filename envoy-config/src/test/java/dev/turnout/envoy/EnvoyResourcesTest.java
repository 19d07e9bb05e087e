package dev.turnout.envoy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.InvalidProtocolBufferException;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy;
import io.envoyproxy.envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

class EnvoyResourcesTest {

  private final DatabaseRoute orders =
      new DatabaseRoute("orders", 15432, Optional.of(Endpoint.parse("10.0.0.5:5432")), Set.of("checkout"));
  private final DatabaseRoute drained = new DatabaseRoute("billing", 15433, Optional.empty(), Set.of());

  @Test
  void everyResourceIsNamedAfterItsDatabase_andSurvivesStrictJsonThroughEnvoyProtos() throws Exception {
    EnvoyResources.Bundle bundle = EnvoyResources.translate(List.of(orders, drained));

    assertThat(bundle.listeners()).extracting(Listener::getName).containsExactly("orders", "billing");
    assertThat(bundle.clusters()).extracting(Cluster::getName).containsExactly("orders", "billing");
    assertThat(bundle.loadAssignments()).extracting(ClusterLoadAssignment::getClusterName)
        .containsExactly("orders", "billing");
    for (Listener listener : bundle.listeners()) {
      assertThat(EnvoyProto.parseJson(EnvoyProto.toJson(listener), Listener.newBuilder())).isEqualTo(listener);
    }
    for (Cluster cluster : bundle.clusters()) {
      assertThat(EnvoyProto.parseJson(EnvoyProto.toJson(cluster), Cluster.newBuilder())).isEqualTo(cluster);
    }
    for (ClusterLoadAssignment cla : bundle.loadAssignments()) {
      assertThat(EnvoyProto.parseJson(EnvoyProto.toJson(cla), ClusterLoadAssignment.newBuilder())).isEqualTo(cla);
    }
  }

  @Test
  void listener_runsPostgresProxyThenTcpProxyToTheDatabaseCluster_onLoopbackPort() throws Exception {
    Listener listener = EnvoyResources.listener(orders);

    assertThat(listener.getAddress().getSocketAddress().getAddress()).isEqualTo("127.0.0.1");
    assertThat(listener.getAddress().getSocketAddress().getPortValue()).isEqualTo(15432);
    var filters = listener.getFilterChains(0).getFiltersList();
    assertThat(filters).extracting(f -> f.getName())
        .containsExactly("envoy.filters.network.postgres_proxy", "envoy.filters.network.tcp_proxy");
    assertThat(filters.get(0).getTypedConfig().unpack(PostgresProxy.class).getStatPrefix()).isEqualTo("orders");
    assertThat(filters.get(1).getTypedConfig().unpack(TcpProxy.class).getCluster()).isEqualTo("orders");
  }

  @Test
  void cluster_getsItsEndpointsFromEdsOverAds() {
    Cluster cluster = EnvoyResources.cluster(orders);

    assertThat(cluster.getType()).isEqualTo(Cluster.DiscoveryType.EDS);
    assertThat(cluster.getEdsClusterConfig().getEdsConfig().hasAds()).isTrue();
  }

  @Test
  void loadAssignment_namesTheOneServer_orNoneWhenDrained() {
    ClusterLoadAssignment routed = EnvoyResources.loadAssignment(orders);
    var address = routed.getEndpoints(0).getLbEndpoints(0).getEndpoint().getAddress().getSocketAddress();
    assertThat(routed.getEndpointsCount()).isEqualTo(1);
    assertThat(routed.getEndpoints(0).getLbEndpointsCount()).isEqualTo(1);
    assertThat(address.getAddress()).isEqualTo("10.0.0.5");
    assertThat(address.getPortValue()).isEqualTo(5432);

    assertThat(EnvoyResources.loadAssignment(drained).getEndpointsCount()).isZero();
  }

  @Test
  void strictParser_rejectsAFieldEnvoyDoesNotKnow() {
    String typo = "{\"name\":\"orders\",\"type\":\"EDS\",\"conect_timeout\":\"5s\"}";
    assertThatThrownBy(() -> EnvoyProto.parseJson(typo, Cluster.newBuilder()))
        .isInstanceOf(InvalidProtocolBufferException.class)
        .hasMessageContaining("conect_timeout");
  }
}
