package dev.turnout.migrator.campaign;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class PlannerTest {
  private static Member pg(int n) {
    return Member.of("db" + n + ":5432", Target.given("db" + n + "-new:5432"));
  }

  private static List<Member> fleet(int size) {
    List<Member> members = new ArrayList<>();
    for (int i = 1; i <= size; i++) {
      members.add(pg(i));
    }
    return members;
  }

  private static String waves(Plan plan) {
    return plan.entries().stream().map(e -> e.wave() + ":" + e.member().server().replace(":5432", ""))
        .collect(Collectors.joining(" "));
  }

  @Test
  void theCanaryIsWaveZero_thenWavesOfTheirSize() {
    Plan plan = Planner.plan(CampaignSpec.of("fleet", fleet(6), Policy.DEFAULT.withCanary(1, Optional.empty())
        .withWaves(2, Duration.ZERO)));
    assertThat(waves(plan)).isEqualTo("0:db1 1:db2 1:db3 2:db4 2:db5 3:db6");
    assertThat(plan.waves()).isEqualTo(4);
    assertThat(plan.canary(0)).isTrue();
    assertThat(plan.wave(2)).extracting(Member::server).containsExactly("db4:5432", "db5:5432");
  }

  @Test
  void withoutACanaryTheFirstWaveIsWaveZero() {
    Plan plan = Planner.plan(CampaignSpec.of("fleet", fleet(5), Policy.DEFAULT.withCanary(0, Optional.empty())
        .withWaves(2, Duration.ZERO)));
    assertThat(waves(plan)).isEqualTo("0:db1 0:db2 1:db3 1:db4 2:db5");
    assertThat(plan.canary(0)).isFalse();
  }

  @Test
  void smallestFirstPutsTheCanaryOnTheSmallestServer_unknownSizesLastInTheGivenOrder() {
    List<Member> members = List.of(pg(1).withSizeBytes(500), pg(2), pg(3).withSizeBytes(20), pg(4).withSizeBytes(500),
        pg(5), pg(6).withSizeBytes(0));
    Plan plan = Planner.plan(CampaignSpec.of("fleet", members, Policy.DEFAULT.withWaves(2, Duration.ZERO)
        .withOrder(Policy.Order.SMALLEST_FIRST)));
    assertThat(waves(plan)).isEqualTo("0:db6 1:db3 1:db1 2:db4 2:db2 3:db5");
    assertThat(plan.spec().members().get(0).server()).as("the planned spec runs in that order").isEqualTo("db6:5432");
  }

  @Test
  void thePlanPrintsEveryServerItsDatabasesTargetWaveAndWhenItMayCutOver() {
    Instant now = Instant.parse("2026-12-02T10:00:00Z");
    MaintenanceWindow nightly = new MaintenanceWindow("0 2 * * *", Duration.ofHours(2), ZoneId.of("UTC"));
    MaintenanceWindow morning = new MaintenanceWindow("0 9 * * *", Duration.ofHours(3));
    List<Member> members = List.of(
        pg(1).withDatabases(List.of("orders", "billing")).withSizeBytes(3L << 30),
        Member.of("aurora:users-1", Target.auroraCluster("db.r6g.large")).withWindows(List.of(morning)),
        Member.of("db3:5432", Target.standby("db3-b:5432")));
    Plan plan = Planner.plan(CampaignSpec.of("move-east", members, Policy.DEFAULT.withWaves(2, Duration.ofMinutes(30))
        .withWindows(List.of(nightly))));
    assertThat(plan.render(now)).isEqualTo(String.join("\n",
        "campaign 'move-east': 3 servers in 2 waves; canary 1 (then approve), waves of 2 30m apart, at most 5 at once"
            + " and 1 per host, halt at 1 failure, cutovers in ['0 2 * * *' UTC for 2h]",
        "WAVE      SERVER          HOST            DATABASES          TARGET                                        "
            + "     SIZE     CUTOVER",
        "0 canary  db1:5432        db1             orders,billing     db1-new:5432                                  "
            + "     3.0 GiB  from 2026-12-03 02:00Z",
        "1         aurora:users-1  aurora:users-1  (listed at start)  users-1-aurora (new Aurora cluster, db.r6g.large)"
            + "  -        open now, until 2026-12-02 12:00Z",
        "1         db3:5432        db3             (listed at start)  db3-b:5432 (new standby)                      "
            + "     -        from 2026-12-03 02:00Z",
        ""));
  }
}
