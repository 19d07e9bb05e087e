package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.controlplane.demo.Writer;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.bake.Bake;
import dev.turnout.migrator.bake.Limit;
import dev.turnout.migrator.bake.Signal;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bake on real PostgreSQL 15 servers: the baseline is read from the source's pg_stat_database while validating
 * under a writer, the promoted target's after the cutover; a bake that holds completes with both side by side in
 * the history, and a target that rolls back far more than the source did rolls the migration back by itself, naming
 * the signal, over the reverse replication made at promotion: every write the target took is on the source.
 */
class BakeEndToEndTest {
  @TempDir Path dir;

  MigrationFixture f;

  @BeforeEach
  void setUp() throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
  }

  @AfterEach
  void tearDown() throws Exception {
    f.close();
  }

  private Migration.Spec baking(Duration bake) {
    Migration.Spec spec = f.spec(Duration.ofSeconds(3), Duration.ofSeconds(60));
    return new Migration.Spec(spec.database(), spec.source(), spec.target(), spec.options().withBake(Bake.of(bake)));
  }

  /** A bake whose commits floor is 0.1x-10 instead of the default 0.5x-10. */
  private Migration.Spec bakingWithLowCommitsFloor(Duration bake) {
    Migration.Spec spec = baking(bake);
    return new Migration.Spec(spec.database(), spec.source(), spec.target(), spec.options().withBake(
        spec.options().bake().withLimits(java.util.Map.of(Signal.COMMITS, Limit.parse("0.1x-10")))));
  }

  @Test
  void aBakeOfAFewSecondsUnderAWriter_completes_withTheBaselineAndTheBakesFiguresInTheHistory() throws Exception {
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(500);
      // One closed-loop writer's commits per second are one over its latency, and a just-promoted target writes
      // full pages after its end-of-recovery checkpoint: on a loaded 2-core machine its rate halved (CI, 6003/s
      // against 12066/s) and the default floor (0.5x-10) called that a breach. This test is about a bake that holds,
      // so it sets the floor the way an operator who knows the workload would.
      Migration started = f.plane.migrator().start(bakingWithLowCommitsFloor(Duration.ofSeconds(6)));
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(90));
      writer.close();

      String history = MigrationFixture.history(done);
      assertThat(done.phase()).as(history).isEqualTo(Phase.COMPLETED);
      assertThat(done.history().stream().map(Migration.Event::phase).distinct())
          .as(history).endsWith(Phase.VERIFYING, Phase.BAKING, Phase.COMPLETED);
      assertThat(done.progress().baseline()).isPresent();
      assertThat(done.progress().baseline().get().byLabel().get("commits")).as("the writer's commits, per second")
          .isGreaterThan(10.0);
      assertThat(history).contains("baseline over ").contains("on the source (the whole server): commits ")
          .contains("latency not available") // pg_stat_statements is not loaded on these servers
          .containsPattern("baked [0-9.]+ s: baseline vs target: commits [0-9.]+/s vs [0-9.]+/s, rollbacks");
      System.out.println("bake: " + done.history().stream().filter(e -> e.note().startsWith("baked "))
          .findFirst().orElseThrow().note());
    }
  }

  @Test
  void aTargetThatRollsBackALotDuringTheBake_rollsTheMigrationBackByItself_losingNoWrite() throws Exception {
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong rolledBack = new AtomicLong();
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(500);
      // The storm below takes a core from the writer, whose commits per second then fell to a third of the baseline
      // in one CI run (3277/s against 9211/s) and breached the default commits floor before the rollbacks signal
      // this test is about: the floor is set as in the test above.
      Migration started = f.plane.migrator().start(bakingWithLowCommitsFloor(Duration.ofSeconds(60)));
      f.awaitPhase(started.id(), p -> p == Phase.BAKING || p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(90));
      // An application gone wrong on the new primary: every transaction it begins, it rolls back.
      Thread storm = new Thread(() -> {
        try (Connection c = DriverManager.getConnection(f.target.jdbcUrl())) {
          c.setAutoCommit(false);
          while (!stop.get()) {
            try (Statement s = c.createStatement()) {
              s.execute("insert into writes(seq) values (-1)");
            }
            c.rollback();
            rolledBack.incrementAndGet();
          }
        } catch (java.sql.SQLException e) {
          if (!stop.get() && !e.getMessage().contains("terminat")) { // the rollback fences the target: session ended
            throw new IllegalStateException(e);
          }
        }
      }, "rollback-storm");
      storm.start();
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(90));
      stop.set(true);
      Thread.sleep(300); // the writer goes on, on the source
      storm.join(10_000);
      writer.close();

      String history = MigrationFixture.history(done);
      assertThat(done.phase()).as(history).isEqualTo(Phase.ROLLED_BACK);
      assertThat(done.progress().error().orElseThrow()).as(history).contains("bake breach on the target")
          .containsPattern("rollbacks [0-9.]+/s \\(baseline [0-9.]+/s, allowed [0-9.]+/s by 2x\\+1\\)");
      assertThat(history).contains("rolling back over the reverse replication")
          .contains("with every write the target took");
      assertThat(f.plane.routing().table().get("app").orElseThrow().endpoint()).as("routed back to the source")
          .contains(new dev.turnout.envoy.Endpoint("127.0.0.1", f.source.port()));
      assertThat(MigrationFixture.missing(writer.acknowledged(), MigrationFixture.seqs(f.source)))
          .as("every acknowledged commit is on the source, those the target took during the bake included").isEmpty();
      System.out.println("rolled back by itself after " + rolledBack.get() + " rollbacks on the target: "
          + done.progress().error().get());
    }
  }

  /** Envoy's stats sink, written here from its protos: one node's cumulative connect failures to {@code app}. */
  private io.grpc.stub.StreamObserver<io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage> envoySink(
      io.grpc.ManagedChannel channel) {
    return io.envoyproxy.envoy.service.metrics.v3.MetricsServiceGrpc.newStub(channel).streamMetrics(
        new io.grpc.stub.StreamObserver<>() {
          @Override
          public void onNext(io.envoyproxy.envoy.service.metrics.v3.StreamMetricsResponse value) {}

          @Override
          public void onError(Throwable t) {}

          @Override
          public void onCompleted() {}
        });
  }

  private static io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage connectFailures(long value,
      boolean first) {
    io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage.Builder m =
        io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage.newBuilder().addEnvoyMetrics(
            io.prometheus.client.Metrics.MetricFamily.newBuilder().setName("cluster.app.upstream_cx_connect_fail")
                .setType(io.prometheus.client.Metrics.MetricType.COUNTER).addMetric(
                    io.prometheus.client.Metrics.Metric.newBuilder().setCounter(
                        io.prometheus.client.Metrics.Counter.newBuilder().setValue(value))));
    if (first) {
      m.getIdentifierBuilder().setNode(io.envoyproxy.envoy.config.core.v3.Node.newBuilder().setId("envoy-app-2")
          .setCluster("app"));
    }
    return m.build();
  }

  @Test
  void sidecarsThatFailToConnectToTheTargetDuringTheBake_rollTheMigrationBackByItself_namingConnectFailures()
      throws Exception {
    io.grpc.ManagedChannel channel = io.grpc.netty.NettyChannelBuilder.forAddress("127.0.0.1", f.xdsPort)
        .usePlaintext().build();
    try {
      // The sidecar's first flush comes one interval after it starts: the baseline's first read must follow it.
      Eventually.until("the sidecar's counters at the control plane", Duration.ofSeconds(10),
          () -> !f.plane.xds().sidecarStats().nodes().isEmpty());
      Migration started = f.plane.migrator().start(baking(Duration.ofSeconds(60)));
      Migration baking = f.awaitPhase(started.id(), p -> p == Phase.BAKING || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(90));
      assertThat(baking.progress().baseline().orElseThrow().byLabel())
          .as("the built-in sidecar streamed its counters (none failed) while validating: a baseline of zero, present")
          .containsEntry("connect_failures", 0.0).containsEntry("hold_timeouts", 0.0);
      // An Envoy in front of the target whose connections to it fail: 40 more since its first flush.
      io.grpc.stub.StreamObserver<io.envoyproxy.envoy.service.metrics.v3.StreamMetricsMessage> envoy =
          envoySink(channel);
      envoy.onNext(connectFailures(2, true));
      Thread.sleep(200);
      envoy.onNext(connectFailures(42, false));
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(90));

      String history = MigrationFixture.history(done);
      assertThat(done.phase()).as(history).isEqualTo(Phase.ROLLED_BACK);
      assertThat(done.progress().error().orElseThrow()).as(history).contains("bake breach on the target")
          .contains("connect_failures 40 (baseline 0.00/s, allowed 5 by 2x+5)");
      assertThat(history).contains("rolling back over the reverse replication");
      assertThat(f.plane.routing().table().get("app").orElseThrow().endpoint()).as("routed back to the source")
          .contains(new dev.turnout.envoy.Endpoint("127.0.0.1", f.source.port()));
      System.out.println("rolled back by itself: " + done.progress().error().get());
    } finally {
      channel.shutdownNow();
    }
  }
}
