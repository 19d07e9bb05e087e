package dev.turnout.controlplane.xds;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.envoy.RoutingTable;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A stream that was busy while several versions were published (its work queued, so it sees only the latest)
 * catches up from the databases that changed since the version it has: it is sent exactly the changed
 * assignments, Listeners and Clusters whole when one of them changed (state of the world), and in delta exactly
 * the changed and removed resources. Past the log's reach it falls back to a full compare with the same result.
 * The client here is written from the Envoy protos, not Turnout's sidecar.
 */
class StreamCatchUpTest {
  /** The xDS streams' pool, run by hand: while nothing runs it, publications pile up as they do on a busy stream. */
  private final LinkedBlockingQueue<Runnable> tasks = new LinkedBlockingQueue<>();
  private final Executor pool = tasks::add;
  private final SnapshotPublisher publisher = new SnapshotPublisher();
  private final AckTracker tracker = new AckTracker(Clock.systemUTC());
  private Server server;
  private ManagedChannel channel;
  private RoutingTable table;
  private long version = 10;

  @BeforeEach
  void startServer() throws Exception {
    table = RoutingTable.of(IntStream.range(0, DATABASES).mapToObj(i -> route(i, 20000 + i, "10.0.0." + i)).toList());
    publisher.publish(table, version);
    AdsService ads = new AdsService(publisher, tracker, pool, false, (type, database) -> {}, Clock.systemUTC());
    String name = "catch-up-" + System.nanoTime();
    server = InProcessServerBuilder.forName(name).directExecutor().addService(ads).build().start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
  }

  @AfterEach
  void stop() {
    channel.shutdownNow();
    server.shutdownNow();
  }

  private static DatabaseRoute route(int i, int port, String host) {
    return new DatabaseRoute("db" + i, port, Optional.of(new Endpoint(host, 5432)), Set.of());
  }

  private void change(DatabaseRoute route) {
    table = table.with(route);
    publisher.publish(table, ++version);
  }

  /** Runs the streams' queued work until nothing is left to do for a while (gRPC hands messages over in between). */
  private void runStreams() throws InterruptedException {
    int idle = 0;
    while (idle < 5) {
      Runnable task = tasks.poll(20, TimeUnit.MILLISECONDS);
      if (task == null) {
        idle++;
      } else {
        idle = 0;
        task.run();
      }
    }
  }

  @Test
  void sotwStreamBehindByThreeVersions_isSentExactlyTheChangedAssignments_andNoListenersOrClusters()
      throws Exception {
    SotwClient client = new SotwClient();
    runStreams();
    assertThat(client.names(XdsType.EDS)).hasSize(DATABASES);
    client.responses.clear();

    change(route(1, 20001, "10.1.0.1"));
    change(route(3, 20003, "10.1.0.3"));
    change(route(1, 20001, "10.2.0.1"));
    runStreams();

    assertThat(client.responses).hasSize(1);
    DiscoveryResponse eds = client.responses.get(0);
    assertThat(eds.getTypeUrl()).isEqualTo(XdsType.EDS.typeUrl());
    assertThat(eds.getVersionInfo()).isEqualTo(Long.toString(version));
    assertThat(names(eds.getResourcesList())).containsExactlyInAnyOrder("db1", "db3");
    assertThat(client.endpoint("db1")).isEqualTo("10.2.0.1");
    assertThat(client.endpoint("db3")).isEqualTo("10.1.0.3");
    assertThat(tracker.node("n1").orElseThrow().ackedVersion(XdsType.EDS)).isEqualTo(version);
  }

  @Test
  void sotwStreamThatMissedAListenerChangeAndARemoval_getsEveryListenerAndClusterWhole() throws Exception {
    SotwClient client = new SotwClient();
    runStreams();
    client.responses.clear();

    change(route(2, 21002, "10.0.0.2")); // a new listen port: db2's Listener changes, its assignment does not
    change(route(4, 20004, "10.1.0.4"));
    table = RoutingTable.of(table.databases().values().stream().filter(r -> !r.name().equals("db5")).toList());
    publisher.publish(table, ++version);
    runStreams();

    DiscoveryResponse lds = client.last(XdsType.LDS);
    assertThat(names(lds.getResourcesList())).as("state of the world: every Listener, the gone one absent")
        .containsExactlyInAnyOrderElementsOf(ALL_BUT_DB5);
    assertThat(client.listenPort("db2")).isEqualTo(21002);
    DiscoveryResponse cds = client.last(XdsType.CDS);
    assertThat(names(cds.getResourcesList())).containsExactlyInAnyOrderElementsOf(ALL_BUT_DB5);
    List<DiscoveryResponse> eds = client.all(XdsType.EDS);
    assertThat(eds).hasSize(1);
    assertThat(names(eds.get(0).getResourcesList())).containsExactly("db4");
  }

  @Test
  void sotwStreamBehindBeyondTheLog_fallsBackToAFullCompare_withTheSameResult() throws Exception {
    SotwClient client = new SotwClient();
    runStreams();
    client.responses.clear();

    change(route(2, 20002, "10.1.0.2"));
    for (int i = 0; i < XdsSnapshot.STEPS_KEPT + 10; i++) {
      change(route(1, 20001, "10.3." + (i % 200) + ".1"));
    }
    runStreams();

    assertThat(client.responses).hasSize(1);
    assertThat(names(client.responses.get(0).getResourcesList())).containsExactlyInAnyOrder("db1", "db2");
    assertThat(client.endpoint("db2")).isEqualTo("10.1.0.2");
  }

  @Test
  void deltaStreamBehindByThreeVersions_isSentExactlyTheChangedAndRemovedResources() throws Exception {
    DeltaClient client = new DeltaClient();
    runStreams();
    assertThat(client.resources(XdsType.EDS)).hasSize(DATABASES);
    client.responses.clear();

    change(route(1, 20001, "10.1.0.1"));
    change(route(3, 20003, "10.1.0.3"));
    table = RoutingTable.of(table.databases().values().stream().filter(r -> !r.name().equals("db5")).toList());
    publisher.publish(table, ++version);
    runStreams();

    DeltaDiscoveryResponse eds = client.last(XdsType.EDS);
    assertThat(eds.getResourcesList().stream().map(Resource::getName)).containsExactlyInAnyOrder("db1", "db3");
    assertThat(eds.getRemovedResourcesList()).containsExactly("db5");
    DeltaDiscoveryResponse lds = client.last(XdsType.LDS);
    assertThat(lds.getResourcesList()).isEmpty();
    assertThat(lds.getRemovedResourcesList()).containsExactly("db5");
    assertThat(client.responses).hasSize(3); // EDS, LDS and CDS: each names only db5's removal or the changes
  }

  @Test
  void changedSince_isTheUnionOfThePublicationsSince_orNullBeyondTheLogOrTheBound() {
    XdsSnapshot s = XdsSnapshot.next(XdsSnapshot.EMPTY, table, 1);
    long first = s.version();
    RoutingTable t = table;
    for (int i = 0; i < 4; i++) {
      t = t.with(route(i, 20000 + i, "10.9.0." + i));
      s = XdsSnapshot.next(s, t, s.version() + 2); // versions need not be consecutive
    }
    assertThat(s.changedSince(s.version(), 100)).isEmpty();
    assertThat(s.changedSince(s.version() - 2, 100)).containsExactly("db3");
    assertThat(s.changedSince(first + 2, 100)).containsExactlyInAnyOrder("db1", "db2", "db3");
    assertThat(s.changedSince(first + 3, 100)).as("never published").isNull();
    assertThat(s.changedSince(first + 2, 2)).as("past the bound: look at everything").isNull();
    for (int i = 0; i < XdsSnapshot.STEPS_KEPT; i++) {
      t = t.with(route(0, 20000, "10.8.0." + (i % 200)));
      s = XdsSnapshot.next(s, t, s.version() + 1);
    }
    assertThat(s.changedSince(first + 2, 100)).as("beyond the log").isNull();
    assertThat(s.changedSince(s.version() - 5, 100)).containsExactly("db0");
  }

  private static List<String> names(List<Any> resources) {
    return resources.stream().map(StreamCatchUpTest::nameOf).toList();
  }

  private static String nameOf(Any any) {
    try {
      if (any.is(Listener.class)) {
        return any.unpack(Listener.class).getName();
      } else if (any.is(Cluster.class)) {
        return any.unpack(Cluster.class).getName();
      }
      return any.unpack(ClusterLoadAssignment.class).getClusterName();
    } catch (InvalidProtocolBufferException e) {
      throw new AssertionError(e);
    }
  }

  private static final Node NODE = Node.newBuilder().setId("n1").setCluster("app").build();
  /** Enough that a few changes stay under the bound past which a stream looks at everything (half of them). */
  private static final int DATABASES = 12;
  private static final List<String> ALL = IntStream.range(0, DATABASES).mapToObj(i -> "db" + i).toList();
  private static final List<String> ALL_BUT_DB5 = ALL.stream().filter(n -> !n.equals("db5")).toList();

  /** State of the world as Envoy speaks it: LDS and CDS wildcard, EDS by name, every response ACKed. */
  private final class SotwClient implements StreamObserver<DiscoveryResponse> {
    final List<DiscoveryResponse> responses = new CopyOnWriteArrayList<>();
    final java.util.Map<String, DiscoveryResponse> latest = new java.util.concurrent.ConcurrentHashMap<>();
    final StreamObserver<DiscoveryRequest> requests;

    SotwClient() {
      requests = AggregatedDiscoveryServiceGrpc.newStub(channel).streamAggregatedResources(this);
      requests.onNext(DiscoveryRequest.newBuilder().setNode(NODE).setTypeUrl(XdsType.LDS.typeUrl()).build());
      requests.onNext(DiscoveryRequest.newBuilder().setTypeUrl(XdsType.CDS.typeUrl()).build());
      requests.onNext(DiscoveryRequest.newBuilder().setTypeUrl(XdsType.EDS.typeUrl()).addAllResourceNames(ALL).build());
    }

    @Override
    public synchronized void onNext(DiscoveryResponse r) {
      responses.add(r);
      DiscoveryResponse before = latest.get(r.getTypeUrl());
      if (before != null && r.getTypeUrl().equals(XdsType.EDS.typeUrl())) {
        // Assignments come only when changed: merge, as Envoy keeps the ones not sent.
        java.util.Map<String, Any> merged = new java.util.TreeMap<>();
        before.getResourcesList().forEach(a -> merged.put(nameOf(a), a));
        r.getResourcesList().forEach(a -> merged.put(nameOf(a), a));
        latest.put(r.getTypeUrl(), r.toBuilder().clearResources().addAllResources(merged.values()).build());
      } else {
        latest.put(r.getTypeUrl(), r);
      }
      DiscoveryRequest.Builder ack = DiscoveryRequest.newBuilder().setTypeUrl(r.getTypeUrl())
          .setVersionInfo(r.getVersionInfo()).setResponseNonce(r.getNonce());
      if (r.getTypeUrl().equals(XdsType.EDS.typeUrl())) {
        ack.addAllResourceNames(ALL);
      }
      requests.onNext(ack.build());
    }

    @Override
    public void onError(Throwable t) {}

    @Override
    public void onCompleted() {}

    List<String> names(XdsType type) {
      return StreamCatchUpTest.names(latest.get(type.typeUrl()).getResourcesList());
    }

    DiscoveryResponse last(XdsType type) {
      List<DiscoveryResponse> all = all(type);
      assertThat(all).as(type + " responses").isNotEmpty();
      return all.get(all.size() - 1);
    }

    List<DiscoveryResponse> all(XdsType type) {
      return responses.stream().filter(r -> r.getTypeUrl().equals(type.typeUrl())).collect(Collectors.toList());
    }

    String endpoint(String database) throws InvalidProtocolBufferException {
      for (Any a : latest.get(XdsType.EDS.typeUrl()).getResourcesList()) {
        ClusterLoadAssignment cla = a.unpack(ClusterLoadAssignment.class);
        if (cla.getClusterName().equals(database)) {
          return cla.getEndpoints(0).getLbEndpoints(0).getEndpoint().getAddress().getSocketAddress().getAddress();
        }
      }
      throw new AssertionError("no assignment for " + database);
    }

    int listenPort(String database) throws InvalidProtocolBufferException {
      for (Any a : latest.get(XdsType.LDS.typeUrl()).getResourcesList()) {
        Listener l = a.unpack(Listener.class);
        if (l.getName().equals(database)) {
          return l.getAddress().getSocketAddress().getPortValue();
        }
      }
      throw new AssertionError("no listener for " + database);
    }
  }

  /** Delta ADS: LDS and CDS wildcard, EDS by name, every response ACKed. */
  private final class DeltaClient implements StreamObserver<DeltaDiscoveryResponse> {
    final List<DeltaDiscoveryResponse> responses = new CopyOnWriteArrayList<>();
    final java.util.Map<XdsType, java.util.Set<String>> have = new java.util.concurrent.ConcurrentHashMap<>();
    final StreamObserver<DeltaDiscoveryRequest> requests;

    DeltaClient() {
      requests = AggregatedDiscoveryServiceGrpc.newStub(channel).deltaAggregatedResources(this);
      requests.onNext(DeltaDiscoveryRequest.newBuilder().setNode(NODE).setTypeUrl(XdsType.LDS.typeUrl()).build());
      requests.onNext(DeltaDiscoveryRequest.newBuilder().setTypeUrl(XdsType.CDS.typeUrl()).build());
      requests.onNext(DeltaDiscoveryRequest.newBuilder().setTypeUrl(XdsType.EDS.typeUrl())
          .addAllResourceNamesSubscribe(ALL).build());
    }

    @Override
    public void onNext(DeltaDiscoveryResponse r) {
      responses.add(r);
      XdsType type = XdsType.ofTypeUrl(r.getTypeUrl()).orElseThrow();
      java.util.Set<String> names = have.computeIfAbsent(type, t -> java.util.concurrent.ConcurrentHashMap.newKeySet());
      r.getResourcesList().forEach(res -> names.add(res.getName()));
      names.removeAll(r.getRemovedResourcesList());
      requests.onNext(DeltaDiscoveryRequest.newBuilder().setTypeUrl(r.getTypeUrl()).setResponseNonce(r.getNonce())
          .build());
    }

    @Override
    public void onError(Throwable t) {}

    @Override
    public void onCompleted() {}

    java.util.Set<String> resources(XdsType type) {
      return have.getOrDefault(type, java.util.Set.of());
    }

    DeltaDiscoveryResponse last(XdsType type) {
      List<DeltaDiscoveryResponse> all = new ArrayList<>();
      responses.stream().filter(r -> r.getTypeUrl().equals(type.typeUrl())).forEach(all::add);
      assertThat(all).as(type + " responses").isNotEmpty();
      return all.get(all.size() - 1);
    }
  }
}
