package dev.turnout.controlplane.xds;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import org.slf4j.Logger;

/**
 * At most {@code lines} log lines per window for one kind of event that clients cause (NACKs, malformed
 * requests): a fleet that rejects one bad config, or one client in a loop, must not flood the log. What was
 * held back is counted in the next line that gets through.
 */
final class LogLimiter {
  private final Clock clock;
  private final Duration window;
  private final int lines;
  private final Object lock = new Object();

  @GuardedBy("lock")
  private Instant windowStart = Instant.MIN;

  @GuardedBy("lock")
  private int logged;

  @GuardedBy("lock")
  private long suppressed;

  LogLimiter(Clock clock, Duration window, int lines) {
    this.clock = clock;
    this.window = window;
    this.lines = lines;
  }

  /** Logs at WARN unless this window's budget is spent; never with a stack trace. */
  void warn(Logger log, String format, Object... args) {
    long held;
    synchronized (lock) {
      Instant now = clock.instant();
      if (windowStart == Instant.MIN || !now.isBefore(windowStart.plus(window))) {
        windowStart = now;
        logged = 0;
      }
      if (logged >= lines) {
        suppressed++;
        return;
      }
      logged++;
      held = suppressed;
      suppressed = 0;
    }
    if (held > 0) {
      log.warn(format + " ({} similar lines suppressed before this one)", append(args, held));
    } else {
      log.warn(format, args);
    }
  }

  private static Object[] append(Object[] args, Object last) {
    Object[] all = java.util.Arrays.copyOf(args, args.length + 1);
    all[args.length] = last;
    return all;
  }
}
