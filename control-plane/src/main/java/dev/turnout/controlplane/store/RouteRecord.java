package dev.turnout.controlplane.store;

import dev.turnout.envoy.DatabaseRoute;
import java.util.Optional;

/**
 * One durable change of the routing table: the whole state of one database after the change, and the
 * version it was published under.
 *
 * @param cause why the change was made ({@code seed}, {@code route}, {@code drain}, {@code config}, {@code dns})
 * @param hostname the DNS name the endpoint's address was resolved from, re-resolved while it is routed
 *     (an Aurora writer endpoint moves on failover); empty when the route named an address
 */
public record RouteRecord(DatabaseRoute route, long version, String cause, Optional<String> hostname) {
  public RouteRecord {
    hostname = hostname == null ? Optional.empty() : hostname;
  }

  public RouteRecord(DatabaseRoute route, long version, String cause) {
    this(route, version, cause, Optional.empty());
  }
}
