package dev.turnout.migrator.bake;

import com.google.common.collect.ImmutableSortedMap;
import java.time.Duration;
import java.util.Map;

/**
 * How a migration bakes after VERIFYING: for how long the target's workload is held against the baseline recorded
 * while validating, the limits that differ from each {@link Signal}'s default, and what a breach does.
 *
 * <p>A breach rolls the migration back by itself, naming the signal and both figures, when the reverse replication
 * made at promotion is healthy (the rollback keeps the target's writes); when it is broken or absent it halts for an
 * operator, since every way back would lose them. With {@code noAutoRollback} a breach is recorded as a warning and
 * the bake goes on.
 *
 * @param duration zero skips the bake (VERIFYING goes straight to COMPLETED)
 * @param limits per-signal overrides of the defaults
 */
public record Bake(Duration duration, boolean noAutoRollback, ImmutableSortedMap<Signal, Limit> limits) {
  /** What an operator gets without {@code --bake}: long enough for a workload's minute-scale cycles to show. */
  public static final Duration DEFAULT_DURATION = Duration.ofMinutes(2);
  /** The longest bake the admin API accepts. */
  public static final Duration MAX_DURATION = Duration.ofHours(24);
  /** No bake: what migrations saved before bakes existed, campaigns' members and {@code --bake 0} get. */
  public static final Bake NONE = new Bake(Duration.ZERO, false, ImmutableSortedMap.of());

  public Bake {
    limits = limits == null ? ImmutableSortedMap.of() : limits;
    if (duration == null || duration.isNegative() || duration.compareTo(MAX_DURATION) > 0) {
      throw new IllegalArgumentException("bake " + duration + " must be zero (no bake) to " + MAX_DURATION.toHours()
          + " hours");
    }
  }

  public static Bake of(Duration duration) {
    return new Bake(duration, false, ImmutableSortedMap.of());
  }

  public Bake withNoAutoRollback(boolean no) {
    return new Bake(duration, no, limits);
  }

  public Bake withLimits(Map<Signal, Limit> overrides) {
    return new Bake(duration, noAutoRollback, ImmutableSortedMap.copyOf(overrides));
  }

  public boolean skipped() {
    return duration.isZero();
  }

  public Limit limit(Signal signal) {
    return limits.getOrDefault(signal, signal.defaultLimit());
  }
}
