package dev.turnout.migrator;

import static dev.turnout.migrator.Harness.SOURCE;
import static dev.turnout.migrator.Harness.TARGET;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.migrator.ScriptedPlatform.When;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * What a migration does when something goes wrong, phase by phase: before promotion it rolls back (undoing only
 * what it did); after promotion it halts for an operator, whose rollback then needs consent; a deadline is a
 * failure like any other; a process that lost the leadership stops acting.
 */
class FailurePolicyTest {
  final Harness h = new Harness();

  private void assertRolledBackLeavingTheSourceRoutedAndOpen(Migration m) {
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.router.endpoint("app")).as("routed back").isEqualTo(SOURCE.toString());
    assertThat(h.servers.fenced()).as("unfenced").isFalse();
    assertThat(h.servers.refusedRoles()).as("every login restored").isEmpty();
    assertThat(h.servers.promoted()).isFalse();
    assertThat(h.servers.targetArmed()).as("the target's read-only default reset").isFalse();
  }

  private void assertNothingWasTouched(Migration m) {
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(m.history().get(m.history().size() - 1).note()).startsWith("nothing to undo");
    assertThat(h.journal.lines()).as("no route change, no action on either server")
        .noneMatch(l -> l.startsWith("drain") || l.startsWith("route") || l.startsWith("fence")
            || l.startsWith("unfence"));
  }

  // ---- before promotion: roll back

  @Test
  void aBlockingPreflightFinding_rollsBack_withNothingToUndo_namingTheFinding() throws Exception {
    h.servers.preflightReads(f -> new dev.turnout.migrator.check.ServerFacts(
        new dev.turnout.migrator.check.ServerFacts.Source(f.source().identity(), f.source().timeline(),
            f.source().settings(), f.source().extensions(), com.google.common.collect.ImmutableList.of("public.scratch")),
        f.target().map(t -> new dev.turnout.migrator.check.ServerFacts.Target(
            new dev.turnout.migrator.check.ServerFacts.Identity(t.identity().host(), t.identity().port(), true, "7302"),
            t.settings(), t.availableExtensions(), t.receiver())),
        f.logicalSlots(), f.fence()));

    Migration m = h.run();

    assertNothingWasTouched(m);
    assertThat(m.progress().error()).contains(
        "preflight failed for database 'app': same system identifier: source 7301, target 7302");
    assertThat(m.history()).anySatisfy(e -> assertThat(e.note()).startsWith("preflight warn unlogged tables"));
  }

  @Test
  void aSourceThatStopsAnsweringWhileReplicating_rollsBack_withNothingToUndo() throws Exception {
    h.servers.fail("sample", When.BEFORE, Integer.MAX_VALUE, "connection to the source refused");

    Migration m = h.run();

    assertNothingWasTouched(m);
    assertThat(Harness.phases(m)).contains(Phase.REPLICATING);
  }

  @Test
  void aTargetThatNeverKeepsUp_rollsBackAtTheReplicatingDeadline() throws Exception {
    h.servers.lag(() -> 64L << 20);

    Migration m = h.run();

    assertNothingWasTouched(m);
    assertThat(m.progress().error()).get().asString().contains("deadline of REPLICATING (PT1M) passed waiting for"
        + " the target to keep up (lag " + (64L << 20) + " bytes > " + (16L << 20) + ")");
  }

  @Test
  void aDrainThatASidecarNacks_rollsBack_routingBackToTheSource() throws Exception {
    h.router.nack("drain app", "sidecar app-1 NACKed: port in use");

    Migration m = h.run();

    assertRolledBackLeavingTheSourceRoutedAndOpen(m);
    assertThat(m.progress().error()).get().asString()
        .contains("waiting for the route drain to be ACKed failed: sidecar app-1 NACKed: port in use");
    assertThat(h.servers.fences()).as("never fenced").isZero();
  }

  @Test
  void aDrainAckThatNeverComes_rollsBackAtTheQuiescingDeadline() throws Exception {
    h.router.hold("drain app"); // never completed

    Migration m = h.run();

    assertRolledBackLeavingTheSourceRoutedAndOpen(m);
    assertThat(m.progress().error()).get().asString()
        .contains("deadline of QUIESCING passed waiting for the route drain to be ACKed");
    Migration.Event quiescing = m.history().stream().filter(e -> e.phase() == Phase.QUIESCING).findFirst().orElseThrow();
    Migration.Event failed = m.history().stream().filter(e -> e.phase() == Phase.ROLLING_BACK).findFirst().orElseThrow();
    assertThat(Duration.between(quiescing.at(), failed.at())).isEqualTo(Harness.DEADLINE);
  }

  @Test
  void preparedTransactionsLeftAfterTheGrace_stopTheMigrationBeforeTheFence_namingThem() throws Exception {
    h.servers.prepared(new Platform.PreparedTransaction("g1", Harness.T0.minusSeconds(30), "app", "app"));

    Migration m = h.run();

    assertRolledBackLeavingTheSourceRoutedAndOpen(m);
    assertThat(m.progress().error()).get().asString()
        .contains("1 prepared transaction(s) on " + SOURCE + " did not finish within the quiesce grace of 2000 ms")
        .contains("'g1' (owner app, database app, prepared 37 s ago)")
        .contains("--rollback-prepared-transactions");
    assertThat(h.servers.fences()).as("never fenced").isZero();
  }

  @Test
  void aFenceThatFailsAfterActing_isUndone_becauseItsRolesWereRecordedBeforeIt() throws Exception {
    h.servers.fail("fence", When.AFTER, 1, "connection reset while ending sessions");

    Migration m = h.run();

    assertRolledBackLeavingTheSourceRoutedAndOpen(m);
    assertThat(h.servers.fences()).isEqualTo(1);
    assertThat(h.journal.lines()).contains("unfence [app]");
  }

  @Test
  void aSourceThatDiesWhileQuiescing_halts_withTheRouteDrained_forAnOperatorToDecide() throws Exception {
    h.servers.sourceDiesAt("applicationSessions");

    Migration m = h.run();

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.HALTED);
    assertThat(m.history().get(m.history().size() - 1).note())
        .contains("the source is unreachable while quiescing; the route is drained");
    assertThat(h.router.endpoint("app")).isEqualTo("drained");
  }

  @Test
  void aTargetThatStopsReplayingAfterTheFence_rollsBackAtTheCatchingUpDeadline_unfencingTheSource() throws Exception {
    h.servers.replayStops();

    Migration m = h.run();

    assertRolledBackLeavingTheSourceRoutedAndOpen(m);
    assertThat(m.progress().error()).get().asString().contains("deadline of CATCHING_UP (PT1M) passed waiting for"
        + " the target to replay");
    assertThat(h.journal.lines()).containsSubsequence("fence [app]", "route app to " + SOURCE, "unfence [app]",
        "disarm the target");
  }

  @Test
  void aCommitOnTheSourceAfterTheFence_rollsBackBeforePromotion_andTheSourceKeepsTheWrite() throws Exception {
    h.servers.commitsAfterTheFence("xid 812 committed at 0/3000100 by app: insert into orders");

    Migration m = h.run();

    assertRolledBackLeavingTheSourceRoutedAndOpen(m);
    assertThat(m.progress().error()).get().asString().contains("1 transaction(s) committed on the source")
        .contains("xid 812");
  }

  @Test
  void aPromotionRefusedBeforeItBegan_rollsBack_becauseTheTargetIsStillAStandby() throws Exception {
    h.servers.fail("promoteTarget", When.BEFORE, 1, "InvalidDBClusterStateFault");

    Migration m = h.run();

    assertRolledBackLeavingTheSourceRoutedAndOpen(m);
    assertThat(h.servers.promotions()).isZero();
  }

  // ---- after promotion: halt for an operator

  @Test
  void aPromotionThatFailedAfterPromoting_halts_becauseTheTargetMayHoldWrites() throws Exception {
    h.servers.fail("promoteTarget", When.AFTER, 1, "timed out waiting for the cluster");

    Migration m = h.run();

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.HALTED);
    assertThat(m.history().get(m.history().size() - 1).note()).contains("the target may be promoted");
    assertThat(h.servers.fenced()).as("the source stays fenced").isTrue();

    Migration back = h.migrator.rollback(m.id(), true);
    m = h.now(back.id());
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.router.endpoint("app")).isEqualTo(SOURCE.toString());
    assertThat(h.servers.fenced()).isFalse();
  }

  @Test
  void aShiftThatASidecarNacks_halts_andARollbackNeedsConsent_thenRoutesBackToTheSource() throws Exception {
    h.router.nack("route app to " + TARGET, "sidecar app-1 NACKed");

    Migration m = h.run();

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.HALTED);
    assertThat(m.history().get(m.history().size() - 1).note()).contains("the target is promoted: resume, or roll"
        + " back with consent");
    assertThatThrownBy(() -> h.migrator.rollback(m.id(), false)).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining(m + " is in HALTED: the target has been promoted and may hold writes made since"
            + " cutover").hasMessageContaining("Roll back with consent");
    assertThat(h.now(m.id()).phase()).as("refused: nothing changed").isEqualTo(Phase.HALTED);

    h.migrator.rollback(m.id(), true);

    Migration back = h.now(m.id());
    assertThat(back.phase()).as(Harness.history(back)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(back.progress().rollbackConsented()).isTrue();
    assertThat(h.router.endpoint("app")).isEqualTo(SOURCE.toString());
    assertThat(h.servers.fenced()).isFalse();
  }

  @Test
  void aShiftThatASidecarNacked_resumedByTheOperatorOnceTheSidecarIsFixed_shiftsAgainAndCompletes() throws Exception {
    h.router.nack("route app to " + TARGET, "sidecar app-1 NACKed");
    Migration halted = h.run();
    assertThat(halted.phase()).as(Harness.history(halted)).isEqualTo(Phase.HALTED);

    Migration resumed = h.migrator.resume(halted.id()); // the next route to the target is ACKed: the sidecar is fixed

    assertThat(resumed.phase()).as("answered as resumed, in the phase it halted in").isEqualTo(Phase.SHIFTING);
    Migration done = h.now(halted.id());
    assertThat(done.phase()).as(Harness.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(Harness.phases(done)).containsSubsequence(Phase.SHIFTING, Phase.HALTED, Phase.SHIFTING,
        Phase.VERIFYING, Phase.COMPLETED);
    assertThat(done.progress().error()).as("the halt's error is cleared").isEmpty();
    assertThat(Harness.history(done)).contains("resumed by the operator in SHIFTING (halted: ")
        .contains("sidecar app-1 NACKed");
    assertThat(h.router.endpoint("app")).isEqualTo(TARGET.toString());
    assertThat(h.servers.promotions()).as("promoted once: the resume began again at SHIFTING").isEqualTo(1);
    assertThat(h.servers.fenced()).as("the source stays fenced, a way back").isTrue();
  }

  @Test
  void onlyAHaltedMigrationResumes_anotherIsRefusedAndLeftAsItWas() throws Exception {
    Migration done = h.run();
    assertThat(done.phase()).isEqualTo(Phase.COMPLETED);

    assertThatThrownBy(() -> h.migrator.resume(done.id())).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("is in COMPLETED; only a HALTED migration can be resumed");
    assertThat(h.now(done.id()).history()).isEqualTo(done.history());
    assertThatThrownBy(() -> h.migrator.resume("no-such-migration")).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("no migration with id 'no-such-migration'");
  }

  @Test
  void aShiftAckThatNeverComes_haltsAtTheShiftingDeadline() throws Exception {
    h.router.hold("route app to " + TARGET);

    Migration m = h.run();

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.HALTED);
    assertThat(m.progress().error()).get().asString()
        .contains("deadline of SHIFTING passed waiting for every sidecar to ACK the route to the target");
  }

  @Test
  void aFailedWriteProbe_halts_leavingTrafficOnTheTarget() throws Exception {
    h.servers.failAlways("writeProbeTarget", "cannot execute INSERT in a read-only transaction");

    Migration m = h.run();

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.HALTED);
    assertThat(Harness.phases(m)).endsWith(Phase.VERIFYING, Phase.HALTED);
    assertThat(h.router.endpoint("app")).isEqualTo(TARGET.toString());
  }

  @Test
  void aRollbackThatCannotUnfence_halts_andRetryingItFinishes() throws Exception {
    h.servers.replayStops().fail("unfence", When.BEFORE, 1, "connection to the source refused");

    Migration m = h.run();

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.HALTED);
    assertThat(m.history().get(m.history().size() - 1).note()).contains("rollback did not finish, retry it");
    assertThat(h.servers.fenced()).isTrue();

    h.migrator.rollback(m.id(), false);

    assertRolledBackLeavingTheSourceRoutedAndOpen(h.now(m.id()));
  }

  // ---- at finalize

  @Test
  void aCommitOnTheSourceFoundAtFinalize_haltsTheMigration_andTheSourceIsNotLetGo() throws Exception {
    Migration done = h.run();
    h.servers.commitsAfterTheFence("xid 901 committed at 0/3100000 by postgres: update orders");

    assertThatThrownBy(() -> h.migrator.finalizeMigration(done.id())).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining(done + " cannot be finalized, and is halted").hasMessageContaining("xid 901");

    Migration m = h.now(done.id());
    assertThat(m.phase()).isEqualTo(Phase.HALTED);
    assertThat(m.history().get(m.history().size() - 1).note()).contains("carry them to the target by hand, or roll"
        + " back with consent");
    assertThat(h.servers.holdReleased()).as("the source keeps its WAL").isFalse();
  }

  @Test
  void aFinalizeThatCannotReadTheSourcesWal_isRefused_leavingTheMigrationCompleted() throws Exception {
    Migration done = h.run();
    h.servers.fail("commitsAfter", When.BEFORE, 1, "connection to the source refused");

    assertThatThrownBy(() -> h.migrator.finalizeMigration(done.id())).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("cannot be finalized without the proof that nothing committed on the source after the"
            + " final LSN: connection to the source refused");

    assertThat(h.now(done.id())).isEqualTo(done);
    assertThat(h.migrator.finalizeMigration(done.id()).phase()).as("once the source answers").isEqualTo(Phase.FINALIZED);
  }

  @Test
  void aFinalizeOfAMigrationThatIsNotCompleted_isRefusedNamingItsPhase() throws Exception {
    h.router.nack("route app to " + TARGET, "sidecar app-1 NACKed");
    Migration halted = h.run();

    assertThatThrownBy(() -> h.migrator.finalizeMigration(halted.id())).isInstanceOf(MigrationConflictException.class)
        .hasMessage(halted + " is in HALTED; only a COMPLETED migration can be finalized");
  }

  // ---- the operator

  @Test
  void anOperatorRollbackWhileReplicating_stopsTheWindow_andRollsBackWithNothingToUndo() throws Exception {
    h.clock.schedule(Duration.ofSeconds(2), () -> {
      try {
        h.migrator.rollback(h.onlyId(), false);
      } catch (MigrationException e) {
        throw new IllegalStateException(e);
      }
    });

    Migration m = h.run();

    assertNothingWasTouched(m);
    assertThat(m.progress().error()).contains("rollback requested by the operator");
    assertThat(h.clock.instant()).isBefore(Harness.T0.plus(Harness.WINDOW));
  }

  @Test
  void aRollbackWithoutConsentWhileShifting_isRefused_andTheMigrationCompletes() throws Exception {
    CompletableFuture<Void> ack = h.router.hold("route app to " + TARGET);
    AtomicReference<Exception> refused = new AtomicReference<>();
    h.clock.schedule(Harness.WINDOW.plusSeconds(1), () -> {
      try {
        h.migrator.rollback(h.onlyId(), false);
      } catch (MigrationException e) {
        refused.set(e);
      }
      ack.complete(null);
    });

    Migration m = h.run();

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.COMPLETED);
    assertThat(refused.get()).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("is in SHIFTING: the target has been promoted");
  }

  // ---- another process leads

  @Test
  void aProcessThatLostTheLeadershipWhileRollingBack_leavesTheSourceFencedForTheNewLeader() throws Exception {
    h.servers.replayStops();
    h.failpoint = (next, point) -> {
      if (next.phase() == Phase.ROLLING_BACK && point == Migrator.Failpoint.Point.AFTER_SAVE) {
        h.store.loseLeadership();
      }
    };

    Migration m = h.run();

    assertThat(m.phase()).as("stopped where it was").isEqualTo(Phase.ROLLING_BACK);
    assertThat(h.servers.fenced()).as("not unfenced by a process that no longer leads").isTrue();
    assertThat(h.journal.lines()).noneMatch(l -> l.startsWith("unfence"));
  }

  @Test
  void aProcessThatLostTheLeadershipBeforePromotion_promotesNothing() throws Exception {
    h.failpoint = (next, point) -> {
      if (next.phase() == Phase.PROMOTING && point == Migrator.Failpoint.Point.AFTER_SAVE) {
        h.store.loseLeadership();
      }
    };

    Migration m = h.run();

    assertThat(m.phase()).isEqualTo(Phase.PROMOTING);
    assertThat(h.servers.promotions()).isZero();
    assertThat(h.store.stored(m.id()).phase()).isEqualTo(Phase.PROMOTING);
  }
}
