package dev.turnout.migrator;

import java.util.List;

/** The durable journal of migrations: a migration is saved before the side effects of its new state. */
public interface MigrationStore {
  /** Durably saves {@code migration} (replacing its previous state) before returning. */
  void save(Migration migration) throws MigrationException;

  List<Migration> loadAll() throws MigrationException;
}
