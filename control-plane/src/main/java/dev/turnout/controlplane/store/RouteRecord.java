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
 * @param operator who made the change by hand, and why; empty for Turnout's own changes (a migration's, the
 *     seed, the configuration's, a DNS refresh's) and for records written before operators could
 */
public record RouteRecord(DatabaseRoute route, long version, String cause, Optional<String> hostname,
    Optional<Operator> operator) {

  /** An operator who changed a route by hand: their identity (certificate CN, or anonymous and their address), and why. */
  public record Operator(String identity, String reason) {}

  public RouteRecord {
    hostname = hostname == null ? Optional.empty() : hostname;
    operator = operator == null ? Optional.empty() : operator;
  }

  public RouteRecord(DatabaseRoute route, long version, String cause, Optional<String> hostname) {
    this(route, version, cause, hostname, Optional.empty());
  }

  public RouteRecord(DatabaseRoute route, long version, String cause) {
    this(route, version, cause, Optional.empty(), Optional.empty());
  }

  /** The same change under another version (a shared store hands out its own). */
  public RouteRecord withVersion(long newVersion) {
    return new RouteRecord(route, newVersion, cause, hostname, operator);
  }
}
