package dev.turnout.migrator.campaign;

import com.google.common.collect.ImmutableMap;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.Month;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A parsed 5-field cron expression (minute hour day-of-month month day-of-week), as Vixie cron reads it, answering
 * in local wall time: which minutes fire. Each field is a bit mask, so a day or an hour is matched with one AND.
 *
 * <p>Hand-written rather than cron-utils: this needs only the 5 Unix fields, cron-utils 9.2.1 measured here at
 * about 140 µs for one {@code lastExecution} (the policy asks for hundreds a tick), and it skips a day's
 * firing that falls in a spring-forward gap, where a maintenance window should still open (see
 * {@link MaintenanceWindow}).
 */
final class Cron {
  private static final Map<String, String> MACROS = ImmutableMap.<String, String>builder()
      .put("@yearly", "0 0 1 1 *").put("@annually", "0 0 1 1 *").put("@monthly", "0 0 1 * *")
      .put("@weekly", "0 0 * * 0").put("@daily", "0 0 * * *").put("@midnight", "0 0 * * *")
      .put("@hourly", "0 * * * *").build();
  private static final String[] MONTHS = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
      "NOV", "DEC"};
  private static final String[] DAYS = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
  /** Parsed expressions by text: windows are few distinct strings, read every tick. */
  private static final Map<String, Cron> PARSED = new ConcurrentHashMap<>();

  /** Bit m set when minute m fires (0-59). */
  private final long minutes;
  /** Bit h set when hour h fires (0-23). */
  private final int hours;
  /** Bit d set when day of month d fires (1-31). */
  private final int daysOfMonth;
  /** Bit m set when month m fires (1-12). */
  private final int months;
  /** Bit d set when day of week d fires (0 = Sunday .. 6). */
  private final int daysOfWeek;
  /**
   * Vixie cron's rule: when both day fields are restricted (neither starts with {@code *}), a day fires when
   * either matches; otherwise both must.
   */
  private final boolean eitherDay;

  private Cron(long minutes, int hours, int daysOfMonth, int months, int daysOfWeek, boolean eitherDay) {
    this.minutes = minutes;
    this.hours = hours;
    this.daysOfMonth = daysOfMonth;
    this.months = months;
    this.daysOfWeek = daysOfWeek;
    this.eitherDay = eitherDay;
  }

  /**
   * The schedule of {@code expression}.
   *
   * @throws IllegalArgumentException naming the field and the value that is wrong, or an expression that never
   *     fires (like {@code 0 0 30 2 *})
   */
  static Cron parse(String expression) {
    if (expression == null) {
      throw new IllegalArgumentException("a cron expression is required");
    }
    Cron known = PARSED.get(expression);
    if (known != null) {
      return known;
    }
    Cron parsed = parseUncached(expression);
    if (PARSED.size() > 10_000) {
      PARSED.clear(); // a bound, never reached by real campaigns: their windows are a handful of strings
    }
    PARSED.put(expression, parsed);
    return parsed;
  }

  private static Cron parseUncached(String expression) {
    String text = expression.trim();
    String macro = MACROS.get(text.toLowerCase(Locale.ROOT));
    if (macro != null) {
      text = macro;
    } else if (text.startsWith("@")) {
      throw new IllegalArgumentException("'" + text + "' is not a cron macro (known: " + String.join(", ",
          MACROS.keySet()) + ")");
    }
    String[] f = text.isEmpty() ? new String[0] : text.split("\\s+");
    if (f.length != 5) {
      throw new IllegalArgumentException("expected 5 fields (minute hour day-of-month month day-of-week), found "
          + f.length + (f.length == 6 ? " (seconds and years are not supported)" : ""));
    }
    long minutes = field(f[0], "minute", 0, 59, null);
    int hours = (int) field(f[1], "hour", 0, 23, null);
    int dom = (int) field(f[2], "day-of-month", 1, 31, null);
    int months = (int) field(f[3], "month", 1, 12, MONTHS);
    int dowField = (int) field(f[4], "day-of-week", 0, 7, DAYS);
    int dow = (dowField & 0x7f) | ((dowField >>> 7) & 1); // 7 is Sunday too
    boolean eitherDay = !f[2].startsWith("*") && !f[4].startsWith("*");
    Cron cron = new Cron(minutes, hours, dom, months, dow, eitherDay);
    if (!eitherDay && !cron.someMonthHasADay()) {
      throw new IllegalArgumentException("never fires: no month in '" + f[3] + "' has a day '" + f[2] + "'");
    }
    return cron;
  }

  /** Whether a day-of-month restriction (alone, or with an unrestricted day of week) meets a long enough month. */
  private boolean someMonthHasADay() {
    for (int m = 1; m <= 12; m++) {
      if ((months & (1 << m)) != 0) {
        int longest = Month.of(m).maxLength(); // February: 29, which leap years have
        if ((daysOfMonth & ((2 << longest) - 2)) != 0) {
          return true;
        }
      }
    }
    return false;
  }

  /** The bits one field sets: lists of {@code *}, {@code N}, {@code N-M}, each optionally {@code /STEP}. */
  private static long field(String text, String name, int min, int max, String[] names) {
    long mask = 0;
    for (String item : text.split(",", -1)) {
      String range = item;
      int step = 1;
      int slash = item.indexOf('/');
      if (slash >= 0) {
        range = item.substring(0, slash);
        step = number(item.substring(slash + 1), name, "step", 1, max - min + 1, null, text);
      }
      int from;
      int to;
      if (range.equals("*")) {
        from = min;
        to = max == 7 ? 6 : max; // day-of-week: 0-6, 7 would only repeat Sunday
      } else {
        int dash = range.indexOf('-', 1);
        from = number(dash < 0 ? range : range.substring(0, dash), name, "value", min, max, names, text);
        to = dash < 0 ? (slash >= 0 ? max : from) : number(range.substring(dash + 1), name, "value", min, max, names,
            text);
        if (to < from) {
          throw new IllegalArgumentException(name + " range '" + range + "' runs backwards (in '" + text + "')");
        }
      }
      for (int v = from; v <= to; v += step) {
        mask |= 1L << v;
      }
    }
    return mask;
  }

  private static int number(String s, String field, String what, int min, int max, String[] names, String text) {
    if (names != null) {
      for (int i = 0; i < names.length; i++) {
        if (names[i].equalsIgnoreCase(s)) {
          return names == MONTHS ? i + 1 : i;
        }
      }
    }
    if (s.isEmpty() || s.length() > 4 || !s.chars().allMatch(Character::isDigit)) {
      String hint = s.matches(".*[LW#?].*") ? " (L, W, # and ? are Quartz's, not supported)" : "";
      throw new IllegalArgumentException(field + " " + what + " '" + s + "' is not a number" + (names == null ? ""
          : " or a name like " + names[0]) + hint + " (in '" + text + "')");
    }
    int v = Integer.parseInt(s);
    if (v < min || v > max) {
      throw new IllegalArgumentException(field + " " + what + " " + v + " is out of range " + min + "-" + max
          + " (in '" + text + "')");
    }
    return v;
  }

  /** Whether the schedule fires on {@code day}. */
  boolean firesOn(LocalDate day) {
    if ((months & (1 << day.getMonthValue())) == 0) {
      return false;
    }
    boolean dom = (daysOfMonth & (1 << day.getDayOfMonth())) != 0;
    boolean dow = (daysOfWeek & (1 << (day.getDayOfWeek().getValue() % 7))) != 0;
    return eitherDay ? dom || dow : dom && dow;
  }

  /** The latest firing at or before {@code from} (to the minute), not looking before {@code floor}; null if none. */
  LocalDateTime latestAtOrBefore(LocalDateTime from, LocalDate floor) {
    LocalDate day = from.toLocalDate();
    int hour = from.getHour();
    int minute = from.getMinute();
    while (!day.isBefore(floor)) {
      if (firesOn(day)) {
        for (int h = hour; h >= 0; h--) {
          if ((hours & (1 << h)) != 0) {
            long below = h == hour ? minutes & ((2L << minute) - 1) : minutes;
            if (below != 0) {
              return LocalDateTime.of(day.getYear(), day.getMonthValue(), day.getDayOfMonth(), h,
                  63 - Long.numberOfLeadingZeros(below));
            }
          }
        }
      }
      day = day.minusDays(1);
      hour = 23;
      minute = 59;
    }
    return null;
  }

  /**
   * The earliest firing at or after {@code from} (to the minute: a time with seconds counts from its next minute),
   * not looking past {@code ceiling}; null if none.
   */
  LocalDateTime earliestAtOrAfter(LocalDateTime from, LocalDate ceiling) {
    if (from.getSecond() != 0 || from.getNano() != 0) {
      from = from.withSecond(0).withNano(0).plusMinutes(1);
    }
    LocalDate day = from.toLocalDate();
    int hour = from.getHour();
    int minute = from.getMinute();
    while (!day.isAfter(ceiling)) {
      if ((months & (1 << day.getMonthValue())) == 0) {
        day = day.withDayOfMonth(1).plusMonths(1); // skip the month whole
        hour = 0;
        minute = 0;
        continue;
      }
      if (firesOn(day)) {
        for (int h = hour; h <= 23; h++) {
          if ((hours & (1 << h)) != 0) {
            long above = h == hour ? minutes & -(1L << minute) : minutes;
            if (above != 0) {
              return LocalDateTime.of(day.getYear(), day.getMonthValue(), day.getDayOfMonth(), h,
                  Long.numberOfTrailingZeros(above));
            }
          }
        }
      }
      day = day.plusDays(1);
      hour = 0;
      minute = 0;
    }
    return null;
  }
}
