package dev.turnout.controlplane.store;

import dev.turnout.envoy.DatabaseRoute;

/**
 * One durable change of the routing table: the whole state of one database after the change, and the
 * version it was published under.
 *
 * @param cause why the change was made ({@code seed}, {@code route}, {@code drain}, {@code config})
 */
public record RouteRecord(DatabaseRoute route, long version, String cause) {}
