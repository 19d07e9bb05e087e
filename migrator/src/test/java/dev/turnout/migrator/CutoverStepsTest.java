package dev.turnout.migrator;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class CutoverStepsTest {
  @Test
  void aStepThatRunsTwice_addsUp_andTheLineReadsBackAsWritten() throws Exception {
    FakeClock clock = new FakeClock(java.time.Instant.parse("2026-12-02T10:00:00Z"));
    CutoverSteps steps = new CutoverSteps(clock);
    steps.time("drain-ack", () -> {
      clock.advance(Duration.ofMillis(12));
      return null;
    });
    steps.add("saves", Duration.ofMillis(3));
    steps.add("saves", Duration.ofMillis(4));

    assertThat(steps.line()).isEqualTo("cutover steps: drain-ack 12 ms, saves 7 ms");
    assertThat(CutoverSteps.parse(steps.line())).containsExactly(java.util.Map.entry("drain-ack", 12L),
        java.util.Map.entry("saves", 7L));
    assertThat(CutoverSteps.parse("route drained: every sidecar ACKed in 9 ms")).isEmpty();
  }
}
