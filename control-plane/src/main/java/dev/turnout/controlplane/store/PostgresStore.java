package dev.turnout.controlplane.store;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.util.concurrent.ThreadFactoryBuilder;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.MigrationStore;
import java.io.IOException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
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
 * The store several control-plane replicas share: the routing table, the migrations and their journals, the
 * migration leader's epoch, the live replicas and their sidecars' ACKs, in schema {@code turnout} of a PostgreSQL
 * database. Schema migrations are applied at open, one replica at a time.
 *
 * <p>Route versions come from one counter row, updated in the transaction that records the change: changes are
 * recorded one at a time across replicas and their versions rise in commit order, so a version names the same
 * routing table on every replica. Each change is announced with {@code NOTIFY}; every replica also re-reads the
 * table once per lease, so a lost notification only delays.
 *
 * <p>The admin API's writes are recorded in {@code turnout.audit}, every replica's, all kept (its {@code replica}
 * column says which answered; {@code details} is {@code json}, not {@code jsonb}, to keep the fields' order).
 *
 * <p>Migrations, and route changes a migration makes, are written only while the leader row still carries this
 * replica's epoch, checked under a share lock on that row in the writing transaction: once another replica has
 * taken the leadership (raising the epoch), a write by the old leader changes nothing and fails.
 */
public final class PostgresStore implements RouteStore, MigrationStore, SharedRoutes, AuditLog {
  private static final Logger log = LoggerFactory.getLogger(PostgresStore.class);

  static final String CHANNEL = "turnout_routes";
  static final String ACKS_CHANNEL = "turnout_acks";
  /**
   * A replica {@code r} (a row of turnout.replicas) is live when it heartbeat within the lease, bound to the
   * statement's parameter in seconds: route changes wait for live replicas only, operators see the others as gone.
   */
  private static final String LIVE = "r.heartbeat_at > now() - make_interval(secs => ?)";
  private static final long SCHEMA_LOCK = 0x7475726e6f7574L; // "turnout"

  /** Schema migrations in order; the store records how many it has applied. Never edit one: append. */
  private static final List<String> SCHEMA = List.of("""
      create table turnout.counter (id int primary key check (id = 1), version bigint not null);
      insert into turnout.counter values (1, 0);
      create table turnout.routes (database text primary key, version bigint not null, cause text not null,
        record jsonb not null, updated_at timestamptz not null default now());
      create table turnout.migrations (id text primary key, database text not null, phase text not null,
        epoch bigint not null, body jsonb not null, updated_at timestamptz not null default now());
      create table turnout.leader (id int primary key check (id = 1), epoch bigint not null, holder text,
        admin_address text, renewed_at timestamptz);
      insert into turnout.leader values (1, 0, null, null, null);
      create table turnout.replicas (id text primary key, admin_address text not null,
        started_at timestamptz not null, heartbeat_at timestamptz not null);
      create table turnout.acks (replica text not null, database text not null, version bigint not null,
        nodes text not null, failure text not null, at timestamptz not null default now(),
        primary key (replica, database));
      """, """
      create table turnout.nodes (replica text not null, node text not null, cluster text not null,
        connected boolean not null, types jsonb not null, at timestamptz not null default now(),
        primary key (replica, node));
      """, """
      create table turnout.route_history (database text not null, version bigint not null, cause text not null,
        record jsonb not null, at timestamptz not null default now(), primary key (database, version));
      insert into turnout.route_history (database, version, cause, record, at)
        select database, version, cause, record, updated_at from turnout.routes;
      """, """
      create table turnout.audit (id bigserial primary key, at timestamptz not null default now(),
        replica text not null, who text not null, peer text not null, call text not null, database text not null,
        migration text not null, details json not null, code text not null, description text not null);
      """, """
      alter table turnout.migrations add column revision bigint not null default 0;
      """);

  private final TurnoutConfig.SharedStore settings;
  private final Object lock = new Object();
  @GuardedBy("lock")
  private Connection connection;
  private final List<Runnable> listeners = new CopyOnWriteArrayList<>();
  /** Route changes waiting for the replicas' reports: each checks the reports when one arrives. */
  private final java.util.Set<Runnable> ackWaiters = java.util.concurrent.ConcurrentHashMap.newKeySet();
  private final ScheduledExecutorService poller;
  private final AtomicReference<Connection> listening = new AtomicReference<>();
  private final Thread listener;
  private volatile boolean closed;
  /** This replica's leadership epoch; 0 while it is not the leader. Set by {@link Leadership}. */
  private volatile long epoch;

  private PostgresStore(TurnoutConfig.SharedStore settings, Connection connection) {
    this.settings = settings;
    this.connection = connection;
    this.poller = Executors.newSingleThreadScheduledExecutor(
        new ThreadFactoryBuilder().setNameFormat("turnout-store-acks").setDaemon(true).build());
    this.listener = new Thread(this::listen, "turnout-store-listen");
    this.listener.setDaemon(true);
  }

  /** Connects, applies the schema migrations this version knows, and starts listening for changes. */
  public static PostgresStore open(TurnoutConfig.SharedStore settings) throws StoreException {
    Connection c;
    try {
      c = connect(settings);
    } catch (SQLException e) {
      throw new StoreException("cannot connect to the store " + settings.url() + " as " + settings.user() + ": "
          + e.getMessage(), e);
    }
    try {
      migrateSchema(c);
    } catch (SQLException | StoreException e) {
      closeQuietly(c);
      throw e instanceof StoreException se ? se
          : new StoreException("cannot apply the store's schema in " + settings.url() + ": " + e.getMessage(), e);
    }
    PostgresStore store = new PostgresStore(settings, c);
    store.listener.start();
    return store;
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

  private static void migrateSchema(Connection c) throws SQLException, StoreException {
    c.setAutoCommit(false);
    try (Statement s = c.createStatement()) {
      s.execute("select pg_advisory_xact_lock(" + SCHEMA_LOCK + ")");
      s.execute("create schema if not exists turnout");
      s.execute("create table if not exists turnout.schema_migrations (version int primary key,"
          + " applied_at timestamptz not null default now())");
      int applied;
      try (ResultSet rs = s.executeQuery("select coalesce(max(version), 0) from turnout.schema_migrations")) {
        rs.next();
        applied = rs.getInt(1);
      }
      if (applied > SCHEMA.size()) {
        c.rollback();
        throw new StoreException("the store's schema is at version " + applied + ", newer than this turnout knows ("
            + SCHEMA.size() + "): run the newer turnout, or a store of its own");
      }
      for (int v = applied + 1; v <= SCHEMA.size(); v++) {
        s.execute(SCHEMA.get(v - 1));
        s.execute("insert into turnout.schema_migrations (version) values (" + v + ")");
        log.info("store schema migrated to version {}", v);
      }
      c.commit();
    } catch (SQLException | StoreException e) {
      c.rollback();
      throw e;
    } finally {
      c.setAutoCommit(true);
    }
  }

  @Override
  public String replicaId() {
    return settings.replicaId();
  }

  TurnoutConfig.SharedStore settings() {
    return settings;
  }

  /** Set by {@link Leadership}: the epoch this replica leads under, or 0 when it does not lead. */
  void leadingAt(long newEpoch) {
    epoch = newEpoch;
  }

  /** Runs {@code work} in one transaction on the store's connection, reconnecting once if it was lost. */
  private <T> T inTransaction(String what, SqlWork<T> work) throws StoreException {
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
  private interface SqlWork<T> {
    T run(Connection c) throws SQLException, StoreException;
  }

  /** Inside a writing transaction: refuses unless the leader row still carries this replica's epoch. */
  private void requireLeadership(Connection c) throws SQLException, NotLeaderException {
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
  public static final class NotLeaderException extends StoreException {
    private static final long serialVersionUID = 1L;

    public NotLeaderException(String message) {
      super(message);
    }
  }

  // ---- routes

  @Override
  public State load() throws StoreException {
    return inTransaction("read the routing table", c -> {
      try (Statement s = c.createStatement()) {
        s.execute("set transaction isolation level repeatable read, read only");
        Map<String, RouteRecord> routes = new LinkedHashMap<>();
        try (ResultSet rs = s.executeQuery("select record::text from turnout.routes order by database")) {
          while (rs.next()) {
            RouteRecord r = FileRouteStore.decode(FileMigrationStore.JSON.readTree(rs.getString(1)));
            routes.put(r.route().name(), r);
          }
        } catch (IOException e) {
          throw new StoreException("a route record in the store is not readable: " + e.getMessage(), e);
        }
        try (ResultSet rs = s.executeQuery("select version from turnout.counter where id = 1")) {
          rs.next();
          return new State(ImmutableMap.copyOf(routes), rs.getLong(1));
        }
      }
    });
  }

  @Override
  public long append(RouteRecord record, Writer writer) throws StoreException {
    return inTransaction("record the route of " + record.route().name(), c -> {
      if (writer == Writer.LEADER) {
        requireLeadership(c);
      }
      long version = nextVersion(c, 0);
      RouteRecord stored = record.withVersion(version);
      try (PreparedStatement ps = c.prepareStatement("insert into turnout.routes (database, version, cause, record)"
          + " values (?, ?, ?, ?::jsonb) on conflict (database) do update set version = excluded.version,"
          + " cause = excluded.cause, record = excluded.record, updated_at = now()")) {
        ps.setString(1, record.route().name());
        ps.setLong(2, version);
        ps.setString(3, record.cause());
        ps.setString(4, FileRouteStore.encode(stored).toString());
        ps.executeUpdate();
      }
      try (PreparedStatement ps = c.prepareStatement("insert into turnout.route_history (database, version, cause,"
          + " record) values (?, ?, ?, ?::jsonb)")) {
        ps.setString(1, record.route().name());
        ps.setLong(2, version);
        ps.setString(3, record.cause());
        ps.setString(4, FileRouteStore.encode(stored).toString());
        ps.executeUpdate();
      }
      try (PreparedStatement ps = c.prepareStatement("select pg_notify('" + CHANNEL + "', ?)")) {
        ps.setString(1, record.route().name() + " " + version);
        ps.execute();
      }
      return version;
    });
  }

  @Override
  public ImmutableList<Recorded> history(String database, long beforeVersion, int limit) throws StoreException {
    return inTransaction("read the route history of " + database, c -> {
      ImmutableList.Builder<Recorded> page = ImmutableList.builder();
      try (PreparedStatement ps = c.prepareStatement("select record::text, at from turnout.route_history"
          + " where database = ? and version < ? order by version desc limit ?")) {
        ps.setString(1, database);
        ps.setLong(2, beforeVersion);
        ps.setInt(3, limit);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            page.add(new Recorded(FileRouteStore.decode(FileMigrationStore.JSON.readTree(rs.getString(1))),
                Optional.of(rs.getTimestamp(2).toInstant())));
          }
        }
      } catch (IOException e) {
        throw new StoreException("a route record of " + database + " in the store is not readable: " + e.getMessage(), e);
      }
      return page.build();
    });
  }

  @Override
  public long reserveVersion(long version) throws StoreException {
    return inTransaction("reserve a route version", c -> nextVersion(c, version));
  }

  private static long nextVersion(Connection c, long atLeast) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(
        "update turnout.counter set version = greatest(version + 1, ?) where id = 1 returning version")) {
      ps.setLong(1, atLeast);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  @Override
  public Optional<SharedRoutes> shared() {
    return Optional.of(this);
  }

  // ---- migrations

  /**
   * A compare-and-set on the row's revision (rows from before revisions were kept are at 0), in the transaction
   * that checks the leadership: of two writers that read the same revision, one saves and the other is refused.
   */
  @Override
  public Migration save(Migration migration) throws MigrationException {
    Migration saved = migration.atRevision(migration.revision() + 1);
    try {
      inTransaction("save migration " + migration.id(), c -> {
        requireLeadership(c);
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
          ps.setLong(2, epoch);
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
            throw rs.next() ? new Conflict(rs.getLong(1), Optional.of(dev.turnout.migrator.Phase.valueOf(rs.getString(2))))
                : new Conflict(0, Optional.empty());
          }
        }
      });
    } catch (Conflict e) {
      throw new dev.turnout.migrator.RevisionConflictException(migration, e.held, e.phase);
    } catch (NotLeaderException e) {
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
    final transient Optional<dev.turnout.migrator.Phase> phase;

    Conflict(long held, Optional<dev.turnout.migrator.Phase> phase) {
      super("revision conflict");
      this.held = held;
      this.phase = phase;
    }
  }

  @Override
  public void confirmWriter() throws MigrationException {
    try {
      inTransaction("check the leadership", c -> {
        requireLeadership(c);
        return null;
      });
    } catch (NotLeaderException e) {
      throw new MigrationStore.StaleWriterException(e.getMessage());
    } catch (StoreException e) {
      throw new MigrationException(e.getMessage(), e);
    }
  }

  @Override
  public List<Migration> loadAll() throws MigrationException {
    try {
      return inTransaction("read the migrations", c -> {
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

  // ---- audit

  @Override
  public AuditLog audit() {
    return this;
  }

  @Override
  public Entry append(Caller caller, Request request, Outcome outcome) throws StoreException {
    return inTransaction("record a " + request.call() + " call in the audit log", c -> {
      try (PreparedStatement ps = c.prepareStatement("insert into turnout.audit (replica, who, peer, call, database,"
          + " migration, details, code, description) values (?, ?, ?, ?, ?, ?, ?::json, ?, ?) returning id, at")) {
        ps.setString(1, settings.replicaId());
        ps.setString(2, caller.identity());
        ps.setString(3, caller.address());
        ps.setString(4, request.call());
        ps.setString(5, request.database());
        ps.setString(6, request.migrationId());
        ps.setString(7, FileMigrationStore.JSON.writeValueAsString(request.details()));
        ps.setString(8, outcome.code());
        ps.setString(9, outcome.description());
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          return new Entry(rs.getLong(1), rs.getTimestamp(2).toInstant(), caller, request, outcome);
        }
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new IllegalStateException("cannot write an audit entry's details as JSON", e);
      }
    });
  }

  @Override
  public ImmutableList<Entry> list(long beforeId, int limit) throws StoreException {
    return inTransaction("read the audit log", c -> {
      ImmutableList.Builder<Entry> page = ImmutableList.builder();
      try (PreparedStatement ps = c.prepareStatement("select id, at, who, peer, call, database, migration,"
          + " details::text, code, description from turnout.audit where id < ? order by id desc limit ?")) {
        ps.setLong(1, beforeId);
        ps.setInt(2, limit);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            page.add(new Entry(rs.getLong(1), rs.getTimestamp(2).toInstant(),
                new Caller(rs.getString(3), rs.getString(4)),
                new Request(rs.getString(5), rs.getString(6), rs.getString(7),
                    ImmutableMap.copyOf(FileMigrationStore.JSON.readValue(rs.getString(8), DETAILS))),
                new Outcome(rs.getString(9), rs.getString(10))));
          }
        }
      } catch (IOException e) {
        throw new StoreException("an entry of turnout.audit is not readable: " + e.getMessage(), e);
      }
      return page.build();
    });
  }

  /** Read into a LinkedHashMap: the fields keep the order they were recorded in. */
  private static final com.fasterxml.jackson.core.type.TypeReference<java.util.LinkedHashMap<String, String>> DETAILS =
      new com.fasterxml.jackson.core.type.TypeReference<>() {};

  // ---- shared routes

  @Override
  public void onChange(Runnable l) {
    listeners.add(l);
  }

  private void listen() {
    while (!closed) {
      try (Connection c = connect(settings); Statement s = c.createStatement()) {
        listening.set(c);
        s.execute("listen " + CHANNEL);
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
      inTransaction("report the ACKs of " + database, c -> {
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
    return inTransaction("read the replicas' reports", c -> {
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
    inTransaction("publish this replica's sidecars", c -> {
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
    return inTransaction("read the replicas' sidecars", c -> {
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
    return inTransaction("read the replicas' ACKs", c -> {
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
    poller.shutdownNow();
    closeQuietly(listening.get());
    listener.interrupt();
    synchronized (lock) {
      closeQuietly(connection);
      connection = null;
    }
  }
}
