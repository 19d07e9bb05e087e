package dev.turnout.envoy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap;
import io.envoyproxy.envoy.config.core.v3.ApiConfigSource;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class SidecarBootstrapTest {

  static final SidecarBootstrap PLAIN =
      new SidecarBootstrap("checkout-7f9c", "checkout", Endpoint.parse("turnout.internal:18000"), 9901, Optional.empty());
  static final SidecarBootstrap MTLS = new SidecarBootstrap("checkout-7f9c", "checkout",
      Endpoint.parse("turnout.internal:18000"), 9901,
      Optional.of(new SidecarBootstrap.Tls("/etc/envoy/tls/checkout.crt", "/etc/envoy/tls/checkout.key",
          "/etc/envoy/tls/turnout-ca.crt")));

  @Test
  void bootstrap_parsesStrictlyAsEnvoyBootstrap_andSubscribesOverAds() throws Exception {
    Bootstrap bootstrap = EnvoyProto.parseBootstrapYaml(PLAIN.render());

    assertThat(bootstrap.getNode().getId()).isEqualTo("checkout-7f9c");
    assertThat(bootstrap.getNode().getCluster()).isEqualTo("checkout");
    assertThat(bootstrap.getDynamicResources().getAdsConfig().getApiType()).isEqualTo(ApiConfigSource.ApiType.GRPC);
    assertThat(bootstrap.getDynamicResources().getCdsConfig().hasAds()).isTrue();
    assertThat(bootstrap.getDynamicResources().getLdsConfig().hasAds()).isTrue();
    var xds = bootstrap.getStaticResources().getClusters(0);
    assertThat(xds.getName()).isEqualTo("turnout_xds");
    var address = xds.getLoadAssignment().getEndpoints(0).getLbEndpoints(0).getEndpoint().getAddress().getSocketAddress();
    assertThat(address.getAddress()).isEqualTo("turnout.internal");
    assertThat(address.getPortValue()).isEqualTo(18000);
    assertThat(xds.hasTransportSocket()).isFalse();
    // Its counters stream to the control plane over the same cluster, as the bake's sidecar signals.
    assertThat(bootstrap.getStatsSinks(0).getName()).isEqualTo("envoy.stat_sinks.metrics_service");
    var sink = bootstrap.getStatsSinks(0).getTypedConfig()
        .unpack(io.envoyproxy.envoy.config.metrics.v3.MetricsServiceConfig.class);
    assertThat(sink.getGrpcService().getEnvoyGrpc().getClusterName()).isEqualTo("turnout_xds");
    assertThat(sink.getTransportApiVersion()).isEqualTo(io.envoyproxy.envoy.config.core.v3.ApiVersion.V3);
    assertThat(sink.getEmitTagsAsLabels()).isFalse();
    assertThat(bootstrap.getStatsFlushInterval().getSeconds()).isEqualTo(5);
  }

  @Test
  void deltaBootstrap_subscribesWithIncrementalAds_andOtherwiseMatches() throws Exception {
    Bootstrap delta = EnvoyProto.parseBootstrapYaml(PLAIN.render(true));
    assertThat(delta.getDynamicResources().getAdsConfig().getApiType())
        .isEqualTo(io.envoyproxy.envoy.config.core.v3.ApiConfigSource.ApiType.DELTA_GRPC);
    Bootstrap sotw = EnvoyProto.parseBootstrapYaml(PLAIN.render());
    assertThat(sotw.getDynamicResources().getAdsConfig().getApiType())
        .isEqualTo(io.envoyproxy.envoy.config.core.v3.ApiConfigSource.ApiType.GRPC);
    assertThat(delta.toBuilder().setDynamicResources(sotw.getDynamicResources()).build()).isEqualTo(sotw);
  }

  @Test
  void mtlsBootstrap_presentsTheNodeCertificate_andTrustsTheControlPlaneCa() throws Exception {
    Bootstrap bootstrap = EnvoyProto.parseBootstrapYaml(MTLS.render());

    var socket = bootstrap.getStaticResources().getClusters(0).getTransportSocket();
    UpstreamTlsContext tls = socket.getTypedConfig().unpack(UpstreamTlsContext.class);
    assertThat(tls.getSni()).isEqualTo("turnout.internal");
    assertThat(tls.getCommonTlsContext().getTlsCertificates(0).getCertificateChain().getFilename())
        .isEqualTo("/etc/envoy/tls/checkout.crt");
    assertThat(tls.getCommonTlsContext().getValidationContext().getTrustedCa().getFilename())
        .isEqualTo("/etc/envoy/tls/turnout-ca.crt");
  }

  @Test
  void committedExamples_areWhatTheGeneratorProduces() throws Exception {
    assertThat(Files.readString(Path.of("examples/envoy-bootstrap.yaml"), StandardCharsets.UTF_8))
        .isEqualTo(PLAIN.render());
    assertThat(Files.readString(Path.of("examples/envoy-bootstrap-mtls.yaml"), StandardCharsets.UTF_8))
        .isEqualTo(MTLS.render());
  }

  @Test
  void valuesThatWouldBreakTheYaml_areRefused() {
    assertThatThrownBy(() -> new SidecarBootstrap("a\"b", "checkout", Endpoint.parse("x:1"), 9901, Optional.empty()))
        .hasMessageContaining("node id");
  }

  @Test
  void strictParser_rejectsABootstrapWithATypo() {
    String broken = PLAIN.render().replace("set_node_on_first_message_only", "set_node_on_first_msg_only");
    assertThatThrownBy(() -> EnvoyProto.parseBootstrapYaml(broken)).hasMessageContaining("set_node_on_first_msg_only");
  }

  /** Regenerates the committed examples: run with -Dturnout.regenerate=true after changing the template. */
  @Test
  void regenerateExamples_whenAsked() throws Exception {
    if (Boolean.getBoolean("turnout.regenerate")) {
      Files.writeString(Path.of("examples/envoy-bootstrap.yaml"), PLAIN.render());
      Files.writeString(Path.of("examples/envoy-bootstrap-mtls.yaml"), MTLS.render());
    }
  }
}
