package dev.turnout.controlplane.store;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import java.io.IOException;
import java.sql.PreparedStatement;
import java.sql.ResultSet;

/**
 * The admin API's writes in the shared store, every replica's, all kept in {@code turnout.audit}: its
 * {@code replica} column says which answered; {@code details} is {@code json}, not {@code jsonb}, to keep the
 * fields' order.
 */
final class PostgresAuditLog implements AuditLog {
  private final StoreConnection db;

  PostgresAuditLog(StoreConnection db) {
    this.db = db;
  }

  @Override
  public Entry append(Caller caller, Request request, Outcome outcome) throws StoreException {
    return db.inTransaction("record a " + request.call() + " call in the audit log", c -> {
      try (PreparedStatement ps = c.prepareStatement("insert into turnout.audit (replica, who, peer, call, database,"
          + " migration, details, code, description) values (?, ?, ?, ?, ?, ?, ?::json, ?, ?) returning id, at")) {
        ps.setString(1, db.replicaId());
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
    return db.inTransaction("read the audit log", c -> {
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
}
