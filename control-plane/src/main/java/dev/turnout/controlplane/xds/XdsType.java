package dev.turnout.controlplane.xds;

import java.util.Arrays;
import java.util.Optional;
import java.util.stream.Collectors;

/** The xDS resource types Turnout knows, with the short names SREs know them by. */
public enum XdsType {
  LDS("type.googleapis.com/envoy.config.listener.v3.Listener"),
  CDS("type.googleapis.com/envoy.config.cluster.v3.Cluster"),
  EDS("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"),
  /** Asked for by clients whose listeners use routes; Turnout's use tcp_proxy, so it answers with none. */
  RDS("type.googleapis.com/envoy.config.route.v3.RouteConfiguration"),
  /** Asked for by clients that take secrets over xDS; Turnout serves none. */
  SDS("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret");

  private final String typeUrl;

  XdsType(String typeUrl) {
    this.typeUrl = typeUrl;
  }

  public String typeUrl() {
    return typeUrl;
  }

  public static Optional<XdsType> ofTypeUrl(String typeUrl) {
    for (XdsType t : values()) {
      if (t.typeUrl.equals(typeUrl)) {
        return Optional.of(t);
      }
    }
    return Optional.empty();
  }

  /** Listeners and Clusters: an empty first subscription means every resource (the protocol's legacy wildcard). */
  static boolean wildcardByDefault(XdsType type) {
    return type == LDS || type == CDS;
  }

  static String servedTypeUrls() {
    return Arrays.stream(values()).map(XdsType::typeUrl).collect(Collectors.joining(", "));
  }
}
