package dev.turnout.controlplane.store;

import dev.turnout.controlplane.config.TurnoutConfig;
import java.sql.Connection;
import java.sql.SQLException;

/**
 * The store several control-plane replicas share, in schema {@code turnout} of a PostgreSQL database: opened once
 * per replica, it hands out the parts that live in it, each a class of its own on one connection — the routing
 * table ({@link #routes}), the migrations ({@link #migrations}), the admin API's audit log ({@link #audit}) and the
 * replicas with their ACK reports and sidecars ({@link #replicas}); {@link Leadership} elects among the replicas.
 */
public final class PostgresStore implements AutoCloseable {
  private final StoreConnection db;
  private final PostgresRouteStore routes;
  private final PostgresMigrationStore migrations;
  private final PostgresAuditLog audit;
  private final PostgresReplicas replicas;
  private final PostgresCampaignStore campaigns;

  private PostgresStore(StoreConnection db) {
    this.db = db;
    this.routes = new PostgresRouteStore(db, this);
    this.migrations = new PostgresMigrationStore(db);
    this.audit = new PostgresAuditLog(db);
    this.replicas = new PostgresReplicas(db);
    this.campaigns = new PostgresCampaignStore(db);
  }

  /** Connects, applies the schema migrations this version knows, and starts listening for changes. */
  public static PostgresStore open(TurnoutConfig.SharedStore settings) throws StoreException {
    Connection c;
    try {
      c = StoreConnection.connect(settings);
    } catch (SQLException e) {
      throw new StoreException("cannot connect to the store " + settings.url() + " as " + settings.user() + ": "
          + e.getMessage(), e);
    }
    try {
      PostgresSchema.migrate(c);
    } catch (SQLException | StoreException e) {
      StoreConnection.closeQuietly(c);
      throw e instanceof StoreException se ? se
          : new StoreException("cannot apply the store's schema in " + settings.url() + ": " + e.getMessage(), e);
    }
    PostgresStore store = new PostgresStore(new StoreConnection(settings, c));
    store.replicas.start();
    return store;
  }

  /** The routing table: route changes, their history and the shared version counter. */
  public PostgresRouteStore routes() {
    return routes;
  }

  /** The migrations, written only by the leader. */
  public PostgresMigrationStore migrations() {
    return migrations;
  }

  /** The campaigns, written only by the leader. */
  public PostgresCampaignStore campaigns() {
    return campaigns;
  }

  /** The admin API's writes, every replica's. */
  public AuditLog audit() {
    return audit;
  }

  /** The replicas: their ACK reports and sidecars, and the store's change notifications. */
  public PostgresReplicas replicas() {
    return replicas;
  }

  public String replicaId() {
    return db.replicaId();
  }

  TurnoutConfig.SharedStore settings() {
    return db.settings();
  }

  /** Set by {@link Leadership}: the epoch this replica leads under, or 0 when it does not lead. */
  void leadingAt(long newEpoch) {
    db.leadingAt(newEpoch);
  }

  @Override
  public void close() {
    replicas.close();
    db.close();
  }
}
