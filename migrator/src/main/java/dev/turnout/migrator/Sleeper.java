package dev.turnout.migrator;

import java.time.Duration;

/** Waiting between polls, injected so tests can run a migration's waits without real time. */
public interface Sleeper {
  void sleep(Duration duration) throws InterruptedException;

  Sleeper SYSTEM = d -> java.util.concurrent.TimeUnit.NANOSECONDS.sleep(d.toNanos());
}
