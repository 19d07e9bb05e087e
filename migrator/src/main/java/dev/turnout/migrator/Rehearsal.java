package dev.turnout.migrator;

import com.google.common.collect.ImmutableList;
import com.google.common.util.concurrent.MoreExecutors;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A dry run, Vitess's {@code switcherDryRun} way: the migration is run by a {@link Migrator} like any other, from
 * PLANNED to COMPLETED and then back through a rollback, on a platform opened for a dry run (it reads the servers
 * and APIs and lists each change instead of making it), on this router (it lists each route and has every ACK at
 * once), this store (in memory) and this clock (sleeping moves it, so every wait passes at once). The transcript is
 * the history the run would record, each line under its phase, with what the run does in between indented under
 * it. Nothing else runs the steps: the plan cannot disagree with the run.
 *
 * <p>One thread (the caller's) does everything here: the migrator runs on a direct executor.
 */
final class Rehearsal implements DryRun, MigrationStore, Router {
  /** The dry run's migration id, which its log lines carry. */
  static final String ID = "dry-run";

  private final Migration.Spec spec;
  private final Platform.Factory platforms;
  private final Moving clock;
  private final List<String> lines = new ArrayList<>();
  private String last;
  private int repeats;
  private Phase phase = Phase.PLANNED;
  private int written; // history events already in the transcript
  private MigrationException readFailure;

  Rehearsal(Migration.Spec spec, Platform.Factory platforms, Instant now) {
    this.spec = spec;
    this.platforms = platforms;
    this.clock = new Moving(now);
  }

  /**
   * The transcript. A run the servers would stop (a blocking preflight check, a target that does not keep up) is a
   * transcript too, ending where the run would roll back; a read that failed is thrown instead, with the error the
   * run would record.
   */
  ImmutableList<String> run() throws MigrationException {
    Platform opened = platforms.openDryRun(spec, this);
    try {
      // The migrator closes what it opens after each use; the dry platform keeps what it simulated until the end.
      Platform platform = (Platform) Proxy.newProxyInstance(Platform.class.getClassLoader(),
          new Class<?>[] {Platform.class}, (proxy, method, args) -> {
            if (method.getName().equals("close")) {
              return null;
            }
            try {
              return method.invoke(opened, args);
            } catch (InvocationTargetException e) {
              throw e.getCause();
            }
          });
      Migrator migrator = new Migrator(this, this, new Platform.Factory() {
        @Override
        public Platform open(Migration.Spec s) {
          return platform;
        }
      }, clock, this::sleep, MoreExecutors.newDirectExecutorService());
      migrator.ids = () -> ID;
      migrator.start(spec); // runs it to its end on this thread
      Migration m = migrator.get(ID).orElseThrow();
      if (m.phase() == Phase.COMPLETED) {
        flushRepeats();
        lines.add("COMPLETED: a rollback (an operator's, with consent now that the target is promoted) would:");
        migrator.rollback(ID, true);
        m = migrator.get(ID).orElseThrow();
      } else if (readFailure != null) {
        throw new MigrationException(m.progress().error().orElse(readFailure.getMessage()), readFailure);
      }
      flushRepeats();
      return ImmutableList.copyOf(lines);
    } finally {
      opened.close();
    }
  }

  private void sleep(Duration d) {
    clock.advance(d);
  }

  @Override
  public void record(String line) {
    add("  " + phase + ": " + line);
  }

  /** A line said again at once (a poll) is written once, with how many times. */
  private void add(String line) {
    if (line.equals(last)) {
      repeats++;
      return;
    }
    flushRepeats();
    lines.add(line);
    last = line;
  }

  private void flushRepeats() {
    if (repeats > 0) {
      lines.set(lines.size() - 1, last + " (" + (repeats + 1) + " times)");
      repeats = 0;
    }
    last = null;
  }

  @Override
  public void readFailed(MigrationException failure) {
    if (readFailure == null) {
      readFailure = failure;
    }
  }

  @Override
  public Clock clock() {
    return clock;
  }

  @Override
  public Sleeper sleeper() {
    return this::sleep;
  }

  /** Writes the history events saved since the last save; every save is the next revision. */
  @Override
  public Migration save(Migration migration) {
    ImmutableList<Migration.Event> history = migration.history();
    for (int i = written; i < history.size(); i++) {
      Migration.Event e = history.get(i);
      if (e.note().startsWith(CutoverSteps.PREFIX)) {
        continue; // a dry run's steps take no time
      }
      add(e.phase() + (e.note().isEmpty() ? "" : ": " + e.note()));
    }
    written = history.size();
    phase = migration.phase();
    return migration.atRevision(migration.revision() + 1);
  }

  @Override
  public List<Migration> loadAll() {
    return List.of();
  }

  @Override
  public CompletableFuture<Void> route(List<String> databases, ServerAddress endpoint) {
    record("route " + names(databases) + " to " + endpoint + (databases.size() > 1 ? " in one version" : "")
        + " and wait for every subscribed sidecar's ACK");
    return CompletableFuture.completedFuture(null);
  }

  @Override
  public CompletableFuture<Void> drain(List<String> databases) {
    record("drain route" + (databases.size() > 1 ? "s " : " ") + names(databases) + " (sidecars open no new"
        + " connection; the built-in sidecar holds them) and wait for every subscribed sidecar's ACK");
    return CompletableFuture.completedFuture(null);
  }

  @Override
  public com.google.common.collect.ImmutableSet<String> routedTo(ServerAddress server) {
    // The routes as planned: the run reads them again here, and refuses a database routed to the source since.
    record("read the routes again: no database but " + names(spec.databases()) + " may be routed to " + server);
    return server.equals(spec.source()) ? com.google.common.collect.ImmutableSet.copyOf(spec.databases())
        : com.google.common.collect.ImmutableSet.of();
  }

  private static String names(List<String> databases) {
    return databases.stream().map(d -> "'" + d + "'").collect(java.util.stream.Collectors.joining(", "));
  }

  /** A clock that only sleeping moves. */
  private static final class Moving extends Clock {
    private Instant now;

    Moving(Instant start) {
      this.now = start;
    }

    void advance(Duration d) {
      now = now.plus(d);
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }

    @Override
    public Instant instant() {
      return now;
    }
  }
}
