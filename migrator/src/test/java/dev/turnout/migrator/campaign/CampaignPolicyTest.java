package dev.turnout.migrator.campaign;

import static dev.turnout.migrator.campaign.Fleet.servers;
import static dev.turnout.migrator.campaign.Fleet.spec;
import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class CampaignPolicyTest {
  private static final Policy NO_CANARY = Policy.DEFAULT.withCanary(0, Optional.empty());

  @Test
  void theCanaryRunsAlone_thenWaitsForApproval_thenTheWavesGo() {
    Fleet f = new Fleet(spec(servers(5), Policy.DEFAULT.withWaves(2, Duration.ZERO)));
    f.tick();
    assertThat(f.started()).containsExactly("db1:5432");
    assertThat(f.status()).isEqualTo(CampaignStatus.RUNNING);
    f.phase("db1:5432", Phase.REPLICATING);
    f.tick();
    assertThat(f.started()).as("nothing else while the canary runs").isEmpty();

    f.advance(Duration.ofMinutes(7));
    f.complete("db1:5432");
    f.tick();
    assertThat(f.status()).isEqualTo(CampaignStatus.WAITING_APPROVAL);
    assertThat(f.status("db1:5432")).isEqualTo(MemberStatus.SUCCEEDED);
    assertThat(f.campaign.state().wavesFinished()).containsExactly(f.now);
    f.advance(Duration.ofDays(3));
    f.tick();
    assertThat(f.started()).as("days later, still waiting").isEmpty();
    assertThat(f.last.campaign()).as("and nothing changed").isEmpty();
    assertThat(f.last.nextWakeUp()).as("only an operator moves it").isEmpty();

    f.campaign = f.campaign.approve(f.now);
    f.tick();
    assertThat(f.started()).containsExactly("db2:5432", "db3:5432");
    assertThat(f.history()).contains("wave 0 (canary) finished: 1 succeeded, 0 failed",
        "canary approved: wave 1 may start");
  }

  @Test
  void aCanaryWithABakeGoesOnByItselfWhenTheBakeHasPassed() {
    Fleet f = new Fleet(spec(servers(3), Policy.DEFAULT.withCanary(1, Optional.of(Duration.ofHours(1)))));
    f.tick();
    f.complete("db1:5432");
    f.tick();
    Instant bakeEnd = f.now.plus(Duration.ofHours(1));
    assertThat(f.status()).isEqualTo(CampaignStatus.BAKING);
    assertThat(f.campaign.state().until()).contains(bakeEnd);
    assertThat(f.last.nextWakeUp()).contains(bakeEnd);
    f.advance(Duration.ofMinutes(59));
    f.tick();
    assertThat(f.started()).isEmpty();
    f.advance(Duration.ofMinutes(1));
    f.tick();
    assertThat(f.started()).containsExactly("db2:5432", "db3:5432");
    assertThat(f.status()).isEqualTo(CampaignStatus.RUNNING);
    assertThat(f.history()).contains("wave 1 may start: 1h passed since wave 0 finished");
  }

  @Test
  void approvingDuringTheCanarysBakeCutsItShort() {
    Fleet f = new Fleet(spec(servers(3), Policy.DEFAULT.withCanary(1, Optional.of(Duration.ofHours(6)))));
    f.tick();
    f.complete("db1:5432");
    f.tick();
    f.campaign = f.campaign.approve(f.now);
    f.tick();
    assertThat(f.started()).containsExactly("db2:5432", "db3:5432");
  }

  @Test
  void theNextWaveWaitsForEveryMemberOfTheCurrentOne_andTheBakeBetweenWaves() {
    Fleet f = new Fleet(spec(servers(4), NO_CANARY.withWaves(2, Duration.ofMinutes(30))));
    f.tick();
    assertThat(f.started()).containsExactly("db1:5432", "db2:5432");
    f.advance(Duration.ofMinutes(10));
    f.complete("db1:5432");
    f.tick();
    assertThat(f.started()).as("db2 still runs").isEmpty();
    f.advance(Duration.ofMinutes(5));
    f.rollBack("db2:5432", "standby fell behind");
    f.tick();
    assertThat(f.status()).as("one failure reaches the default limit of 1").isEqualTo(CampaignStatus.HALTED);

    Fleet g = new Fleet(spec(servers(4), NO_CANARY.withWaves(2, Duration.ofMinutes(30))
        .withLimits(5, 1, Policy.FailureLimit.count(2))));
    g.tick();
    g.complete("db1:5432");
    g.advance(Duration.ofMinutes(15));
    g.rollBack("db2:5432", "standby fell behind");
    g.tick();
    assertThat(g.status()).isEqualTo(CampaignStatus.BAKING);
    assertThat(g.campaign.state().until()).contains(g.now.plus(Duration.ofMinutes(30)));
    assertThat(g.history()).contains("wave 0 finished: 1 succeeded, 1 failed",
        "db2:5432 (migration c1-2) failed: standby fell behind");
    g.advance(Duration.ofMinutes(29));
    g.tick();
    assertThat(g.started()).isEmpty();
    g.advance(Duration.ofMinutes(1));
    g.tick();
    assertThat(g.started()).containsExactly("db3:5432", "db4:5432");
  }

  @Test
  void aMemberThatRollsBackHaltsTheCampaignAtMaxFailuresOne_theOthersUntouched() {
    Fleet f = new Fleet(spec(servers(6), NO_CANARY.withWaves(6, Duration.ZERO)
        .withLimits(2, 1, Policy.FailureLimit.count(1))));
    f.tick();
    assertThat(f.started()).containsExactly("db1:5432", "db2:5432");
    f.phase("db1:5432", Phase.VALIDATED);
    f.rollBack("db2:5432", "the standby stopped streaming");
    f.tick();
    assertThat(f.status()).isEqualTo(CampaignStatus.HALTED);
    assertThat(f.status("db2:5432")).isEqualTo(MemberStatus.FAILED);
    assertThat(f.campaign.state().reason()).contains("1 member failed, the limit is 1 (db2:5432 (migration c1-2):"
        + " the standby stopped streaming); resume to accept them, or abort");
    assertThat(f.started()).as("the free slot is not used").isEmpty();
    assertThat(f.last.mayCutOver()).as("db1 goes on by its own rules").containsExactly(f.id("db1:5432"));

    f.complete("db1:5432");
    f.tick();
    assertThat(f.started()).isEmpty();
    assertThat(f.status()).isEqualTo(CampaignStatus.HALTED);
    assertThat(f.campaign.members().subList(2, 6)).allMatch(m -> m.status() == MemberStatus.PENDING);
  }

  @Test
  void resumingAfterTheFailureLimitAcceptsTheFailuresSoFar_theLimitCountsNewOnes() {
    Fleet f = new Fleet(spec(servers(4), NO_CANARY.withWaves(4, Duration.ZERO)
        .withLimits(1, 1, Policy.FailureLimit.count(1))));
    f.tick();
    f.rollBack("db1:5432", "preflight: wal_level is replica");
    f.tick();
    assertThat(f.status()).isEqualTo(CampaignStatus.HALTED);
    f.campaign = f.campaign.resume(f.now);
    assertThat(f.campaign.state().acceptedFailures()).isEqualTo(1);
    assertThat(f.history()).last().asString().endsWith("1 failure accepted, the limit of 1 counts new ones");
    f.tick();
    assertThat(f.status()).isEqualTo(CampaignStatus.RUNNING);
    assertThat(f.started()).containsExactly("db2:5432");
    f.rollBack("db2:5432", "deadline");
    f.tick();
    assertThat(f.status()).isEqualTo(CampaignStatus.HALTED);
    assertThat(f.campaign.state().reason().orElseThrow()).startsWith("2 members failed, the limit is 1 beyond the 1"
        + " accepted");
  }

  @Test
  void aPercentageLimitHaltsAtItsShareOfTheMembers() {
    Fleet f = new Fleet(spec(servers(20), NO_CANARY.withWaves(20, Duration.ZERO)
        .withLimits(4, 1, Policy.FailureLimit.percent(10))));
    f.tick();
    f.rollBack("db1:5432", "x");
    f.tick();
    assertThat(f.status()).as("1 of 20 is under 10%").isEqualTo(CampaignStatus.RUNNING);
    assertThat(f.started()).containsExactly("db5:5432");
    f.rollBack("db2:5432", "y");
    f.tick();
    assertThat(f.status()).as("2 of 20 is 10%").isEqualTo(CampaignStatus.HALTED);
  }

  @Test
  void aHaltedMemberHaltsTheCampaignUntilItsMigrationIsResolvedAndTheCampaignResumed() {
    Fleet f = new Fleet(spec(servers(4), NO_CANARY.withWaves(4, Duration.ZERO)
        .withLimits(2, 1, Policy.FailureLimit.count(3))));
    f.tick();
    f.halt("db1:5432", "the source died while quiescing", false);
    f.tick();
    assertThat(f.status()).isEqualTo(CampaignStatus.HALTED);
    assertThat(f.status("db1:5432")).isEqualTo(MemberStatus.HALTED);
    assertThat(f.campaign.state().reason()).contains("member db1:5432 (migration c1-1) halted: the source died while"
        + " quiescing; resume or roll back its migration, then resume the campaign");
    try {
      f.campaign.resume(f.now);
      throw new AssertionError("resumed with a member halted");
    } catch (IllegalStateException e) {
      assertThat(e).hasMessage("Cannot resume campaign c1 when it is HALTED: member db1:5432 (migration c1-1) is"
          + " still halted; resume or roll back its migration first");
    }

    f.phase("db1:5432", Phase.QUIESCING); // the operator resumed the migration
    f.tick();
    assertThat(f.status("db1:5432")).isEqualTo(MemberStatus.STARTED);
    assertThat(f.status()).as("still halted until the operator resumes the campaign").isEqualTo(CampaignStatus.HALTED);
    assertThat(f.started()).isEmpty();
    f.complete("db1:5432");
    f.tick();
    f.campaign = f.campaign.resume(f.now);
    f.tick();
    assertThat(f.started()).containsExactly("db3:5432");
    assertThat(f.campaign.state().acceptedFailures()).as("it succeeded in the end: no failure").isZero();
  }

  @Test
  void perHostLimitHoldsTheSecondServerOfAHost() {
    List<Member> members = List.of(
        Member.of("10.0.0.1:5432", Target.given("10.0.1.1:5432")),
        Member.of("10.0.0.1:5433", Target.given("10.0.1.1:5433")),
        Member.of("pg-b.internal:5432", Target.given("10.0.1.2:5432")),
        Member.of("pg-a-alias:6432", Target.given("10.0.1.3:5432")).withHost("10.0.0.1"));
    Fleet f = new Fleet(spec(members, NO_CANARY.withWaves(4, Duration.ZERO)
        .withLimits(4, 1, Policy.FailureLimit.count(1))));
    f.tick();
    assertThat(f.started()).containsExactly("10.0.0.1:5432", "pg-b.internal:5432");
    f.complete("10.0.0.1:5432");
    f.tick();
    assertThat(f.started()).containsExactly("10.0.0.1:5433");
    f.complete("10.0.0.1:5433");
    f.tick();
    assertThat(f.started()).as("the alias names the same host").containsExactly("pg-a-alias:6432");
  }

  @Test
  void theFleetWideLimitHoldsTheThirdMember_untilOneFinishes() {
    Fleet f = new Fleet(spec(servers(3), NO_CANARY.withWaves(3, Duration.ZERO)
        .withLimits(2, 1, Policy.FailureLimit.count(1))));
    f.tick();
    assertThat(f.started()).containsExactly("db1:5432", "db2:5432");
    f.phase("db2:5432", Phase.COMPLETED);
    f.tick();
    assertThat(f.started()).containsExactly("db3:5432");
  }

  @Test
  void nothingCutsOverOutsideTheWindow() {
    MaintenanceWindow nightly = new MaintenanceWindow("0 2 * * *", Duration.ofHours(2));
    Fleet f = new Fleet(spec(servers(2), NO_CANARY.withWindows(List.of(nightly))));
    f.tick();
    f.phase("db1:5432", Phase.VALIDATED);
    f.phase("db2:5432", Phase.REPLICATING);
    f.tick();
    assertThat(f.last.mayCutOver()).as("10:00, closed").isEmpty();
    assertThat(f.last.nextWakeUp()).contains(Instant.parse("2026-12-03T02:00:00Z"));

    f.now = Instant.parse("2026-12-03T02:00:00Z");
    f.tick();
    assertThat(f.last.mayCutOver()).containsExactlyInAnyOrder(f.id("db1:5432"), f.id("db2:5432"));
    assertThat(f.last.nextWakeUp()).as("when it closes").contains(Instant.parse("2026-12-03T04:00:00Z"));

    f.phase("db1:5432", Phase.QUIESCING); // started cutting over inside the window: not the gate's any more
    f.now = Instant.parse("2026-12-03T04:00:00Z");
    f.tick();
    assertThat(f.last.mayCutOver()).isEmpty();
  }

  @Test
  void aMembersOwnWindowsReplaceTheCampaigns() {
    MaintenanceWindow nightly = new MaintenanceWindow("0 2 * * *", Duration.ofHours(2));
    MaintenanceWindow morning = new MaintenanceWindow("0 9 * * *", Duration.ofHours(3));
    List<Member> members = List.of(servers(2).get(0), servers(2).get(1).withWindows(List.of(morning)));
    Fleet f = new Fleet(spec(members, NO_CANARY.withWindows(List.of(nightly))));
    f.tick();
    f.phase("db1:5432", Phase.VALIDATED);
    f.phase("db2:5432", Phase.VALIDATED);
    f.tick();
    assertThat(f.last.mayCutOver()).containsExactly(f.id("db2:5432"));
    assertThat(f.last.nextWakeUp()).as("db2's window closes at noon, before db1's opens")
        .contains(Instant.parse("2026-12-02T12:00:00Z"));
  }

  @Test
  void withoutWindowsEveryRunningMemberMayCutOverAtAnyTime() {
    Fleet f = new Fleet(spec(servers(2), NO_CANARY));
    f.tick();
    assertThat(f.last.mayCutOver()).as("just started: no migration to gate yet").isEmpty();
    f.phase("db1:5432", Phase.VALIDATED);
    f.phase("db2:5432", Phase.PREFLIGHT);
    f.tick();
    assertThat(f.last.mayCutOver()).containsExactlyInAnyOrder(f.id("db1:5432"), f.id("db2:5432"));
    assertThat(f.last.nextWakeUp()).isEmpty();
  }

  @Test
  void pauseStartsNothingNew_butRunningMembersStillCutOver_andResumeGoesOn() {
    Fleet f = new Fleet(spec(servers(3), NO_CANARY.withLimits(1, 1, Policy.FailureLimit.count(1))));
    f.tick();
    f.phase("db1:5432", Phase.VALIDATED);
    f.campaign = f.campaign.pause(f.now);
    f.tick();
    assertThat(f.last.mayCutOver()).containsExactly(f.id("db1:5432"));
    f.complete("db1:5432");
    f.tick();
    assertThat(f.started()).isEmpty();
    assertThat(f.status()).isEqualTo(CampaignStatus.PAUSED);
    f.campaign = f.campaign.resume(f.now);
    f.tick();
    assertThat(f.started()).containsExactly("db2:5432");
  }

  @Test
  void abortRollsBackOnlyMembersNotYetPromoted_theRestAreNotStarted() {
    Fleet f = new Fleet(spec(servers(6), NO_CANARY.withLimits(4, 1, Policy.FailureLimit.count(1))));
    f.tick();
    f.phase("db1:5432", Phase.REPLICATING);
    f.phase("db2:5432", Phase.SHIFTING);
    f.phase("db3:5432", Phase.VALIDATED);
    f.halt("db4:5432", "promoted, then the probe failed", true);
    f.tick();
    assertThat(f.status()).isEqualTo(CampaignStatus.HALTED);

    f.campaign = f.campaign.abort(f.now);
    assertThat(f.status()).isEqualTo(CampaignStatus.ABORTING);
    assertThat(f.status("db5:5432")).isEqualTo(MemberStatus.SKIPPED);
    f.tick();
    assertThat(f.rolledBack()).containsExactly("db1:5432", "db3:5432");
    assertThat(f.started()).isEmpty();
    assertThat(f.last.mayCutOver()).isEmpty();
    assertThat(f.status("db2:5432")).as("promoted: it finishes").isEqualTo(MemberStatus.STARTED);
    assertThat(f.status("db4:5432")).as("halted after promotion: its operator's").isEqualTo(MemberStatus.HALTED);

    f.tick();
    assertThat(f.rolledBack()).as("asked once").isEmpty();
    f.phase("db1:5432", Phase.ROLLED_BACK);
    f.phase("db3:5432", Phase.ROLLED_BACK);
    f.tick();
    assertThat(f.status()).as("db2 still runs").isEqualTo(CampaignStatus.ABORTING);
    f.complete("db2:5432");
    f.tick();
    assertThat(f.status()).isEqualTo(CampaignStatus.ABORTED);
    assertThat(f.campaign.members()).extracting(MemberState::status).containsExactly(MemberStatus.ROLLED_BACK,
        MemberStatus.SUCCEEDED, MemberStatus.ROLLED_BACK, MemberStatus.HALTED, MemberStatus.SKIPPED,
        MemberStatus.SKIPPED);
    assertThat(f.history()).last().isEqualTo("aborted: 2 rolled back, 1 succeeded, 2 never started, 1 halted,"
        + " waiting for an operator");
    f.tick();
    assertThat(f.last.campaign()).as("an aborted campaign is over").isEmpty();
    assertThat(f.last.actions()).isEmpty();
  }

  @Test
  void anAbortWhoseRollbackWasLostAsksAgain_andAMemberPromotedMeanwhileFinishes() {
    Fleet f = new Fleet(spec(servers(2), NO_CANARY));
    f.tick();
    f.phase("db1:5432", Phase.VALIDATED);
    f.phase("db2:5432", Phase.CATCHING_UP);
    f.campaign = f.campaign.abort(f.now);
    f.last = CampaignPolicy.decide(f.campaign, f.views, f.now);
    f.campaign = f.last.campaign().orElseThrow(); // saved, then the control plane died before asking
    assertThat(f.status("db1:5432")).isEqualTo(MemberStatus.ROLLING_BACK);
    f.views.put(f.id("db2:5432"), MemberView.of(Phase.PROMOTING)); // it got there first
    f.tick();
    assertThat(f.rolledBack()).containsExactly("db1:5432");
    assertThat(f.status("db2:5432")).isEqualTo(MemberStatus.STARTED);
  }

  @Test
  void aMigrationHaltedAfterItsPromotionIsSeenAsPromoted_soAnAbortLeavesIt() {
    Migration m = Migration.plan("c1-1", new Migration.Spec("orders", new ServerAddress("db1", 5432),
        new ServerAddress("db1-new", 5432), Migration.Options.defaults()), Fleet.T0);
    for (Phase p = Phase.PREFLIGHT; p != Phase.VERIFYING; p = p.next()) {
      m = m.to(p, Fleet.T0, "");
    }
    assertThat(MemberView.of(m.to(Phase.VERIFYING, Fleet.T0, "").to(Phase.HALTED, Fleet.T0, "probe failed")
        .with(m.progress().withError("probe failed"))))
        .isEqualTo(new MemberView(Phase.HALTED, Optional.of("probe failed"), true));
    Migration early = Migration.plan("c1-2", m.spec(), Fleet.T0).to(Phase.PREFLIGHT, Fleet.T0, "")
        .to(Phase.HALTED, Fleet.T0, "");
    assertThat(MemberView.of(early).pastPromotion()).isFalse();
  }

  @Test
  void aStartLostInACrashIsAskedForAgainUnderTheSameId_andChangesNothing() {
    Fleet f = new Fleet(spec(servers(2), NO_CANARY));
    f.tick();
    String id = f.id("db1:5432");
    f.views.remove(id); // saved as started; the control plane died before starting it
    f.tick();
    assertThat(f.last.actions()).containsExactly(new Action.Start(id, f.campaign.spec().members().get(0)));
    assertThat(f.last.campaign()).isEmpty();
  }

  @Test
  void anAbortedMemberThatNeverStartedIsSkipped() {
    Fleet f = new Fleet(spec(servers(1), NO_CANARY));
    f.tick();
    f.views.clear(); // its start was lost
    f.campaign = f.campaign.abort(f.now);
    f.tick();
    assertThat(f.status("db1:5432")).isEqualTo(MemberStatus.SKIPPED);
    assertThat(f.status()).isEqualTo(CampaignStatus.ABORTED);
    assertThat(f.rolledBack()).isEmpty();
  }

  @Test
  void aTickThatChangesNothingGivesNoNewValue() {
    Fleet f = new Fleet(spec(servers(3), NO_CANARY.withLimits(2, 1, Policy.FailureLimit.count(1))));
    f.tick();
    f.phase("db1:5432", Phase.REPLICATING);
    f.phase("db2:5432", Phase.REPLICATING);
    f.tick();
    assertThat(f.last.campaign()).isEmpty();
    f.advance(Duration.ofSeconds(1));
    f.tick();
    assertThat(f.last.campaign()).isEmpty();
    assertThat(f.last.campaignOr(f.campaign)).isSameAs(f.campaign);
  }

  @Test
  void theCampaignCompletesWhenEveryMemberFinished_failuresUnderTheLimitIncluded() {
    Fleet f = new Fleet(spec(servers(3), NO_CANARY.withLimits(3, 1, Policy.FailureLimit.count(2))));
    f.tick();
    f.complete("db1:5432", "db3:5432");
    f.phase("db2:5432", Phase.FINALIZED);
    f.tick();
    assertThat(f.status()).isEqualTo(CampaignStatus.COMPLETED);
    assertThat(f.history()).last().isEqualTo("completed: 3 succeeded, 0 failed");
    assertThat(CampaignPolicy.eta(f.campaign)).contains(Duration.ZERO);

    Fleet g = new Fleet(spec(servers(2), NO_CANARY.withLimits(2, 1, Policy.FailureLimit.count(2))));
    g.tick();
    g.complete("db1:5432");
    g.rollBack("db2:5432", "x");
    g.tick();
    assertThat(g.status()).isEqualTo(CampaignStatus.COMPLETED);
    assertThat(g.history()).last().isEqualTo("completed: 1 succeeded, 1 failed");
  }

  @Test
  void theEtaIsTheMembersLeftTimesTheMeanTimeOverTheConcurrency_plusTheBakesLeft() {
    Fleet f = new Fleet(spec(servers(10), NO_CANARY.withWaves(2, Duration.ofMinutes(5))
        .withLimits(2, 1, Policy.FailureLimit.count(1))));
    f.tick();
    assertThat(CampaignPolicy.eta(f.campaign)).as("nothing finished yet").isEmpty();
    f.advance(Duration.ofMinutes(10));
    f.complete("db1:5432");
    f.tick();
    f.advance(Duration.ofMinutes(10));
    f.complete("db2:5432"); // took 20 minutes
    f.tick();
    // 8 left x 15 min mean / 2 at once = 60 min; waves 1-4 are still to open: 4 bakes of 5 min.
    assertThat(CampaignPolicy.eta(f.campaign)).contains(Duration.ofMinutes(80));
  }
}
