package dev.turnout.controlplane.migration;

import com.google.common.collect.ImmutableSet;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.controlplane.store.StoreException;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Router;
import dev.turnout.migrator.ServerAddress;
import java.util.List;
import java.util.Optional;
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
  public CompletableFuture<Void> route(List<String> databases, ServerAddress endpoint) {
    return change(databases, Optional.of(new Endpoint(endpoint.host(), endpoint.port())));
  }

  @Override
  public CompletableFuture<Void> drain(List<String> databases) {
    return change(databases, Optional.empty());
  }

  private CompletableFuture<Void> change(List<String> databases, Optional<Endpoint> endpoint) {
    try {
      return routing.changeAll(databases, endpoint, RouteStore.Writer.LEADER).thenApply(r -> null);
    } catch (StoreException | RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  @Override
  public ImmutableSet<String> routedTo(ServerAddress server) {
    return routedTo(routing.table(), server);
  }

  /**
   * The databases routed to {@code server} as an operator names it: its address as the routes hold it, or the DNS
   * name a route was set by; in name order.
   */
  public static java.util.List<String> databasesOn(RoutingService routing, Endpoint server) {
    return routing.table().databases().values().stream()
        .filter(r -> r.endpoint().isPresent() && (r.endpoint().get().equals(server)
            || (r.endpoint().get().port() == server.port()
                && routing.hostname(r.name()).filter(server.host()::equalsIgnoreCase).isPresent())))
        .map(DatabaseRoute::name).sorted().toList();
  }

  /**
   * The databases routed to RDS instance {@code instance} by its endpoint name
   * ({@code <instance>.<suffix>.<region>.rds.amazonaws.com}), in name order.
   */
  public static java.util.List<String> databasesOnRdsInstance(RoutingService routing, String instance) {
    String prefix = instance.toLowerCase(java.util.Locale.ROOT) + ".";
    return routing.table().databases().keySet().stream().filter(d -> routing.hostname(d)
        .map(h -> h.toLowerCase(java.util.Locale.ROOT))
        .filter(h -> h.startsWith(prefix) && h.endsWith(".rds.amazonaws.com")).isPresent()).sorted().toList();
  }

  /**
   * The start's precondition that the plan still holds, checked under the lock a route change by hand takes:
   * {@code spec}'s database is still routed to its source server, and that server still holds exactly the databases
   * the plan moves. {@code then} ends the refusal's message: what the caller does next ("start it again").
   */
  public static dev.turnout.migrator.Migrator.Precondition stillRoutedAsPlanned(
      java.util.function.Supplier<dev.turnout.envoy.RoutingTable> table, dev.turnout.migrator.Migration.Spec spec,
      String then) {
    return () -> {
      dev.turnout.envoy.RoutingTable now = table.get();
      java.util.Optional<Endpoint> endpoint = now.get(spec.database()).flatMap(DatabaseRoute::endpoint);
      if (endpoint.isEmpty() || !endpoint.get().equals(new Endpoint(spec.source().host(), spec.source().port()))) {
        throw new dev.turnout.migrator.MigrationConflictException(
            dev.turnout.migrator.MigrationConflictException.Kind.FAILED_PRECONDITION, "database '" + spec.database()
            + "' was routed to " + endpoint.map(Endpoint::toString).orElse("nothing (drained)") + " while the"
            + " migration from " + spec.source() + " was being planned; " + then);
      }
      java.util.Set<String> routed = routedTo(now, spec.source());
      if (!routed.equals(java.util.Set.copyOf(spec.databases()))) {
        throw new dev.turnout.migrator.MigrationConflictException(
            dev.turnout.migrator.MigrationConflictException.Kind.FAILED_PRECONDITION, "the databases routed to "
            + spec.source() + " changed while the migration was being planned (planned " + spec.databases()
            + ", now " + routed + "); " + then);
      }
    };
  }

  /** The databases of {@code table} routed to {@code server}: by its address, or a DNS name that resolved to it. */
  public static ImmutableSet<String> routedTo(dev.turnout.envoy.RoutingTable table, ServerAddress server) {
    Endpoint wanted = new Endpoint(server.host(), server.port());
    return table.databases().values().stream().filter(r -> r.endpoint().filter(wanted::equals).isPresent())
        .map(DatabaseRoute::name).sorted().collect(ImmutableSet.toImmutableSet());
  }
}
