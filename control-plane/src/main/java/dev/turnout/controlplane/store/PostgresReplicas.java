package dev.turnout.controlplane.store;

import com.google.common.collect.ImmutableList;
import com.google.common.util.concurrent.ThreadFactoryBuilder;
import dev.turnout.controlplane.config.TurnoutConfig;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The replicas sharing the store and what each did with the route changes: every replica's latest ACK report per
 * database ({@code turnout.acks}) and its published sidecars ({@code turnout.nodes}); the live ones are those that
 * heartbeat within the lease ({@link Leadership} records the heartbeats).
 *
 * <p>On a connection of its own it listens for the store's notifications: a route change anywhere (so each replica
 * re-reads the table; also once per lease regardless, so a lost notification only delays) and a replica's report
 * (so a change waiting for the reports looks at once rather than at its next poll).
 */
public final class PostgresReplicas implements SharedRoutes, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PostgresReplicas.class);

  static final String ROUTES_CHANNEL = "turnout_routes";
  static final String ACKS_CHANNEL = "turnout_acks";
  /**
   * A replica {@code r} (a row of turnout.replicas) is live when it heartbeat within the lease, bound to the
   * statement's parameter in seconds: route changes wait for live replicas only, operators see the others as gone.
   */
  private static final String LIVE = "r.heartbeat_at > now() - make_interval(secs => ?)";

  private final StoreConnection db;
  private final TurnoutConfig.SharedStore settings;
  private final List<Runnable> listeners = new CopyOnWriteArrayList<>();
  /** Route changes waiting for the replicas' reports: each checks the reports when one arrives. */
  private final java.util.Set<Runnable> ackWaiters = java.util.concurrent.ConcurrentHashMap.newKeySet();
  private final ScheduledExecutorService poller;
  private final AtomicReference<Connection> listening = new AtomicReference<>();
  private final Thread listener;
  private volatile boolean closed;

  PostgresReplicas(StoreConnection db) {
    this.db = db;
    this.settings = db.settings();
    this.poller = Executors.newSingleThreadScheduledExecutor(
        new ThreadFactoryBuilder().setNameFormat("turnout-store-acks").setDaemon(true).build());
    this.listener = new Thread(this::listen, "turnout-store-listen");
    this.listener.setDaemon(true);
  }

  /** Starts listening for the store's notifications. */
  void start() {
    listener.start();
  }

  @Override
  public String replicaId() {
    return settings.replicaId();
  }

  @Override
  public void onChange(Runnable l) {
    listeners.add(l);
  }

  private void listen() {
    while (!closed) {
      try (Connection c = StoreConnection.connect(settings); Statement s = c.createStatement()) {
        listening.set(c);
        s.execute("listen " + ROUTES_CHANNEL);
        s.execute("listen " + ACKS_CHANNEL);
        changed(); // whatever happened while not listening
        PGConnection pg = c.unwrap(PGConnection.class);
        long reread = System.nanoTime() + settings.lease().toNanos();
        while (!closed) {
          PGNotification[] notes = pg.getNotifications(250);
          boolean routes = false;
          for (PGNotification note : notes == null ? new PGNotification[0] : notes) {
            if (note.getName().equals(ACKS_CHANNEL)) {
              try {
                ackWaiters.forEach(poller::execute); // a replica reported: look now rather than at the next poll
              } catch (java.util.concurrent.RejectedExecutionException closing) {
                return;
              }
            } else {
              routes = true;
            }
          }
          if (routes || System.nanoTime() >= reread) {
            changed();
            reread = System.nanoTime() + settings.lease().toNanos();
          }
        }
      } catch (SQLException e) {
        if (!closed) {
          log.warn("lost the store's change notifications ({}); reconnecting, meanwhile nothing new is learned",
              e.getMessage());
          sleepQuietly(Duration.ofSeconds(1));
        }
      } finally {
        listening.set(null);
      }
    }
  }

  private void changed() {
    for (Runnable l : listeners) {
      try {
        l.run();
      } catch (RuntimeException e) {
        log.warn("applying a change from the store failed: {}", e.getMessage(), e);
      }
    }
  }

  @Override
  public void report(String database, long version, ImmutableList<String> nodes, String failure) {
    try {
      db.inTransaction("report the ACKs of " + database, c -> {
        try (PreparedStatement ps = c.prepareStatement("insert into turnout.acks (replica, database, version, nodes,"
            + " failure) values (?, ?, ?, ?, ?) on conflict (replica, database) do update set version = excluded.version,"
            + " nodes = excluded.nodes, failure = excluded.failure, at = now() where turnout.acks.version <= excluded.version")) {
          ps.setString(1, settings.replicaId());
          ps.setString(2, database);
          ps.setLong(3, version);
          ps.setString(4, String.join(",", nodes));
          ps.setString(5, failure);
          ps.executeUpdate();
        }
        try (PreparedStatement ps = c.prepareStatement("select pg_notify('" + ACKS_CHANNEL + "', ?)")) {
          ps.setString(1, database);
          ps.execute();
        }
        return null;
      });
    } catch (StoreException e) {
      throw new IllegalStateException(e.getMessage(), e);
    }
  }

  @Override
  public ImmutableList<SharedRoutes.Report> reports() throws StoreException {
    return db.inTransaction("read the replicas' reports", c -> {
      ImmutableList.Builder<SharedRoutes.Report> result = ImmutableList.builder();
      try (PreparedStatement ps = c.prepareStatement("select a.replica,"
          + " coalesce(" + LIVE + ", false) as live, a.database, a.version,"
          + " a.nodes, a.failure from turnout.acks a left join turnout.replicas r on r.id = a.replica"
          + " order by live desc, a.replica, a.database")) {
        ps.setDouble(1, settings.lease().toMillis() / 1000.0);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            String nodes = rs.getString(5);
            result.add(new SharedRoutes.Report(rs.getString(1), rs.getBoolean(2), rs.getString(3), rs.getLong(4),
                nodes.isEmpty() ? ImmutableList.of() : ImmutableList.copyOf(nodes.split(",")), rs.getString(6)));
          }
        }
      }
      return result.build();
    });
  }

  @Override
  public void publishNodes(List<SharedRoutes.NodeRow> nodes) throws StoreException {
    db.inTransaction("publish this replica's sidecars", c -> {
      try (PreparedStatement ps = c.prepareStatement("delete from turnout.nodes where replica = ?")) {
        ps.setString(1, settings.replicaId());
        ps.executeUpdate();
      }
      try (PreparedStatement ps = c.prepareStatement("insert into turnout.nodes (replica, node, cluster, connected,"
          + " types) values (?, ?, ?, ?, ?::jsonb)")) {
        for (SharedRoutes.NodeRow n : nodes) {
          ps.setString(1, settings.replicaId());
          ps.setString(2, n.node());
          ps.setString(3, n.cluster());
          ps.setBoolean(4, n.connected());
          ps.setString(5, FileMigrationStore.JSON.writeValueAsString(n.types()));
          ps.addBatch();
        }
        ps.executeBatch();
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new IllegalStateException("cannot write the sidecars of " + settings.replicaId() + " as JSON", e);
      }
      return null;
    });
  }

  @Override
  public ImmutableList<SharedRoutes.NodeRow> nodes() throws StoreException {
    return db.inTransaction("read the replicas' sidecars", c -> {
      ImmutableList.Builder<SharedRoutes.NodeRow> result = ImmutableList.builder();
      try (PreparedStatement ps = c.prepareStatement("select n.replica,"
          + " coalesce(" + LIVE + ", false) as live, n.node, n.cluster,"
          + " n.connected, n.types::text from turnout.nodes n left join turnout.replicas r on r.id = n.replica"
          + " order by live desc, n.replica, n.node")) {
        ps.setDouble(1, settings.lease().toMillis() / 1000.0);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            result.add(new SharedRoutes.NodeRow(rs.getString(1), rs.getBoolean(2), rs.getString(3), rs.getString(4),
                rs.getBoolean(5), FileMigrationStore.JSON.readValue(rs.getString(6), TYPE_ROWS)));
          }
        }
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new IllegalStateException("a sidecar row in turnout.nodes is not the JSON this version writes", e);
      }
      return result.build();
    });
  }

  /** Rows of sidecar counters not written for this long are pruned: far longer than a bake may last. */
  private static final String PRUNE_AFTER = "7 days";

  @Override
  public void publishSidecarCounters(String incarnation,
      java.util.Map<String, dev.turnout.migrator.bake.Workload.Sidecars> totals) throws StoreException {
    db.inTransaction("publish this replica's sidecar counters", c -> {
      try (PreparedStatement ps = c.prepareStatement("insert into turnout.sidecar_counters (replica, incarnation,"
          + " database, connect_failures, hold_timeouts, nodes) values (?, ?, ?, ?, ?, ?) on conflict (replica,"
          + " incarnation, database) do update set connect_failures = excluded.connect_failures, hold_timeouts ="
          + " excluded.hold_timeouts, nodes = excluded.nodes, at = now()")) {
        for (java.util.Map.Entry<String, dev.turnout.migrator.bake.Workload.Sidecars> e : totals.entrySet()) {
          ps.setString(1, settings.replicaId());
          ps.setString(2, incarnation);
          ps.setString(3, e.getKey());
          ps.setLong(4, e.getValue().connectFailures());
          ps.setLong(5, e.getValue().holdTimeouts());
          ps.setInt(6, e.getValue().nodes());
          ps.addBatch();
        }
        ps.executeBatch();
      }
      try (Statement s = c.createStatement()) {
        s.executeUpdate("delete from turnout.sidecar_counters where at < now() - interval '" + PRUNE_AFTER + "'");
      }
      return null;
    });
  }

  @Override
  public Optional<dev.turnout.migrator.bake.Workload.Sidecars> sidecarCounters(java.util.Collection<String> databases,
      String incarnation) throws StoreException {
    return db.inTransaction("read the replicas' sidecar counters", c -> {
      try (PreparedStatement ps = c.prepareStatement("select count(*), coalesce(sum(s.connect_failures), 0),"
          + " coalesce(sum(s.hold_timeouts), 0), coalesce(sum(s.nodes) filter (where coalesce(" + LIVE
          + ", false)), 0) from turnout.sidecar_counters s left join turnout.replicas r on r.id = s.replica"
          + " where s.database = any (?) and s.incarnation <> ?")) {
        ps.setDouble(1, settings.lease().toMillis() / 1000.0);
        ps.setArray(2, c.createArrayOf("text", databases.toArray()));
        ps.setString(3, incarnation);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          return rs.getLong(1) == 0 ? Optional.<dev.turnout.migrator.bake.Workload.Sidecars>empty()
              : Optional.of(new dev.turnout.migrator.bake.Workload.Sidecars(rs.getLong(2), rs.getLong(3),
                  rs.getInt(4)));
        }
      }
    });
  }

  private static final com.fasterxml.jackson.core.type.TypeReference<ImmutableList<SharedRoutes.TypeRow>> TYPE_ROWS =
      new com.fasterxml.jackson.core.type.TypeReference<>() {};

  @Override
  public CompletableFuture<ImmutableList<String>> awaitReports(String database, long version, Duration timeout) {
    CompletableFuture<ImmutableList<String>> result = new CompletableFuture<>();
    long deadline = System.nanoTime() + timeout.toNanos();
    Runnable check = () -> {
      if (result.isDone()) {
        return;
      }
      try {
        Optional<String> missing = pollReports(database, version, result);
        if (missing.isPresent() && System.nanoTime() > deadline) {
          result.completeExceptionally(new NotAcknowledged("route of database '" + database + "' at version "
              + version + " not acknowledged by every live control-plane replica within " + timeout.toSeconds()
              + " s: " + missing.get()));
        }
      } catch (StoreException | RuntimeException e) {
        if (System.nanoTime() > deadline) {
          result.completeExceptionally(e);
        }
      }
    };
    ackWaiters.add(check);
    // Woken by each report's notification; the poll is for lost notifications and the deadline.
    ScheduledFuture<?> poll = poller.scheduleWithFixedDelay(check, 0, 250, TimeUnit.MILLISECONDS);
    result.whenComplete((r, e) -> {
      poll.cancel(false);
      ackWaiters.remove(check);
    });
    return result;
  }

  /** Completes {@code result} if every live replica has reported; otherwise returns who has not, and why. */
  private Optional<String> pollReports(String database, long version,
      CompletableFuture<ImmutableList<String>> result) throws StoreException {
    return db.inTransaction("read the replicas' ACKs", c -> {
      TreeSet<String> nodes = new TreeSet<>();
      List<String> waiting = new ArrayList<>();
      List<String> failed = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("select r.id, a.version, a.nodes, a.failure from turnout.replicas r"
          + " left join turnout.acks a on a.replica = r.id and a.database = ?"
          + " where " + LIVE + " order by r.id")) {
        ps.setString(1, database);
        ps.setDouble(2, settings.lease().toMillis() / 1000.0);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            String replica = rs.getString(1);
            long at = rs.getLong(2);
            if (rs.wasNull() || at < version) {
              waiting.add(replica + ": no report yet" + (rs.wasNull() ? "" : " (at version " + at + ")"));
            } else if (!rs.getString(4).isEmpty()) {
              failed.add(replica + ": " + rs.getString(4));
            } else if (!rs.getString(3).isEmpty()) {
              nodes.addAll(List.of(rs.getString(3).split(",")));
            }
          }
        }
      }
      if (!failed.isEmpty()) {
        result.completeExceptionally(new NotAcknowledged("route of database '" + database + "' at version " + version
            + " failed on " + String.join("; ", failed)));
        return Optional.empty();
      }
      if (waiting.isEmpty()) {
        result.complete(ImmutableList.copyOf(nodes));
        return Optional.empty();
      }
      return Optional.of(String.join("; ", waiting));
    });
  }

  /** What the replicas share about a route change that did not reach every sidecar. */
  public static final class NotAcknowledged extends RuntimeException {
    private static final long serialVersionUID = 1L;

    NotAcknowledged(String message) {
      super(message);
    }
  }

  private static void sleepQuietly(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    closed = true;
    poller.shutdownNow();
    StoreConnection.closeQuietly(listening.get());
    listener.interrupt();
  }
}
