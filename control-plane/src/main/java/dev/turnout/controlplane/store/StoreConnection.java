package dev.turnout.controlplane.store;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.turnout.controlplane.config.TurnoutConfig;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

/**
 * The one connection through which this replica reads and writes the shared store, one transaction at a time,
 * and the leadership epoch its migration writes are checked against. The routes, the migrations, the audit log
 * and the replicas' reports are each a class of their own on it ({@link PostgresStore} opens them together).
 */
final class StoreConnection implements AutoCloseable {
  private final TurnoutConfig.SharedStore settings;
  /** One transaction at a time on the one connection: a transaction is the unit the store's callers reason in. */
  private final Object lock = new Object();
  @GuardedBy("lock")
  private Connection connection;
  private volatile boolean closed;
  /** This replica's leadership epoch; 0 while it is not the leader. Set by {@link Leadership}. */
  private volatile long epoch;

  StoreConnection(TurnoutConfig.SharedStore settings, Connection connection) {
    this.settings = settings;
    this.connection = connection;
  }

  static Connection connect(TurnoutConfig.SharedStore settings) throws SQLException {
    Properties p = new Properties();
    p.setProperty("user", settings.user());
    String password = settings.password();
    if (password != null) {
      p.setProperty("password", password);
    }
    p.setProperty("ApplicationName", "turnout " + settings.replicaId());
    p.setProperty("connectTimeout", "5");
    p.setProperty("socketTimeout", "30");
    p.setProperty("tcpKeepAlive", "true");
    return DriverManager.getConnection(settings.url(), p);
  }

  TurnoutConfig.SharedStore settings() {
    return settings;
  }

  String replicaId() {
    return settings.replicaId();
  }

  boolean closed() {
    return closed;
  }

  /** Set by {@link Leadership}: the epoch this replica leads under, or 0 when it does not lead. */
  void leadingAt(long newEpoch) {
    epoch = newEpoch;
  }

  /** The epoch this replica leads under, or 0; a migration row records the epoch that wrote it. */
  long epoch() {
    return epoch;
  }

  /** Runs {@code work} in one transaction on the store's connection, reconnecting once if it was lost. */
  <T> T inTransaction(String what, SqlWork<T> work) throws StoreException {
    synchronized (lock) {
      if (closed) {
        throw new StoreException("the store is closed");
      }
      try {
        if (connection == null || !connection.isValid(2)) {
          closeQuietly(connection);
          connection = connect(settings);
        }
        connection.setAutoCommit(false);
        try {
          T result = work.run(connection);
          connection.commit();
          return result;
        } catch (SQLException | StoreException | RuntimeException e) {
          try {
            connection.rollback();
          } catch (SQLException ignored) {
            // the connection is gone: the transaction with it
          }
          throw e;
        } finally {
          try {
            connection.setAutoCommit(true);
          } catch (SQLException ignored) {
            // replaced at the next call
          }
        }
      } catch (SQLException e) {
        throw new StoreException("cannot " + what + " in the store " + settings.url() + ": " + e.getMessage()
            + "; nothing was changed", e);
      }
    }
  }

  @FunctionalInterface
  interface SqlWork<T> {
    T run(Connection c) throws SQLException, StoreException;
  }

  /** Inside a writing transaction: refuses unless the leader row still carries this replica's epoch. */
  void requireLeadership(Connection c) throws SQLException, NotLeaderException {
    long mine = epoch;
    try (Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select epoch, coalesce(holder, '(none)') from turnout.leader where id = 1 for share")) {
      rs.next();
      long current = rs.getLong(1);
      if (mine == 0 || current != mine) {
        throw new NotLeaderException("replica " + settings.replicaId() + " is not the migration leader"
            + (mine == 0 ? "" : " any more (it led at epoch " + mine + ")") + "; the leader is " + rs.getString(2)
            + " at epoch " + current);
      }
    }
  }

  /** This replica does not hold the migration leadership: the write was refused and changed nothing. */
  static final class NotLeaderException extends StoreException {
    private static final long serialVersionUID = 1L;

    NotLeaderException(String message) {
      super(message);
    }
  }

  static void closeQuietly(AutoCloseable c) {
    if (c == null) {
      return;
    }
    try {
      c.close();
    } catch (Exception ignored) {
      // closing on an error path
    }
  }

  @Override
  public void close() {
    closed = true;
    synchronized (lock) {
      closeQuietly(connection);
      connection = null;
    }
  }
}
