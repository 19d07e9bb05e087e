package dev.turnout.envoy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap;
import io.envoyproxy.envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy;
import io.envoyproxy.envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import org.yaml.snakeyaml.Yaml;

/** Strict conversions through Envoy's own proto definitions: unknown fields and unknown Any types are errors. */
final class EnvoyProto {
  static final JsonFormat.TypeRegistry REGISTRY = JsonFormat.TypeRegistry.newBuilder()
      .add(PostgresProxy.getDescriptor())
      .add(TcpProxy.getDescriptor())
      .add(UpstreamTlsContext.getDescriptor())
      .add(HttpProtocolOptions.getDescriptor())
      .add(io.envoyproxy.envoy.config.metrics.v3.MetricsServiceConfig.getDescriptor())
      .build();

  private EnvoyProto() {}

  static String toJson(Message message) throws InvalidProtocolBufferException {
    return JsonFormat.printer().usingTypeRegistry(REGISTRY).print(message);
  }

  static Message parseJson(String json, Message.Builder builder) throws InvalidProtocolBufferException {
    JsonFormat.parser().usingTypeRegistry(REGISTRY).merge(json, builder);
    return builder.build();
  }

  static Bootstrap parseBootstrapYaml(String yaml) throws Exception {
    Object tree = new Yaml().load(yaml);
    String json = new ObjectMapper().writeValueAsString(tree);
    return (Bootstrap) parseJson(json, Bootstrap.newBuilder());
  }
}
