package dev.turnout.sidecar;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall.SimpleForwardingClientCall;
import io.grpc.ForwardingClientCallListener.SimpleForwardingClientCallListener;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import java.net.SocketAddress;
import java.util.function.Consumer;

/** Tells which server a call reached (with several replicas, which one), once its headers arrive. */
final class RemoteAddressInterceptor implements ClientInterceptor {
  private final Consumer<SocketAddress> reached;

  RemoteAddressInterceptor(Consumer<SocketAddress> reached) {
    this.reached = reached;
  }

  @Override
  public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
    return new SimpleForwardingClientCall<>(next.newCall(method, options)) {
      @Override
      public void start(Listener<R> listener, Metadata headers) {
        super.start(new SimpleForwardingClientCallListener<>(listener) {
          @Override
          public void onHeaders(Metadata responseHeaders) {
            SocketAddress address = getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
            if (address != null) {
              reached.accept(address);
            }
            super.onHeaders(responseHeaders);
          }
        }, headers);
      }
    };
  }
}
