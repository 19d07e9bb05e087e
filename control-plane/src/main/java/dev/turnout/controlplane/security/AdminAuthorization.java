package dev.turnout.controlplane.security;

import com.google.common.collect.ImmutableSet;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.util.Set;

/**
 * Who may call what on the admin API when it runs with client certificates: the calls that change things
 * (start, roll back, finalize, a route by hand) only for the configured writers; the read-only calls for the readers too
 * (every authenticated client when no readers are configured). Runs after {@link PeerIdentity}, and after the
 * admin API's audit, which records the writes it refuses.
 */
public final class AdminAuthorization implements ServerInterceptor {
  /**
   * The calls that change something (start, roll back, finalize, a route by hand; start, pause, resume, approve and
   * abort a campaign): for the writers only.
   */
  public static final Set<String> CHANGING = ImmutableSet.of("StartMigration", "RollbackMigration",
      "FinalizeMigration", "ResumeMigration", "SetRoute", "StartCampaign", "PauseCampaign", "ResumeCampaign",
      "ApproveCampaign", "AbortCampaign");

  private final Set<String> writers;
  private final Set<String> readers;

  /** @param readers identities allowed the read-only calls besides the writers; empty allows every client */
  public AdminAuthorization(Set<String> writers, Set<String> readers) {
    this.writers = ImmutableSet.copyOf(writers);
    this.readers = ImmutableSet.copyOf(readers);
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    String method = call.getMethodDescriptor().getBareMethodName();
    String identity = PeerIdentity.KEY.get();
    boolean allowed = identity != null && (CHANGING.contains(method) ? writers.contains(identity)
        : readers.isEmpty() || readers.contains(identity) || writers.contains(identity));
    if (!allowed) {
      Status denied = Status.PERMISSION_DENIED.withDescription("identity '" + identity + "' may not call " + method
          + (CHANGING.contains(method) ? " (allowed: the configured admin writers)" : ""));
      if (!CHANGING.contains(method)) {
        call.close(denied, new Metadata());
        return new ServerCall.Listener<>() {};
      }
      // A refused write is refused once its request has arrived, so the audit log, outside this interceptor,
      // records what was asked, not only that something was. The request is read, never acted on.
      call.request(1);
      return new ServerCall.Listener<>() {
        private boolean closed;

        @Override
        public void onMessage(Q message) {
          refuse();
        }

        @Override
        public void onHalfClose() {
          refuse();
        }

        private void refuse() {
          if (!closed) {
            closed = true;
            call.close(denied, new Metadata());
          }
        }
      };
    }
    return next.startCall(call, headers);
  }
}
