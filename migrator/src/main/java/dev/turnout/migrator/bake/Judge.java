package dev.turnout.migrator.bake;

import com.google.common.collect.ImmutableList;
import java.util.Locale;
import java.util.Optional;

/**
 * Compares the target's workload since the bake began with the baseline, signal by signal, under a {@link Bake}'s
 * limits. Pure: the migrator reads, this judges.
 */
public final class Judge {
  private Judge() {}

  /**
   * One signal compared: the baseline's figure, the bake's, and what the limit allows (for deadlocks and conflicts,
   * counts since the bake began against what the baseline's rate makes in that time).
   */
  public record Comparison(Signal signal, double baseline, double now, double allowed, Limit limit) {
    public boolean breached() {
      return signal.kind() == Signal.Kind.FLOOR ? now < allowed : now > allowed;
    }

    /** {@code rollbacks 12.0/s (baseline 0.5/s, allowed 2.0/s by 2x+1)}. */
    public String describe() {
      return signal.label() + " " + signal.format(now) + " (baseline " + baselineText() + ", "
          + (signal.kind() == Signal.Kind.FLOOR ? "at least " : "allowed ") + signal.format(allowed) + " by " + limit
          + ")";
    }

    private String baselineText() {
      return signal.kind() == Signal.Kind.COUNT ? String.format(Locale.ROOT, "%.2f/s", baseline)
          : signal.format(baseline);
    }
  }

  /** Every signal both sides have a figure for, compared. */
  public static ImmutableList<Comparison> compare(Rates baseline, Rates bake, Bake options) {
    ImmutableList.Builder<Comparison> out = ImmutableList.builder();
    for (Signal s : Signal.values()) {
      Optional<Double> b = baseline.get(s);
      Optional<Double> n = bake.get(s);
      if (b.isEmpty() || n.isEmpty()) {
        continue; // not available on one side (latency without pg_stat_statements): not judged
      }
      Limit limit = options.limit(s);
      if (s.kind() == Signal.Kind.COUNT) {
        double count = Math.rint(n.get() * bake.seconds());
        out.add(new Comparison(s, b.get(), count, limit.over(b.get() * bake.seconds()), limit));
      } else {
        out.add(new Comparison(s, b.get(), n.get(), limit.over(b.get()), limit));
      }
    }
    return out.build();
  }

  public static ImmutableList<Comparison> breaches(Rates baseline, Rates bake, Bake options) {
    return compare(baseline, bake, options).stream().filter(Comparison::breached)
        .collect(ImmutableList.toImmutableList());
  }

  /**
   * The history's side-by-side line: {@code commits 120.0/s vs 118.2/s, rollbacks 0.1/s vs 0.2/s, ...,
   * latency not available}.
   */
  public static String sideBySide(Rates baseline, Rates bake) {
    StringBuilder b = new StringBuilder();
    for (Signal s : Signal.values()) {
      if (b.length() > 0) {
        b.append(", ");
      }
      Optional<Double> x = baseline.get(s);
      Optional<Double> y = bake.get(s);
      b.append(s.label()).append(' ');
      if (x.isEmpty() && y.isEmpty()) {
        b.append("not available");
      } else {
        b.append(x.map(v -> fmt(s, v)).orElse("n/a")).append(" vs ").append(y.map(v -> fmt(s, v)).orElse("n/a"));
      }
    }
    return b.toString();
  }

  private static String fmt(Signal s, double v) {
    return s.kind() == Signal.Kind.COUNT ? String.format(Locale.ROOT, "%.2f/s", v) : s.format(v);
  }
}
