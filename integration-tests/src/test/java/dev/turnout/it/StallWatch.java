package dev.turnout.it;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;

/**
 * Prints every thread's stack if a test is still running after a while, and again each time as long again
 * passes, without failing it: evidence for a stall that happens now and then and not when watched.
 */
final class StallWatch implements AutoCloseable {
  private final Thread thread;

  private StallWatch(String what, Duration after) {
    thread = new Thread(() -> {
      for (long waited = after.toSeconds(); ; waited += after.toSeconds()) {
        try {
          Thread.sleep(after.toMillis());
        } catch (InterruptedException e) {
          return;
        }
        StringBuilder dump = new StringBuilder("STALL: " + what + " still running after " + waited + " s at "
            + Instant.now() + "; threads:\n");
        for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
          dump.append("  \"").append(e.getKey().getName()).append("\" ").append(e.getKey().getState()).append('\n');
          for (StackTraceElement frame : e.getValue()) {
            dump.append("      at ").append(frame).append('\n');
          }
        }
        System.out.println(dump);
      }
    }, "stall-watch");
    thread.setDaemon(true);
    thread.start();
  }

  static StallWatch start(String what, Duration after) {
    return new StallWatch(what, after);
  }

  @Override
  public void close() {
    thread.interrupt();
  }
}
