package dev.turnout.controlplane.store;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import java.time.Instant;

/**
 * The admin API's writes as an auditor reads them — who asked for what, from where, when, and what came of it —
 * refused calls included. Append-only: entries are never changed, only (in the file store) the oldest dropped.
 */
public interface AuditLog {

  /**
   * Who called.
   *
   * @param identity the client certificate's CN under mutual TLS, else {@code anonymous}
   * @param address the caller's address, {@code host:port}; empty when the transport does not say
   */
  record Caller(String identity, String address) {}

  /**
   * What was asked.
   *
   * @param call the RPC ({@code SetRoute}, {@code StartMigration}, ...)
   * @param database the database it names or acts on; empty when none is known (a refused call with no request)
   * @param migrationId the migration it names or started; empty when none
   * @param details the other key fields (target, endpoint, consent flags, reason, ...) in the order given
   */
  record Request(String call, String database, String migrationId, ImmutableMap<String, String> details) {}

  /** What came of it: {@code OK}, or the gRPC status code and its description. */
  record Outcome(String code, String description) {
    public static final Outcome OK = new Outcome("OK", "");
  }

  /** One recorded call: its id (rising, never reused) and when the store recorded it. */
  record Entry(long id, Instant at, Caller caller, Request request, Outcome outcome) {}

  /** Durably records a call (fsynced, or committed) before returning it as recorded. */
  Entry append(Caller caller, Request request, Outcome outcome) throws StoreException;

  /**
   * Newest first: at most {@code limit} entries with an id below {@code beforeId} ({@link Long#MAX_VALUE}: from the
   * newest), so a caller pages back by passing the oldest id it got.
   */
  ImmutableList<Entry> list(long beforeId, int limit) throws StoreException;
}
