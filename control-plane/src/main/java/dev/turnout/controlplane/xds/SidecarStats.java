package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableSortedMap;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.turnout.migrator.bake.SidecarCounters;
import dev.turnout.migrator.bake.Workload;
import io.prometheus.client.Metrics.LabelPair;
import io.prometheus.client.Metrics.Metric;
import io.prometheus.client.Metrics.MetricFamily;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.BiPredicate;

/**
 * The counters this replica's sidecars stream to its metrics service (Envoy's {@code envoy.stat_sinks.metrics_service}),
 * kept per stream as last reported and summed per database into totals that only grow, for the bake's
 * {@code connect_failures} and {@code hold_timeouts}.
 *
 * <p>Envoy sends cumulative counters ({@code report_counters_as_deltas} false, its default). A stream's first value
 * of a counter is where it starts (what the sidecar counted before it reported here was counted where it reported
 * then, or before the bake); each later rise is added to its database's total, and a value below the last one (the
 * sidecar restarted its counters) is added whole. A stream that ends takes its last values with it, but not its
 * share of the totals, so a sidecar that goes away does not make a database's total fall. Memory: per open stream at
 * most {@link #MAX_SERIES_PER_STREAM} counters; totals only for databases the routing table holds and the stream's
 * service may reach (a sidecar cannot raise another service's database's signal).
 */
public final class SidecarStats implements SidecarCounters {
  /** Envoy's cluster stat for connections to an endpoint that failed: {@code cluster.<database>.upstream_cx_connect_fail}. */
  public static final String CONNECT_FAIL = "upstream_cx_connect_fail";
  /**
   * The hold timeout's name: Envoy's tcp_proxy counts a connection refused because its cluster did not come in time
   * as {@code tcp.<stat_prefix>.on_demand_cluster_timeout}; Turnout's listeners' stat_prefix is the database, and the
   * built-in sidecar reports its hold timeouts under it.
   */
  public static final String HOLD_TIMEOUT = "on_demand_cluster_timeout";
  /** Counters one stream may hold; more are dropped (Envoy sends all of its stats, most of which are not these). */
  public static final int MAX_SERIES_PER_STREAM = 4096;

  /** Which counter of a database a series is. */
  enum Kind { CONNECT_FAILURES, HOLD_TIMEOUTS }

  /** One counter of one database: a key of a stream's last values. */
  record Series(String database, Kind kind) {}

  /** What one sidecar last reported, for operators and tests. */
  public record NodeCounters(String node, String cluster, String database, long connectFailures, long holdTimeouts) {}

  private final Object lock = new Object();
  /** Open streams by id. */
  @GuardedBy("lock")
  private final Map<Long, Stream> streams = new HashMap<>();
  /** By database: connect failures and hold timeouts, summed over every stream since this replica started. */
  @GuardedBy("lock")
  private final Map<String, long[]> totals = new TreeMap<>();
  @GuardedBy("lock")
  private long nextId;
  private final BiPredicate<String, String> mayReach;
  /** This process's totals in the store: they start from zero at each start, so they are rows of their own. */
  private final String incarnation = java.util.UUID.randomUUID().toString();

  /** @param mayReach whether a service (a node's cluster) may reach a database the routing table holds */
  public SidecarStats(BiPredicate<String, String> mayReach) {
    this.mayReach = mayReach;
  }

  /** One metrics stream, from its first message to its end. */
  final class Stream {
    final long id;
    final String node;
    final String cluster;
    @GuardedBy("SidecarStats.this.lock")
    final Map<Series, Long> last = new HashMap<>();
    @GuardedBy("SidecarStats.this.lock")
    boolean overflowed;

    Stream(long id, String node, String cluster) {
      this.id = id;
      this.node = node;
      this.cluster = cluster;
    }
  }

  Stream open(String node, String cluster) {
    synchronized (lock) {
      Stream s = new Stream(++nextId, node, cluster);
      streams.put(s.id, s);
      return s;
    }
  }

  void close(Stream s) {
    synchronized (lock) {
      streams.remove(s.id);
    }
  }

  /** Takes in one message's metric families; returns false when the stream is over its cap (the rest was dropped). */
  boolean report(Stream s, Collection<MetricFamily> families) {
    // Envoy sends every stat it has at each flush: the few that count are picked out before the lock is taken.
    java.util.List<Map.Entry<Series, Long>> values = new java.util.ArrayList<>();
    for (MetricFamily f : families) {
      for (Metric m : f.getMetricList()) {
        Optional<Series> series = seriesOf(f.getName(), m.getLabelList());
        if (series.isEmpty() || !mayReach.test(s.cluster, series.get().database())) {
          continue;
        }
        double raw = m.hasCounter() ? m.getCounter().getValue() : m.hasUntyped() ? m.getUntyped().getValue()
            : m.hasGauge() ? m.getGauge().getValue() : Double.NaN;
        if (Double.isFinite(raw) && raw >= 0) {
          values.add(Map.entry(series.get(), (long) raw));
        }
      }
    }
    synchronized (lock) {
      for (Map.Entry<Series, Long> v : values) {
        Series series = v.getKey();
        long value = v.getValue();
        Long before = s.last.get(series);
        if (before == null && s.last.size() >= MAX_SERIES_PER_STREAM) {
          s.overflowed = true;
          continue;
        }
        s.last.put(series, value);
        long[] total = totals.computeIfAbsent(series.database(), d -> new long[2]);
        if (before != null) {
          total[series.kind().ordinal()] += value >= before ? value - before : value;
        }
      }
      return !s.overflowed;
    }
  }

  /**
   * The database and counter a stat is, in either of Envoy's forms: {@code cluster.<db>.upstream_cx_connect_fail}
   * (the default), or with {@code emit_tags_as_labels} {@code cluster.upstream_cx_connect_fail} labelled
   * {@code envoy.cluster_name} (and {@code tcp.on_demand_cluster_timeout} labelled {@code envoy.tcp_prefix}).
   */
  static Optional<Series> seriesOf(String name, Collection<LabelPair> labels) {
    for (Kind kind : Kind.values()) {
      String prefix = kind == Kind.CONNECT_FAILURES ? "cluster." : "tcp.";
      String suffix = "." + (kind == Kind.CONNECT_FAILURES ? CONNECT_FAIL : HOLD_TIMEOUT);
      String label = kind == Kind.CONNECT_FAILURES ? "envoy.cluster_name" : "envoy.tcp_prefix";
      if (!name.startsWith(prefix) || !name.endsWith(suffix)) {
        continue;
      }
      if (name.length() == prefix.length() + suffix.length() - 1) { // the tag-extracted name: the label says
        for (LabelPair l : labels) {
          if (l.getName().equals(label) || l.getName().equals(label.replace('.', '_'))) {
            return l.getValue().isEmpty() ? Optional.empty() : Optional.of(new Series(l.getValue(), kind));
          }
        }
        return Optional.empty();
      }
      if (name.length() > prefix.length() + suffix.length()) {
        return Optional.of(new Series(name.substring(prefix.length(), name.length() - suffix.length()), kind));
      }
    }
    return Optional.empty();
  }

  /** Names this process's totals in the store, apart from an earlier process's of the same replica. */
  public String incarnation() {
    return incarnation;
  }

  @Override
  public Optional<Workload.Sidecars> read(Collection<String> databases) {
    synchronized (lock) {
      long failures = 0;
      long timeouts = 0;
      boolean any = false;
      for (String d : databases) {
        long[] t = totals.get(d);
        if (t != null) {
          any = true;
          failures += t[0];
          timeouts += t[1];
        }
      }
      if (!any) {
        return Optional.empty();
      }
      int nodes = (int) streams.values().stream().filter(s -> s.last.keySet().stream()
          .anyMatch(x -> databases.contains(x.database()))).count();
      return Optional.of(new Workload.Sidecars(failures, timeouts, nodes));
    }
  }

  /**
   * The totals by database, with how many open streams report each now: for the store, where the leader reads every
   * replica's.
   */
  public ImmutableSortedMap<String, Workload.Sidecars> totals() {
    synchronized (lock) {
      // One pass over the streams (thousands of sidecars, a few counters each), not one per database.
      Map<String, Integer> reporting = new HashMap<>();
      for (Stream st : streams.values()) {
        st.last.keySet().stream().map(Series::database).distinct().forEach(d -> reporting.merge(d, 1, Integer::sum));
      }
      ImmutableSortedMap.Builder<String, Workload.Sidecars> b = ImmutableSortedMap.naturalOrder();
      totals.forEach((d, t) -> b.put(d, new Workload.Sidecars(t[0], t[1], reporting.getOrDefault(d, 0))));
      return b.build();
    }
  }

  /** What every open stream last reported, by node then database. */
  public ImmutableList<NodeCounters> nodes() {
    synchronized (lock) {
      Map<String, NodeCounters> out = new TreeMap<>();
      for (Stream s : streams.values()) {
        for (Map.Entry<Series, Long> e : s.last.entrySet()) {
          String key = s.node + "\u0000" + e.getKey().database();
          NodeCounters n = out.getOrDefault(key, new NodeCounters(s.node, s.cluster, e.getKey().database(), 0, 0));
          out.put(key, e.getKey().kind() == Kind.CONNECT_FAILURES
              ? new NodeCounters(n.node(), n.cluster(), n.database(), e.getValue(), n.holdTimeouts())
              : new NodeCounters(n.node(), n.cluster(), n.database(), n.connectFailures(), e.getValue()));
        }
      }
      return ImmutableList.copyOf(out.values());
    }
  }
}
