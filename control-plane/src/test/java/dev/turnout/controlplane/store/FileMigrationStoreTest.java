package dev.turnout.controlplane.store;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.collect.ImmutableList;
import dev.turnout.migrator.Lsn;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.SlotPosition;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileMigrationStoreTest {
  @TempDir Path dir;

  @Test
  void aSavedMigration_readsBackEqual_withItsRecordedPositions() throws Exception {
    Instant t0 = Instant.parse("2026-11-27T10:00:00Z");
    Migration m = Migration.plan("a1b2c3d4", new Migration.Spec("orders", new ServerAddress("10.0.0.5", 5432),
        new ServerAddress("10.0.0.6", 5432), Migration.Options.defaults()), t0)
        .to(Phase.PREFLIGHT, t0.plusSeconds(1), "");
    m = m.with(m.progress().withFinalLsn(Lsn.parse("0/3117BE8"))
        .withSlots(ImmutableList.of(new SlotPosition("cdc", "pgoutput", Lsn.parse("0/3117BE8"))))
        .withFencedRoles(ImmutableList.of("app")).withError("boom"));

    FileMigrationStore store = new FileMigrationStore(dir);
    store.save(m);
    store.save(m.note(t0.plusSeconds(2), "later"));

    var loaded = new FileMigrationStore(dir).loadAll();
    assertThat(loaded).hasSize(1);
    assertThat(loaded.get(0)).isEqualTo(m.note(t0.plusSeconds(2), "later"));
    assertThat(Files.list(dir.resolve("migrations")).map(p -> p.getFileName().toString()))
        .containsExactly("a1b2c3d4.json");
  }
}
