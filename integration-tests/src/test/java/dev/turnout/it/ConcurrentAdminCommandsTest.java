package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.FinalizeMigrationRequest;
import dev.turnout.admin.v1.RollbackMigrationRequest;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Operators calling the admin API at the same moment, each on a connection of their own, against a real control
 * plane on real PostgreSQL 15 servers: one migration, one owner, so the calls are decided one after the other
 * and the migration ends as one of them said, never as both.
 */
class ConcurrentAdminCommandsTest {
  @TempDir Path dir;
  MigrationFixture f;
  final List<ManagedChannel> channels = new ArrayList<>();
  final ExecutorService operators = Executors.newCachedThreadPool();

  @AfterEach
  void tearDown() throws Exception {
    operators.shutdownNow();
    channels.forEach(ManagedChannel::shutdownNow);
    if (f != null) {
      f.close();
    }
  }

  /** An operator's own connection to the admin API. */
  private AdminGrpc.AdminBlockingStub operator() {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", f.plane.adminPort()).usePlaintext().build();
    channels.add(channel);
    return AdminGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  /** What one call answered: its phase, or the status it was refused with. */
  record Answer(String phase, Status.Code code, String description) {
    boolean ok() {
      return code == Status.Code.OK;
    }
  }

  /** Runs every call at once (released together by a barrier once each has its connection). */
  private List<Answer> atOnce(List<Callable<dev.turnout.admin.v1.Migration>> calls) throws Exception {
    CyclicBarrier together = new CyclicBarrier(calls.size());
    List<Future<Answer>> answers = new ArrayList<>();
    for (Callable<dev.turnout.admin.v1.Migration> call : calls) {
      answers.add(operators.submit(() -> {
        together.await(10, TimeUnit.SECONDS);
        try {
          return new Answer(call.call().getPhase(), Status.Code.OK, "");
        } catch (StatusRuntimeException e) {
          return new Answer("", e.getStatus().getCode(), e.getStatus().getDescription());
        }
      }));
    }
    List<Answer> out = new ArrayList<>();
    for (Future<Answer> a : answers) {
      out.add(a.get(90, TimeUnit.SECONDS));
    }
    return out;
  }

  /** How many times {@code m} entered {@code phase} (notes made in it do not count). */
  private static long count(Migration m, Phase phase) {
    long n = 0;
    for (int i = 0; i < m.history().size(); i++) {
      if (m.history().get(i).phase() == phase && (i == 0 || m.history().get(i - 1).phase() != phase)) {
        n++;
      }
    }
    return n;
  }

  @Test
  void threeOperatorsRollingBackAHaltedMigrationAtOnce_rollItBackOnce() throws Exception {
    AtomicBoolean shiftFails = new AtomicBoolean(true);
    f = new MigrationFixture(dir, (next, point) -> {
      if (next.phase() == Phase.SHIFTING && point == Migrator.Failpoint.Point.AFTER_SAVE && shiftFails.getAndSet(false)) {
        throw new IllegalStateException("simulated: the route to the target could not be published");
      }
    });
    Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
    Migration halted = f.awaitPhase(started.id(), p -> p == Phase.HALTED || p.isTerminal(), Duration.ofSeconds(60));
    assertThat(halted.phase()).as(MigrationFixture.history(halted)).isEqualTo(Phase.HALTED);

    RollbackMigrationRequest rollback = RollbackMigrationRequest.newBuilder().setId(started.id())
        .setConsentToLoseWrites(true).build();
    List<AdminGrpc.AdminBlockingStub> three = List.of(operator(), operator(), operator());
    List<Answer> answers = atOnce(three.stream()
        .<Callable<dev.turnout.admin.v1.Migration>>map(op -> () -> op.rollbackMigration(rollback)).toList());

    Migration done = f.awaitPhase(started.id(), Phase::isTerminal, Duration.ofSeconds(60));
    assertThat(answers).as("each asked for what one of them started").allMatch(Answer::ok);
    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(count(done, Phase.ROLLING_BACK)).as("one rollback: " + MigrationFixture.history(done)).isEqualTo(1);
    assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.source.port());
    assertThat(f.plane.routing().table().get("app").orElseThrow().endpoint())
        .contains(new Endpoint("127.0.0.1", f.source.port()));
    assertThat(done.revision()).as("every save after the last one read").isEqualTo(
        new dev.turnout.controlplane.store.FileMigrationStore(dir.resolve("store")).loadAll().get(0).revision());
  }

  @Test
  void aRollbackAndAFinalizeOfACompletedMigrationAtOnce_oneWins_andTheOtherIsRefusedSayingWhy() throws Exception {
    f = new MigrationFixture(dir, Migrator.Failpoint.NONE);
    Migration started = f.migrator().start(f.spec(Duration.ofSeconds(1), Duration.ofSeconds(60)));
    Migration completed = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
        Duration.ofSeconds(60));
    assertThat(completed.phase()).as(MigrationFixture.history(completed)).isEqualTo(Phase.COMPLETED);

    AdminGrpc.AdminBlockingStub finalizer = operator();
    AdminGrpc.AdminBlockingStub rollbacker = operator();
    List<Answer> answers = atOnce(List.of(
        () -> finalizer.finalizeMigration(FinalizeMigrationRequest.newBuilder().setId(started.id()).build()),
        () -> rollbacker.rollbackMigration(RollbackMigrationRequest.newBuilder().setId(started.id())
            .setConsentToLoseWrites(true).build())));
    Answer finalized = answers.get(0);
    Answer rolledBack = answers.get(1);

    assertThat(finalized.ok() ^ rolledBack.ok()).as("exactly one wins: " + answers).isTrue();
    Migration done = f.awaitPhase(started.id(), p -> p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(60));
    if (finalized.ok()) {
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.FINALIZED);
      assertThat(rolledBack.code()).isEqualTo(Status.Code.FAILED_PRECONDITION);
      assertThat(rolledBack.description()).contains("is finalized: the source is no longer a way back");
      assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.target.port());
    } else {
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
      assertThat(finalized.code()).isEqualTo(Status.Code.FAILED_PRECONDITION);
      assertThat(finalized.description()).containsAnyOf("only a COMPLETED migration can be finalized",
          "has a rollback requested");
      assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.source.port());
    }
    assertThat(count(done, Phase.FINALIZED) + count(done, Phase.ROLLING_BACK)).as(MigrationFixture.history(done))
        .isEqualTo(1);
  }
}
