package dev.turnout.controlplane.xds;

import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.util.List;

/** Opens an {@link AdsTestClient} for tests in other packages. */
public final class AdsTestClientAccess implements AutoCloseable {
  private final ManagedChannel channel;
  private final AdsTestClient client;

  private AdsTestClientAccess(ManagedChannel channel, AdsTestClient client) {
    this.channel = channel;
    this.client = client;
  }

  public static AdsTestClientAccess connect(int xdsPort, String nodeId, String cluster) {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", xdsPort).usePlaintext().build();
    return new AdsTestClientAccess(channel,
        new AdsTestClient(channel, nodeId, cluster, AdsTestClient.Mode.STATE_OF_THE_WORLD));
  }

  public void awaitEndpoints(String... databases) throws InterruptedException {
    client.await("endpoints of " + List.of(databases), c -> c.assignments().keySet().containsAll(List.of(databases)));
  }

  /** EDS responses with an assignment for which {@code why} returns non-null are NACKed with that error. */
  public void rejectEdsWhen(java.util.function.Function<io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment,
      String> why) {
    client.rejectEdsWhen(why);
  }

  @Override
  public void close() {
    client.close();
    channel.shutdownNow();
  }
}
