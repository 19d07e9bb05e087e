package dev.turnout.migrator.campaign;

import static dev.turnout.migrator.campaign.Fleet.servers;
import static dev.turnout.migrator.campaign.Fleet.spec;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class CampaignCommandsTest {
  @Test
  void aNewCampaignIsPlannedRunningAtWaveZero_itsMigrationsNamedAfterIt() {
    Campaign c = Campaign.create("east-1", spec(servers(3), Policy.DEFAULT.withWaves(2, Duration.ZERO)), Fleet.T0);
    assertThat(c.state()).isEqualTo(new Campaign.State(CampaignStatus.RUNNING, 0, Optional.empty(), Optional.empty(),
        com.google.common.collect.ImmutableList.of(), 0));
    assertThat(c.members()).extracting(MemberState::wave).containsExactly(0, 1, 1);
    assertThat(c.migrationIdOf(2)).isEqualTo("east-1-3");
    assertThat(c.waveCount()).isEqualTo(2);
    assertThat(c.revision()).isZero();
    assertThat(c.history()).singleElement().extracting(Campaign.Event::text).isEqualTo("created: 3 servers in 2"
        + " waves; canary 1 (then approve), waves of 2, at most 5 at once and 1 per host, halt at 1 failure,"
        + " cutovers at any time");
    assertThatThrownBy(() -> Campaign.create("east 1", c.spec(), Fleet.T0)).isInstanceOf(InvalidSpecException.class)
        .hasMessageStartingWith("id: 'east 1' is not a campaign id");
  }

  @Test
  void approveWhenNotWaitingSaysWhy() {
    Fleet f = new Fleet(spec(servers(3), Policy.DEFAULT));
    f.tick();
    assertThatThrownBy(() -> f.campaign.approve(f.now)).isInstanceOf(IllegalStateException.class)
        .hasMessage("Cannot approve campaign c1 when it is RUNNING: its canary has not finished");
    f.complete("db1:5432");
    f.tick();
    Campaign approved = f.campaign.approve(f.now);
    assertThatThrownBy(() -> approved.approve(f.now))
        .hasMessage("Cannot approve campaign c1 when it is RUNNING: the canary was approved already (wave 1 may run)");

    Campaign noCanary = Campaign.create("c2", spec(servers(2), Policy.DEFAULT.withCanary(0, Optional.empty())),
        Fleet.T0);
    assertThatThrownBy(() -> noCanary.approve(Fleet.T0))
        .hasMessage("Cannot approve campaign c2 when it is RUNNING: it has no canary to approve");
  }

  @Test
  void aPausedCampaignMayHaveItsCanaryApproved_andStaysPaused() {
    Fleet f = new Fleet(spec(servers(3), Policy.DEFAULT));
    f.tick();
    f.complete("db1:5432");
    f.tick();
    f.campaign = f.campaign.pause(f.now).approve(f.now);
    assertThat(f.status()).isEqualTo(CampaignStatus.PAUSED);
    f.tick();
    assertThat(f.started()).isEmpty();
    f.campaign = f.campaign.resume(f.now);
    f.tick();
    assertThat(f.started()).containsExactly("db2:5432", "db3:5432");
  }

  @Test
  void pauseAndResumeOnlyWhereTheyMeanSomething() {
    Campaign c = Campaign.create("c1", spec(servers(2), Policy.DEFAULT), Fleet.T0);
    assertThatThrownBy(() -> c.resume(Fleet.T0))
        .hasMessage("Cannot resume campaign c1 when it is RUNNING: only a paused or halted campaign resumes");
    Campaign paused = c.pause(Fleet.T0);
    assertThat(paused.state().status()).isEqualTo(CampaignStatus.PAUSED);
    assertThat(paused.history()).last().extracting(Campaign.Event::text)
        .isEqualTo("paused (was RUNNING); running members go on");
    assertThatThrownBy(() -> paused.pause(Fleet.T0)).hasMessage("Cannot pause campaign c1 when it is PAUSED");
    assertThat(paused.resume(Fleet.T0).state().status()).isEqualTo(CampaignStatus.RUNNING);
    assertThat(paused.revision()).as("commands keep the revision they were read at").isEqualTo(c.revision());
  }

  @Test
  void abortWithNothingRunningEndsAtOnce_andAnEndedCampaignTakesNoCommand() {
    Campaign c = Campaign.create("c1", spec(servers(2), Policy.DEFAULT), Fleet.T0).atRevision(4);
    Campaign aborted = c.abort(Fleet.T0.plusSeconds(5));
    assertThat(aborted.state().status()).isEqualTo(CampaignStatus.ABORTED);
    assertThat(aborted.members()).extracting(MemberState::status)
        .containsOnly(MemberStatus.SKIPPED);
    assertThat(aborted.revision()).isEqualTo(4);
    assertThat(aborted.history()).last().extracting(Campaign.Event::text)
        .isEqualTo("aborted (was RUNNING): 2 not started will not start, nothing runs");
    assertThatThrownBy(() -> aborted.abort(Fleet.T0)).hasMessage("Cannot abort campaign c1 when it is ABORTED");
    assertThatThrownBy(() -> aborted.resume(Fleet.T0)).hasMessageStartingWith("Cannot resume campaign c1 when it is"
        + " ABORTED");
    assertThatThrownBy(() -> aborted.pause(Fleet.T0)).hasMessage("Cannot pause campaign c1 when it is ABORTED");
  }

  @Test
  void aHaltedCampaignIsNotPausedOnTop() {
    Fleet f = new Fleet(spec(servers(2), Policy.DEFAULT.withCanary(0, Optional.empty())));
    f.tick();
    f.rollBack("db1:5432", "x");
    f.tick();
    assertThatThrownBy(() -> f.campaign.pause(f.now))
        .hasMessage("Cannot pause campaign c1 when it is HALTED: nothing starts while it is halted already");
    Instant later = f.now.plusSeconds(60);
    assertThat(f.campaign.abort(later).state().status()).isEqualTo(CampaignStatus.ABORTING);
  }
}
