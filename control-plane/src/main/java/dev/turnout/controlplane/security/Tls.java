package dev.turnout.controlplane.security;

import dev.turnout.controlplane.config.TurnoutConfig;
import io.grpc.netty.GrpcSslContexts;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import java.io.IOException;
import java.nio.file.Path;

/** Netty TLS contexts for the control plane's servers and the CLI's client. */
public final class Tls {
  private Tls() {}

  /** Server side: present the server certificate, require a client certificate signed by the client CA. */
  public static SslContext serverContext(TurnoutConfig.Tls tls) throws IOException {
    try {
      return GrpcSslContexts.forServer(tls.certChain().toFile(), tls.privateKey().toFile())
          .trustManager(tls.clientCa().toFile())
          .clientAuth(ClientAuth.REQUIRE)
          .build();
    } catch (IllegalArgumentException | javax.net.ssl.SSLException e) {
      throw new IOException("cannot load the TLS files " + tls.certChain() + ", " + tls.privateKey() + ", "
          + tls.clientCa() + ": " + e.getMessage(), e);
    }
  }

  /** Client side: present {@code cert}/{@code key}, trust servers signed by {@code ca}. */
  public static SslContext clientContext(Path cert, Path key, Path ca) throws IOException {
    try {
      return GrpcSslContexts.forClient().keyManager(cert.toFile(), key.toFile()).trustManager(ca.toFile()).build();
    } catch (IllegalArgumentException | javax.net.ssl.SSLException e) {
      throw new IOException("cannot load the TLS files " + cert + ", " + key + ", " + ca + ": " + e.getMessage(), e);
    }
  }
}
