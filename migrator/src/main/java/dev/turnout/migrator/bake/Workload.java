package dev.turnout.migrator.bake;

import java.util.Optional;

/**
 * A server's cumulative workload counters at one moment, summed over the server's databases (from
 * {@code pg_stat_database}; the templates left out), with the statements' totals where {@code pg_stat_statements} can be read. Two of them
 * make {@link Rates}.
 *
 * @param atNanos when it was read, on the migrator's clock
 * @param connections sessions connected to the server's databases now ({@code numbackends}): a gauge, not a counter
 * @param sidecars empty when no sidecar in front of the server's databases reports its counters ({@link
 *     SidecarCounters})
 * @param statements empty when {@code pg_stat_statements} is not loaded or not installed in the migrator's database
 */
public record Workload(long atNanos, Counters counters, long connections, Optional<Statements> statements,
    Optional<Sidecars> sidecars) {
  public Workload {
    statements = statements == null ? Optional.empty() : statements;
    sidecars = sidecars == null ? Optional.empty() : sidecars;
  }

  /** What a {@link dev.turnout.migrator.Platform} reads: the server's own counters, no sidecar's yet. */
  public Workload(long atNanos, Counters counters, long connections, Optional<Statements> statements) {
    this(atNanos, counters, connections, statements, Optional.empty());
  }

  /** This read with the sidecars' counters for the server's databases, read at the same moment. */
  public Workload withSidecars(Optional<Sidecars> s) {
    return new Workload(atNanos, counters, connections, statements, s);
  }

  /** {@code pg_stat_database}'s counters: xact_commit, xact_rollback, deadlocks, conflicts, temp_bytes. */
  public record Counters(long commits, long rollbacks, long deadlocks, long conflicts, long tempBytes) {
    public static final Counters ZERO = new Counters(0, 0, 0, 0, 0);
  }

  /**
   * The counters of the sidecars in front of the server's databases, summed over them and over every sidecar that
   * ever reported (one that went away keeps its share, so the sums only grow).
   *
   * @param nodes how many sidecars report now
   */
  public record Sidecars(long connectFailures, long holdTimeouts, int nodes) {}

  /** {@code pg_stat_statements}' calls and total execution time, summed over the server. */
  public record Statements(long calls, double totalMillis) {}
}
