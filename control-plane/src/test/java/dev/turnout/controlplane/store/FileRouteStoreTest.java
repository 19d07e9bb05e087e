package dev.turnout.controlplane.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileRouteStoreTest {
  @TempDir Path dir;

  private static DatabaseRoute orders(String endpoint) {
    return new DatabaseRoute("orders", 15432, Optional.ofNullable(endpoint).map(Endpoint::parse), Set.of("checkout"));
  }

  @Test
  void recordsSurviveReopening_lastRecordPerDatabaseWins() throws Exception {
    try (FileRouteStore store = FileRouteStore.open(dir)) {
      store.load();
      store.append(new RouteRecord(orders("10.0.0.5:5432"), 1, "seed"));
      store.append(new RouteRecord(orders(null), 2, "drain"));
      store.append(new RouteRecord(orders("10.0.0.6:5432"), 3, "route"));
      store.reserveVersion(4);
    }
    try (FileRouteStore store = FileRouteStore.open(dir)) {
      RouteStore.State state = store.load();
      assertThat(state.highestVersion()).isEqualTo(4);
      assertThat(state.routes().get("orders").route()).isEqualTo(orders("10.0.0.6:5432"));
      assertThat(state.routes().get("orders").version()).isEqualTo(3);
    }
  }

  @Test
  void aLineTornByACrash_isDroppedAndCutOff_earlierRecordsStay() throws Exception {
    try (FileRouteStore store = FileRouteStore.open(dir)) {
      store.load();
      store.append(new RouteRecord(orders("10.0.0.5:5432"), 1, "seed"));
    }
    Path journal = dir.resolve(FileRouteStore.JOURNAL);
    long goodSize = Files.size(journal);
    Files.writeString(journal, "1234abcd {\"op\":\"put\",\"version\":2,\"datab", StandardOpenOption.APPEND);

    try (FileRouteStore store = FileRouteStore.open(dir)) {
      RouteStore.State state = store.load();
      assertThat(state.routes().get("orders").route().endpoint()).contains(Endpoint.parse("10.0.0.5:5432"));
      assertThat(state.highestVersion()).isEqualTo(1);
      assertThat(Files.size(journal)).isEqualTo(goodSize);
      store.append(new RouteRecord(orders("10.0.0.7:5432"), 2, "route"));
    }
    try (FileRouteStore store = FileRouteStore.open(dir)) {
      assertThat(store.load().routes().get("orders").route().endpoint()).contains(Endpoint.parse("10.0.0.7:5432"));
    }
  }

  /**
   * A migration of a server moves its databases in one version: a crash while their batch is written must leave all
   * of them or none durable, never the first of them routed to the target and the rest not.
   */
  @Test
  void aBatchTornByACrash_leavesNoneOfItsRecords_andAWholeBatchLoadsWithItsTime() throws Exception {
    Instant at = Instant.parse("2026-12-03T03:00:00Z");
    DatabaseRoute billing = new DatabaseRoute("billing", 15433, Optional.of(Endpoint.parse("10.0.0.5:5432")), Set.of());
    DatabaseRoute billingMoved = new DatabaseRoute("billing", 15433, Optional.of(Endpoint.parse("10.0.0.6:5432")),
        Set.of());
    try (FileRouteStore store = FileRouteStore.open(dir, Clock.fixed(at, ZoneOffset.UTC))) {
      store.load();
      store.appendAll(List.of(new RouteRecord(orders("10.0.0.5:5432"), 1, "seed"), new RouteRecord(billing, 2,
          "seed")), RouteStore.Writer.ANY_REPLICA);
    }
    Path journal = dir.resolve(FileRouteStore.JOURNAL);
    long whole = Files.size(journal);
    try (FileRouteStore store = FileRouteStore.open(dir)) {
      RouteStore.State state = store.load();
      assertThat(state.routes()).containsOnlyKeys("orders", "billing");
      assertThat(state.highestVersion()).isEqualTo(2);
      assertThat(store.history("billing", Long.MAX_VALUE, 10)).singleElement()
          .satisfies(r -> assertThat(r.at()).contains(at));
      store.appendAll(List.of(new RouteRecord(orders("10.0.0.6:5432"), 3, "route"), new RouteRecord(billingMoved, 3,
          "route")), RouteStore.Writer.ANY_REPLICA);
    }
    long torn = Files.size(journal) - 20; // the crash: the batch's line written up to 20 bytes before its end
    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(journal, StandardOpenOption.WRITE)) {
      ch.truncate(torn);
    }

    try (FileRouteStore store = FileRouteStore.open(dir)) {
      RouteStore.State state = store.load();
      assertThat(state.routes().get("orders").route().endpoint()).as("neither database moved")
          .contains(Endpoint.parse("10.0.0.5:5432"));
      assertThat(state.routes().get("billing").route()).isEqualTo(billing);
      assertThat(state.highestVersion()).isEqualTo(2);
      assertThat(Files.size(journal)).as("the torn batch cut off").isEqualTo(whole);
    }
  }

  @Test
  void damageBeforeTheLastLine_isRefused_notGuessedAround() throws Exception {
    try (FileRouteStore store = FileRouteStore.open(dir)) {
      store.load();
      store.append(new RouteRecord(orders("10.0.0.5:5432"), 1, "seed"));
      store.append(new RouteRecord(orders("10.0.0.6:5432"), 2, "route"));
    }
    Path journal = dir.resolve(FileRouteStore.JOURNAL);
    List<String> lines = Files.readAllLines(journal);
    lines.set(0, lines.get(0).replace("10.0.0.5", "10.0.0.9"));
    Files.write(journal, lines, StandardCharsets.UTF_8);

    try (FileRouteStore store = FileRouteStore.open(dir)) {
      assertThatThrownBy(store::load).isInstanceOf(StoreException.class).hasMessageContaining("line 1 is damaged");
    }
  }

  @Test
  void anUnwritableDirectory_isAClearError() throws Exception {
    Path file = dir.resolve("not-a-directory");
    Files.writeString(file, "x");
    assertThatThrownBy(() -> FileRouteStore.open(file.resolve("data")))
        .isInstanceOf(StoreException.class)
        .hasMessageContaining("cannot create data directory");
  }

  @Test
  void manyChanges_areCompactedAtOpen_withoutLosingTheHighestVersion() throws Exception {
    try (FileRouteStore store = FileRouteStore.open(dir)) {
      store.load();
      for (int v = 1; v <= FileRouteStore.COMPACT_AFTER_LINES + 5; v++) {
        store.append(new RouteRecord(orders("10.0.0." + (v % 200 + 1) + ":5432"), v, "route"));
      }
    }
    try (FileRouteStore store = FileRouteStore.open(dir)) {
      RouteStore.State state = store.load();
      assertThat(state.highestVersion()).isEqualTo(FileRouteStore.COMPACT_AFTER_LINES + 5);
      assertThat(store.lines()).as("the reserved version, then the database's kept history")
          .hasSize(1 + FileRouteStore.HISTORY_KEPT);
      assertThat(store.history("orders", Long.MAX_VALUE, 1000)).hasSize(FileRouteStore.HISTORY_KEPT)
          .first().satisfies(r -> assertThat(r.record().version()).isEqualTo(FileRouteStore.COMPACT_AFTER_LINES + 5));
    }
    try (FileRouteStore store = FileRouteStore.open(dir)) {
      RouteStore.State state = store.load();
      assertThat(state.highestVersion()).isEqualTo(FileRouteStore.COMPACT_AFTER_LINES + 5);
      assertThat(state.routes().get("orders").route().endpoint())
          .contains(Endpoint.parse("10.0.0." + ((FileRouteStore.COMPACT_AFTER_LINES + 5) % 200 + 1) + ":5432"));
    }
  }

  private static final Instant NOON = Instant.parse("2026-03-01T12:00:00Z");

  @Test
  void aChangeByHand_keepsWhoWhyAndWhen_andTheHistoryPagesBackNewestFirst() throws Exception {
    MutableClock clock = new MutableClock(NOON);
    RouteRecord.Operator sre = new RouteRecord.Operator("ops-admin", "db1 replaced after a disk failure");
    try (FileRouteStore store = FileRouteStore.open(dir, clock)) {
      store.load();
      store.append(new RouteRecord(orders("10.0.0.5:5432"), 1, "seed"));
      clock.now = NOON.plusSeconds(60);
      store.append(new RouteRecord(orders(null), 2, "drain", Optional.empty(), Optional.of(sre)));
      clock.now = NOON.plusSeconds(120);
      store.append(new RouteRecord(orders("10.0.0.6:5432"), 3, "route", Optional.empty(), Optional.of(sre)));
    }
    try (FileRouteStore store = FileRouteStore.open(dir, new MutableClock(NOON.plusSeconds(999)))) {
      store.load();
      var newest = store.history("orders", Long.MAX_VALUE, 2);
      assertThat(newest).extracting(r -> r.record().version()).containsExactly(3L, 2L);
      assertThat(newest.get(0).record().operator()).contains(sre);
      assertThat(newest.get(0).at()).as("the time it was recorded, not the time it was read")
          .contains(NOON.plusSeconds(120));
      assertThat(newest.get(0).record().route().endpoint()).contains(Endpoint.parse("10.0.0.6:5432"));
      var older = store.history("orders", 2, 2);
      assertThat(older).singleElement().satisfies(r -> {
        assertThat(r.record().cause()).isEqualTo("seed");
        assertThat(r.record().operator()).isEmpty();
        assertThat(r.at()).contains(NOON);
      });
      assertThat(store.history("ledger", Long.MAX_VALUE, 10)).isEmpty();
    }
  }

  @Test
  void aJournalWrittenBeforeChangesByHand_stillLoads_andItsChangesAreHistoryWithoutATime() throws Exception {
    // Two lines exactly as the previous version wrote them: no "at", "by" or "reason".
    String seed = "{\"op\":\"put\",\"version\":1,\"cause\":\"seed\",\"database\":\"orders\",\"port\":15432,"
        + "\"endpoint\":\"10.0.0.5:5432\",\"services\":[\"checkout\"]}";
    String route = "{\"op\":\"put\",\"version\":2,\"cause\":\"route\",\"database\":\"orders\",\"port\":15432,"
        + "\"endpoint\":\"10.0.0.6:5432\",\"services\":[\"checkout\"]}";
    Files.writeString(dir.resolve(FileRouteStore.JOURNAL), framed(seed) + framed(route));

    try (FileRouteStore store = FileRouteStore.open(dir, new MutableClock(NOON))) {
      RouteStore.State state = store.load();
      assertThat(state.routes().get("orders").route()).isEqualTo(orders("10.0.0.6:5432"));
      assertThat(state.routes().get("orders").operator()).isEmpty();
      assertThat(store.history("orders", Long.MAX_VALUE, 10)).extracting(r -> r.record().cause(), r -> r.at())
          .containsExactly(org.assertj.core.groups.Tuple.tuple("route", Optional.empty()),
              org.assertj.core.groups.Tuple.tuple("seed", Optional.empty()));
    }
  }

  private static String framed(String json) {
    java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
    crc.update(json.getBytes(StandardCharsets.UTF_8));
    return String.format("%08x ", crc.getValue()) + json + "\n";
  }

  /** A clock a test sets. */
  static final class MutableClock extends Clock {
    volatile Instant now;

    MutableClock(Instant now) {
      this.now = now;
    }

    @Override
    public Instant instant() {
      return now;
    }

    @Override
    public ZoneOffset getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(java.time.ZoneId zone) {
      return this;
    }
  }
}
