package dev.turnout.migrator.campaign;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.zone.ZoneOffsetTransition;
import java.time.zone.ZoneRules;
import java.util.List;
import java.util.Optional;

/**
 * When cutovers may happen: the window opens at each firing of a 5-field cron expression (minute hour day-of-month
 * month day-of-week, read as Vixie cron reads it, in {@code zone}'s wall time) and stays open for
 * {@code duration}: it is open at t when some firing s has s <= t < s + duration.
 *
 * <p>Daylight saving time, the way cron treats it: a firing whose wall time is skipped (spring forward) opens
 * the window at the instant the clocks jump, so the day's window is late, not lost; a wall time that happens twice
 * (fall back) opens it once, the first time. The duration is elapsed time, whatever the clocks do meanwhile.
 *
 * <p>Replication may start at any time; only the cutover waits for a window. Each answer searches back at most
 * {@code duration} (plus a day) and forward at most {@link #HORIZON}, with a bit mask per cron field: a few
 * microseconds.
 *
 * @param cron the opening, like {@code 0 2 * * SAT,SUN} (also {@code @daily}, {@code @weekly} and the like)
 * @param duration how long each opening lasts: a minute to {@link #LONGEST}
 * @param zone the wall time the cron expression is read in; UTC when not given
 */
public record MaintenanceWindow(String cron, Duration duration, ZoneId zone) {
  /** The longest window: a longer one is a schedule that is almost always open, better left out. */
  public static final Duration LONGEST = Duration.ofDays(31);
  /**
   * How far {@link #nextOpening} looks. Every valid expression fires within it, but for one that asks for a
   * February 29th on a given weekday (which comes every 28 years).
   */
  public static final Duration HORIZON = Duration.ofDays(366L * 30);

  public MaintenanceWindow {
    zone = zone == null ? ZoneOffset.UTC : zone;
    try {
      Cron.parse(cron);
    } catch (IllegalArgumentException e) {
      throw new InvalidSpecException("cron", cron, "is not a cron expression: " + e.getMessage());
    }
    if (duration == null || duration.compareTo(Duration.ofMinutes(1)) < 0 || duration.compareTo(LONGEST) > 0) {
      throw new InvalidSpecException("duration", duration, "must be from 1 minute to " + LONGEST.toDays() + " days");
    }
  }

  /** A window in UTC. */
  public MaintenanceWindow(String cron, Duration duration) {
    this(cron, duration, ZoneOffset.UTC);
  }

  /** Whether the window is open at {@code t}. */
  public boolean isOpen(Instant t) {
    return opening(t) != null;
  }

  /** When the window opening that {@code t} is in ends (a later opening may extend it); empty when closed. */
  public Optional<Instant> openUntil(Instant t) {
    Instant s = opening(t);
    return s == null ? Optional.empty() : Optional.of(s.plus(duration));
  }

  /**
   * The first instant at or after {@code t} when the window is open: {@code t} itself when it is open now. Empty
   * only when the expression does not fire within {@link #HORIZON}.
   */
  public Optional<Instant> nextOpening(Instant t) {
    return opening(t) != null ? Optional.of(t) : Optional.ofNullable(nextFiringAfter(t));
  }

  /** The first firing after {@code t}, or null if none within {@link #HORIZON}. */
  Instant nextFiringAfter(Instant t) {
    Cron schedule = Cron.parse(cron);
    LocalDateTime from = LocalDateTime.ofInstant(t, zone);
    LocalDate ceiling = LocalDateTime.ofInstant(t.plus(HORIZON), zone).toLocalDate();
    ZoneRules rules = zone.getRules();
    for (LocalDateTime f = schedule.earliestAtOrAfter(from, ceiling); f != null;
        f = schedule.earliestAtOrAfter(f.plusMinutes(1), ceiling)) {
      Instant s = instant(f, rules);
      if (s.isAfter(t)) { // a wall time of an overlap's first pass is already behind a t in its second pass
        return s;
      }
    }
    return null;
  }

  /** The firing that opened the window {@code t} is in, or null when it is closed. */
  Instant opening(Instant t) {
    Cron schedule = Cron.parse(cron);
    ZoneRules rules = zone.getRules();
    LocalDateTime local = LocalDateTime.ofInstant(t, zone);
    ZoneOffsetTransition overlap = rules.getTransition(local);
    if (overlap != null && overlap.isOverlap() && !t.isBefore(overlap.getInstant())) {
      // In the second pass of repeated wall times every firing of the repeated hour, opened on the first pass,
      // is behind t, even those whose wall time is later than t's.
      local = overlap.getDateTimeBefore().minusNanos(1);
    }
    LocalDate floor = LocalDateTime.ofInstant(t.minus(duration), zone).toLocalDate().minusDays(1);
    for (LocalDateTime f = schedule.latestAtOrBefore(local, floor); f != null;
        f = schedule.latestAtOrBefore(f.minusMinutes(1), floor)) {
      Instant s = instant(f, rules);
      if (!s.isAfter(t)) {
        // The latest opening at or before t ends last: if t is past its end, it is past every earlier one's.
        return t.isBefore(s.plus(duration)) ? s : null;
      }
    }
    return null;
  }

  /** When a firing at wall time {@code local} happens: see the class comment for the gap and the overlap. */
  private static Instant instant(LocalDateTime local, ZoneRules rules) {
    List<ZoneOffset> offsets = rules.getValidOffsets(local);
    if (offsets.isEmpty()) {
      return rules.getTransition(local).getInstant(); // in a gap: when the clocks jump over it
    }
    return local.toInstant(offsets.get(0)); // in an overlap, the offset before the transition: the first pass
  }

  @Override
  public String toString() {
    return "'" + cron + "' " + (zone.equals(ZoneOffset.UTC) ? "UTC" : zone) + " for " + Durations.format(duration);
  }
}
