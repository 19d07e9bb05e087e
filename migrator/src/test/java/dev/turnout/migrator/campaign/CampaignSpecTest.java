package dev.turnout.migrator.campaign;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

class CampaignSpecTest {
  private static Member pg(String server, String target) {
    return Member.of(server, Target.given(target));
  }

  @Test
  void theDefaultPolicyIsCareful_oneCanaryThatWaitsForApproval_haltAtTheFirstFailure() {
    Policy p = Policy.DEFAULT;
    assertThat(p.canary()).isEqualTo(new Policy.Canary(1, Optional.empty()));
    assertThat(p.waves()).isEqualTo(new Policy.Waves(10, Duration.ZERO));
    assertThat(p.limits()).isEqualTo(new Policy.Limits(5, 1, Policy.FailureLimit.count(1)));
    assertThat(p.windows()).isEmpty();
    assertThat(p.order()).isEqualTo(Policy.Order.GIVEN);
    assertThat(p.describe()).isEqualTo("canary 1 (then approve), waves of 10, at most 5 at once and 1 per host,"
        + " halt at 1 failure, cutovers at any time");
  }

  @Test
  void aMembersHostIsItsServersUnlessGiven_andAnRdsInstanceIsAHostOfItsOwn() {
    assertThat(pg("db1.prod:5432", "db1-new.prod:5432").host()).isEqualTo("db1.prod");
    assertThat(pg("[fd00::5]:5433", "[fd00::6]:5432").host()).isEqualTo("fd00::5");
    assertThat(pg("db1.prod:5432", "db1-new.prod:5432").withHost("rack7-host3").host()).isEqualTo("rack7-host3");
    assertThat(Member.of("aurora:orders-1", Target.auroraCluster("db.r6g.large")).host()).isEqualTo("aurora:orders-1");
    assertThat(Target.auroraCluster("db.r6g.large").describe("aurora:orders-1"))
        .isEqualTo("orders-1-aurora (new Aurora cluster, db.r6g.large)");
  }

  @Test
  void aBadServerIsNamedWithItsValue() {
    assertThatThrownBy(() -> pg("db1", "db2:5432")).isInstanceOf(InvalidSpecException.class)
        .hasMessage("server: 'db1' is not HOST:PORT (or aurora:INSTANCE for a source)");
    assertThatThrownBy(() -> pg("db1:70000", "db2:5432"))
        .hasMessage("server: 'db1:70000' has port '70000', not one of 1-65535");
    assertThatThrownBy(() -> pg(null, "db2:5432")).hasMessage("server: missing is required (HOST:PORT)");
    assertThatThrownBy(() -> Member.of("aurora:orders--1", Target.auroraCluster("db.r6g.large")))
        .hasMessageStartingWith("server: 'aurora:orders--1' does not name an RDS instance");
    assertThat(pg("aurora:5432", "db2:5432").host()).as("a host named aurora, port 5432").isEqualTo("aurora");
  }

  @Test
  void aTargetMustFitItsServer() {
    assertThatThrownBy(() -> Member.of("aurora:orders-1", Target.given("db2:5432")))
        .hasMessage("target.kind: 'GIVEN' cannot move an RDS instance: its target must be AURORA_CLUSTER");
    assertThatThrownBy(() -> Member.of("db1:5432", Target.auroraCluster("db.r6g.large")))
        .hasMessage("target.kind: 'AURORA_CLUSTER' needs an aurora:INSTANCE server; a HOST:PORT server moves to a"
            + " GIVEN or STANDBY address");
    assertThatThrownBy(() -> Target.auroraCluster("r6g.large"))
        .hasMessage("value: 'r6g.large' is not an RDS instance class like db.r6g.large");
    assertThatThrownBy(() -> pg("db1:5432", "db1:5432")).hasMessage("target.value: 'db1:5432' is the server itself");
    assertThatThrownBy(() -> Member.of("db1:5432", null)).hasMessageStartingWith("target: missing is required");
    String longName = "aurora:" + "a".repeat(57);
    assertThatThrownBy(() -> Member.of(longName, Target.auroraCluster("db.r6g.large")))
        .hasMessageContaining("names a cluster longer than 63 characters");
  }

  @Test
  void databasesAreNamesListedOnce_andSizesAreNotNegative() {
    assertThatThrownBy(() -> pg("db1:5432", "db2:5432").withDatabases(List.of("orders", "billing", "orders")))
        .hasMessage("databases[2]: 'orders' is listed twice");
    assertThatThrownBy(() -> pg("db1:5432", "db2:5432").withDatabases(List.of(" ")))
        .hasMessage("databases[0]: ' ' is not a database name");
    assertThatThrownBy(() -> pg("db1:5432", "db2:5432").withSizeBytes(-1)).hasMessage("sizeBytes: '-1' must be 0 or more");
  }

  @Test
  void aSpecNamesTheMemberAtFault_byItsIndex() {
    assertThatThrownBy(() -> CampaignSpec.of("fleet", List.of(pg("db1:5432", "n1:5432"), pg("db2:5432", "n2:5432"),
        pg("db1:5432", "n3:5432")), Policy.DEFAULT))
        .isInstanceOf(InvalidSpecException.class)
        .hasMessage("members[2].server: 'db1:5432' is also members[0].server: a server moves once")
        .satisfies(e -> {
          InvalidSpecException ise = (InvalidSpecException) e;
          assertThat(ise.path()).isEqualTo("members[2].server");
          assertThat(ise.value()).isEqualTo("db1:5432");
        });
    assertThatThrownBy(() -> CampaignSpec.of("fleet", List.of(pg("db1:5432", "n1:5432"), pg("db2:5432", "n1:5432")),
        Policy.DEFAULT)).hasMessage("members[1].target.value: 'n1:5432' is also the target of members[0]");
    assertThatThrownBy(() -> CampaignSpec.of("fleet", List.of(pg("db1:5432", "n1:5432"), pg("db2:5432", "db1:5432")),
        Policy.DEFAULT)).hasMessage("members[1].target.value: 'db1:5432' is members[0].server: a server this"
            + " campaign moves cannot be a target in it");
    assertThatThrownBy(() -> CampaignSpec.of("fleet", List.of(), Policy.DEFAULT))
        .hasMessage("members: '[]' must list at least one server");
    assertThatThrownBy(() -> CampaignSpec.of(" ", List.of(pg("db1:5432", "n1:5432")), Policy.DEFAULT))
        .hasMessage("name: ' ' is required");
    assertThatThrownBy(() -> CampaignSpec.of("fleet", List.of(pg("db1:5432", "n1:5432")),
        Policy.DEFAULT.withCanary(2, Optional.empty()))).hasMessage("policy.canary.count: '2' is more than the 1 member");
  }

  @Test
  void aReaderBuildingASpecBottomUpSaysWhereEachPartWas() {
    assertThatThrownBy(() -> InvalidSpecException.within("members[3]", () -> pg("db4:0", "n4:5432")))
        .isInstanceOf(InvalidSpecException.class)
        .hasMessage("members[3].server: 'db4:0' has port '0', not one of 1-65535");
    assertThatThrownBy(() -> InvalidSpecException.within("members[3]", () -> InvalidSpecException.within("windows[1]",
        () -> new MaintenanceWindow("0 25 * * *", Duration.ofHours(1)))))
        .hasMessage("members[3].windows[1].cron: '0 25 * * *' is not a cron expression: hour value 25 is out of"
            + " range 0-23 (in '25')");
    assertThatThrownBy(() -> InvalidSpecException.within("policy.maxFailures",
        () -> Policy.FailureLimit.parse("ten percent")))
        .hasMessage("policy.maxFailures: 'ten percent' is not a number of failed members (3) or a percentage (10%)");
  }

  @Test
  void policyLimitsSayWhichFieldIsWrong() {
    assertThatThrownBy(() -> new Policy.Canary(-1, Optional.empty())).hasMessage("count: '-1' must be 0 (no canary) or more");
    assertThatThrownBy(() -> new Policy.Canary(1, Optional.of(Duration.ofMinutes(-5))))
        .hasMessage("bake: '-5m' must be 0 or more");
    assertThatThrownBy(() -> new Policy.Waves(0, Duration.ZERO)).hasMessage("size: '0' must be 1 or more");
    assertThatThrownBy(() -> new Policy.Limits(0, 1, null)).hasMessage("maxConcurrent: '0' must be 1 or more");
    assertThatThrownBy(() -> new Policy.Limits(2, 0, null)).hasMessage("maxConcurrentPerHost: '0' must be 1 or more");
    assertThatThrownBy(() -> Policy.FailureLimit.parse("0")).hasMessage("value: '0' must be 1 or more failed members");
    assertThatThrownBy(() -> Policy.FailureLimit.parse("101%")).hasMessage("value: '101%' must be from 1% to 100%");
  }

  @Test
  void aFailureLimitIsACountOrAPercentageRoundedUp_neverZero() {
    assertThat(Policy.FailureLimit.parse("3").threshold(400)).isEqualTo(3);
    assertThat(Policy.FailureLimit.parse("10%").threshold(400)).isEqualTo(40);
    assertThat(Policy.FailureLimit.parse(" 10 % ").threshold(15)).isEqualTo(2);
    assertThat(Policy.FailureLimit.parse("1%").threshold(5)).isEqualTo(1);
    assertThat(Policy.FailureLimit.parse("10%").toString()).isEqualTo("10%");
  }

  @Test
  void aSpecWithNullsFromAReaderGetsTheDefaults() {
    Member m = new Member("db1:5432", null, null, Target.standby("db1-b:5432"), null, null);
    assertThat(m.databases()).isEmpty();
    assertThat(m.windows()).isEmpty();
    assertThat(m.sizeBytes()).isEqualTo(OptionalLong.empty());
    CampaignSpec spec = new CampaignSpec("fleet", ImmutableList.of(m), null);
    assertThat(spec.policy()).isEqualTo(Policy.DEFAULT);
    assertThat(new Policy(null, new Policy.Waves(3, null), null, null, null).waves().bake()).isEqualTo(Duration.ZERO);
  }
}
