package dev.turnout.migrator;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where one cutover's time goes, step by step, from the drain to the route's ACK and the probe: each step's time
 * summed (a step that runs again after a resume adds up), written into the history as one line when the
 * migration completes. Kept in memory only: a cutover resumed after a crash reports the steps since the restart.
 */
public final class CutoverSteps {
  /** The line's start in the history, which {@link #parse} looks for. */
  public static final String PREFIX = "cutover steps: ";
  /** The start of the lossless rollback's line (same format), which {@link #parse(String, String)} looks for. */
  public static final String ROLLBACK_PREFIX = "rollback steps: ";
  private static final Pattern STEP = Pattern.compile("([a-z][a-z-]*) (\\d+) ms");

  private final Clock clock;
  private final Map<String, Duration> steps = new LinkedHashMap<>();

  CutoverSteps(Clock clock) {
    this.clock = clock;
  }

  /** An action timed as one step. */
  interface Step<T> {
    T run() throws MigrationException, InterruptedException;
  }

  <T> T time(String step, Step<T> action) throws MigrationException, InterruptedException {
    Instant start = clock.instant();
    try {
      return action.run();
    } finally {
      add(step, Duration.between(start, clock.instant()));
    }
  }

  synchronized void add(String step, Duration took) {
    steps.merge(step, took, Duration::plus);
  }

  /** {@code "cutover steps: drain-ack 12 ms, grace 40 ms, ..."}, in the order the steps first ran. */
  synchronized String line() {
    StringBuilder out = new StringBuilder(PREFIX);
    steps.forEach((step, took) -> out.append(out.length() == PREFIX.length() ? "" : ", ").append(step).append(' ')
        .append(took.toMillis()).append(" ms"));
    return out.toString();
  }

  /** The steps of a history line {@link #line} wrote, in milliseconds; empty for any other line. */
  public static Map<String, Long> parse(String note) {
    return parse(note, PREFIX);
  }

  /** The steps of a history line starting with {@code prefix} ({@link #ROLLBACK_PREFIX}), in milliseconds. */
  public static Map<String, Long> parse(String note, String prefix) {
    Map<String, Long> result = new LinkedHashMap<>();
    if (note.startsWith(prefix)) {
      Matcher m = STEP.matcher(note.substring(prefix.length()));
      while (m.find()) {
        result.put(m.group(1), Long.parseLong(m.group(2)));
      }
    }
    return result;
  }
}
