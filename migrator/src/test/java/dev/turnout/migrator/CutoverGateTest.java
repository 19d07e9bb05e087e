package dev.turnout.migrator;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * A validated migration asks its cutover gate before the drain: a campaign holds members outside their maintenance
 * windows. Held, it keeps sampling the target and validates again if it falls behind; it never times out for it.
 */
class CutoverGateTest {
  final Harness h = new Harness();

  /** Closed until {@code opens} on the harness's clock. */
  void closedUntil(Instant opens) {
    h.migrator.setCutoverGate(m -> h.clock.instant().isBefore(opens)
        ? Optional.of("outside the maintenance window, which opens at " + opens) : Optional.empty());
  }

  @Test
  void aHeldMigration_waitsValidated_drainingNothing_andCutsOverWhenTheGateOpens_pastItsPhaseDeadline() throws Exception {
    Instant opens = Harness.T0.plus(Duration.ofHours(3)); // far past the 60 s phase deadline
    closedUntil(opens);
    h.clock.schedule(Duration.ofHours(2), () -> assertThat(h.journal.lines()).as("nothing drained while held").isEmpty());

    Migration done = h.run();

    assertThat(done.phase()).as(Harness.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(done.history()).extracting(Migration.Event::note).as("the hold recorded once, not once per poll")
        .filteredOn(n -> n.startsWith("cutover held: ")).containsExactly(
            "cutover held: outside the maintenance window, which opens at " + opens);
    Migration.Event quiescing = done.history().stream().filter(e -> e.phase() == Phase.QUIESCING).findFirst()
        .orElseThrow();
    assertThat(quiescing.at()).as("the cutover began once the gate opened").isAfterOrEqualTo(opens)
        .isBefore(opens.plus(Duration.ofSeconds(2)));
    assertThat(h.journal.lines().get(0)).isEqualTo("drain app");
  }

  @Test
  void aTargetThatFallsBehindWhileHeld_isValidatedAgainBeforeAnyCutover() throws Exception {
    Instant opens = Harness.T0.plus(Duration.ofMinutes(10));
    closedUntil(opens);
    AtomicLong lag = new AtomicLong();
    h.servers.lag(lag::get);
    h.clock.schedule(Duration.ofMinutes(5), () -> lag.set(64L * 1024 * 1024));
    h.clock.schedule(Duration.ofMinutes(6), () -> lag.set(0));

    Migration done = h.run();

    assertThat(done.phase()).as(Harness.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(Harness.phases(done)).containsSubsequence(Phase.VALIDATED, Phase.REPLICATING, Phase.VALIDATED,
        Phase.QUIESCING);
    assertThat(done.history()).extracting(Migration.Event::note).anySatisfy(n -> assertThat(n)
        .isEqualTo("target behind by 67108864 bytes while the cutover was held: validating again"));
  }

  @Test
  void aHeldMigration_canBeRolledBack_withNothingToUndo() throws Exception {
    closedUntil(Instant.MAX);
    h.clock.schedule(Duration.ofMinutes(1), () -> {
      try {
        h.migrator.rollback(h.onlyId(), false);
      } catch (MigrationException e) {
        throw new AssertionError(e);
      }
    });

    Migration m = h.run();

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.journal.lines()).as("never drained, never fenced").isEmpty();
  }
}
