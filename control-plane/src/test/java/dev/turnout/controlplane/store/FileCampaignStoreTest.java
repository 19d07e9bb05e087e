package dev.turnout.controlplane.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.migrator.campaign.Campaign;
import dev.turnout.migrator.campaign.CampaignSpec;
import dev.turnout.migrator.campaign.CampaignStatus;
import dev.turnout.migrator.campaign.Member;
import dev.turnout.migrator.campaign.Policy;
import dev.turnout.migrator.campaign.Target;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The embedded store's campaigns: whole-file replacement, compare-and-set on the revision, read back the same. */
class FileCampaignStoreTest {
  static final Instant T0 = Instant.parse("2026-12-02T10:00:00Z");
  @TempDir Path dir;

  static Campaign campaign() {
    CampaignSpec spec = CampaignSpec.of("fleet", List.of(Member.of("10.0.0.5:5432", Target.given("10.0.0.6:5432")),
        Member.of("10.0.0.7:5432", Target.given("10.0.0.8:5432"))), Policy.DEFAULT);
    return Campaign.create("c1", spec, T0);
  }

  @Test
  void aCampaignSavedIsReadBackTheSame_byAnotherStoreOnTheDirectory_atItsRevision() throws Exception {
    FileCampaignStore store = new FileCampaignStore(dir);
    Campaign saved = store.save(campaign());
    Campaign paused = store.save(saved.pause(T0.plusSeconds(5)));

    List<Campaign> read = new FileCampaignStore(dir).loadAll();

    assertThat(read).containsExactly(paused);
    assertThat(read.get(0).revision()).isEqualTo(2);
    assertThat(read.get(0).state().status()).isEqualTo(CampaignStatus.PAUSED);
  }

  @Test
  void aSaveOfAStaleRevision_isRefused_andWritesNothing() throws Exception {
    FileCampaignStore store = new FileCampaignStore(dir);
    Campaign first = store.save(campaign());
    store.save(first.pause(T0.plusSeconds(1)));

    assertThatThrownBy(() -> store.save(first.abort(T0.plusSeconds(2))))
        .isInstanceOf(CampaignStore.StaleCampaignException.class)
        .hasMessageContaining("revision 2, read at 1");
    assertThat(store.loadAll().get(0).state().status()).isEqualTo(CampaignStatus.PAUSED);
    assertThatThrownBy(() -> store.save(campaign())).as("a second campaign of the same id")
        .isInstanceOf(CampaignStore.StaleCampaignException.class);
  }

  @Test
  void aSaveCutShortBeforeItsRename_leavesTheLastStateWhole() throws Exception {
    FileCampaignStore store = new FileCampaignStore(dir);
    Campaign saved = store.save(campaign());
    Files.writeString(dir.resolve("campaigns").resolve("c1.json.next"), "{\"id\": \"c1\", \"spec\": {"); // torn

    assertThat(new FileCampaignStore(dir).loadAll()).containsExactly(saved);
  }
}
