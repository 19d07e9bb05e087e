package dev.turnout.it;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/** Waiting in a test for something another process or thread makes true, failing with what never happened. */
final class Eventually {
  private Eventually() {}

  static void until(String what, Duration timeout, BooleanSupplier condition) throws InterruptedException {
    until(what, timeout, condition, () -> "");
  }

  /** @param context appended to the failure (a server's output, say) */
  static void until(String what, Duration timeout, BooleanSupplier condition, Supplier<String> context)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("never: " + what + context.get());
      }
      Thread.sleep(20);
    }
  }
}
