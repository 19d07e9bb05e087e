package dev.turnout.controlplane.store;

import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.MigrationStore;
import java.io.IOException;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * The migrations in the shared store, one row of {@code turnout.migrations} each, with the epoch that wrote it.
 * A migration is written only while the leader row still carries this replica's epoch, checked under a share lock
 * on that row in the writing transaction: once another replica has taken the leadership (raising the epoch), a
 * write by the old leader changes nothing and fails with {@link MigrationStore.StaleWriterException}.
 */
public final class PostgresMigrationStore implements MigrationStore {
  private final StoreConnection db;

  PostgresMigrationStore(StoreConnection db) {
    this.db = db;
  }

  @Override
  public void save(Migration migration) throws MigrationException {
    try {
      db.inTransaction("save migration " + migration.id(), c -> {
        db.requireLeadership(c);
        try (PreparedStatement ps = c.prepareStatement("insert into turnout.migrations (id, database, phase, epoch,"
            + " body) values (?, ?, ?, ?, ?::jsonb) on conflict (id) do update set phase = excluded.phase,"
            + " epoch = excluded.epoch, body = excluded.body, updated_at = now()")) {
          ps.setString(1, migration.id());
          ps.setString(2, migration.database());
          ps.setString(3, migration.phase().name());
          ps.setLong(4, db.epoch());
          ps.setString(5, FileMigrationStore.JSON.writeValueAsString(migration));
          ps.executeUpdate();
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
          throw new IllegalStateException(e);
        }
        return null;
      });
    } catch (StoreConnection.NotLeaderException e) {
      throw new MigrationStore.StaleWriterException("cannot save " + migration + ": " + e.getMessage());
    } catch (StoreException e) {
      throw new MigrationException("cannot save " + migration + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void confirmWriter() throws MigrationException {
    try {
      db.inTransaction("check the leadership", c -> {
        db.requireLeadership(c);
        return null;
      });
    } catch (StoreConnection.NotLeaderException e) {
      throw new MigrationStore.StaleWriterException(e.getMessage());
    } catch (StoreException e) {
      throw new MigrationException(e.getMessage(), e);
    }
  }

  @Override
  public List<Migration> loadAll() throws MigrationException {
    try {
      return db.inTransaction("read the migrations", c -> {
        List<Migration> result = new ArrayList<>();
        try (Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("select body::text from turnout.migrations order by id")) {
          while (rs.next()) {
            result.add(FileMigrationStore.JSON.readValue(rs.getString(1), Migration.class));
          }
        } catch (IOException e) {
          throw new StoreException("a migration in the store is not readable: " + e.getMessage(), e);
        }
        return result;
      });
    } catch (StoreException e) {
      throw new MigrationException(e.getMessage(), e);
    }
  }
}
