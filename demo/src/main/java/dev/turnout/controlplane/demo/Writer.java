package dev.turnout.controlplane.demo;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.Set;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An application writing through the sidecar as fast as it can, one autocommit insert at a time, reconnecting
 * and retrying on any error. It remembers every insert the server acknowledged, and the longest time between
 * two acknowledged commits: the write-unavailability window a user would see.
 */
public final class Writer implements Runnable, AutoCloseable {
  private final String url;
  private final Thread thread;
  private final Set<Long> acknowledged = new ConcurrentSkipListSet<>();
  private final AtomicLong errors = new AtomicLong();
  private volatile boolean stop;
  private volatile long longestGapNanos;

  /** Writes to {@code writes(seq)} in database postgres through loopback {@code port}, as {@code user}. */
  public Writer(int port, String user) {
    this(port, user, "postgres");
  }

  /** Writes to {@code writes(seq)} in {@code database} through loopback {@code port}, as {@code user}. */
  public Writer(int port, String user, String database) {
    this.url = "jdbc:postgresql://127.0.0.1:" + port + "/" + database + "?user=" + user
        + "&sslmode=disable&connectTimeout=30&socketTimeout=60";
    this.thread = new Thread(this, "writer-" + database);
  }

  public Writer start() {
    thread.start();
    return this;
  }

  @Override
  public void run() {
    Connection c = null;
    long seq = 0;
    long lastCommit = System.nanoTime();
    while (!stop) {
      seq++;
      try {
        if (c == null) {
          c = DriverManager.getConnection(url);
        }
        try (PreparedStatement ps = c.prepareStatement("insert into writes(seq) values (?)")) {
          ps.setLong(1, seq);
          ps.executeUpdate();
        }
        acknowledged.add(seq);
        long now = System.nanoTime();
        longestGapNanos = Math.max(longestGapNanos, now - lastCommit);
        lastCommit = now;
      } catch (SQLException e) {
        errors.incrementAndGet();
        if (c != null) {
          try {
            c.close();
          } catch (SQLException ignored) {
            // reconnecting anyway
          }
          c = null;
        }
        try {
          Thread.sleep(10); // a client's retry pause, not the product's timing
        } catch (InterruptedException ie) {
          return;
        }
      }
    }
    if (c != null) {
      try {
        c.close();
      } catch (SQLException ignored) {
        // done
      }
    }
  }

  /** Every {@code seq} present in {@code writes} on the server behind {@code connection}: what it holds. */
  public static Set<Long> seqsOn(Connection connection) throws SQLException {
    Set<Long> result = new java.util.HashSet<>();
    try (java.sql.Statement s = connection.createStatement();
         java.sql.ResultSet rs = s.executeQuery("select seq from writes")) {
      while (rs.next()) {
        result.add(rs.getLong(1));
      }
    }
    return result;
  }

  public Set<Long> acknowledged() {
    return acknowledged;
  }

  public long errors() {
    return errors.get();
  }

  public double longestGapMillis() {
    return longestGapNanos / 1e6;
  }

  /** Forgets the gaps so far: the window is measured from here. */
  public void resetGap() {
    longestGapNanos = 0;
  }

  @Override
  public void close() throws InterruptedException {
    stop = true;
    thread.join(30_000);
  }
}
