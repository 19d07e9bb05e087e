package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.campaign.CampaignFile;
import dev.turnout.controlplane.store.PostgresStore;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.campaign.Campaign;
import dev.turnout.migrator.campaign.CampaignStatus;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Campaigns in the store several replicas share: the leader runs and saves them; the others read them from the
 * store and refuse commands naming the leader; a new leader takes them over; a stale leader cannot save.
 */
class SharedStoreCampaignTest {
  static final String FILE = """
      name: shared
      policy:
        canary: 0
        wave_size: 1
        max_failures: 1
        windows:
          - cron: "0 3 1 1 *"
            duration: 1m
      migration:
        window: 1s
      servers:
        - server: SOURCE
          target: TARGET
      """;

  @TempDir Path dir;
  SharedStoreFixture store;

  @BeforeEach
  void setUp() throws Exception {
    store = new SharedStoreFixture(dir);
  }

  @AfterEach
  void tearDown() throws Exception {
    store.close();
  }

  @Test
  void theLeaderSavesItsCampaign_aFollowerReadsIt_andRefusesCommands_aNewLeaderTakesItOver_aStaleOneCannotSave()
      throws Exception {
    PostgresServer source = PostgresServer.start(dir.resolve("source"), "wal_level=logical", "max_wal_senders=10");
    PostgresServer target = PostgresServer.startStandby(dir.resolve("target"), source, "turnout_standby",
        "wal_level=logical", "max_wal_senders=10");
    try {
      run(source, target);
    } finally {
      target.close();
      source.close();
    }
  }

  private void run(PostgresServer source, PostgresServer target) throws Exception {
    ControlPlane a = store.replica("cp-a");
    Eventually.until("cp-a to lead", Duration.ofSeconds(10), () -> a.migrations().leading());
    ControlPlane b = store.replica("cp-b");
    a.routing().route("orders", dev.turnout.envoy.Endpoint.parse("127.0.0.1:" + source.port())).get();

    // Its one member replicates, validates, and is held there: its window opens on January 1st.
    Campaign started = a.campaigns().start(CampaignFile.parse(FILE.replace("SOURCE", "127.0.0.1:" + source.port())
        .replace("TARGET", "127.0.0.1:" + target.port()), "shared.yaml"));
    String member = started.migrationIdOf(0);
    Eventually.until("the member to be held at VALIDATED", Duration.ofSeconds(60),
        () -> a.campaigns().held(member).isPresent() && a.migrations().current().get(member)
            .map(m -> m.phase() == dev.turnout.migrator.Phase.VALIDATED).orElse(false));

    Eventually.until("the follower to read it from the store", Duration.ofSeconds(10), () -> {
      try {
        return b.campaigns().get(started.id()).isPresent();
      } catch (Exception e) {
        return false;
      }
    });
    assertThat(b.campaigns().get(started.id()).orElseThrow().spec().name()).isEqualTo("shared");
    assertThatThrownBy(() -> b.campaigns().command(started.id(), "abort", (c, now) -> c.abort(now)))
        .as("commands go to the leader").isInstanceOf(MigrationConflictException.class)
        .hasMessageContaining("does not run migrations now").hasMessageContaining("cp-a");

    // The console on the follower: each page read from the store, naming the replica that answers.
    java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
    java.util.Map<String, java.util.List<String>> pages = java.util.Map.of(
        "/console", java.util.List.of("orders", "127.0.0.1:" + source.port()),
        "/console/campaigns/" + started.id(), java.util.List.of("Campaign shared", "VALIDATED",
            "outside the member&#39;s maintenance windows", "The next maintenance window opens at"),
        "/console/migrations/" + member, java.util.List.of("VALIDATED", "127.0.0.1:" + target.port()),
        "/console/nodes", java.util.List.of("Nodes"));
    for (var page : pages.entrySet()) {
      java.net.http.HttpResponse<String> r = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(
          "http://127.0.0.1:" + b.httpPort() + page.getKey())).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).as(page.getKey()).isEqualTo(200);
      assertThat(r.body()).as(page.getKey()).contains("answered by replica <b class=\"replica\">cp-b</b>")
          .contains(page.getValue());
    }
    long revision;
    try (Connection c = store.connect(); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("select name, revision from turnout.campaigns")) {
      assertThat(rs.next()).isTrue();
      assertThat(rs.getString(1)).isEqualTo("shared");
      revision = rs.getLong(2);
      assertThat(revision).isPositive();
    }

    try (PostgresStore stale = store.open("cp-stale")) {
      store.stop(a);
      Eventually.until("cp-b to lead", Duration.ofSeconds(10), () -> b.migrations().leading());
      Campaign taken = b.campaigns().get(started.id()).orElseThrow();
      assertThat(taken.revision()).as("the new leader loaded what the old one saved").isGreaterThanOrEqualTo(revision);
      Eventually.until("the member resumed on the new leader, and held again", Duration.ofSeconds(30),
          () -> b.campaigns().held(member).isPresent());
      Thread.sleep(1500);
      assertThat(b.migrations().current().get(member).orElseThrow().phase()).as("not cut over by the new leader")
          .isEqualTo(dev.turnout.migrator.Phase.VALIDATED);
      Campaign aborted = b.campaigns().command(started.id(), "abort", (c, now) -> c.abort(now));
      assertThat(aborted.revision()).isGreaterThan(taken.revision());
      Eventually.until("the abort to finish", Duration.ofSeconds(30), () -> {
        try {
          return b.campaigns().get(started.id()).orElseThrow().state().status() == CampaignStatus.ABORTED;
        } catch (Exception e) {
          return false;
        }
      });

      assertThatThrownBy(() -> stale.campaigns().save(taken)).as("a store handle that does not lead cannot save")
          .hasMessageContaining("not the migration leader");
      assertThat(b.campaigns().get(started.id()).orElseThrow().state().status()).isEqualTo(CampaignStatus.ABORTED);
    }
  }
}
