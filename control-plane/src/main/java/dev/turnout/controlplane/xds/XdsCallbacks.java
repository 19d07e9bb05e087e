package dev.turnout.controlplane.xds;

import io.envoyproxy.controlplane.server.DiscoveryServerCallbacks;
import io.envoyproxy.controlplane.server.exception.RequestException;
import io.grpc.Status;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import java.util.List;

/**
 * Feeds java-control-plane's stream events to the {@link AckTracker}, and gives a service seen for the first
 * time its snapshot before its first watch is created.
 *
 * <p>Every request must carry the node: java-control-plane picks the snapshot (the databases a service may
 * reach) from each request's own node, so a request without one would be answered for no service at all.
 * Envoy sends it on every request unless {@code set_node_on_first_message_only} is set, which Turnout's
 * bootstrap leaves off.
 */
final class XdsCallbacks implements DiscoveryServerCallbacks {
  private final AckTracker tracker;
  private final SnapshotPublisher publisher;

  private final boolean requireIdentity;

  /** @param requireIdentity the server runs mTLS: a node's certificate CN must equal its node.cluster */
  XdsCallbacks(AckTracker tracker, SnapshotPublisher publisher, boolean requireIdentity) {
    this.tracker = tracker;
    this.publisher = publisher;
    this.requireIdentity = requireIdentity;
  }

  @Override
  public void onV3StreamRequest(long streamId, DiscoveryRequest request) throws RequestException {
    requireNode(request.hasNode(), request.getNode());
    publisher.ensureGroup(request.getNode().getCluster());
    tracker.onRequest(streamId, request.hasNode() ? request.getNode() : null, request.getTypeUrl(),
        AckTracker.RequestKind.STATE_OF_THE_WORLD, request.getResourceNamesList(), List.of(),
        request.getResponseNonce(), request.hasErrorDetail() ? request.getErrorDetail().getMessage() : "");
  }

  @Override
  public void onV3StreamDeltaRequest(long streamId, DeltaDiscoveryRequest request) throws RequestException {
    requireNode(request.hasNode(), request.getNode());
    publisher.ensureGroup(request.getNode().getCluster());
    tracker.onRequest(streamId, request.getNode(), request.getTypeUrl(), AckTracker.RequestKind.DELTA,
        request.getResourceNamesSubscribeList(), request.getResourceNamesUnsubscribeList(),
        request.getResponseNonce(), request.hasErrorDetail() ? request.getErrorDetail().getMessage() : "");
  }

  private void requireNode(boolean present, io.envoyproxy.envoy.config.core.v3.Node node)
      throws RequestException {
    if (!present || node.getId().isEmpty()) {
      throw new RequestException(Status.INVALID_ARGUMENT.withDescription(
          "every xDS request must carry node.id and node.cluster (do not set set_node_on_first_message_only)"));
    }
    if (requireIdentity) {
      // The service decides which databases a node gets: a certificate for one service cannot ask for another's.
      String identity = dev.turnout.controlplane.security.PeerIdentity.KEY.get();
      if (identity == null || !identity.equals(node.getCluster())) {
        throw new RequestException(Status.PERMISSION_DENIED.withDescription("node " + node.getId()
            + " asks as service '" + node.getCluster() + "' but its certificate is for '" + identity + "'"));
      }
    }
  }

  @Override
  public void onV3StreamResponse(long streamId, DiscoveryRequest request, DiscoveryResponse response) {
    tracker.onResponse(streamId, response.getTypeUrl(), response.getVersionInfo(), response.getNonce());
  }

  @Override
  public void onV3StreamDeltaResponse(long streamId, DeltaDiscoveryRequest request, DeltaDiscoveryResponse response) {
    tracker.onResponse(streamId, response.getTypeUrl(), response.getSystemVersionInfo(), response.getNonce());
  }

  @Override
  public void onStreamClose(long streamId, String typeUrl) {
    closed(streamId);
  }

  @Override
  public void onStreamCloseWithError(long streamId, String typeUrl, Throwable error) {
    closed(streamId);
  }

  private void closed(long streamId) {
    tracker.onStreamClosed(streamId);
  }
}
