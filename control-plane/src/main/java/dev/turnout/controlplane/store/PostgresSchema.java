package dev.turnout.controlplane.store;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The shared store's tables, in schema {@code turnout}: the migrations of the schema this version knows, applied
 * at open, one replica at a time (under an advisory lock), each recorded so it is applied once.
 */
final class PostgresSchema {
  private static final Logger log = LoggerFactory.getLogger(PostgresSchema.class);

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
      alter table turnout.migrations add column if not exists revision bigint not null default 0;
      """, """
      create table if not exists turnout.campaigns (id text primary key, name text not null, status text not null,
        epoch bigint not null, revision bigint not null, body jsonb not null,
        updated_at timestamptz not null default now());
      """, """
      create table if not exists turnout.sidecar_counters (replica text not null, incarnation text not null,
        database text not null, connect_failures bigint not null, hold_timeouts bigint not null, nodes int not null,
        at timestamptz not null default now(), primary key (replica, incarnation, database));
      """);

  private PostgresSchema() {}

  /** Applies the schema migrations the store on {@code c} lacks; refuses a schema newer than this version knows. */
  static void migrate(Connection c) throws SQLException, StoreException {
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
}
