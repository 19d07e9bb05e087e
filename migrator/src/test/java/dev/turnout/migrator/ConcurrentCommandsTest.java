package dev.turnout.migrator;

import static dev.turnout.migrator.Harness.SOURCE;
import static dev.turnout.migrator.Harness.TARGET;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Two operators acting on one migration at once. Each race is forced: the first command is stopped at the point
 * where it has read the migration and is about to save, the second is let go, then the first. Whatever the
 * order, the store must see one legal sequence of phases, and the servers one undo or one finalize.
 */
class ConcurrentCommandsTest {
  final Harness h = new Harness();
  final CountDownLatch reached = new CountDownLatch(1);
  final CountDownLatch release = new CountDownLatch(1);

  @AfterEach
  void letGo() {
    release.countDown();
  }

  /** An operator's command on its own thread, keeping what it returned or threw. */
  static final class Operator extends Thread {
    interface Command {
      Migration run() throws Exception;
    }

    final AtomicReference<Migration> answer = new AtomicReference<>();
    final AtomicReference<Exception> refusal = new AtomicReference<>();

    Operator(String name, Command command) {
      super(() -> {
      }, name);
      this.command = command;
    }

    private final Command command;

    @Override
    public void run() {
      try {
        answer.set(command.run());
      } catch (Exception e) {
        refusal.set(e);
      }
    }

    /** Waits until this operator has finished or is parked waiting for the migration's owner. */
    Operator finishedOrWaiting() throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (isAlive() && getState() != State.WAITING && getState() != State.BLOCKED) {
        assertThat(System.nanoTime()).as(getName() + " neither finished nor waits").isLessThan(deadline);
        Thread.sleep(1);
      }
      return this;
    }

    void finish() throws InterruptedException {
      join(TimeUnit.SECONDS.toMillis(10));
      assertThat(isAlive()).as(getName() + " finished").isFalse();
    }
  }

  /** The first thread to reach {@code phase} at {@code point} stops there until released. */
  private void stopFirstAt(Phase phase, Migrator.Failpoint.Point point) {
    h.failpoint = (next, at) -> {
      if (next.phase() == phase && at == point && reached.getCount() > 0) {
        reached.countDown();
        release.await();
      }
    };
  }

  private void awaitReached() throws InterruptedException {
    assertThat(reached.await(10, TimeUnit.SECONDS)).as("the first command reached its save").isTrue();
  }

  /** Every phase the store saved follows from the one before (a note keeps it): nothing was overwritten. */
  private void assertTheStoreSawOneLegalSequence(String id) {
    List<Phase> saved = h.store.phasesSaved(id);
    for (int i = 1; i < saved.size(); i++) {
      Phase from = saved.get(i - 1);
      Phase to = saved.get(i);
      if (from != to) {
        int at = i;
        org.assertj.core.api.Assertions.assertThatCode(() -> from.checkTransition(to))
            .as("save " + (at + 1) + " of " + saved).doesNotThrowAnyException();
      }
    }
  }

  private Migration halted() throws Exception {
    h.router.nack("route app to " + TARGET, "sidecar app-1 NACKed");
    Migration m = h.run();
    assertThat(m.phase()).isEqualTo(Phase.HALTED);
    return m;
  }

  @Test
  void twoOperatorsRollingBackAHaltedMigrationAtOnce_startOneRunner_andUndoOnce() throws Exception {
    Migration m = halted();
    stopFirstAt(Phase.ROLLING_BACK, Migrator.Failpoint.Point.BEFORE_SAVE);

    Operator first = new Operator("first operator", () -> h.migrator.rollback(m.id(), true));
    first.start();
    awaitReached();
    Operator second = new Operator("second operator", () -> h.migrator.rollback(m.id(), true));
    second.start();
    second.finishedOrWaiting();
    release.countDown();
    first.finish();
    second.finish();

    assertTheStoreSawOneLegalSequence(m.id());
    Migration back = h.now(m.id());
    assertThat(back.phase()).as(Harness.history(back)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.store.phasesSaved(m.id())).as("one rollback").containsOnlyOnce(Phase.ROLLING_BACK);
    assertThat(h.journal.starting("route app to " + SOURCE)).as("routed back once").hasSize(1);
    assertThat(h.servers.unfences()).isEqualTo(1);
    assertThat(first.refusal.get()).isNull();
    assertThat(second.refusal.get()).as("the second asks for what is already under way").isNull();
  }

  @Test
  void aRollbackThatReadACompletedMigration_cannotOverwriteAFinalizeThatRacedIt() throws Exception {
    Migration m = h.run();
    stopFirstAt(Phase.ROLLING_BACK, Migrator.Failpoint.Point.BEFORE_SAVE);

    Operator rollback = new Operator("rollback", () -> h.migrator.rollback(m.id(), true));
    rollback.start();
    awaitReached();
    Operator finalize = new Operator("finalize", () -> h.migrator.finalizeMigration(m.id()));
    finalize.start();
    finalize.finishedOrWaiting();
    release.countDown();
    rollback.finish();
    finalize.finish();

    assertTheStoreSawOneLegalSequence(m.id());
    assertOneWon(m.id(), rollback, finalize);
  }

  @Test
  void aFinalizeThatReadACompletedMigration_cannotBeOverwrittenByARollbackThatRacedIt() throws Exception {
    Migration m = h.run();
    h.store.beforeSave(saving -> {
      if (saving.phase() == Phase.FINALIZED && reached.getCount() > 0) {
        reached.countDown();
        release.await();
      }
    });

    Operator finalize = new Operator("finalize", () -> h.migrator.finalizeMigration(m.id()));
    finalize.start();
    awaitReached();
    Operator rollback = new Operator("rollback", () -> h.migrator.rollback(m.id(), true));
    rollback.start();
    rollback.finishedOrWaiting();
    release.countDown();
    finalize.finish();
    rollback.finish();

    assertTheStoreSawOneLegalSequence(m.id());
    assertOneWon(m.id(), rollback, finalize);
  }

  @Test
  void aRollbackAskedJustBeforePromotion_isTakenBeforeIt_andNothingIsPromoted() throws Exception {
    h.failpoint = (next, point) -> {
      if (next.phase() == Phase.PROMOTING && point == Migrator.Failpoint.Point.BEFORE_SAVE && reached.getCount() > 0) {
        reached.countDown();
        try {
          h.migrator.rollback(next.id(), false); // still CATCHING_UP: no consent needed
        } catch (MigrationException e) {
          throw new IllegalStateException(e);
        }
      }
    };

    Migration m = h.run();

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.store.phasesSaved(m.id())).doesNotContain(Phase.PROMOTING);
    assertThat(h.servers.promotions()).isZero();
    assertThat(h.router.endpoint("app")).isEqualTo(SOURCE.toString());
    assertTheStoreSawOneLegalSequence(m.id());
  }

  @Test
  void aFinalizeWhileARollbackWaitsForTheRunner_isRefused_andTheRollbackHappens() throws Exception {
    AtomicReference<Exception> finalizeRefused = new AtomicReference<>();
    h.failpoint = (next, point) -> {
      if (next.phase() == Phase.COMPLETED && point == Migrator.Failpoint.Point.AFTER_SAVE) {
        try {
          h.migrator.rollback(next.id(), true); // the runner has not yet stopped: it is asked to roll back
          h.migrator.finalizeMigration(next.id());
        } catch (MigrationException e) {
          finalizeRefused.set(e);
        }
      }
    };

    Migration m = h.run();

    assertThat(finalizeRefused.get()).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("has a rollback requested; it cannot be finalized");
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.servers.holdReleased()).isFalse();
    assertTheStoreSawOneLegalSequence(m.id());
  }

  @Test
  void aProcessHoldingAnOlderRevision_cannotRollBack_startsNoRunner_isToldBothRevisions_andRereads() throws Exception {
    Migration m = halted();
    Migrator newLeader = h.anotherProcess();
    newLeader.rollback(m.id(), true);
    Migration back = newLeader.get(m.id()).orElseThrow();
    assertThat(back.phase()).isEqualTo(Phase.ROLLED_BACK);

    assertThatThrownBy(() -> h.migrator.rollback(m.id(), true)).isInstanceOf(RevisionConflictException.class)
        .hasMessage(m + " changed meanwhile: this change to ROLLING_BACK was read at revision " + m.revision()
            + ", the store holds revision " + back.revision() + " (ROLLED_BACK); nothing was saved, read it again")
        .satisfies(e -> assertThat(((MigrationConflictException) e).kind())
            .isEqualTo(MigrationConflictException.Kind.ABORTED));
    assertThat(h.journal.starting("route app to " + SOURCE)).as("one rollback ran").hasSize(1);
    assertThat(h.store.stored(m.id())).isEqualTo(back);
    assertThat(h.now(m.id())).as("it reads the store's revision for the next command").isEqualTo(back);
    assertThat(h.migrator.rollback(m.id(), true)).isEqualTo(back);
    assertTheStoreSawOneLegalSequence(m.id());
  }

  @Test
  void aRunnerWhoseMigrationAnotherWriterMovedOn_stopsActing() throws Exception {
    h.clock.schedule(Duration.ofSeconds(2), () -> {
      Migration stored = h.store.stored(h.onlyId());
      try {
        h.store.writeAsAnotherProcess(stored.note(h.clock.instant(), "written by another process"));
      } catch (MigrationException e) {
        throw new IllegalStateException(e);
      }
    });

    Migration m = h.run();

    assertThat(h.store.stored(m.id()).history()).last()
        .satisfies(e -> assertThat(e.note()).isEqualTo("written by another process"));
    assertThat(h.journal.lines()).as("stopped before the drain").isEmpty();
    assertThat(h.store.phasesSaved(m.id())).doesNotContain(Phase.VALIDATED);
  }

  /** Either the finalize or the rollback happened, wholly, and the other was refused saying why. */
  private void assertOneWon(String id, Operator rollback, Operator finalize) {
    Migration end = h.now(id);
    assertThat(h.store.stored(id)).isEqualTo(end);
    if (end.phase() == Phase.FINALIZED) {
      assertThat(rollback.refusal.get()).isInstanceOf(MigrationConflictException.class)
          .hasMessageContaining("is finalized");
      assertThat(h.journal.lines()).as("the source was never given back").noneMatch(l -> l.startsWith("unfence")
          || l.equals("route app to " + SOURCE));
      assertThat(h.servers.fenced()).isTrue();
    } else {
      assertThat(end.phase()).as(Harness.history(end)).isEqualTo(Phase.ROLLED_BACK);
      assertThat(finalize.refusal.get()).isInstanceOf(MigrationConflictException.class)
          .hasMessageContaining("only a COMPLETED migration can be finalized");
      assertThat(h.servers.holdReleased()).as("the source's WAL kept").isFalse();
      assertThat(h.router.endpoint("app")).isEqualTo(SOURCE.toString());
    }
  }
}
