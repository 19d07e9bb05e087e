package dev.turnout.controlplane.store;

import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.MigrationStore;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.RevisionConflictException;
import java.io.IOException;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

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

  /**
   * A compare-and-set on the row's revision (rows from before revisions were kept are at 0), in the transaction
   * that checks the leadership: of two writers that read the same revision, one saves and the other is refused.
   */
  @Override
  public Migration save(Migration migration) throws MigrationException {
    Migration saved = migration.atRevision(migration.revision() + 1);
    try {
      db.inTransaction("save migration " + migration.id(), c -> {
        db.requireLeadership(c);
        String body;
        try {
          body = FileMigrationStore.JSON.writeValueAsString(saved);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
          throw new IllegalStateException(e);
        }
        // The first save inserts; every later one updates the revision it read, and only that one.
        try (PreparedStatement ps = c.prepareStatement(migration.revision() == 0
            ? "insert into turnout.migrations (phase, epoch, body, revision, id, database) values (?, ?, ?::jsonb, ?, ?, ?)"
                + " on conflict (id) do update set phase = excluded.phase, epoch = excluded.epoch, body = excluded.body,"
                + " revision = excluded.revision, updated_at = now() where turnout.migrations.revision = 0"
            : "update turnout.migrations set phase = ?, epoch = ?, body = ?::jsonb, revision = ?, updated_at = now()"
                + " where id = ? and revision = ?")) {
          ps.setString(1, saved.phase().name());
          ps.setLong(2, db.epoch());
          ps.setString(3, body);
          ps.setLong(4, saved.revision());
          ps.setString(5, saved.id());
          if (migration.revision() == 0) {
            ps.setString(6, saved.database());
          } else {
            ps.setLong(6, migration.revision());
          }
          if (ps.executeUpdate() == 1) {
            return null;
          }
        }
        try (PreparedStatement ps = c.prepareStatement("select revision, phase from turnout.migrations where id = ?")) {
          ps.setString(1, migration.id());
          try (ResultSet rs = ps.executeQuery()) {
            throw rs.next() ? new Conflict(rs.getLong(1), Optional.of(Phase.valueOf(rs.getString(2))))
                : new Conflict(0, Optional.empty());
          }
        }
      });
    } catch (Conflict e) {
      throw new RevisionConflictException(migration, e.held, e.phase);
    } catch (StoreConnection.NotLeaderException e) {
      throw new MigrationStore.StaleWriterException("cannot save " + migration + ": " + e.getMessage());
    } catch (StoreException e) {
      throw new MigrationException("cannot save " + migration + ": " + e.getMessage(), e);
    }
    return saved;
  }

  /** Inside {@link #save}: the row holds another revision; rolls the transaction back like any failure. */
  private static final class Conflict extends StoreException {
    private static final long serialVersionUID = 1L;
    final long held;
    final transient Optional<Phase> phase;

    Conflict(long held, Optional<Phase> phase) {
      super("revision conflict");
      this.held = held;
      this.phase = phase;
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
             ResultSet rs = s.executeQuery("select body::text, revision from turnout.migrations order by id")) {
          while (rs.next()) {
            result.add(FileMigrationStore.JSON.readValue(rs.getString(1), Migration.class).atRevision(rs.getLong(2)));
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
