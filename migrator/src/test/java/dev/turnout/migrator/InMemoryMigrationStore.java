package dev.turnout.migrator;

import com.google.common.collect.ImmutableList;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The journal in memory, shared by every migrator a test starts on it (a restart is a new migrator on the same
 * store). It can stop accepting writes as a store does once another process leads ({@link #loseLeadership}),
 * and can crash the process at any save, before or after the write is durable. Saves are compare-and-set on the
 * revision, as in the real stores.
 */
final class InMemoryMigrationStore implements MigrationStore {
  /** The process dying at a save: nothing after it runs, nothing catches it. */
  static final class Crash extends Error {
    private static final long serialVersionUID = 1L;

    Crash(String message) {
      super(message);
    }
  }

  /** Called with each migration about to be saved, on the saving thread (tests pause writers here). */
  interface BeforeSave {
    void saving(Migration m) throws InterruptedException;
  }

  // Guarded by this.
  private final Map<String, Migration> saved = new LinkedHashMap<>();
  private final List<Migration> writes = new ArrayList<>();
  private boolean stale;
  private int crashAt;
  private boolean crashAfterWrite;
  private volatile BeforeSave beforeSave = m -> { };

  /** From now on this process is no longer the one that runs migrations. */
  synchronized void loseLeadership() {
    stale = true;
  }

  /** The {@code n}th save from now (1 for the next) crashes the process, before or after it is written. */
  synchronized void crashAtSave(int n, boolean afterWrite) {
    crashAt = writes.size() + n;
    crashAfterWrite = afterWrite;
  }

  void beforeSave(BeforeSave hook) {
    beforeSave = hook;
  }

  /** Every write this store accepted, in order. */
  synchronized ImmutableList<Migration> writes() {
    return ImmutableList.copyOf(writes);
  }

  /** The phases {@code id} was saved in, one per write. */
  synchronized ImmutableList<Phase> phasesSaved(String id) {
    return writes.stream().filter(m -> m.id().equals(id)).map(Migration::phase).collect(ImmutableList.toImmutableList());
  }

  synchronized Migration stored(String id) {
    return saved.get(id);
  }

  /** Another process's write, as it would land in a store this one shares: a compare-and-set like any save. */
  synchronized Migration writeAsAnotherProcess(Migration migration) throws MigrationException {
    return compareAndSet(migration);
  }

  @Override
  public Migration save(Migration migration) throws MigrationException {
    try {
      beforeSave.saving(migration);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new MigrationException("interrupted");
    }
    synchronized (this) {
      confirmWriter();
      boolean crash = crashAt == writes.size() + 1;
      if (crash && !crashAfterWrite) {
        crashAt = 0;
        throw new Crash("crashed before saving " + migration.phase());
      }
      Migration stored = compareAndSet(migration);
      if (crash) {
        crashAt = 0;
        throw new Crash("crashed after saving " + migration.phase());
      }
      return stored;
    }
  }

  private Migration compareAndSet(Migration migration) throws RevisionConflictException {
    Migration before = saved.get(migration.id());
    long held = before == null ? 0 : before.revision();
    if (held != migration.revision()) {
      throw new RevisionConflictException(migration, held, java.util.Optional.of(before.phase()));
    }
    Migration stored = migration.atRevision(held + 1);
    saved.put(stored.id(), stored);
    writes.add(stored);
    return stored;
  }

  @Override
  public synchronized List<Migration> loadAll() {
    return new ArrayList<>(saved.values());
  }

  @Override
  public synchronized void confirmWriter() throws MigrationException {
    if (stale) {
      throw new StaleWriterException("another control plane runs migrations now");
    }
  }
}
