package dev.turnout.controlplane.console;

import dev.turnout.controlplane.migration.Migrations;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import java.time.Clock;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The migrations' replication figures over time, for the console's charts: the migrator keeps only the latest
 * sample, so the console keeps the samples it sees, at most one a second for each migration this replica runs and
 * at most {@link #KEPT} points each. A point is kept only for a sample the migrator has taken since the last one:
 * once it stops sampling (the validation is over), a chart ends there instead of repeating its last figures every
 * second for as long as the migration waits to be finalized (a COMPLETED campaign of 2,000 members held 56 KiB of
 * such copies each after 20 minutes). Other replicas answer with the points they have (none but the leader's): the
 * charts are the leader's, as the metrics are.
 */
final class Series {
  /** 20 minutes of samples at one a second: about 60 bytes a point. */
  static final int KEPT = 1200;

  /** One sample: seconds since the epoch, lag bytes and seconds, WAL generated and replayed per second. */
  record Point(double at, long lagBytes, double delaySeconds, double walPerSecond, double replayPerSecond) {}

  /** Where the samples come from: the migrations this replica runs, and each one's latest figures. */
  interface Source {
    /** The migrations this replica runs now; empty when it runs none. */
    List<Migration> running();

    /** The migration's latest sample; a new object for each sample the migrator takes. */
    Optional<Migrator.Figures> figures(String id);

    static Source of(Migrations migrations) {
      return new Source() {
        @Override
        public List<Migration> running() {
          Migrator running = migrations.current();
          if (running == null) {
            return List.of();
          }
          try {
            return running.list();
          } catch (RuntimeException e) {
            return List.of();
          }
        }

        @Override
        public Optional<Migrator.Figures> figures(String id) {
          Migrator running = migrations.current();
          return running == null ? Optional.empty() : running.figures(id);
        }
      };
    }
  }

  /** By migration id; each deque is guarded by itself. Entries of settled migrations are dropped after a while. */
  private final Map<String, Deque<Point>> points = new ConcurrentHashMap<>();
  /** The figures each migration's last point was made of: the same object again is no new sample. */
  private final Map<String, Migrator.Figures> sampled = new ConcurrentHashMap<>();
  private final Map<String, Long> lastSeen = new ConcurrentHashMap<>();
  private final Source source;
  private final Clock clock;

  Series(Source source, Clock clock) {
    this.source = source;
    this.clock = clock;
  }

  /** Takes the new sample of each migration this replica runs, if it has one (called once a second). */
  void sample() {
    long now = clock.millis();
    for (Migration m : source.running()) {
      if (m.phase().isTerminal()) {
        continue;
      }
      source.figures(m.id()).ifPresent(f -> {
        lastSeen.put(m.id(), now); // its chart is kept while it runs, and an hour after it settles
        if (sampled.put(m.id(), f) == f) {
          return; // the migrator has not sampled since: nothing new to chart
        }
        Deque<Point> d = points.computeIfAbsent(m.id(), id -> new ArrayDeque<>());
        synchronized (d) {
          Point last = d.peekLast();
          Point p = new Point(now / 1000.0, f.lagBytes(), f.replayDelaySeconds(), f.walBytesPerSecond(),
              f.replayBytesPerSecond());
          if (last == null || last.at() < p.at()) {
            d.addLast(p);
          }
          while (d.size() > KEPT) {
            d.removeFirst();
          }
        }
      });
    }
    // A migration that settled an hour ago no longer needs its chart in memory.
    lastSeen.entrySet().removeIf(e -> {
      boolean old = now - e.getValue() > 3_600_000L;
      if (old) {
        points.remove(e.getKey());
        sampled.remove(e.getKey());
      }
      return old;
    });
  }

  List<Point> of(String migration) {
    Deque<Point> d = points.get(migration);
    if (d == null) {
      return List.of();
    }
    synchronized (d) {
      return new ArrayList<>(d);
    }
  }
}
