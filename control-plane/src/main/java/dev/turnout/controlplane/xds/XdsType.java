package dev.turnout.controlplane.xds;

import io.envoyproxy.controlplane.cache.Resources;
import java.util.Optional;

/** The xDS resource types Turnout serves, with the short names SREs know them by. */
public enum XdsType {
  LDS(Resources.V3.LISTENER_TYPE_URL),
  CDS(Resources.V3.CLUSTER_TYPE_URL),
  EDS(Resources.V3.ENDPOINT_TYPE_URL),
  RDS(Resources.V3.ROUTE_TYPE_URL),
  SDS(Resources.V3.SECRET_TYPE_URL);

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
}
