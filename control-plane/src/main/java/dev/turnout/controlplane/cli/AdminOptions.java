package dev.turnout.controlplane.cli;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.envoy.Endpoint;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Option;

/** The {@code --admin} option every operator command shares, and the channel it opens. */
final class AdminOptions {
  @Option(names = "--admin", defaultValue = "127.0.0.1:18001", paramLabel = "HOST:PORT[,HOST:PORT...]",
      description = "The control plane's admin API (default 127.0.0.1:18001). With several replicas, list them:"
          + " a replica that answers UNAVAILABLE (down, or not the migration leader) is skipped for the next")
  String admin;

  @Option(names = "--tls-cert", paramLabel = "PEM", description = "Client certificate, for an admin API with mTLS")
  java.nio.file.Path tlsCert;

  @Option(names = "--tls-key", paramLabel = "PEM", description = "The client certificate's private key")
  java.nio.file.Path tlsKey;

  @Option(names = "--tls-ca", paramLabel = "PEM", description = "CA that signed the control plane's certificate")
  java.nio.file.Path tlsCa;

  /** The addresses of {@code --admin}, in order; a malformed one is an IllegalArgumentException naming it. */
  List<Endpoint> addresses() {
    List<Endpoint> result = new ArrayList<>();
    for (String part : admin.split(",", -1)) {
      try {
        result.add(Endpoint.parse(part.trim()));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("--admin: '" + part.trim() + "' is not HOST:PORT (" + e.getMessage() + ")");
      }
    }
    return result;
  }

  private ManagedChannel channel(Endpoint e) {
    NettyChannelBuilder builder = NettyChannelBuilder.forAddress(e.host(), e.port());
    if (tlsCert == null && tlsKey == null && tlsCa == null) {
      return builder.usePlaintext().build();
    }
    if (tlsCert == null || tlsKey == null || tlsCa == null) {
      throw new IllegalArgumentException("--tls-cert, --tls-key and --tls-ca go together");
    }
    try {
      return builder.sslContext(dev.turnout.controlplane.security.Tls.clientContext(tlsCert, tlsKey, tlsCa)).build();
    } catch (java.io.IOException ex) {
      throw new IllegalArgumentException(ex.getMessage(), ex);
    }
  }

  /** One admin call's body, given the channel. */
  interface Body {
    int run(ManagedChannel channel) throws Exception;
  }

  /**
   * Opens the channel, runs {@code body}, closes the channel; a bad option or a gRPC error becomes a message
   * naming {@code command} and the exit code {@link #report} gives.
   */
  int call(String command, Body body) throws Exception {
    List<Endpoint> addresses;
    ManagedChannel channel;
    try {
      addresses = addresses();
      channel = channel(addresses.get(0));
    } catch (IllegalArgumentException e) {
      System.err.println("turnout " + command + ": " + e.getMessage());
      return 2;
    }
    for (int i = 0; ; i++) {
      try {
        return body.run(channel);
      } catch (StatusRuntimeException e) {
        // UNAVAILABLE: nothing was done there (down, or a replica that does not lead migrations): try the next.
        if (e.getStatus().getCode() != io.grpc.Status.Code.UNAVAILABLE || i + 1 == addresses.size()) {
          return unreachable(addresses.get(i), e).map(why -> {
            System.err.println("turnout " + command + ": " + why);
            return 1;
          }).orElseGet(() -> report(command, e));
        }
        System.err.println("turnout " + command + ": " + unreachable(addresses.get(i), e)
            .orElse(addresses.get(i) + ": " + e.getStatus().getDescription()) + "; trying " + addresses.get(i + 1));
      } finally {
        channel.shutdownNow();
      }
      channel = channel(addresses.get(i + 1));
    }
  }

  /**
   * For a call that never reached a control plane (nothing listening, no route, no such host), what happened
   * in an operator's words rather than gRPC's {@code UNAVAILABLE: io exception}.
   */
  static java.util.Optional<String> unreachable(Endpoint address, StatusRuntimeException e) {
    if (e.getStatus().getCode() != io.grpc.Status.Code.UNAVAILABLE) {
      return java.util.Optional.empty();
    }
    for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
      String why;
      if (t instanceof java.net.ConnectException) {
        String m = String.valueOf(t.getMessage()).toLowerCase(java.util.Locale.ROOT);
        why = m.contains("refused") ? "connection refused" : m.contains("no route") ? "no route to host"
            : m.contains("timed out") ? "connection timed out" : t.getMessage();
      } else if (t instanceof java.net.UnknownHostException) {
        why = "unknown host";
      } else {
        continue;
      }
      return java.util.Optional.of("cannot reach the control plane at " + address + ": " + why);
    }
    return java.util.Optional.empty();
  }

  static AdminGrpc.AdminBlockingStub stub(ManagedChannel channel) {
    return AdminGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  /**
   * Prints a gRPC error as an operator reads it and returns the exit code: 2 for a request refused as it stands
   * (bad input, a state that does not allow it, an identity that may not make it: nothing was changed), 1 otherwise.
   */
  static int report(String command, StatusRuntimeException e) {
    System.err.println("turnout " + command + ": " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
    return switch (e.getStatus().getCode()) {
      case INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED, PERMISSION_DENIED -> 2;
      default -> 1;
    };
  }
}
