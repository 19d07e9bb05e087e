package dev.turnout.controlplane.security;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * The identity of a caller over mutual TLS: the common name (CN) of its client certificate, put in the call's
 * gRPC {@link Context} for the services and callbacks that decide on it; and the caller's address, which is all a
 * plain-text server knows of who called.
 */
public final class PeerIdentity implements ServerInterceptor {
  /** The caller's certificate CN; absent on plain-text servers. */
  public static final Context.Key<String> KEY = Context.key("turnout-peer-identity");
  /** The caller's address (host and port), when the transport knows it. */
  public static final Context.Key<java.net.SocketAddress> ADDRESS = Context.key("turnout-peer-address");

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    SSLSession session = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
    String identity = session == null ? null : commonName(session);
    return Contexts.interceptCall(Context.current().withValue(KEY, identity)
        .withValue(ADDRESS, call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR)), call, headers, next);
  }

  /** The CN of the session's client certificate; null without one. */
  public static String commonName(SSLSession session) {
    try {
      Certificate[] chain = session.getPeerCertificates();
      if (chain.length == 0 || !(chain[0] instanceof X509Certificate cert)) {
        return null;
      }
      for (Rdn rdn : new LdapName(cert.getSubjectX500Principal().getName()).getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) {
          return rdn.getValue().toString();
        }
      }
      return null;
    } catch (SSLPeerUnverifiedException | InvalidNameException e) {
      return null;
    }
  }
}
