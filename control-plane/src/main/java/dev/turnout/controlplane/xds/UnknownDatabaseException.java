package dev.turnout.controlplane.xds;

/** A route change named a database the routing table does not hold. */
public final class UnknownDatabaseException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public UnknownDatabaseException(String database, java.util.Collection<String> known) {
    super("unknown database '" + database + "'; the routing table holds " + (known.isEmpty() ? "none" : known));
  }
}
