package dev.turnout.controlplane.migration;

import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.controlplane.store.StoreException;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Router;
import dev.turnout.migrator.ServerAddress;
import java.util.concurrent.CompletableFuture;

/**
 * The migrator's {@link Router}, backed by the xDS routing service: futures complete on every sidecar's ACK. Its
 * changes are the leader's: a replica that no longer leads migrations cannot make them.
 */
public final class XdsRouter implements Router {
  private final RoutingService routing;

  public XdsRouter(RoutingService routing) {
    this.routing = routing;
  }

  @Override
  public CompletableFuture<Void> route(String database, ServerAddress endpoint) {
    try {
      return routing.route(database, new Endpoint(endpoint.host(), endpoint.port()), RouteStore.Writer.LEADER).thenApply(r -> null);
    } catch (StoreException | RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  @Override
  public CompletableFuture<Void> drain(String database) {
    try {
      return routing.drain(database, RouteStore.Writer.LEADER).thenApply(r -> null);
    } catch (StoreException | RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }
}
