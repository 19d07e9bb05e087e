package dev.turnout.migrator;

import com.google.common.util.concurrent.MoreExecutors;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * A migrator on scripted servers, a scripted router, a store in memory and a fake clock, with a direct executor:
 * a migration's runner runs on the thread that starts (or rolls back, or resumes) it, to where it stops
 * (completed, halted, rolled back), its waits passing in fake time. What a test schedules on the clock runs on
 * that thread when the migration's waits reach it.
 */
final class Harness {
  static final Instant T0 = Instant.parse("2026-11-27T10:00:00Z");
  static final ServerAddress SOURCE = new ServerAddress("10.0.0.5", 5432);
  static final ServerAddress TARGET = new ServerAddress("10.0.0.6", 5432);
  static final Duration WINDOW = Duration.ofSeconds(5);
  static final Duration DEADLINE = Duration.ofSeconds(60);

  final FakeClock clock = new FakeClock(T0);
  final Journal journal = new Journal();
  final ScriptedPlatform servers = new ScriptedPlatform(journal, clock);
  final ScriptedRouter router = new ScriptedRouter(journal);
  final InMemoryMigrationStore store = new InMemoryMigrationStore();
  /** Where the migrator stops a migration's thread; swap it before the step it is for. */
  volatile Migrator.Failpoint failpoint = Migrator.Failpoint.NONE;
  Migrator migrator = newMigrator();

  private Migrator newMigrator() {
    return new Migrator(store, router, servers, clock, clock.sleeper(), MoreExecutors.newDirectExecutorService(),
        (next, point) -> failpoint.reached(next, point));
  }

  /**
   * A second process on the same store and servers (a replica that took over while this one still runs): it
   * loads what the store holds and resumes it; this harness's migrator keeps its own view.
   */
  Migrator anotherProcess() throws MigrationException {
    Migrator other = newMigrator();
    other.resumeAll();
    return other;
  }

  /** The process restarts: a new migrator on the same store and servers resumes what the store holds. */
  Migrator restart() throws MigrationException {
    migrator = newMigrator();
    migrator.resumeAll();
    return migrator;
  }

  static Migration.Options options() {
    return new Migration.Options(WINDOW, 16L * 1024 * 1024, DEADLINE, false);
  }

  static Migration.Spec spec(Migration.Options options) {
    return new Migration.Spec("app", SOURCE, TARGET, options);
  }

  static Migration.Spec spec() {
    return spec(options());
  }

  /** Starts a migration and returns it where its runner stopped. */
  Migration run(Migration.Spec spec) throws MigrationException {
    return now(migrator.start(spec).id());
  }

  Migration run() throws MigrationException {
    return run(spec());
  }

  /** The migrator's latest saved state of {@code id}. */
  Migration now(String id) {
    return migrator.get(id).orElseThrow();
  }

  /** The one migration the migrator holds (for a task scheduled before its id was known). */
  String onlyId() {
    return migrator.list().get(0).id();
  }

  /** The phases a migration went through, each once, in order. */
  static List<Phase> phases(Migration m) {
    List<Phase> out = new ArrayList<>();
    for (Migration.Event e : m.history()) {
      if (out.isEmpty() || out.get(out.size() - 1) != e.phase()) {
        out.add(e.phase());
      }
    }
    return out;
  }

  static String history(Migration m) {
    StringBuilder b = new StringBuilder("history of ").append(m).append(":\n");
    m.history().forEach(e -> b.append("  ").append(e.phase()).append(": ").append(e.note()).append('\n'));
    m.progress().error().ifPresent(e -> b.append("  error: ").append(e).append('\n'));
    return b.toString();
  }
}
