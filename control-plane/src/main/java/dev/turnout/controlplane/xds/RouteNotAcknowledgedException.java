package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableList;
import java.util.stream.Collectors;

/**
 * Not every sidecar subscribed to a database accepted the version that changed its route: the stragglers are
 * named, with the error of each that rejected it.
 */
public final class RouteNotAcknowledgedException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** A node that did not ACK: {@code error} is its NACK's error_detail, or empty if it just did not answer. */
  public record Straggler(String nodeId, String cluster, long ackedVersion, String error) {
    @Override
    public String toString() {
      return nodeId + " (" + cluster + ", at version " + ackedVersion + ")"
          + (error.isEmpty() ? ": no ACK" : ": NACK: " + error);
    }
  }

  private final String database;
  private final long version;
  private final ImmutableList<Straggler> stragglers;

  public RouteNotAcknowledgedException(String database, long version, String why, ImmutableList<Straggler> stragglers) {
    super("route of database '" + database + "' at version " + version + " " + why + "; stragglers: "
        + stragglers.stream().map(Straggler::toString).collect(Collectors.joining("; ")));
    this.database = database;
    this.version = version;
    this.stragglers = stragglers;
  }

  public String database() {
    return database;
  }

  public long version() {
    return version;
  }

  public ImmutableList<Straggler> stragglers() {
    return stragglers;
  }
}
