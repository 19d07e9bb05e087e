package dev.turnout.migrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import org.junit.jupiter.api.Test;

class PhaseTest {
  @Test
  void theForwardPath_isTheDesignsOrder() {
    Phase p = Phase.PLANNED;
    StringBuilder path = new StringBuilder(p.name());
    while (p != Phase.FINALIZED) {
      p.checkTransition(p.next());
      p = p.next();
      path.append(" > ").append(p);
    }
    assertThat(path.toString()).isEqualTo("PLANNED > PREFLIGHT > REPLICATING > VALIDATED > QUIESCING > CATCHING_UP"
        + " > PROMOTING > SHIFTING > VERIFYING > BAKING > COMPLETED > FINALIZED");
  }

  @Test
  void skippingAPhase_isRefusedWithAMessageNamingBoth() {
    assertThatThrownBy(() -> Phase.REPLICATING.checkTransition(Phase.PROMOTING))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("Cannot go to PROMOTING when migration is REPLICATING");
  }

  @Test
  void terminalPhases_goNowhere_andRollbackIsOpenUntilFinalized() {
    assertThatThrownBy(() -> Phase.ROLLED_BACK.checkTransition(Phase.PREFLIGHT)).hasMessageContaining("ROLLED_BACK");
    assertThatThrownBy(() -> Phase.FINALIZED.checkTransition(Phase.ROLLING_BACK)).hasMessageContaining("FINALIZED");
    for (Phase p : Phase.values()) {
      if (!p.isTerminal() && p != Phase.ROLLING_BACK) {
        p.checkTransition(Phase.ROLLING_BACK);
      }
    }
    Phase.VALIDATED.checkTransition(Phase.REPLICATING); // fell behind again
    assertThat(Phase.PROMOTING.isPastPointOfNoReturn()).isTrue();
    assertThat(Phase.CATCHING_UP.isPastPointOfNoReturn()).isFalse();
  }

  @Test
  void aMigrationRemembersWhenItsPhaseStarted_notWhenItWasLastNoted() {
    Instant t0 = Instant.parse("2026-11-27T10:00:00Z");
    Migration m = Migration.plan("m1", new Migration.Spec("orders", new ServerAddress("10.0.0.5", 5432),
        new ServerAddress("10.0.0.6", 5432), Migration.Options.defaults()), t0);
    m = m.to(Phase.PREFLIGHT, t0.plusSeconds(1), "").note(t0.plusSeconds(5), "checked");
    assertThat(m.phaseStarted()).isEqualTo(t0.plusSeconds(1));
  }

  @Test
  void lsnsParsePrintAndCompareAsPostgresDoes() {
    Lsn a = Lsn.parse("16/B374D848");
    assertThat(a.toString()).isEqualTo("16/B374D848");
    assertThat(Lsn.parse("17/0").minus(a)).isEqualTo(0x17_0000_0000L - 0x16_B374_D848L);
    assertThat(Lsn.parse("17/0")).isGreaterThan(a);
    assertThatThrownBy(() -> Lsn.parse("B374D848")).hasMessageContaining("is not an LSN");
  }
}
