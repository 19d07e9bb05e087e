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
import java.util.concurrent.ConcurrentHashMap;

/**
 * The migrations' replication figures over time, for the console's charts: the migrator keeps only the latest
 * sample, so the console keeps one a second for each migration this replica runs while it has figures (the
 * validation window and after), at most {@link #KEPT} points each. Other replicas answer with the points they have
 * (none but the leader's): the charts are the leader's, as the metrics are.
 */
final class Series {
  /** 20 minutes a migration at one point a second: about 40 bytes a point. */
  static final int KEPT = 1200;

  /** One sample: seconds since the epoch, lag bytes and seconds, WAL generated and replayed per second. */
  record Point(double at, long lagBytes, double delaySeconds, double walPerSecond, double replayPerSecond) {}

  /** By migration id; each deque is guarded by itself. Entries of settled migrations are dropped after a while. */
  private final Map<String, Deque<Point>> points = new ConcurrentHashMap<>();
  private final Map<String, Long> lastSeen = new ConcurrentHashMap<>();
  private final Migrations migrations;
  private final Clock clock;

  Series(Migrations migrations, Clock clock) {
    this.migrations = migrations;
    this.clock = clock;
  }

  /** Takes one sample of each migration this replica runs that has figures (called once a second). */
  void sample() {
    Migrator running = migrations.current();
    if (running == null) {
      return;
    }
    long now = clock.millis();
    List<Migration> list;
    try {
      list = running.list();
    } catch (RuntimeException e) {
      return;
    }
    for (Migration m : list) {
      if (m.phase().isTerminal()) {
        continue;
      }
      running.figures(m.id()).ifPresent(f -> {
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
        lastSeen.put(m.id(), now);
      });
    }
    // A migration that settled an hour ago no longer needs its chart in memory.
    lastSeen.entrySet().removeIf(e -> {
      boolean old = now - e.getValue() > 3_600_000L;
      if (old) {
        points.remove(e.getKey());
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
