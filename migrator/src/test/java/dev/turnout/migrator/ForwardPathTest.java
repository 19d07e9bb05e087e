package dev.turnout.migrator;

import static dev.turnout.migrator.Harness.TARGET;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** A migration that goes to plan, on scripted servers in fake time: what it does, in what order, and what it keeps. */
class ForwardPathTest {
  final Harness h = new Harness();

  @Test
  void aHealthyMigration_passesEveryPhaseInOrder_drainingFencingPromotingAndRoutingOnce() throws Exception {
    Migration done = h.run();

    assertThat(done.phase()).as(Harness.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(Harness.phases(done)).containsExactly(Phase.PLANNED, Phase.PREFLIGHT, Phase.REPLICATING,
        Phase.VALIDATED, Phase.QUIESCING, Phase.CATCHING_UP, Phase.PROMOTING, Phase.SHIFTING, Phase.VERIFYING,
        Phase.COMPLETED);
    assertThat(h.journal.lines()).as("the actions, in order").containsExactly(
        "drain app",
        "hold the source's WAL",
        "arm the target read-only",
        "fence [app]",
        "promote the target",
        "refuse logins [replicator]",
        "restore logins on the target [app, replicator]",
        "admit writes on the target",
        "route app to " + TARGET,
        "write probe on the target");
    assertThat(done.history()).extracting(Migration.Event::note).as("where the cutover's time went")
        .filteredOn(n -> n.startsWith(CutoverSteps.PREFIX)).singleElement()
        .satisfies(n -> assertThat(CutoverSteps.parse(n)).containsKeys("drain-ack", "grace", "fence", "verify-fence",
            "final-lsn", "replay", "wal-proof", "promote", "target-slots", "admit-writes", "route-ack", "probe", "saves"));
    assertThat(done.progress().fencedRoles()).as("recorded for the undo and for the target")
        .containsExactly("app", "replicator");
    assertThat(done.progress().finalLsn()).isPresent();
    assertThat(h.servers.fenced()).as("the source stays fenced until finalized").isTrue();
    assertThat(h.servers.holdReleased()).isFalse();
    assertThat(h.clock.instant()).as("the validation window, in fake time")
        .isEqualTo(Harness.T0.plus(Harness.WINDOW));
  }

  @Test
  void theGrace_looksAtTheWorkInFlightAsSoonAsTheDrainIsAcked_andPreparesTheFenceWhileItFinishes() throws Exception {
    java.time.Instant began = Harness.T0.minusSeconds(1);
    Platform.Session atWork = new Platform.Session(7, "app", "client backend", "active", true, Optional.of(began));
    Platform.Session idle = new Platform.Session(8, "app", "client backend", "idle", false, Optional.empty());
    Platform.Session nextTransaction = new Platform.Session(7, "app", "client backend", "active", true,
        Optional.of(began.plusMillis(500)));
    h.servers.sessionsAtEachLook(List.of(atWork, idle), List.of(atWork), List.of(atWork), List.of(atWork),
        List.of(atWork), List.of(atWork), List.of(nextTransaction));

    Migration done = h.run();

    assertThat(done.phase()).isEqualTo(Phase.COMPLETED);
    assertThat(h.journal.lines()).as("the idle session ended at the first look, before anything else; the fence's"
        + " preparation done while the transaction in flight at the drain ran; the session ended when it began"
        + " another").containsSubsequence("drain app", "end sessions [8]", "hold the source's WAL",
            "arm the target read-only", "end sessions [7]", "fence [app]");
    assertThat(done.history()).extracting(Migration.Event::note).anySatisfy(n -> assertThat(n)
        .startsWith("work in flight on the source finished in")
        .contains("ended 1 session(s) idle between transactions (roles app)")
        .contains("ended 1 session(s) that began another transaction (roles app)"));
  }

  @Test
  void theFence_isPreparedWhileTheSidecarsAckTheDrain() throws Exception {
    java.util.concurrent.CompletableFuture<Void> ack = h.router.hold("drain app");
    h.clock.schedule(Harness.WINDOW.plusSeconds(1), () -> {
      h.journal.add("every sidecar ACKed the drain");
      ack.complete(null);
    });

    Migration done = h.run();

    assertThat(done.phase()).isEqualTo(Phase.COMPLETED);
    assertThat(h.journal.lines()).as("requested first, then prepared while the ACKs come").containsSubsequence(
        "drain app", "hold the source's WAL", "arm the target read-only", "every sidecar ACKed the drain",
        "fence [app]");
    assertThat(done.history()).extracting(Migration.Event::note).as("the roles saved before the ACK came")
        .containsSubsequence("fencing roles [app]; the standby's [replicator] keep their login until the target is"
            + " promoted", "route drained: every sidecar ACKed in 1000 ms");
  }

  @Test
  void theGrace_waitsForTheFirstTransactionOfASessionThatJustLoggedIn_andEndsItOnceThatIsDone() throws Exception {
    // Busy while idle: logged in a moment ago, its driver's statements at login behind it, its work ahead.
    Platform.Session fresh = new Platform.Session(9, "app", "client backend", "idle", true, Optional.empty());
    Platform.Session working = new Platform.Session(9, "app", "client backend", "idle in transaction", true,
        Optional.of(Harness.T0.plusSeconds(30)));
    h.servers.sessionsAtEachLook(List.of(fresh), List.of(fresh), List.of(fresh), List.of(fresh), List.of(fresh),
        List.of(working), List.of(fresh));

    Migration done = h.run();

    assertThat(done.phase()).isEqualTo(Phase.COMPLETED);
    assertThat(h.journal.lines()).containsSubsequence("arm the target read-only", "end sessions [9]", "fence [app]");
    assertThat(h.journal.starting("end sessions")).as("ended once, when its transaction was over").hasSize(1);
    assertThat(done.history()).extracting(Migration.Event::note).anySatisfy(n -> assertThat(n)
        .startsWith("work in flight on the source finished in")
        .contains("ended 1 session(s) idle between transactions (roles app)")
        .doesNotContain("began another"));
  }

  @Test
  void finalizing_provesTheSourceQuietOnceMore_releasesItsWalHold_andClosesTheWayBack() throws Exception {
    Migration done = h.run();

    Migration finalized = h.migrator.finalizeMigration(done.id());

    assertThat(finalized.phase()).isEqualTo(Phase.FINALIZED);
    assertThat(finalized.history().get(finalized.history().size() - 1).note())
        .contains("no commit on the source after the final LSN");
    assertThat(h.servers.holdReleased()).isTrue();
    assertThat(h.migrator.finalizeMigration(done.id())).as("finalizing twice changes nothing").isEqualTo(finalized);
    assertThatThrownBy(() -> h.migrator.rollback(done.id(), true)).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("is finalized: the source is no longer a way back");
  }

  @Test
  void aSourceWithoutTheWalProof_getsItInstalledAfterTheChecksAreSaved_andMovesOn() throws Exception {
    h.servers.preflightReads(f -> new dev.turnout.migrator.check.ServerFacts(f.source(), f.target(), f.logicalSlots(),
        new dev.turnout.migrator.check.ServerFacts.Fence(new dev.turnout.migrator.check.ServerFacts.WalProof(true,
            false, "postgres"), f.fence().holdSlot(), f.fence().prepared(), f.fence().standby())));

    Migration done = h.run();

    assertThat(done.phase()).as(Harness.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(h.journal.lines()).startsWith("install pg_walinspect");
  }

  @Test
  void aSecondMigrationOfTheDatabase_isRefusedUntilTheFirstIsFinalized() throws Exception {
    Migration done = h.run();

    assertThatThrownBy(() -> h.run()).isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("database 'app' already has migration " + done.id() + " in COMPLETED")
        .hasMessageContaining("finalize it or roll it back first")
        .satisfies(e -> assertThat(((MigrationConflictException) e).kind())
            .isEqualTo(MigrationConflictException.Kind.ALREADY_EXISTS));
    h.migrator.finalizeMigration(done.id());
    assertThat(h.migrator.start(Harness.spec()).id()).as("a new one is accepted once it is final")
        .isNotEqualTo(done.id());
  }

  @Test
  void aTargetThatFallsBehind_restartsTheValidationWindow_andValidatesOnceItKeepsUpForAWholeWindow() throws Exception {
    int[] samples = {0};
    h.servers.lag(() -> ++samples[0] == 8 ? 64L << 20 : 1024L); // one bad sample, 1.75 s into the first window

    Migration done = h.run();

    assertThat(done.phase()).isEqualTo(Phase.COMPLETED);
    assertThat(done.history()).anySatisfy(e -> assertThat(e.note())
        .isEqualTo("target behind by " + (64L << 20) + " bytes: window restarted"));
    Duration validating = Duration.between(done.history().stream().filter(e -> e.phase() == Phase.REPLICATING)
        .findFirst().orElseThrow().at(), done.history().stream().filter(e -> e.phase() == Phase.VALIDATED)
        .findFirst().orElseThrow().at());
    assertThat(validating).isEqualTo(Duration.ofMillis(1750).plus(Harness.WINDOW));
  }

  @Test
  void theValidationEndsAtTheWindowsEnd_evenWhenEachSampleTakesTime() throws Exception {
    h.servers.lag(() -> {
      h.clock.advance(Duration.ofMillis(7)); // each sample a round trip of 7 ms
      return 1024L;
    });

    Migration done = h.run();

    Duration validating = Duration.between(done.history().stream().filter(e -> e.phase() == Phase.REPLICATING)
        .findFirst().orElseThrow().at(), done.history().stream().filter(e -> e.phase() == Phase.VALIDATED)
        .findFirst().orElseThrow().at());
    // The first sample, the window, the sample at its end: not whole periods of 257 ms running 140 ms past it.
    assertThat(validating).isEqualTo(Harness.WINDOW.plusMillis(7 + 7));
  }

  @Test
  void preparedTransactionsTheOperatorAllowedToRollBack_areRecordedThenRolledBack_andTheMigrationCompletes()
      throws Exception {
    h.servers.prepared(new Platform.PreparedTransaction("g1", Harness.T0, "app", "app"));
    Migration.Options options = Harness.options().withCutover(new Migration.Cutover(Duration.ofSeconds(2), true));

    Migration done = h.run(Harness.spec(options));

    assertThat(done.phase()).as(Harness.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(done.history()).anySatisfy(e -> assertThat(e.note())
        .startsWith("rolling back 1 prepared transaction(s) on the source, as the operator allowed: 'g1'"));
    List<String> lines = h.journal.lines();
    assertThat(lines.indexOf("roll back prepared [g1]")).as("after the fence")
        .isGreaterThan(lines.indexOf("fence [app]"));
    assertThat(h.router.endpoint("app")).isEqualTo(TARGET.toString());
  }
}
