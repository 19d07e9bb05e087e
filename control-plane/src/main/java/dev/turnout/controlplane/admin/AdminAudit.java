package dev.turnout.controlplane.admin;

import com.google.common.collect.ImmutableMap;
import com.google.common.util.concurrent.ThreadFactoryBuilder;
import dev.turnout.admin.v1.FinalizeMigrationRequest;
import dev.turnout.admin.v1.MigrationOptions;
import dev.turnout.admin.v1.RollbackMigrationRequest;
import dev.turnout.admin.v1.SetRouteRequest;
import dev.turnout.admin.v1.SetRouteResponse;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.controlplane.security.PeerIdentity;
import dev.turnout.controlplane.store.AuditLog;
import dev.turnout.controlplane.store.StoreException;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Records every write to the admin API in the store's {@link AuditLog} — StartMigration (not dry runs),
 * RollbackMigration, FinalizeMigration, SetRoute, and a campaign's start, pause, resume, approve and abort (from the
 * admin port or the web console) — with who called, from where, the request's key fields and the
 * outcome, refused calls included. It sits outside {@code AdminAuthorization}, so a call refused for its identity
 * is recorded too, and inside {@link PeerIdentity}, whose identity and address it records.
 *
 * <p>The answer waits for the entry: the call is closed only once its entry is durable, so a client that got an
 * answer knows the call is on record. Entries are written on one thread of their own, in the order calls end: a
 * SetRoute ends on the thread that saw the last ACK, which must not wait for a store. An entry that cannot be
 * written (the store is down) is logged at ERROR, whole, and the call answered as it was: what was done is done,
 * and answering otherwise would lie about it.
 */
public final class AdminAudit implements ServerInterceptor, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(AdminAudit.class);

  /** The calls that change something; the others are not recorded. */
  static final Set<String> WRITES = dev.turnout.controlplane.security.AdminAuthorization.CHANGING;
  /** A recorded field is cut to this many characters: a refused request may carry anything. */
  static final int MAX_FIELD = 1_024;

  private final AuditLog audit;
  private final Function<String, Optional<String>> databaseOfMigration;
  /** The one thread entries are written on, so they are written in the order calls end. */
  private final ExecutorService writer = Executors.newSingleThreadExecutor(
      new ThreadFactoryBuilder().setNameFormat("turnout-audit").setDaemon(true).build());

  /** @param databaseOfMigration the database of a migration id, for a rollback or finalize that was refused */
  public AdminAudit(AuditLog audit, Function<String, Optional<String>> databaseOfMigration) {
    this.audit = audit;
    this.databaseOfMigration = databaseOfMigration;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    String method = call.getMethodDescriptor().getBareMethodName();
    if (!WRITES.contains(method)) {
      return next.startCall(call, headers);
    }
    String identity = PeerIdentity.KEY.get();
    AuditLog.Caller caller = new AuditLog.Caller(identity == null ? "anonymous" : bounded(identity),
        address(PeerIdentity.ADDRESS.get()));
    Recording<Q, R> recording = new Recording<>(call, method, caller);
    ServerCall.Listener<Q> listener = next.startCall(recording, headers);
    return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
      @Override
      public void onMessage(Q message) {
        recording.request = message;
        super.onMessage(message);
      }

      @Override
      public void onHalfClose() {
        recording.halfClosed = true;
        super.onHalfClose();
      }

      @Override
      public void onCancel() {
        // Before the half-close the service never runs, so nothing would close the call: record it here. After it,
        // the service runs to its end and closes the call, which records it.
        if (!recording.halfClosed) {
          recording.record(new AuditLog.Outcome(Status.Code.CANCELLED.name(),
              "the client went away before the call was complete; nothing was done"), () -> {});
        }
        super.onCancel();
      }
    };
  }

  /** The call as the service answers it: its request and response kept, its close delayed until recorded. */
  private final class Recording<Q, R> extends ForwardingServerCall.SimpleForwardingServerCall<Q, R> {
    private final String method;
    private final AuditLog.Caller caller;
    private final AtomicBoolean recorded = new AtomicBoolean();
    volatile Object request;
    volatile Object response;
    volatile boolean halfClosed;

    Recording(ServerCall<Q, R> call, String method, AuditLog.Caller caller) {
      super(call);
      this.method = method;
      this.caller = caller;
    }

    @Override
    public void sendMessage(R message) {
      response = message;
      super.sendMessage(message);
    }

    @Override
    public void close(Status status, Metadata trailers) {
      if (request instanceof StartMigrationRequest s && s.getOptions().getDryRun()) {
        super.close(status, trailers); // a dry run changes nothing
        return;
      }
      AuditLog.Outcome outcome = status.isOk() ? AuditLog.Outcome.OK
          : new AuditLog.Outcome(status.getCode().name(), bounded(String.valueOf(status.getDescription())));
      record(outcome, () -> super.close(status, trailers));
    }

    /** Writes the entry (once) on the writer thread, then runs {@code then}. */
    void record(AuditLog.Outcome outcome, Runnable then) {
      if (!recorded.compareAndSet(false, true)) {
        then.run();
        return;
      }
      AuditLog.Request what = describe(method, request, response);
      try {
        writer.execute(() -> {
          try {
            audit.append(caller, what, outcome);
          } catch (StoreException | RuntimeException e) {
            log.error("cannot record an admin call in the audit log ({}): {} by {} from {}: {} {} {} -> {} {}",
                e.getMessage(), what.call(), caller.identity(), caller.address(), what.database(),
                what.migrationId(), what.details(), outcome.code(), outcome.description());
          } finally {
            then.run();
          }
        });
      } catch (java.util.concurrent.RejectedExecutionException closing) {
        log.error("the control plane is stopping: an admin call is not recorded in the audit log: {} by {} from {}:"
            + " {} {} {} -> {} {}", what.call(), caller.identity(), caller.address(), what.database(),
            what.migrationId(), what.details(), outcome.code(), outcome.description());
        then.run();
      }
    }
  }

  /** The key fields of a write's request (and of its answer: the migration it started, the version it routed). */
  private AuditLog.Request describe(String method, Object request, Object response) {
    Map<String, String> details = new LinkedHashMap<>();
    String database = "";
    String migration = "";
    if (request instanceof StartMigrationRequest s) {
      database = s.getDatabase();
      put(details, "target", s.getTarget());
      MigrationOptions o = s.getOptions();
      if (o.getAllowDroppingStaleSlots()) {
        details.put("allow_dropping_stale_slots", "true");
      }
      if (o.hasCreateReplica()) {
        put(details, "create_replica", o.getCreateReplica().getTargetDataDir());
      }
      if (o.hasAurora()) {
        put(details, "aurora", o.getAurora().getSourceInstance() + " -> " + o.getAurora().getTargetCluster()
            + (o.getAurora().getCreateInstanceClass().isEmpty() ? "" : " (create " + o.getAurora().getCreateInstanceClass() + ")"));
      }
      if (o.hasValidationWindow()) {
        details.put("validation_window", o.getValidationWindow().getSeconds() + "s");
      }
      if (o.hasPhaseDeadline()) {
        details.put("phase_deadline", o.getPhaseDeadline().getSeconds() + "s");
      }
      if (o.getMaxLagBytes() != 0) {
        details.put("max_lag_bytes", Long.toString(o.getMaxLagBytes()));
      }
    } else if (request instanceof RollbackMigrationRequest r) {
      migration = r.getId();
      details.put("consent_to_lose_writes", Boolean.toString(r.getConsentToLoseWrites()));
    } else if (request instanceof FinalizeMigrationRequest f) {
      migration = f.getId();
    } else if (request instanceof dev.turnout.admin.v1.ResumeMigrationRequest r) {
      migration = r.getId();
    } else if (request instanceof dev.turnout.admin.v1.CampaignId c) {
      details.put("campaign", c.getId());
    } else if (request instanceof dev.turnout.admin.v1.CampaignRequest c) {
      put(details, "file", c.getFileName());
    } else if (request instanceof SetRouteRequest r) {
      database = r.getDatabase();
      switch (r.getChangeCase()) {
        case ENDPOINT -> details.put("endpoint", r.getEndpoint());
        case DRAIN -> details.put("drain", "true");
        case CHANGE_NOT_SET -> { }
      }
      put(details, "expected_current", r.getExpectedCurrent());
      details.put("reason", r.getReason());
    }
    if (response instanceof dev.turnout.admin.v1.Migration m) {
      database = database.isEmpty() ? m.getDatabase() : database;
      migration = m.getId();
      put(details, "phase", m.getPhase());
    } else if (response instanceof dev.turnout.admin.v1.Campaign c) {
      details.put("campaign", c.getId());
      put(details, "status", c.getStatus());
    } else if (response instanceof SetRouteResponse r) {
      details.put("version", Long.toString(r.getVersion()));
      details.put("changed", Boolean.toString(r.getChanged()));
      details.put("acknowledged", Boolean.toString(r.getAcknowledged()));
    }
    if (database.isEmpty() && !migration.isEmpty()) {
      try {
        database = databaseOfMigration.apply(migration).orElse("");
      } catch (RuntimeException e) {
        database = ""; // the entry matters more than this detail
      }
    }
    ImmutableMap.Builder<String, String> bounded = ImmutableMap.builder();
    details.forEach((k, v) -> bounded.put(k, bounded(v)));
    return new AuditLog.Request(method, bounded(database), bounded(migration), bounded.build());
  }

  private static void put(Map<String, String> details, String name, String value) {
    if (!value.isEmpty()) {
      details.put(name, value);
    }
  }

  /**
   * At most {@link #MAX_FIELD} characters, NUL written as a backslash and u0000 (PostgreSQL's text cannot hold
   * it); other control characters are kept as sent, and escaped where they are shown.
   */
  static String bounded(String text) {
    String s = text.indexOf('\0') < 0 ? text : text.replace("\0", "\\u0000");
    return s.length() <= MAX_FIELD ? s : s.substring(0, MAX_FIELD) + "...(" + (s.length() - MAX_FIELD) + " more)";
  }

  private static String address(SocketAddress address) {
    if (address instanceof InetSocketAddress inet) {
      String host = inet.getAddress() != null ? inet.getAddress().getHostAddress() : inet.getHostString();
      return (host.contains(":") ? "[" + host + "]" : host) + ":" + inet.getPort();
    }
    return address == null ? "" : address.toString();
  }

  /** Writes what is queued (at most a few seconds), then stops. */
  @Override
  public void close() {
    writer.shutdown();
    try {
      if (!writer.awaitTermination(5, TimeUnit.SECONDS)) {
        int lost = writer.shutdownNow().size();
        log.error("{} admin call(s) not recorded in the audit log: the store did not take them within 5 s of"
            + " shutdown", lost);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
