package dev.turnout.controlplane.xds;

import dev.turnout.envoy.Endpoint;
import java.util.Optional;

/**
 * A route change by hand named the endpoint it expected to replace, and the database is not routed there: the
 * operator decided on a state that is no longer the current one. Nothing was changed.
 */
public final class RouteConflictException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public RouteConflictException(String database, Endpoint expected, Optional<Endpoint> actual) {
    super("database '" + database + "' is " + actual.map(e -> "routed to " + e).orElse("drained")
        + ", not to the expected " + expected + "; nothing was changed");
  }
}
