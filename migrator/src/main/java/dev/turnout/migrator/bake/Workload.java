package dev.turnout.migrator.bake;

import java.util.Optional;

/**
 * A server's cumulative workload counters at one moment, summed over the server's databases (from
 * {@code pg_stat_database}; the templates left out), with the statements' totals where {@code pg_stat_statements} can be read. Two of them
 * make {@link Rates}.
 *
 * @param atNanos when it was read, on the migrator's clock
 * @param connections sessions connected to the server's databases now ({@code numbackends}): a gauge, not a counter
 * @param statements empty when {@code pg_stat_statements} is not loaded or not installed in the migrator's database
 */
public record Workload(long atNanos, Counters counters, long connections, Optional<Statements> statements) {
  public Workload {
    statements = statements == null ? Optional.empty() : statements;
  }

  /** {@code pg_stat_database}'s counters: xact_commit, xact_rollback, deadlocks, conflicts, temp_bytes. */
  public record Counters(long commits, long rollbacks, long deadlocks, long conflicts, long tempBytes) {
    public static final Counters ZERO = new Counters(0, 0, 0, 0, 0);
  }

  /** {@code pg_stat_statements}' calls and total execution time, summed over the server. */
  public record Statements(long calls, double totalMillis) {}
}
