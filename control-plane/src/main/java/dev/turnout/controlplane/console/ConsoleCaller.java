package dev.turnout.controlplane.console;

import dev.turnout.controlplane.security.PeerIdentity;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.net.InetSocketAddress;

/**
 * Who the console calls the admin service for: the browser's client-certificate CN (or nobody) and address, as
 * {@link PeerIdentity} would have put them for a gRPC caller, so the admin service's authorization and audit judge
 * and record the console's calls exactly as the admin port's. Trusted because only the console reaches the
 * in-process server this sits on (its name is random and never published).
 */
final class ConsoleCaller implements ServerInterceptor {
  static final Metadata.Key<String> IDENTITY = Metadata.Key.of("turnout-console-identity", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> HOST = Metadata.Key.of("turnout-console-host", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> PORT = Metadata.Key.of("turnout-console-port", Metadata.ASCII_STRING_MARSHALLER);

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    String identity = headers.get(IDENTITY);
    String host = headers.get(HOST);
    String port = headers.get(PORT);
    InetSocketAddress address = host == null ? null
        : InetSocketAddress.createUnresolved(host, port == null ? 0 : Integer.parseInt(port));
    return Contexts.interceptCall(Context.current().withValue(PeerIdentity.KEY, identity)
        .withValue(PeerIdentity.ADDRESS, address), call, headers, next);
  }

  /** The headers that say who a browser request is for. */
  static Metadata headers(String identity, InetSocketAddress from) {
    Metadata m = new Metadata();
    if (identity != null) {
      m.put(IDENTITY, identity);
    }
    if (from != null) {
      m.put(HOST, from.getAddress() != null ? from.getAddress().getHostAddress() : from.getHostString());
      m.put(PORT, Integer.toString(from.getPort()));
    }
    return m;
  }
}
