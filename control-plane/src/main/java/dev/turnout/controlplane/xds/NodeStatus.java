package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableMap;
import java.time.Instant;
import java.util.Optional;

/**
 * What one sidecar (an Envoy node id) has been sent and has accepted, per resource type.
 *
 * @param connected whether the node has an open xDS stream now
 */
public record NodeStatus(String nodeId, String cluster, boolean connected, ImmutableMap<XdsType, TypeStatus> types) {

  /**
   * Versions are Turnout's global, never-repeating version numbers; 0 means none yet.
   *
   * @param lastNack the error of the last rejected response, while no later version has been accepted
   */
  public record TypeStatus(long sentVersion, long ackedVersion, Optional<Nack> lastNack, Optional<Instant> ackedAt) {}

  /** A rejected response: which version, and Envoy's {@code error_detail} message. */
  public record Nack(long version, String error, Instant at) {}

  public long ackedVersion(XdsType type) {
    TypeStatus status = types.get(type);
    return status == null ? 0 : status.ackedVersion();
  }
}
