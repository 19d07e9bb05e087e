package dev.turnout.migrator.campaign;

import com.google.common.collect.ImmutableList;
import java.util.HashSet;
import java.util.List;
import java.util.OptionalLong;
import java.util.Set;

/**
 * One source server of a campaign, moved by one ordinary migration with every database on it.
 *
 * @param server the key of the source: {@code HOST:PORT}, or {@code aurora:INSTANCE} for an RDS instance
 * @param host what the per-host concurrency limit counts: the server's host when not given (an RDS instance is its
 *     own host); give it when several names or addresses lead to one machine
 * @param databases the databases routed to the server; may be empty when the plan is made, the control plane
 *     lists them
 * @param windows when this server may cut over; when empty, the campaign's windows apply (a member's windows
 *     replace the campaign's rather than narrow them)
 * @param sizeBytes how large the server's data is, for {@link Policy.Order#SMALLEST_FIRST}
 */
public record Member(String server, String host, ImmutableList<String> databases, Target target,
    ImmutableList<MaintenanceWindow> windows, OptionalLong sizeBytes) {

  public Member {
    Servers.checkServer("server", server);
    host = host == null || host.isBlank() ? Servers.hostOf(server) : host;
    databases = databases == null ? ImmutableList.of() : databases;
    windows = windows == null ? ImmutableList.of() : windows;
    sizeBytes = sizeBytes == null ? OptionalLong.empty() : sizeBytes;
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < databases.size(); i++) {
      String db = databases.get(i);
      if (db == null || db.isBlank()) {
        throw new InvalidSpecException("databases[" + i + "]", db, "is not a database name");
      }
      if (!seen.add(db)) {
        throw new InvalidSpecException("databases[" + i + "]", db, "is listed twice");
      }
    }
    if (target == null) {
      throw new InvalidSpecException("target", null, "is required: an address, a standby to make, or an Aurora"
          + " cluster");
    }
    boolean aurora = Servers.isAurora(server);
    if (aurora != (target.kind() == Target.Kind.AURORA_CLUSTER)) {
      throw new InvalidSpecException("target.kind", target.kind(), aurora
          ? "cannot move an RDS instance: its target must be AURORA_CLUSTER"
          : "needs an aurora:INSTANCE server; a HOST:PORT server moves to a GIVEN or STANDBY address");
    }
    if (aurora && Target.clusterOf(server).length() > 63) {
      throw new InvalidSpecException("target", target.describe(server), "names a cluster longer than 63 characters;"
          + " shorten the instance name or create the cluster and give it");
    }
    if (!aurora && target.value().equals(server)) {
      throw new InvalidSpecException("target.value", target.value(), "is the server itself");
    }
    if (sizeBytes.isPresent() && sizeBytes.getAsLong() < 0) {
      throw new InvalidSpecException("sizeBytes", sizeBytes.getAsLong(), "must be 0 or more");
    }
  }

  /** A member with no databases listed yet, no windows of its own and no size. */
  public static Member of(String server, Target target) {
    return new Member(server, null, ImmutableList.of(), target, ImmutableList.of(), OptionalLong.empty());
  }

  public Member withHost(String h) {
    return new Member(server, h, databases, target, windows, sizeBytes);
  }

  public Member withDatabases(List<String> dbs) {
    return new Member(server, host, ImmutableList.copyOf(dbs), target, windows, sizeBytes);
  }

  public Member withWindows(List<MaintenanceWindow> w) {
    return new Member(server, host, databases, target, ImmutableList.copyOf(w), sizeBytes);
  }

  public Member withSizeBytes(long bytes) {
    return new Member(server, host, databases, target, windows, OptionalLong.of(bytes));
  }
}
