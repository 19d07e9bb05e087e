package dev.turnout.controlplane.store;

import com.google.common.util.concurrent.ThreadFactoryBuilder;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which replica runs migrations. On a connection of its own, every lease/5 each replica records that it is alive;
 * the one that holds the PostgreSQL advisory lock is the leader and renews the leader row. Taking the lock raises
 * the epoch in that row, and every migration write checks it ({@link PostgresMigrationStore}), so a replica that
 * lost the leadership cannot write a step even before it notices.
 *
 * <p>A leader whose process died loses the lock with its connection. A leader that is alive but silent (paused,
 * partitioned) keeps its connection, so once its row is a lease old the next candidate ends that session
 * ({@code pg_terminate_backend}) and takes the lock. A leader that finds it has not renewed within a lease (it
 * was paused) steps down at once, before the store tells it so.
 */
public final class Leadership implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Leadership.class);
  static final long LEADER_LOCK = 0x7475726e6c656164L; // "turnlead"

  /** How long a replica that stopped heartbeating is listed (as gone) before the leader forgets it. */
  public static final java.time.Duration FORGET_AFTER = java.time.Duration.ofHours(1);

  /** Told when this replica becomes the leader and when it stops being it; called on the leadership thread. */
  public interface Listener {
    /** Throws to decline: the leadership is given up at once. */
    void elected(long epoch);

    void deposed(String why);
  }

  private final PostgresStore store;
  private final java.util.function.Supplier<String> adminAddress;
  private final Listener listener;
  private final ScheduledExecutorService thread;
  private Connection connection;
  private long epoch;
  private long renewedAt;
  private volatile String leaderDescription = "unknown";

  public Leadership(PostgresStore store, java.util.function.Supplier<String> adminAddress, Listener listener) {
    this.store = store;
    this.adminAddress = adminAddress;
    this.listener = listener;
    this.thread = Executors.newSingleThreadScheduledExecutor(
        new ThreadFactoryBuilder().setNameFormat("turnout-leadership").setDaemon(true).build());
  }

  /** Records this replica as alive at once (so route changes count it from now on), then campaigns. */
  public void start() {
    tick();
    long every = Math.max(100, store.settings().lease().toMillis() / 5);
    thread.scheduleWithFixedDelay(this::tick, every, every, TimeUnit.MILLISECONDS);
  }

  /** Who leads, as last seen: {@code replica (admin host:port) at epoch N}. */
  public String leader() {
    return leaderDescription;
  }

  private void tick() {
    long leaseNanos = store.settings().lease().toNanos();
    if (epoch != 0 && System.nanoTime() - renewedAt > leaseNanos) {
      stepDown("it did not renew the leadership within " + store.settings().lease().toMillis() + " ms (paused?)");
    }
    try {
      if (connection == null || connection.isClosed()) {
        connection = StoreConnection.connect(store.settings());
      }
      heartbeat();
      if (epoch != 0) {
        renew();
        if (epoch != 0) {
          forgetGoneReplicas();
        }
      } else {
        campaign();
      }
    } catch (SQLException | RuntimeException e) {
      if (epoch != 0) {
        stepDown("lost its connection to the store: " + e.getMessage());
      } else {
        log.warn("leadership: cannot reach the store: {}", e.getMessage());
      }
      StoreConnection.closeQuietly(connection);
      connection = null;
    }
  }

  private void heartbeat() throws SQLException {
    try (PreparedStatement ps = connection.prepareStatement("insert into turnout.replicas (id, admin_address,"
        + " started_at, heartbeat_at) values (?, ?, now(), now()) on conflict (id) do update set"
        + " admin_address = excluded.admin_address, heartbeat_at = now()")) {
      ps.setString(1, store.replicaId());
      ps.setString(2, adminAddress.get());
      ps.executeUpdate();
    }
  }

  /**
   * Deletes the replicas not heard of for {@link #FORGET_AFTER}, with their reports and sidecars: replica ids
   * change with deployments (a pod's name, say), and operators should not see every replica that ever ran.
   */
  private void forgetGoneReplicas() throws SQLException {
    try (PreparedStatement ps = connection.prepareStatement("with gone as (delete from turnout.replicas"
        + " where heartbeat_at < now() - make_interval(secs => ?) returning id, heartbeat_at),"
        + " reports as (delete from turnout.acks a using gone where a.replica = gone.id),"
        + " sidecars as (delete from turnout.nodes n using gone where n.replica = gone.id)"
        + " select id, heartbeat_at from gone")) {
      ps.setLong(1, FORGET_AFTER.toSeconds());
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          log.info("forgot replica {}: not heard of since {}", rs.getString(1), rs.getTimestamp(2).toInstant());
        }
      }
    }
  }

  private void renew() throws SQLException {
    try (PreparedStatement ps = connection.prepareStatement(
        "update turnout.leader set renewed_at = now() where id = 1 and epoch = ? and holder = ?")) {
      ps.setLong(1, epoch);
      ps.setString(2, store.replicaId());
      if (ps.executeUpdate() == 1) {
        renewedAt = System.nanoTime();
      } else {
        stepDown("another replica took the leadership over");
      }
    }
  }

  private void campaign() throws SQLException {
    boolean locked;
    try (Statement s = connection.createStatement();
         ResultSet rs = s.executeQuery("select pg_try_advisory_lock(" + LEADER_LOCK + ")")) {
      rs.next();
      locked = rs.getBoolean(1);
    }
    if (!locked) {
      observeOrEndSilentLeader();
      return;
    }
    long newEpoch;
    try (PreparedStatement ps = connection.prepareStatement("update turnout.leader set epoch = epoch + 1, holder = ?,"
        + " admin_address = ?, renewed_at = now() where id = 1 returning epoch")) {
      ps.setString(1, store.replicaId());
      ps.setString(2, adminAddress.get());
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        newEpoch = rs.getLong(1);
      }
    }
    epoch = newEpoch;
    renewedAt = System.nanoTime();
    store.leadingAt(newEpoch);
    leaderDescription = store.replicaId() + " (admin " + adminAddress.get() + ") at epoch " + newEpoch;
    log.info("replica {} is the migration leader at epoch {}", store.replicaId(), newEpoch);
    try {
      listener.elected(newEpoch);
    } catch (RuntimeException e) {
      stepDown("cannot take the migrations over: " + e.getMessage()); // another replica may do better
    }
  }

  /** Not the leader: notes who is, and ends the lock-holding session of a leader silent for a lease. */
  private void observeOrEndSilentLeader() throws SQLException {
    Optional<Integer> silentHolder = Optional.empty();
    try (PreparedStatement ps = connection.prepareStatement("select l.holder, l.admin_address, l.epoch,"
        + " l.renewed_at < now() - make_interval(secs => ?),"
        + " (select pid from pg_locks where locktype = 'advisory' and granted"
        + "    and objsubid = 1 and ((classid::bigint << 32) | objid::bigint) = ? limit 1)"
        + " from turnout.leader l where l.id = 1")) {
      ps.setDouble(1, store.settings().lease().toMillis() / 1000.0);
      ps.setLong(2, LEADER_LOCK);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        leaderDescription = rs.getString(1) + " (admin " + rs.getString(2) + ") at epoch " + rs.getLong(3);
        boolean silent = rs.getBoolean(4); // false too when it never led (null)
        int pid = rs.getInt(5);
        if (silent && !rs.wasNull()) {
          silentHolder = Optional.of(pid);
        }
      }
    }
    if (silentHolder.isPresent()) {
      log.warn("leader {} has not renewed for a lease: ending its store session (pid {}) to take over",
          leaderDescription, silentHolder.get());
      try (PreparedStatement ps = connection.prepareStatement("select pg_terminate_backend(?)")) {
        ps.setInt(1, silentHolder.get());
        ps.execute();
      }
    }
  }

  private void stepDown(String why) {
    long was = epoch;
    epoch = 0;
    store.leadingAt(0);
    StoreConnection.closeQuietly(connection); // releases the lock if the session still holds it
    connection = null;
    log.warn("replica {} is no longer the migration leader (epoch {}): {}", store.replicaId(), was, why);
    listener.deposed(why);
  }

  @Override
  public void close() {
    thread.shutdownNow();
    try {
      thread.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (epoch != 0) {
      epoch = 0;
      store.leadingAt(0);
    }
    StoreConnection.closeQuietly(connection);
    connection = null;
  }
}
