package dev.turnout.migrator;

import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Waiting between polls and for futures, injected so tests can run a migration's waits without real time. */
public interface Sleeper {
  void sleep(Duration duration) throws InterruptedException;

  /**
   * Returns once {@code future} is done, whichever way (the caller reads how), or throws {@link TimeoutException}
   * when {@code timeout} passes first. A fake sleeper moves its clock to the deadline instead of waiting for it.
   */
  default void awaitDone(Future<?> future, Duration timeout) throws InterruptedException, TimeoutException {
    try {
      future.get(Math.max(1, timeout.toNanos()), TimeUnit.NANOSECONDS);
    } catch (ExecutionException | CancellationException done) {
      // done: the caller reads the outcome
    }
  }

  Sleeper SYSTEM = d -> TimeUnit.NANOSECONDS.sleep(d.toNanos());
}
