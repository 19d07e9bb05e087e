package dev.turnout.migrator.campaign;

import static dev.turnout.migrator.campaign.Fleet.servers;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.guava.GuavaModule;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import dev.turnout.migrator.Phase;
import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * A campaign goes through the stores as a migration does: JSON written by reflection over the records, with the
 * mapper FileMigrationStore uses, here also refusing any property the records do not declare (so no method of
 * theirs is taken for a field).
 */
class CampaignJsonTest {
  private static final ObjectMapper JSON = new ObjectMapper()
      .registerModule(new Jdk8Module())
      .registerModule(new JavaTimeModule())
      .registerModule(new GuavaModule())
      .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
      .disable(SerializationFeature.WRITE_DURATIONS_AS_TIMESTAMPS)
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .enable(SerializationFeature.INDENT_OUTPUT);

  @Test
  void aCampaignMidFlightReadsBackEqual_everyKindOfTargetWindowAndMemberStateIncluded() throws Exception {
    List<Member> members = new ArrayList<>(servers(3));
    members.set(1, members.get(1).withDatabases(List.of("orders", "billing")).withSizeBytes(123_456_789L)
        .withWindows(List.of(new MaintenanceWindow("30 2 * * SAT", Duration.ofHours(3), ZoneId.of("Europe/Berlin")))));
    members.add(Member.of("aurora:users-1", Target.auroraCluster("db.r6g.large")).withHost("rack-9"));
    members.add(Member.of("db9:5432", Target.standby("db9-b:5432")));
    Policy policy = Policy.DEFAULT.withCanary(1, Optional.of(Duration.ofMinutes(45))).withWaves(2, Duration.ofMinutes(5))
        .withLimits(2, 1, Policy.FailureLimit.percent(40)).withOrder(Policy.Order.SMALLEST_FIRST)
        .withWindows(List.of(new MaintenanceWindow("@daily", Duration.ofHours(6))));
    Fleet f = new Fleet(CampaignSpec.of("round trip", members, policy));
    f.tick();
    f.complete(f.campaign.members().get(0).server());
    f.tick();
    f.advance(Duration.ofMinutes(45));
    f.tick();
    f.phase(f.campaign.members().get(1).server(), Phase.VALIDATED);
    f.rollBack(f.campaign.members().get(2).server(), "the standby \"db\" stopped");
    f.tick();
    Campaign c = f.campaign.pause(f.now).atRevision(7);

    String json = JSON.writeValueAsString(c);
    Campaign back = JSON.readValue(json, Campaign.class);

    assertThat(back).isEqualTo(c);
    assertThat(c.members()).extracting(MemberState::status).contains(MemberStatus.SUCCEEDED, MemberStatus.STARTED,
        MemberStatus.FAILED, MemberStatus.PENDING);
    assertThat(json).contains("\"status\" : \"PAUSED\"", "\"revision\" : 7", "\"zone\" : \"Europe/Berlin\"",
        "\"kind\" : \"AURORA_CLUSTER\"", "\"bake\" : \"PT45M\"", "\"unit\" : \"PERCENT\"");
  }
}
