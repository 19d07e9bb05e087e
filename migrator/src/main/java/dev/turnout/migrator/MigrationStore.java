package dev.turnout.migrator;

import java.util.List;

/** The durable journal of migrations: a migration is saved before the side effects of its new state. */
public interface MigrationStore {
  /**
   * Durably saves {@code migration} (replacing its previous state) before returning. Throws
   * {@link StaleWriterException}, saving nothing, when this process no longer runs migrations.
   */
  void save(Migration migration) throws MigrationException;

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
