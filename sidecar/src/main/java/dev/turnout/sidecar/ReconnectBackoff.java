package dev.turnout.sidecar;

import java.time.Duration;
import java.util.function.DoubleSupplier;

/**
 * How long the sidecar waits between attempts to reach the control plane: exponential from {@link #INITIAL}
 * to {@link #CAP}, each wait drawn uniformly between half and the whole of the current step.
 *
 * <p>The cap bounds how late a sidecar notices a control plane that answers again (at most {@code CAP} plus
 * one connection); the jitter keeps a fleet that lost its control plane at the same instant from coming back
 * in step. Not thread-safe: the xDS client's one thread owns it.
 */
final class ReconnectBackoff {
  static final Duration INITIAL = Duration.ofMillis(100);
  /** Under a second with room for a connection and the first response (the goal: back within 1 s). */
  static final Duration CAP = Duration.ofMillis(800);

  private final DoubleSupplier random;
  private long stepMillis = INITIAL.toMillis();
  private int attempts;

  /** @param random uniform in [0, 1), e.g. {@code ThreadLocalRandom.current()::nextDouble} */
  ReconnectBackoff(DoubleSupplier random) {
    this.random = random;
  }

  /** The wait before the next attempt; each call doubles the step, up to the cap. */
  Duration next() {
    long step = stepMillis;
    stepMillis = Math.min(CAP.toMillis(), stepMillis * 2);
    attempts++;
    return Duration.ofMillis(step / 2 + Math.round(random.getAsDouble() * (step - step / 2)));
  }

  /** Waits drawn since the last {@link #reset}. */
  int attempts() {
    return attempts;
  }

  /** After a response has proved the stream works: the next failure is retried quickly again. */
  void reset() {
    stepMillis = INITIAL.toMillis();
    attempts = 0;
  }
}
