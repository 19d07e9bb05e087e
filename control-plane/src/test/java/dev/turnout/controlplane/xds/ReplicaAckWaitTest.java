package dev.turnout.controlplane.xds;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.store.SharedRoutes;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * One of several replicas sharing a store: a change waits for every live replica's report, and each version it
 * publishes it reports for its own sidecars.
 */
class ReplicaAckWaitTest {
  private static final DatabaseRoute ORDERS =
      new DatabaseRoute("orders", 16432, Optional.of(Endpoint.parse("10.0.0.2:5432")), Set.of());
  private static final Duration ACK_TIMEOUT = Duration.ofSeconds(5);

  /** The store's side, in memory: the reports this replica writes, and the wait it is asked for. */
  private static final class Replicas implements SharedRoutes {
    @Override
    public void publishSidecarCounters(String incarnation,
        java.util.Map<String, dev.turnout.migrator.bake.Workload.Sidecars> totals) {}

    @Override
    public java.util.Optional<dev.turnout.migrator.bake.Workload.Sidecars> sidecarCounters(
        java.util.Collection<String> databases, String incarnation) {
      return java.util.Optional.empty();
    }

    final List<String> reported = new ArrayList<>();
    final CompletableFuture<ImmutableList<String>> reports = new CompletableFuture<>();
    Duration waitedFor;

    @Override public void onChange(Runnable listener) {}

    @Override
    public void report(String database, long version, ImmutableList<String> nodes, String failure) {
      reported.add(database + "@" + version + " " + nodes + " " + failure);
    }

    @Override public String replicaId() { return "cp-a"; }
    @Override public ImmutableList<Report> reports() { return ImmutableList.of(); }
    @Override public void publishNodes(List<NodeRow> nodes) {}
    @Override public ImmutableList<NodeRow> nodes() { return ImmutableList.of(); }

    @Override
    public CompletableFuture<ImmutableList<String>> awaitReports(String database, long version, Duration timeout) {
      waitedFor = timeout;
      return reports;
    }
  }

  /** This replica's own sidecars, answering as the test says. */
  private static AckWait ownSidecars(CompletableFuture<AckTracker.AckReport> answer) {
    return new AckWait() {
      @Override
      public CompletableFuture<AckTracker.AckReport> await(DatabaseRoute route, long version) {
        return answer;
      }

      @Override
      public void published(DatabaseRoute route, long version) {}
    };
  }

  @Test
  void aChange_completesWithEveryNodeTheLiveReplicasReported_givingLateReplicasTimeBeyondTheAckTimeout()
      throws Exception {
    Replicas replicas = new Replicas();
    var wait = new ReplicaAckWait(replicas, ownSidecars(new CompletableFuture<>()), Runnable::run, ACK_TIMEOUT);

    var acked = wait.await(ORDERS, 7);
    replicas.reports.complete(ImmutableList.of("node-a", "node-b"));

    AckTracker.AckReport report = acked.get(1, TimeUnit.SECONDS);
    assertThat(report.database()).isEqualTo("orders");
    assertThat(report.version()).isEqualTo(7);
    assertThat(report.ackedBy()).containsExactly("node-a", "node-b");
    assertThat(replicas.waitedFor).isEqualTo(ACK_TIMEOUT.plusSeconds(10));
  }

  @Test
  void aReplicaThatReportsAFailure_failsTheChange() {
    Replicas replicas = new Replicas();
    var wait = new ReplicaAckWait(replicas, ownSidecars(new CompletableFuture<>()), Runnable::run, ACK_TIMEOUT);

    var acked = wait.await(ORDERS, 7);
    replicas.reports.completeExceptionally(new IllegalStateException("failed on cp-b: node-picky NACKed"));

    assertThatThrownBy(() -> acked.get(1, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
        .hasMessageContaining("cp-b").hasMessageContaining("node-picky");
  }

  @Test
  void aVersionPublishedHere_isReportedWithTheSidecarsHereThatAckedIt() {
    Replicas replicas = new Replicas();
    CompletableFuture<AckTracker.AckReport> own = new CompletableFuture<>();
    var wait = new ReplicaAckWait(replicas, ownSidecars(own), Runnable::run, ACK_TIMEOUT);

    wait.published(ORDERS, 7);
    assertThat(replicas.reported).as("nothing before the sidecars answered").isEmpty();
    own.complete(new AckTracker.AckReport("orders", 7, ImmutableList.of("node-a"), Duration.ofMillis(3)));

    assertThat(replicas.reported).containsExactly("orders@7 [node-a] ");
  }

  @Test
  void aVersionTheSidecarsHereDidNotAck_isReportedAsThisReplicasFailure_namingThem() {
    Replicas replicas = new Replicas();
    CompletableFuture<AckTracker.AckReport> own = new CompletableFuture<>();
    var wait = new ReplicaAckWait(replicas, ownSidecars(own), Runnable::run, ACK_TIMEOUT);

    wait.published(ORDERS, 7);
    own.completeExceptionally(new RouteNotAcknowledgedException("orders", 7, "was rejected",
        ImmutableList.of(new RouteNotAcknowledgedException.Straggler("node-picky", "checkout", 6, "bad port"))));

    assertThat(replicas.reported).singleElement().asString()
        .startsWith("orders@7 [] replica's route of database 'orders' at version 7 was rejected")
        .contains("node-picky (checkout, at version 6): NACK: bad port");
  }
}
