package dev.turnout.controlplane.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
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
      assertThat(store.lines()).hasSize(2);
    }
    try (FileRouteStore store = FileRouteStore.open(dir)) {
      RouteStore.State state = store.load();
      assertThat(state.highestVersion()).isEqualTo(FileRouteStore.COMPACT_AFTER_LINES + 5);
      assertThat(state.routes().get("orders").route().endpoint())
          .contains(Endpoint.parse("10.0.0." + ((FileRouteStore.COMPACT_AFTER_LINES + 5) % 200 + 1) + ":5432"));
    }
  }
}
