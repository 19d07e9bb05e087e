package dev.turnout.controlplane.migration;

import com.google.common.collect.ImmutableList;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.MigrationStore;
import dev.turnout.migrator.Migrator;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The migrations as this control-plane replica sees them. The leader runs them (a {@link Migrator} of its own for
 * each term, resuming every unfinished migration from the store); any other replica reads them from the store
 * and refuses commands ({@link MigrationConflictException.Kind#UNAVAILABLE}), naming the leader. With one replica
 * it always leads. Failures are the migrator's exceptions; the admin API maps them to status codes.
 */
public final class Migrations {
  private final MigrationStore store;
  private final Supplier<Migrator> newMigrator;
  private final Supplier<String> leader;
  private final String replica;
  private final List<Consumer<Migration>> listeners = new CopyOnWriteArrayList<>();
  private final List<Term> terms = new CopyOnWriteArrayList<>();
  private volatile Migrator current;

  /** What else the leader runs on its migrator (campaigns): started before it resumes, ended when it stops leading. */
  public interface Term {
    /** The new term's migrator, before it resumes the migrations from the store (install gates here). */
    void starting(Migrator migrator) throws MigrationException;

    /** The term's migrator has resumed every migration from the store. */
    default void resumed(Migrator migrator) {}

    void ended();
  }

  public void addTerm(Term term) {
    terms.add(term);
  }

  /**
   * @param newMigrator a new migrator on {@code store} for a leadership term
   * @param leader who leads now, for the refusal's message
   */
  public Migrations(MigrationStore store, Supplier<Migrator> newMigrator, String replica, Supplier<String> leader) {
    this.store = store;
    this.newMigrator = newMigrator;
    this.replica = replica;
    this.leader = leader;
  }

  /** Becomes the leader: a new migrator resumes every unfinished migration from the store. */
  public synchronized void lead() throws MigrationException {
    if (current != null) {
      return;
    }
    Migrator m = newMigrator.get();
    m.addListener(this::changed);
    try {
      for (Term t : terms) {
        t.starting(m);
      }
      m.resumeAll();
    } catch (MigrationException | RuntimeException e) {
      terms.forEach(Term::ended);
      m.stop(); // its runners' pool with it
      throw e;
    }
    current = m;
    for (Term t : terms) {
      t.resumed(m);
    }
  }

  /** Stops leading: running migrations stop where they are, for the next leader to resume from the store. */
  public synchronized void follow() {
    Migrator m = current;
    current = null;
    if (m != null) {
      terms.forEach(Term::ended);
      m.stop();
    }
  }

  public boolean leading() {
    return current != null;
  }

  /** The migrator of this term, or null when this replica does not lead. */
  public Migrator current() {
    return current;
  }

  private void changed(Migration m) {
    listeners.forEach(l -> l.accept(m));
  }

  /** The migrator of this term; UNAVAILABLE, naming the leader, when this replica does not lead. */
  public Migrator leader() throws MigrationConflictException {
    Migrator m = current;
    if (m == null) {
      throw new MigrationConflictException(MigrationConflictException.Kind.UNAVAILABLE, "control-plane replica "
          + replica + " does not run migrations now; the leader is " + leader.get() + ": send the command to its"
          + " admin API");
    }
    return m;
  }

  public dev.turnout.migrator.ServerAddress defaultTarget(String database, Optional<Migration.Aurora> aurora)
      throws MigrationException {
    return leader().defaultTarget(database, aurora);
  }

  public ImmutableList<String> dryRun(Migration.Spec spec) throws MigrationException {
    return leader().dryRun(spec);
  }

  public Migration start(Migration.Spec spec) throws MigrationException {
    return leader().start(spec);
  }

  public Migration start(Migration.Spec spec, Migrator.Precondition stillTrue) throws MigrationException {
    return leader().start(spec, stillTrue);
  }

  public Migration rollback(String id, boolean consent) throws MigrationException {
    return leader().rollback(id, consent);
  }

  public Migration resume(String id) throws MigrationException {
    return leader().resume(id);
  }

  public Migration finalizeMigration(String id) throws MigrationException, InterruptedException {
    return leader().finalizeMigration(id);
  }

  /**
   * Runs an operator's change of {@code database} (a route by hand) on the leader, outside any migration of it:
   * refused while one is unfinished, and no migration of it starts meanwhile (see {@link Migrator#outsideMigrations}).
   */
  public <T> T outsideMigrations(String database, Migrator.Outside<T> action) throws Exception {
    return leader().outsideMigrations(database, action);
  }

  /** The leader's view; elsewhere the store's (failing when the store cannot be read now). */
  public Optional<Migration> get(String id) throws MigrationException {
    Migrator m = current;
    if (m != null) {
      return m.get(id);
    }
    return stored().stream().filter(s -> s.id().equals(id)).findFirst();
  }

  public ImmutableList<Migration> list() throws MigrationException {
    Migrator m = current;
    if (m != null) {
      return m.list();
    }
    return stored().stream().sorted(Comparator.comparing(s -> s.history().get(0).at()))
        .collect(ImmutableList.toImmutableList());
  }

  private List<Migration> stored() throws MigrationException {
    try {
      return store.loadAll();
    } catch (MigrationException e) {
      throw new MigrationException("cannot read the migrations from the store: " + e.getMessage(), e);
    }
  }

  public Optional<Migrator.Figures> figures(String id) {
    Migrator m = current;
    return m == null ? Optional.empty() : m.figures(id);
  }

  /** The reverse path of a promoted migration, read now (at most once a second), when it has one. */
  public Optional<dev.turnout.migrator.Platform.ReverseHealth> reverseHealth(String id) {
    Migrator m = current;
    return m == null ? Optional.empty() : m.reverseHealth(id);
  }

  public Optional<Migrator.BakeFigures> bakeFigures(String id) {
    Migrator m = current;
    return m == null ? Optional.empty() : m.bakeFigures(id);
  }

  /** Called with every state the leader saves, when this replica leads. */
  public void addListener(Consumer<Migration> listener) {
    listeners.add(listener);
  }

  public void removeListener(Consumer<Migration> listener) {
    listeners.remove(listener);
  }
}
