package dev.turnout.controlplane.config;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as operators write them: 500ms, 30s, 2m, 1h. */
public final class Durations {
  private static final Pattern FORMAT = Pattern.compile("(\\d+)(ms|s|m|h)");

  private Durations() {}

  /** Parses {@code text}; the exception's message names {@code what} and the expected format. */
  public static Duration parse(String option, String text) {
    Matcher m = FORMAT.matcher(text == null ? "" : text.trim());
    if (!m.matches()) {
      throw new IllegalArgumentException(option + " '" + text + "' is not a duration such as 500ms, 30s, 2m or 1h");
    }
    long n = Long.parseLong(m.group(1));
    return switch (m.group(2)) {
      case "ms" -> Duration.ofMillis(n);
      case "s" -> Duration.ofSeconds(n);
      case "m" -> Duration.ofMinutes(n);
      default -> Duration.ofHours(n);
    };
  }

  /** As {@link #parse} reads it: the largest unit that states {@code d} exactly ({@code 25h}, {@code 90s}, {@code 1500ms}). */
  public static String format(Duration d) {
    long ms = d.toMillis();
    if (ms % 3_600_000 == 0 && ms != 0) {
      return ms / 3_600_000 + "h";
    } else if (ms % 60_000 == 0 && ms != 0) {
      return ms / 60_000 + "m";
    } else if (ms % 1_000 == 0) {
      return ms / 1_000 + "s";
    }
    return ms + "ms";
  }
}
