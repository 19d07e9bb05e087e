package dev.turnout.migrator;

import java.util.List;

/**
 * The durable journal of migrations: a migration is saved before the side effects of its new state. Every save is
 * a compare-and-set on the revision the change was read at, so a writer that read an older state (a second
 * command, a runner of a process that no longer leads) cannot overwrite a later one.
 */
public interface MigrationStore {
  /**
   * Durably saves {@code migration}, read at revision {@code r = migration.revision()}, as revision {@code r + 1},
   * if the store still holds revision {@code r} of it (a migration the store does not hold is at revision 0), and
   * returns it as saved. Saves nothing and throws {@link RevisionConflictException} when the store holds another
   * revision, {@link StaleWriterException} when this process no longer runs migrations.
   */
  Migration save(Migration migration) throws MigrationException;

  /** Every migration the store holds, each at the revision it holds (0 for a journal written before revisions). */
  List<Migration> loadAll() throws MigrationException;

  /**
   * Throws {@link StaleWriterException} unless this process still runs migrations (a store several processes
   * share has one leader at a time); checked before every step acts. A store one process owns always does.
   */
  default void confirmWriter() throws MigrationException {}

  /** The store refused a write: another process runs migrations now. This one must stop acting on them. */
  final class StaleWriterException extends MigrationException {
    private static final long serialVersionUID = 1L;

    public StaleWriterException(String message) {
      super(message);
    }
  }
}
