package dev.turnout.migrator;

import static dev.turnout.migrator.Harness.SOURCE;
import static dev.turnout.migrator.Harness.TARGET;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The process dies at each save a migration makes, just before the write is durable or just after it, and a new
 * process resumes from the store: every step re-run after a crash is harmless, and the migration ends as an
 * uncrashed one does, each irreversible action (fence, promotion) done once.
 */
class CrashResumeTest {
  /** Every save of a clean run, numbered from 1, each crashed before and after its write. */
  static Stream<Arguments> everySaveOfACleanRun() throws Exception {
    Harness clean = new Harness();
    clean.run();
    int saves = clean.store.writes().size();
    return IntStream.rangeClosed(1, saves).boxed().flatMap(n -> Stream.of(
        Arguments.of(n, clean.store.writes().get(n - 1).phase(), false),
        Arguments.of(n, clean.store.writes().get(n - 1).phase(), true)));
  }

  @ParameterizedTest(name = "crash at save {0} ({1}), written: {2}")
  @MethodSource("everySaveOfACleanRun")
  void aCrashAtAnySave_isResumedFromTheStore_andCompletesHavingFencedAndPromotedOnce(int save, Phase phase,
      boolean written) throws Exception {
    Harness h = new Harness();
    h.store.crashAtSave(save, written);
    assertThatThrownBy(h::run).isInstanceOf(InMemoryMigrationStore.Crash.class);

    h.restart();

    if (save == 1 && !written) {
      assertThat(h.migrator.list()).as("nothing was recorded, so nothing happened").isEmpty();
      assertThat(h.journal.lines()).isEmpty();
      return;
    }
    Migration m = h.migrator.list().get(0);
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.COMPLETED);
    assertThat(h.servers.fences()).isEqualTo(1);
    assertThat(h.servers.promotions()).isEqualTo(1);
    assertThat(h.servers.unfences()).isZero();
    assertThat(h.servers.fenced()).as("the source stays fenced until finalized").isTrue();
    assertThat(h.servers.refusedRoles()).containsExactly("app", "replicator");
    assertThat(h.servers.writesAdmitted()).isTrue();
    assertThat(h.router.endpoint("app")).isEqualTo(TARGET.toString());
    assertThat(m.progress().fencedRoles()).containsExactly("app", "replicator");
  }

  /** Every save of a run that fails after the fence and rolls back. */
  static Stream<Arguments> everySaveOfARollback() throws Exception {
    Harness clean = new Harness();
    clean.servers.replayStops();
    clean.run();
    int saves = clean.store.writes().size();
    return IntStream.rangeClosed(1, saves).boxed()
        .filter(n -> clean.store.writes().get(n - 1).phase().compareTo(Phase.CATCHING_UP) >= 0)
        .flatMap(n -> Stream.of(
            Arguments.of(n, clean.store.writes().get(n - 1).phase(), false),
            Arguments.of(n, clean.store.writes().get(n - 1).phase(), true)));
  }

  @ParameterizedTest(name = "crash at save {0} ({1}), written: {2}")
  @MethodSource("everySaveOfARollback")
  void aCrashWhileFailingOrRollingBack_isResumed_andTheRollbackFinishes(int save, Phase phase, boolean written)
      throws Exception {
    Harness h = new Harness();
    h.servers.replayStops();
    h.store.crashAtSave(save, written);
    assertThatThrownBy(h::run).isInstanceOf(InMemoryMigrationStore.Crash.class);

    h.restart();

    Migration m = h.migrator.list().get(0);
    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.router.endpoint("app")).isEqualTo(SOURCE.toString());
    assertThat(h.servers.fenced()).isFalse();
    assertThat(h.servers.refusedRoles()).isEmpty();
    assertThat(h.servers.promotions()).isZero();
  }
}
