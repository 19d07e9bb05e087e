package dev.turnout.controlplane.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import dev.turnout.migrator.Lsn;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.RevisionConflictException;
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
    Migration first = store.save(m);
    Migration second = store.save(first.note(t0.plusSeconds(2), "later"));

    assertThat(first.revision()).isEqualTo(1);
    assertThat(second.revision()).isEqualTo(2);
    var loaded = new FileMigrationStore(dir).loadAll();
    assertThat(loaded).hasSize(1);
    assertThat(loaded.get(0)).isEqualTo(m.note(t0.plusSeconds(2), "later").atRevision(2));
    assertThat(Files.list(dir.resolve("migrations")).map(p -> p.getFileName().toString()))
        .containsExactly("a1b2c3d4.log");
  }

  @Test
  void aSaveReadAtAnOlderRevision_isRefusedNamingBothRevisions_andChangesNothing() throws Exception {
    FileMigrationStore store = new FileMigrationStore(dir);
    Migration planned = store.save(plan());
    Migration finalized = store.save(planned.to(Phase.PREFLIGHT, T0.plusSeconds(1), ""));

    assertThatThrownBy(() -> store.save(planned.to(Phase.ROLLING_BACK, T0.plusSeconds(2), "from an old read")))
        .isInstanceOf(RevisionConflictException.class)
        .hasMessage("migration a1b2c3d4 of database 'orders' changed meanwhile: this change to ROLLING_BACK was read"
            + " at revision 1, the store holds revision 2 (PREFLIGHT); nothing was saved, read it again");
    assertThatThrownBy(() -> store.save(plan())).as("a second first save").isInstanceOf(RevisionConflictException.class);
    assertThat(store.loadAll()).containsExactly(finalized);
  }

  @Test
  void aFileOfAnEarlierVersion_withoutRevision_loadsAtRevisionZero_andItsNextSaveReplacesItWithAJournal()
      throws Exception {
    FileMigrationStore store = new FileMigrationStore(dir);
    Path file = dir.resolve("migrations").resolve("a1b2c3d4.json");
    String json = FileMigrationStore.JSON.writeValueAsString(plan());
    Files.writeString(file, json.replaceAll(",\\s*\"revision\" : 0", ""));
    assertThat(Files.readString(file)).doesNotContain("revision");

    Migration old = store.loadAll().get(0);

    assertThat(old.revision()).isZero();
    assertThat(old).isEqualTo(plan());
    assertThat(store.save(old.to(Phase.PREFLIGHT, T0.plusSeconds(1), "")).revision()).isEqualTo(1);
    assertThat(Files.list(dir.resolve("migrations")).map(p -> p.getFileName().toString()))
        .containsExactly("a1b2c3d4.log");
    assertThat(new FileMigrationStore(dir).loadAll()).singleElement().satisfies(m -> {
      assertThat(m.phase()).isEqualTo(Phase.PREFLIGHT);
      assertThat(m.revision()).isEqualTo(1);
    });
  }

  @Test
  void aSaveTornByACrash_leavesThePreviousState_andTheNextSaveAppendsAfterIt() throws Exception {
    FileMigrationStore store = new FileMigrationStore(dir);
    Migration planned = store.save(plan());
    Path log = dir.resolve("migrations").resolve("a1b2c3d4.log");
    Files.write(log, "0badc0de {\"id\":\"a1b2c3d4\",\"pha".getBytes(java.nio.charset.StandardCharsets.UTF_8),
        java.nio.file.StandardOpenOption.APPEND);

    FileMigrationStore restarted = new FileMigrationStore(dir);
    assertThat(restarted.loadAll()).containsExactly(planned);
    Migration next = restarted.save(planned.to(Phase.PREFLIGHT, T0.plusSeconds(1), ""));

    assertThat(new FileMigrationStore(dir).loadAll()).containsExactly(next);
    assertThat(Files.readAllLines(log)).hasSize(2);
  }

  @Test
  void aDamagedLastEntry_isRefusedNamingTheFile_ratherThanResumingFromAnOlderState() throws Exception {
    FileMigrationStore store = new FileMigrationStore(dir);
    Migration planned = store.save(plan());
    store.save(planned.to(Phase.PREFLIGHT, T0.plusSeconds(1), ""));
    Path log = dir.resolve("migrations").resolve("a1b2c3d4.log");
    Files.writeString(log, Files.readString(log).replace("PREFLIGHT", "PREFLIGHX"));

    assertThatThrownBy(() -> new FileMigrationStore(dir).loadAll())
        .hasMessageContaining("a1b2c3d4.log").hasMessageContaining("damaged");
  }

  @Test
  void aJournalPastItsLimit_isRewrittenToItsLastState() throws Exception {
    FileMigrationStore store = new FileMigrationStore(dir);
    Migration m = store.save(plan());
    Path log = dir.resolve("migrations").resolve("a1b2c3d4.log");
    String padding = "x".repeat(4000);
    int saves = 1;
    while (Files.readAllLines(log).size() == saves && saves < 200) { // until the journal is rewritten
      m = store.save(m.note(T0.plusSeconds(saves), padding));
      saves++;
    }
    m = store.save(m.note(T0.plusSeconds(saves), padding));

    assertThat(Files.readAllLines(log)).as("rewritten to its last state, then one save after it").hasSizeLessThan(3);
    assertThat(new FileMigrationStore(dir).loadAll()).containsExactly(m);
  }

  @Test
  void concurrentSaves_ofOneMigrationAtOneRevision_oneWins_whileOtherMigrationsSaveAlongside() throws Exception {
    FileMigrationStore store = new FileMigrationStore(dir);
    Migration planned = store.save(plan());
    java.util.List<Migration> others = new java.util.ArrayList<>();
    for (int i = 0; i < 8; i++) {
      others.add(store.save(Migration.plan("other" + i, new Migration.Spec("db" + i, new ServerAddress("10.1.0." + i,
          5432), new ServerAddress("10.2.0." + i, 5432), Migration.Options.defaults()), T0)));
    }
    var pool = java.util.concurrent.Executors.newFixedThreadPool(16);
    java.util.concurrent.atomic.AtomicInteger won = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicInteger refused = new java.util.concurrent.atomic.AtomicInteger();
    java.util.List<java.util.concurrent.Future<?>> done = new java.util.ArrayList<>();
    for (int i = 0; i < 8; i++) {
      String note = "writer " + i;
      done.add(pool.submit(() -> {
        try {
          store.save(planned.note(T0.plusSeconds(1), note));
          won.incrementAndGet();
        } catch (RevisionConflictException e) {
          refused.incrementAndGet();
        }
        return null;
      }));
      Migration other = others.get(i);
      done.add(pool.submit(() -> store.save(other.to(Phase.PREFLIGHT, T0.plusSeconds(1), ""))));
    }
    for (var f : done) {
      f.get();
    }
    pool.shutdown();

    assertThat(won).as("one save per revision").hasValue(1);
    assertThat(refused).hasValue(7);
    var loaded = new FileMigrationStore(dir).loadAll();
    assertThat(loaded).hasSize(9);
    assertThat(loaded).filteredOn(m -> m.id().startsWith("other")).allMatch(m -> m.phase() == Phase.PREFLIGHT
        && m.revision() == 2);
    assertThat(loaded).filteredOn(m -> m.id().equals("a1b2c3d4")).singleElement()
        .satisfies(m -> assertThat(m.revision()).isEqualTo(2));
  }

  private static final Instant T0 = Instant.parse("2026-11-27T10:00:00Z");

  private static Migration plan() {
    return Migration.plan("a1b2c3d4", new Migration.Spec("orders", new ServerAddress("10.0.0.5", 5432),
        new ServerAddress("10.0.0.6", 5432), Migration.Options.defaults()), T0);
  }
}
