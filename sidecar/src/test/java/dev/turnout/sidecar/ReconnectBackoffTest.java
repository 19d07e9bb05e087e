package dev.turnout.sidecar;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ReconnectBackoffTest {

  private static List<Long> waits(ReconnectBackoff backoff, int n) {
    List<Long> waits = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      waits.add(backoff.next().toMillis());
    }
    return waits;
  }

  @Test
  void waitsDoubleFromATenthOfASecond_andStopGrowingAtTheCap() {
    assertThat(waits(new ReconnectBackoff(() -> 0.999_999), 8))
        .containsExactly(100L, 200L, 400L, 800L, 800L, 800L, 800L, 800L);
  }

  @Test
  void eachWaitIsJitteredBetweenHalfAndTheWholeOfItsStep_soAFleetDoesNotRetryInStep() {
    assertThat(waits(new ReconnectBackoff(() -> 0.0), 6)).containsExactly(50L, 100L, 200L, 400L, 400L, 400L);
    assertThat(waits(new ReconnectBackoff(() -> 0.5), 5)).containsExactly(75L, 150L, 300L, 600L, 600L);
  }

  @Test
  void theCapLeavesRoomToBeBackWithinASecond() {
    assertThat(ReconnectBackoff.CAP).isLessThan(Duration.ofSeconds(1));
  }

  @Test
  void aResponse_resetsTheWaitToItsFirstStep() {
    ReconnectBackoff backoff = new ReconnectBackoff(() -> 0.999_999);
    waits(backoff, 10);
    assertThat(backoff.attempts()).isEqualTo(10);

    backoff.reset();

    assertThat(backoff.attempts()).isZero();
    assertThat(backoff.next()).isEqualTo(Duration.ofMillis(100));
  }
}
