package dev.turnout.migrator;

import static dev.turnout.migrator.Harness.SOURCE;
import static dev.turnout.migrator.Harness.TARGET;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.migrator.bake.Bake;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The way back after promotion (issue 19, part 2): the target replicates to the old source from the promotion point
 * on, so an operator's rollback after promotion needs no consent while that path is healthy, and a bake breach rolls
 * back by itself. A path broken by DDL, or none at all, brings the consent back.
 */
class ReversePathTest {
  static final Duration BAKE = Duration.ofSeconds(30);

  private static Harness withReversePath() {
    Harness h = new Harness();
    h.servers.reverseReplication(3);
    return h;
  }

  @Test
  void promotion_makesTheReversePath_beforeTheTargetAdmitsAnyWrite() throws Exception {
    Harness h = withReversePath();

    Migration m = h.run();

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.COMPLETED);
    assertThat(h.journal.lines()).as("the slots before any write; the source's subscriptions once the route is on"
        + " the target, outside the write gap").containsSubsequence("promote the target",
        "reverse replication: publication and slot on the target", "admit writes on the target",
        "route app to " + TARGET, "reverse subscription on the source");
    assertThat(m.progress().reverse()).hasValueSatisfying(r -> {
      assertThat(r.fingerprint()).isEqualTo("fp1");
      assertThat(r.healthy()).isTrue();
      assertThat(r.awaitingSubscription()).isFalse();
    });
    assertThat(m.history()).anySatisfy(e -> assertThat(e.note()).startsWith("reverse replication from " + TARGET));
  }

  @Test
  void aRollbackAfterPromotion_withAHealthyPath_needsNoConsent_andBringsTheTargetsWritesBack() throws Exception {
    Harness h = withReversePath();
    Migration done = h.run();

    Migration back = h.migrator.rollback(done.id(), false);

    Migration m = h.now(back.id());
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.journal.lines()).containsSubsequence("drain app", "fence the target [app, replicator]",
        "sequences forward on the source", "source applied the target's WAL to its end", "reverse apply stopped",
        "unfence [app, replicator]", "route app to " + SOURCE, "reverse replication dropped");
    assertThat(h.servers.targetFenced()).as("never two writable servers").isTrue();
    assertThat(h.servers.fenced()).isFalse();
    assertThat(h.router.endpoint("app")).isEqualTo(SOURCE.toString());
    assertThat(m.progress().rollbackConsented()).isFalse();
    assertThat(m.history().get(m.history().size() - 1).note()).contains("with every write the target took");
  }

  @Test
  void aRollbackAfterPromotion_letsTheWorkInFlightOnTheTargetFinish_beforeFencingIt() throws Exception {
    Harness h = withReversePath();
    Migration done = h.run();
    java.time.Instant began = h.clock.instant().minusMillis(100);
    Platform.Session atWork = new Platform.Session(7, "app", "client backend", "active", true,
        java.util.Optional.of(began));
    Platform.Session idle = new Platform.Session(8, "app", "client backend", "idle", false, java.util.Optional.empty());
    Platform.Session done7 = new Platform.Session(7, "app", "client backend", "idle", false,
        java.util.Optional.empty());
    h.servers.targetSessionsAtEachLook(java.util.List.of(atWork, idle), java.util.List.of(atWork),
        java.util.List.of(atWork), java.util.List.of(done7));

    Migration m = h.now(h.migrator.rollback(done.id(), false).id());

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.journal.lines()).as("the idle session ended at once, the one at work once its transaction was"
        + " over, both before the target's fence").containsSubsequence("drain app", "end target sessions [8]",
            "end target sessions [7]", "fence the target [app, replicator]");
    assertThat(m.history()).extracting(Migration.Event::note).anySatisfy(n -> assertThat(n)
        .startsWith("work in flight on the target finished in")
        .contains("ended 2 session(s) idle between transactions (roles app x2)"));
  }

  @Test
  void aRollbackAfterPromotion_fencesTheTargetOnceTheGraceIsOver_namingTheWorkItCuts() throws Exception {
    Harness h = withReversePath();
    Migration done = h.run();
    Platform.Session stuck = new Platform.Session(7, "app", "client backend", "active", true,
        java.util.Optional.of(h.clock.instant().minusSeconds(60)));
    java.util.List<Platform.Session>[] looks = new java.util.List[100_000];
    java.util.Arrays.fill(looks, java.util.List.of(stuck));
    h.servers.targetSessionsAtEachLook(looks);

    Migration m = h.now(h.migrator.rollback(done.id(), false).id());

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.journal.lines()).containsSubsequence("drain app", "fence the target [app, replicator]");
    assertThat(h.journal.starting("end target sessions")).as("the fence cuts it, not the grace").isEmpty();
    assertThat(m.history()).extracting(Migration.Event::note).anySatisfy(n -> assertThat(n)
        .startsWith("quiesce grace of " + done.spec().options().cutover().quiesceGrace().toMillis() + " ms over: 1"
            + " session(s) still at work (roles app)"));
  }

  @Test
  void aRollbackWhileShifting_beforeTheSourceSubscribed_needsNoConsent_subscribesFirst_andLosesNothing()
      throws Exception {
    Harness h = withReversePath();
    java.util.concurrent.CompletableFuture<Void> ack = h.router.hold("route app to " + TARGET);
    java.util.concurrent.atomic.AtomicReference<Exception> refused = new java.util.concurrent.atomic.AtomicReference<>();
    h.clock.schedule(Harness.WINDOW.plusSeconds(1), () -> {
      try {
        assertThat(h.now(h.onlyId()).progress().reverse()).hasValueSatisfying(r -> assertThat(r.awaitingSubscription())
            .as("the route is not ACKed yet: the source has not subscribed").isTrue());
        h.migrator.rollback(h.onlyId(), false);
      } catch (Exception e) {
        refused.set(e);
      }
      ack.complete(null);
    });

    Migration m = h.run();

    assertThat(refused.get()).as("a path awaiting its subscriptions is healthy: no consent").isNull();
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.journal.lines()).containsSubsequence("reverse replication: publication and slot on the target",
        "route app to " + TARGET, "reverse subscription on the source", "fence the target [app, replicator]",
        "source applied the target's WAL to its end", "unfence [app, replicator]", "route app to " + SOURCE);
    assertThat(m.progress().rollbackConsented()).isFalse();
    assertThat(m.history().get(m.history().size() - 1).note()).contains("with every write the target took");
  }

  @Test
  void aBakeBreach_withAHealthyPath_rollsBackByItself_namingTheSignal() throws Exception {
    Harness h = withReversePath();
    h.servers.targetLoad(ScriptedPlatform.Load.STEADY.withRollbacks(40));

    Migration m = h.run(Harness.spec(Harness.options().withBake(Bake.of(BAKE))));

    assertThat(Harness.phases(m)).as(Harness.history(m)).endsWith(Phase.BAKING, Phase.ROLLING_BACK, Phase.ROLLED_BACK);
    assertThat(m.progress().error().orElseThrow()).contains("bake breach on the target")
        .contains("rollbacks 40.0/s (baseline 1.0/s, allowed 3.0/s by 2x+1)");
    assertThat(h.servers.sequencesBrought()).isEqualTo(1);
    assertThat(h.router.endpoint("app")).isEqualTo(SOURCE.toString());
  }

  @Test
  void aBakeBreach_underNoAutoRollback_staysAWarning() throws Exception {
    Harness h = withReversePath();
    h.servers.targetLoad(ScriptedPlatform.Load.STEADY.withRollbacks(40));

    Migration m = h.run(Harness.spec(Harness.options().withBake(Bake.of(BAKE).withNoAutoRollback(true))));

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.COMPLETED);
  }

  @Test
  void ddlDuringTheBake_marksThePathBroken_andABreachThenHalts() throws Exception {
    Harness h = withReversePath();
    h.servers.reverseBreaks("the target's schema changed since promotion (DDL, which logical replication does not"
        + " carry)");
    h.servers.targetLoad(ScriptedPlatform.Load.STEADY.withRollbacks(40));

    Migration m = h.run(Harness.spec(Harness.options().withBake(Bake.of(BAKE))));

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.HALTED);
    assertThat(m.progress().reverse().orElseThrow().broken()).hasValueSatisfying(b -> assertThat(b).contains("DDL"));
    assertThat(m.progress().error().orElseThrow()).contains("no rollback keeps the target's writes (the reverse"
        + " replication is broken: the target's schema changed since promotion");
    assertThat(h.router.endpoint("app")).isEqualTo(TARGET.toString());
  }

  @Test
  void aBrokenPath_bringsTheConsentBack_andAConsentedRollbackTakesThePathDown() throws Exception {
    Harness h = withReversePath();
    Migration done = h.run();
    h.servers.reverseBreaks("subscription turnout_reverse_5 (database postgres) failed to apply 3 time(s)");

    assertThatThrownBy(() -> h.migrator.rollback(done.id(), false)).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("the reverse replication is broken: subscription turnout_reverse_5")
        .hasMessageContaining("Roll back with consent");
    assertThat(h.now(done.id()).progress().wayBack()).as("saved as broken").isFalse();

    h.migrator.rollback(done.id(), true);

    Migration m = h.now(done.id());
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.servers.reverseStopped()).as("the source must not apply more once writable").isTrue();
    assertThat(h.servers.sequencesBrought()).isZero();
  }

  @Test
  void withoutReverseReplication_noPathIsMade_andARollbackAfterPromotionNeedsConsent() throws Exception {
    Harness h = withReversePath();

    Migration done = h.run(Harness.spec(Harness.options().withoutReverseReplication(true)));

    assertThat(h.servers.reverseMade()).isFalse();
    assertThat(done.history()).anySatisfy(e -> assertThat(e.note()).startsWith("no reverse replication: the migration"
        + " was started without reverse replication"));
    assertThatThrownBy(() -> h.migrator.rollback(done.id(), false)).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("no reverse replication was made at promotion");
  }

  @Test
  void finalize_dropsTheReversePath() throws Exception {
    Harness h = withReversePath();
    Migration done = h.run();

    Migration m = h.migrator.finalizeMigration(done.id());

    assertThat(m.phase()).isEqualTo(Phase.FINALIZED);
    assertThat(h.servers.reverseStopped()).isTrue();
    assertThat(h.now(done.id()).history().get(h.now(done.id()).history().size() - 1).note())
        .startsWith("reverse replication dropped");
  }

  /** The lossless rollback saves three times: ROLLING_BACK, the applied position, ROLLED_BACK. */
  @ParameterizedTest(name = "crash at the rollback's save {0}, written: {1}")
  @CsvSource({"1, false", "1, true", "2, false", "2, true", "3, false", "3, true"})
  void aCrashAtAnySaveOfALosslessRollback_isResumed_andEndsWhole(int save, boolean written) throws Exception {
    Harness h = withReversePath();
    Migration done = h.run();
    h.store.crashAtSave(save, written);

    assertThatThrownBy(() -> h.migrator.rollback(done.id(), false)).isInstanceOf(InMemoryMigrationStore.Crash.class);
    h.restart();
    if (h.now(done.id()).phase() == Phase.COMPLETED) {
      h.migrator.rollback(done.id(), false); // nothing was recorded: the operator asks again, still without consent
    }

    Migration m = h.now(done.id());
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.servers.fenced()).isFalse();
    assertThat(h.servers.targetFenced()).isTrue();
    assertThat(h.servers.reverseStopped()).isTrue();
    assertThat(h.servers.sequencesBrought()).isPositive();
    assertThat(h.router.endpoint("app")).isEqualTo(SOURCE.toString());
    assertThat(h.servers.refusedRoles()).isEmpty();
  }

  @Test
  void aCrashAfterTheSourceCaughtUp_resumesTheRollback_withoutWaitingAgain() throws Exception {
    Harness h = withReversePath();
    Migration done = h.run();
    // The rollback's saves: ROLLING_BACK, then the applied position (before the path is taken down): crashed after it.
    h.store.crashAtSave(2, true);

    assertThatThrownBy(() -> h.migrator.rollback(done.id(), false)).isInstanceOf(InMemoryMigrationStore.Crash.class);
    int waits = h.journal.starting("source applied").size();
    h.restart();

    Migration m = h.migrator.list().get(0);
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.journal.starting("source applied")).as("not waited for again").hasSize(waits);
    assertThat(h.servers.reverseStopped()).isTrue();
    assertThat(h.router.endpoint("app")).isEqualTo(SOURCE.toString());
  }
}
