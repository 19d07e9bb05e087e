package dev.turnout.migrator.bake;

import com.google.common.collect.ImmutableSortedMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * A server's workload over an interval, one figure per {@link Signal}: per second (commits, rollbacks, deadlocks,
 * conflicts, temp bytes), connections at its end and the mean statement latency over it. A signal without a figure
 * (latency where pg_stat_statements cannot be read, or saw no call; the sidecars' counters where no sidecar reports
 * them) is not available. The baseline recorded while
 * validating is one of these, saved with the migration.
 *
 * @param seconds how long the interval was
 */
public record Rates(double seconds, ImmutableSortedMap<Signal, Double> values) {
  public Rates {
    values = values == null ? ImmutableSortedMap.of() : values;
  }

  /** The workload between {@code from} and {@code to}, two reads of the same server. */
  public static Rates between(Workload from, Workload to) {
    double s = Math.max(1e-9, (to.atNanos() - from.atNanos()) / 1e9);
    Workload.Counters a = from.counters();
    Workload.Counters b = to.counters();
    ImmutableSortedMap.Builder<Signal, Double> v = ImmutableSortedMap.naturalOrder();
    // A counter that went down was reset (pg_stat_reset, a crash): the interval counts from zero.
    v.put(Signal.COMMITS, delta(a.commits(), b.commits()) / s);
    v.put(Signal.ROLLBACKS, delta(a.rollbacks(), b.rollbacks()) / s);
    v.put(Signal.DEADLOCKS, delta(a.deadlocks(), b.deadlocks()) / s);
    v.put(Signal.CONFLICTS, delta(a.conflicts(), b.conflicts()) / s);
    v.put(Signal.CONNECTIONS, (double) to.connections());
    v.put(Signal.TEMP_BYTES, delta(a.tempBytes(), b.tempBytes()) / s);
    if (from.sidecars().isPresent() && to.sidecars().isPresent()) {
      Workload.Sidecars x = from.sidecars().get();
      Workload.Sidecars y = to.sidecars().get();
      // The sidecars' sums only grow (a sidecar that leaves keeps its share); one that fell lost a row the store
      // pruned long after its replica went: nothing new was counted, so nothing is.
      v.put(Signal.CONNECT_FAILURES, Math.max(0, y.connectFailures() - x.connectFailures()) / s);
      v.put(Signal.HOLD_TIMEOUTS, Math.max(0, y.holdTimeouts() - x.holdTimeouts()) / s);
    }
    if (from.statements().isPresent() && to.statements().isPresent()) {
      long calls = to.statements().get().calls() - from.statements().get().calls();
      double ms = to.statements().get().totalMillis() - from.statements().get().totalMillis();
      if (calls > 0 && ms >= 0) {
        v.put(Signal.LATENCY, ms / calls);
      }
    }
    return new Rates(s, v.build());
  }

  private static double delta(long from, long to) {
    return to >= from ? to - from : to;
  }

  public Optional<Double> get(Signal signal) {
    return Optional.ofNullable(values.get(signal));
  }

  /**
   * {@code commits 120.0/s, rollbacks 0.2/s, deadlocks 0.0/s, ..., latency 1.25 ms} (or {@code latency not available}).
   */
  public String describe() {
    return java.util.Arrays.stream(Signal.values()).map(s -> s.label() + " " + get(s).map(x ->
        s.kind() == Signal.Kind.COUNT ? String.format(Locale.ROOT, "%.2f/s", x) : s.format(x))
        .orElse("not available")).collect(Collectors.joining(", "));
  }

  /** For tests and figures: the values by label. */
  public Map<String, Double> byLabel() {
    return values.entrySet().stream().collect(Collectors.toMap(e -> e.getKey().label(), Map.Entry::getValue));
  }
}
