package dev.turnout.controlplane.store;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The routing table in the shared store: each database's latest record in {@code turnout.routes}, every change in
 * {@code turnout.route_history}.
 *
 * <p>Route versions come from one counter row, updated in the transaction that records the change: changes are
 * recorded one at a time across replicas and their versions rise in commit order, so a version names the same
 * routing table on every replica. Each change is announced with {@code NOTIFY} ({@link PostgresReplicas} listens).
 *
 * <p>A route change a migration makes ({@link RouteStore.Writer#LEADER}) is written only while the leader row still
 * carries this replica's epoch, checked under a share lock on that row in the writing transaction.
 */
public final class PostgresRouteStore implements RouteStore {
  private final StoreConnection db;
  private final PostgresStore owner;

  PostgresRouteStore(StoreConnection db, PostgresStore owner) {
    this.db = db;
    this.owner = owner;
  }

  @Override
  public State load() throws StoreException {
    return db.inTransaction("read the routing table", c -> {
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
    return db.inTransaction("record the route of " + record.route().name(), c -> {
      if (writer == Writer.LEADER) {
        db.requireLeadership(c);
      }
      return insert(c, record);
    });
  }

  /**
   * Records every one of {@code records} in one transaction (one commit, one WAL flush), each under the next
   * version of the shared sequence, in order; all or none.
   */
  @Override
  public java.util.List<Long> appendAll(java.util.List<RouteRecord> records, Writer writer) throws StoreException {
    if (records.isEmpty()) {
      return java.util.List.of();
    }
    String what = records.size() == 1 ? "record the route of " + records.get(0).route().name()
        : "record the routes of " + records.stream().map(r -> r.route().name()).toList();
    return db.inTransaction(what, c -> {
      if (writer == Writer.LEADER) {
        db.requireLeadership(c);
      }
      java.util.List<Long> versions = new java.util.ArrayList<>(records.size());
      for (RouteRecord record : records) {
        versions.add(insert(c, record));
      }
      return versions;
    });
  }

  /** Writes {@code record} under the next version in {@code c}'s transaction and announces it; returns the version. */
  private static long insert(Connection c, RouteRecord record) throws SQLException {
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
    try (PreparedStatement ps =
        c.prepareStatement("select pg_notify('" + PostgresReplicas.ROUTES_CHANNEL + "', ?)")) {
      ps.setString(1, record.route().name() + " " + version);
      ps.execute();
    }
    return version;
  }

  @Override
  public ImmutableList<Recorded> history(String database, long beforeVersion, int limit) throws StoreException {
    return db.inTransaction("read the route history of " + database, c -> {
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
    return db.inTransaction("reserve a route version", c -> nextVersion(c, version));
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

  /** The audit log of the same store. */
  @Override
  public AuditLog audit() {
    return owner.audit();
  }

  /** Closes the whole shared store: the routes share its connection with the migrations and the reports. */
  @Override
  public void close() {
    owner.close();
  }
}
