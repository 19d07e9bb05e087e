package dev.turnout.migrator.campaign;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.migrator.Phase;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The mission's largest fleet, 2,000 servers on 500 hosts, ticked once a simulated minute: the limits and the
 * windows hold on every tick, and a tick costs microseconds.
 */
class CampaignScaleTest {
  private static final int SERVERS = 2_000;
  private static final int HOSTS = 500;

  private static CampaignSpec fleet(List<MaintenanceWindow> windows, int canary) {
    List<Member> members = new ArrayList<>();
    for (int i = 0; i < SERVERS; i++) {
      members.add(Member.of("pg" + (i % HOSTS) + ".prod:" + (5432 + i / HOSTS), Target.given("new" + i + ".prod:5432"))
          .withSizeBytes((i * 7919L) % 1_000_003));
    }
    Policy policy = Policy.DEFAULT.withCanary(canary, Optional.of(Duration.ZERO)).withWaves(200, Duration.ofMinutes(2))
        .withLimits(50, 1, Policy.FailureLimit.percent(5)).withWindows(windows).withOrder(Policy.Order.SMALLEST_FIRST);
    return CampaignSpec.of("fleet-2000", members, policy);
  }

  @Test
  void twoThousandServersRunToTheEnd_neverPastTheLimitsOrOutsideTheWindows() {
    MaintenanceWindow window = new MaintenanceWindow("*/10 * * * *", Duration.ofMinutes(5));
    Campaign c = Campaign.create("big", fleet(List.of(window), 1), Fleet.T0);
    Map<String, MemberView> views = new HashMap<>();
    Map<String, Integer> age = new HashMap<>();
    Instant now = Fleet.T0;
    long decideNanos = 0;
    int ticks = 0;
    int cutovers = 0;
    while (!c.state().status().isTerminal()) {
      assertThat(ticks++).as("ticks").isLessThan(5_000);
      long start = System.nanoTime();
      Decision d = CampaignPolicy.decide(c, views, now);
      decideNanos += System.nanoTime() - start;
      c = d.campaignOr(c);
      checkLimits(c);
      for (Action a : d.actions()) {
        Action.Start s = (Action.Start) a;
        views.put(s.migrationId(), MemberView.of(Phase.PREFLIGHT));
        age.put(s.migrationId(), 0);
      }
      // Each migration: 3 minutes to VALIDATED, then held until its window, 2 minutes of cutover; every 97th
      // rolls back while replicating.
      for (Map.Entry<String, MemberView> e : views.entrySet()) {
        String id = e.getKey();
        Phase p = e.getValue().phase();
        int minutes = age.merge(id, 1, Integer::sum);
        int n = Integer.parseInt(id.substring(id.lastIndexOf('-') + 1));
        if (p == Phase.PREFLIGHT && n % 97 == 0 && minutes == 2) {
          e.setValue(new MemberView(Phase.ROLLED_BACK, Optional.of("simulated: the standby stopped"), false));
        } else if (p == Phase.PREFLIGHT && minutes >= 3) {
          e.setValue(MemberView.of(Phase.VALIDATED));
        } else if (p == Phase.VALIDATED && d.mayCutOver().contains(id)) {
          assertThat(window.isOpen(now)).as("cut over at " + now).isTrue();
          e.setValue(MemberView.of(Phase.QUIESCING));
          age.put(id, 0);
          cutovers++;
        } else if (p == Phase.QUIESCING && minutes >= 2) {
          e.setValue(MemberView.of(Phase.COMPLETED));
        }
      }
      now = now.plus(Duration.ofMinutes(1));
    }
    int failed = c.count(MemberStatus.FAILED);
    assertThat(c.state().status()).isEqualTo(CampaignStatus.COMPLETED);
    assertThat(c.count(MemberStatus.SUCCEEDED) + failed).isEqualTo(SERVERS);
    assertThat(failed).isEqualTo(SERVERS / 97);
    assertThat(cutovers).isEqualTo(SERVERS - failed);
    assertThat(c.state().wavesFinished()).hasSize(c.waveCount());
    double micros = decideNanos / 1_000.0 / ticks;
    System.out.printf("%d members: %d ticks, %.1f µs per decide%n", SERVERS, ticks, micros);
    assertThat(micros).as("µs per decide over " + SERVERS + " members").isLessThan(2_000);
  }

  /** No more than 50 running, one per host, and only in the campaign's current wave. */
  private static void checkLimits(Campaign c) {
    int running = 0;
    Map<String, Integer> perHost = new HashMap<>();
    for (int i = 0; i < c.members().size(); i++) {
      MemberState m = c.members().get(i);
      if (m.status().running()) {
        running++;
        assertThat(perHost.merge(c.spec().members().get(i).host(), 1, Integer::sum)).as("per host").isEqualTo(1);
        assertThat(m.wave()).as(m + " runs in the current wave").isEqualTo(c.state().wave());
      }
      if (m.wave() < c.state().wave()) {
        assertThat(m.status().settled()).as(m + " of an earlier wave finished").isTrue();
      }
    }
    assertThat(running).isLessThanOrEqualTo(50);
  }

  @Test
  void aTickOverTwoThousandMembersThatChangesNothing_takesMicrosecondsAndAllocatesLittle() {
    MaintenanceWindow nightly = new MaintenanceWindow("0 2 * * *", Duration.ofHours(3));
    Campaign c = Campaign.create("big", fleet(List.of(nightly), 0), Fleet.T0);
    Map<String, MemberView> views = new HashMap<>();
    Instant now = Fleet.T0;
    Decision first = CampaignPolicy.decide(c, views, now);
    c = first.campaignOr(c);
    for (Action a : first.actions()) {
      views.put(((Action.Start) a).migrationId(), MemberView.of(Phase.VALIDATED));
    }
    assertThat(c.members().stream().filter(m -> m.status().running()).count()).isEqualTo(50);
    com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    for (int warm = 0; warm < 3_000; warm++) {
      CampaignPolicy.decide(c, views, now.plusSeconds(warm));
    }
    int ticks = 5_000;
    long allocated = threads.getCurrentThreadAllocatedBytes();
    long start = System.nanoTime();
    for (int t = 0; t < ticks; t++) {
      Decision d = CampaignPolicy.decide(c, views, now.plusSeconds(t));
      assertThat(d.campaign()).isEmpty();
    }
    double micros = (System.nanoTime() - start) / 1_000.0 / ticks;
    long bytesPerTick = (threads.getCurrentThreadAllocatedBytes() - allocated) / ticks;
    System.out.printf("a tick that changes nothing: %.1f µs, %d bytes%n", micros, bytesPerTick);
    assertThat(micros).as("µs per tick").isLessThan(1_000);
    // 50 running members held for tonight's window: their hosts, one look at the window, the decision (about 6 KiB;
    // looking at the window once per member was 75 KiB).
    assertThat(bytesPerTick).as("bytes allocated per tick").isLessThan(16 * 1024);
  }
}
