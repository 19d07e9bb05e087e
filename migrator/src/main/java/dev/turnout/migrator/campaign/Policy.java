package dev.turnout.migrator.campaign;

import com.google.common.collect.ImmutableList;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * How a campaign paces its members: a canary, then waves; how many migrations at once, fleet-wide and per host;
 * how many failures halt it; when cutovers may happen; in which order the servers go. {@link #DEFAULT} is a
 * careful start: one canary that waits for {@code approve}, waves of 10, 5 at once and 1 per host, halting at the
 * first failure, cutovers at any time, in the given order.
 *
 * @param windows when members without windows of their own may cut over; empty: at any time
 */
public record Policy(Canary canary, Waves waves, Limits limits, ImmutableList<MaintenanceWindow> windows,
    Order order) {

  public static final Policy DEFAULT = new Policy(null, null, null, null, null);

  /** The order members run in; the canary is the first of it. */
  public enum Order {
    /** As the campaign lists them. */
    GIVEN,
    /** By {@link Member#sizeBytes}, smallest first; members of unknown size last, as listed. */
    SMALLEST_FIRST
  }

  /**
   * The first {@code count} members run alone (wave 0); then the campaign waits for {@code approve}, or, when
   * {@code bake} is given, goes on by itself that long after the canary finished ({@code approve} still cuts the
   * wait short).
   */
  public record Canary(int count, Optional<Duration> bake) {
    public static final Canary DEFAULT = new Canary(1, Optional.empty());
    public static final Canary NONE = new Canary(0, Optional.empty());

    public Canary {
      bake = bake == null ? Optional.empty() : bake;
      if (count < 0) {
        throw new InvalidSpecException("count", count, "must be 0 (no canary) or more");
      }
      if (bake.isPresent() && bake.get().isNegative()) {
        throw new InvalidSpecException("bake", Durations.format(bake.get()), "must be 0 or more");
      }
    }
  }

  /**
   * After the canary, members go in waves of {@code size}: a wave starts once every member of the one before has
   * finished (succeeded or failed) and {@code bake} has passed since.
   */
  public record Waves(int size, Duration bake) {
    public static final Waves DEFAULT = new Waves(10, Duration.ZERO);

    public Waves {
      bake = bake == null ? Duration.ZERO : bake;
      if (size < 1) {
        throw new InvalidSpecException("size", size, "must be 1 or more");
      }
      if (bake.isNegative()) {
        throw new InvalidSpecException("bake", Durations.format(bake), "must be 0 or more");
      }
    }
  }

  /**
   * How many members may run at once, across the fleet and on one host (so a host's disk and network are not
   * saturated), and how many failures halt the campaign. A member runs from its start until it succeeds or fails.
   */
  public record Limits(int maxConcurrent, int maxConcurrentPerHost, FailureLimit maxFailures) {
    public static final Limits DEFAULT = new Limits(5, 1, FailureLimit.count(1));

    public Limits {
      maxFailures = maxFailures == null ? FailureLimit.count(1) : maxFailures;
      if (maxConcurrent < 1) {
        throw new InvalidSpecException("maxConcurrent", maxConcurrent, "must be 1 or more");
      }
      if (maxConcurrentPerHost < 1) {
        throw new InvalidSpecException("maxConcurrentPerHost", maxConcurrentPerHost, "must be 1 or more");
      }
    }
  }

  /**
   * How many failed members halt the campaign: a count, or a percentage of its members (rounded up, at least 1).
   * A failure is a member whose migration rolled back by its own rules, or halted.
   */
  public record FailureLimit(Unit unit, int value) {
    /** What {@code value} counts. */
    public enum Unit { MEMBERS, PERCENT }

    public FailureLimit {
      if (unit == null) {
        throw new InvalidSpecException("unit", null, "must be MEMBERS or PERCENT");
      }
      if (unit == Unit.MEMBERS && value < 1) {
        throw new InvalidSpecException("value", value, "must be 1 or more failed members");
      }
      if (unit == Unit.PERCENT && (value < 1 || value > 100)) {
        throw new InvalidSpecException("value", value + "%", "must be from 1% to 100%");
      }
    }

    public static FailureLimit count(int members) {
      return new FailureLimit(Unit.MEMBERS, members);
    }

    public static FailureLimit percent(int percent) {
      return new FailureLimit(Unit.PERCENT, percent);
    }

    /** {@code 3} or {@code 10%}, as a campaign file writes it. */
    public static FailureLimit parse(String text) {
      String t = text == null ? "" : text.trim();
      boolean percent = t.endsWith("%");
      String digits = percent ? t.substring(0, t.length() - 1).trim() : t;
      if (digits.isEmpty() || digits.length() > 9 || !digits.chars().allMatch(Character::isDigit)) {
        throw new InvalidSpecException("", text, "is not a number of failed members (3) or a percentage (10%)");
      }
      int v = Integer.parseInt(digits);
      return percent ? percent(v) : count(v);
    }

    /** The number of failures that halts a campaign of {@code members}. */
    public int threshold(int members) {
      return unit == Unit.MEMBERS ? value : Math.max(1, (int) ((members * (long) value + 99) / 100));
    }

    @Override
    public String toString() {
      return unit == Unit.MEMBERS ? String.valueOf(value) : value + "%";
    }
  }

  public Policy {
    canary = canary == null ? Canary.DEFAULT : canary;
    waves = waves == null ? Waves.DEFAULT : waves;
    limits = limits == null ? Limits.DEFAULT : limits;
    windows = windows == null ? ImmutableList.of() : windows;
    order = order == null ? Order.GIVEN : order;
  }

  /** {@code count} members first alone; then wait for {@code approve}, or {@code bake} when given. */
  public Policy withCanary(int count, Optional<Duration> bake) {
    return new Policy(new Canary(count, bake), waves, limits, windows, order);
  }

  public Policy withWaves(int size, Duration bake) {
    return new Policy(canary, new Waves(size, bake), limits, windows, order);
  }

  public Policy withLimits(int maxConcurrent, int maxConcurrentPerHost, FailureLimit maxFailures) {
    return new Policy(canary, waves, new Limits(maxConcurrent, maxConcurrentPerHost, maxFailures), windows, order);
  }

  public Policy withWindows(List<MaintenanceWindow> w) {
    return new Policy(canary, waves, limits, ImmutableList.copyOf(w), order);
  }

  public Policy withOrder(Order o) {
    return new Policy(canary, waves, limits, windows, o);
  }

  /** One line for the plan and the status: {@code canary 1 (then approve), waves of 10, ...}. */
  public String describe() {
    String c = canary.count() == 0 ? "no canary"
        : "canary " + canary.count() + canary.bake().map(b -> " (then " + Durations.format(b) + " bake or approve)")
            .orElse(" (then approve)");
    return c + ", waves of " + waves.size()
        + (waves.bake().isZero() ? "" : " " + Durations.format(waves.bake()) + " apart")
        + ", at most " + limits.maxConcurrent() + " at once and " + limits.maxConcurrentPerHost() + " per host"
        + ", halt at " + limits.maxFailures() + (limits.maxFailures().unit() == FailureLimit.Unit.PERCENT ? ""
            : limits.maxFailures().value() == 1 ? " failure" : " failures")
        + ", cutovers " + (windows.isEmpty() ? "at any time" : "in " + windows)
        + (order == Order.SMALLEST_FIRST ? ", smallest first" : "");
  }
}
