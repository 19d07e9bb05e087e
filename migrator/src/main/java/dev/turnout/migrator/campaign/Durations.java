package dev.turnout.migrator.campaign;

import java.time.Duration;

/** Durations as operators write them: {@code 2h}, {@code 1d12h}, {@code 90s}. */
final class Durations {
  private Durations() {}

  static String format(Duration d) {
    if (d.isZero()) {
      return "0s";
    }
    StringBuilder s = new StringBuilder(d.isNegative() ? "-" : "");
    long seconds = Math.abs(d.getSeconds());
    long[] units = {86_400, 3_600, 60, 1};
    String[] names = {"d", "h", "m", "s"};
    for (int i = 0; i < units.length; i++) {
      if (seconds >= units[i]) {
        s.append(seconds / units[i]).append(names[i]);
        seconds %= units[i];
      }
    }
    return s.length() == (d.isNegative() ? 1 : 0) ? d.toString() : s.toString();
  }
}
