package dev.turnout.migrator.bake;

import java.util.Locale;

/**
 * One figure of a server's health a bake compares with the baseline, with its default {@link Limit}. Every figure
 * is held per second (but connections, a count of sessions, and latency, in milliseconds); deadlocks and conflicts
 * are rare, so the bake judges their count since it began against what the baseline's rate would have made in that
 * time, where a rate would turn one deadlock into an alarm. The sidecars' own counters (connect failures, hold
 * timeouts) are judged the same way as deadlocks.
 */
public enum Signal {
  /**
   * Commits per second: a floor, not a ceiling; work that stopped arriving is a breach too. The slack of 10/s asks
   * nothing of a baseline under 20/s (the migrator's own reads make a few a second).
   */
  COMMITS("commits", "/s", Kind.FLOOR, new Limit(0.5, -10)),
  ROLLBACKS("rollbacks", "/s", Kind.RATE, new Limit(2, 1)),
  DEADLOCKS("deadlocks", "", Kind.COUNT, new Limit(1, 5)),
  /** Queries cancelled by recovery conflicts (a standby's; zero on a primary, kept to see a surprise). */
  CONFLICTS("conflicts", "", Kind.COUNT, new Limit(1, 5)),
  CONNECTIONS("connections", "", Kind.GAUGE, new Limit(2, 20)),
  TEMP_BYTES("temp_bytes", " B/s", Kind.RATE, new Limit(4, 64 * 1024 * 1024)),
  /** Mean statement execution time, from pg_stat_statements; absent where it cannot be read. */
  LATENCY("latency", " ms", Kind.GAUGE, new Limit(2, 5)),
  /**
   * Connections the sidecars in front of the server's databases failed to open to it (Envoy's
   * {@code cluster.<database>.upstream_cx_connect_fail}), counted since the bake began; from the sidecars that stream
   * their counters to the control plane, absent when none does. The baseline is the source's sidecars' over the
   * validation window.
   */
  CONNECT_FAILURES("connect_failures", "", Kind.COUNT, new Limit(2, 5)),
  /**
   * New connections the sidecars held while the database was drained and refused at their hold timeout
   * ({@code tcp.<database>.on_demand_cluster_timeout}), counted since the bake began; absent when no sidecar reports.
   */
  HOLD_TIMEOUTS("hold_timeouts", "", Kind.COUNT, new Limit(2, 5));

  /** How the bake judges a signal. */
  enum Kind {
    /** Per second, at most the limit over the baseline's. */
    RATE,
    /** Per second, at least the limit over the baseline's (a negative slack: a baseline without load asks nothing). */
    FLOOR,
    /** A count since the bake began, at most the limit over what the baseline's rate makes in that time. */
    COUNT,
    /** A level, at most the limit over the baseline's. */
    GAUGE
  }

  private final String label;
  private final String unit;
  private final Kind kind;
  private final Limit defaultLimit;

  Signal(String label, String unit, Kind kind, Limit defaultLimit) {
    this.label = label;
    this.unit = unit;
    this.kind = kind;
    this.defaultLimit = defaultLimit;
  }

  /** The name operators write ({@code rollbacks=3x+1}) and read in the history. */
  public String label() {
    return label;
  }

  Kind kind() {
    return kind;
  }

  public Limit defaultLimit() {
    return defaultLimit;
  }

  /** {@code 12.5/s}, {@code 3}, {@code 1.20 ms}. */
  public String format(double value) {
    if (kind == Kind.COUNT) {
      return String.format(Locale.ROOT, "%.0f", value);
    }
    return String.format(Locale.ROOT, this == LATENCY ? "%.2f%s" : "%.1f%s", value, unit);
  }

  /** The signal an operator named, by {@link #label} (case and '-' or '_' do not matter). */
  public static Signal named(String name) {
    String n = name.trim().toLowerCase(Locale.ROOT).replace('-', '_');
    for (Signal s : values()) {
      if (s.label.equals(n)) {
        return s;
      }
    }
    throw new IllegalArgumentException("no bake signal '" + name + "'; the signals are " + java.util.Arrays.stream(
        values()).map(Signal::label).collect(java.util.stream.Collectors.joining(", ")));
  }
}
