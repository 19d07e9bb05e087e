package dev.turnout.migrator.campaign;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.DayOfWeek;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.Optional;
import java.util.Random;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

class MaintenanceWindowTest {
  private static final ZoneId BERLIN = ZoneId.of("Europe/Berlin");
  private static final ZoneId NEW_YORK = ZoneId.of("America/New_York");

  private static Instant at(String utc) {
    return Instant.parse(utc);
  }

  @Test
  void aNightlyWindowIsOpenFromItsFiringUntilItsDurationHasPassed_startIncludedEndExcluded() {
    MaintenanceWindow w = new MaintenanceWindow("0 2 * * *", Duration.ofHours(2));
    assertThat(w.isOpen(at("2026-12-02T01:59:59Z"))).isFalse();
    assertThat(w.isOpen(at("2026-12-02T02:00:00Z"))).isTrue();
    assertThat(w.isOpen(at("2026-12-02T03:59:59.999Z"))).isTrue();
    assertThat(w.isOpen(at("2026-12-02T04:00:00Z"))).isFalse();
    assertThat(w.openUntil(at("2026-12-02T03:00:00Z"))).contains(at("2026-12-02T04:00:00Z"));
    assertThat(w.openUntil(at("2026-12-02T05:00:00Z"))).isEmpty();
  }

  @Test
  void nextOpeningIsNowWhenOpen_elseTheNextFiring() {
    MaintenanceWindow w = new MaintenanceWindow("30 1 * * *", Duration.ofMinutes(30));
    assertThat(w.nextOpening(at("2026-12-02T01:45:00Z"))).contains(at("2026-12-02T01:45:00Z"));
    assertThat(w.nextOpening(at("2026-12-02T02:00:00Z"))).contains(at("2026-12-03T01:30:00Z"));
    assertThat(w.nextOpening(at("2026-12-02T01:29:30Z"))).contains(at("2026-12-02T01:30:00Z"));
  }

  @Test
  void aWindowOpenedBeforeMidnightStaysOpenAfterIt() {
    MaintenanceWindow w = new MaintenanceWindow("0 23 * * FRI", Duration.ofHours(6));
    // 2026-12-04 is a Friday.
    assertThat(w.isOpen(at("2026-12-05T04:59:00Z"))).isTrue();
    assertThat(w.isOpen(at("2026-12-05T05:00:00Z"))).isFalse();
    assertThat(w.nextOpening(at("2026-12-05T05:00:00Z"))).contains(at("2026-12-11T23:00:00Z"));
  }

  @Test
  void weekendWindowsByNameAndSundayAsSeven() {
    MaintenanceWindow byName = new MaintenanceWindow("0 1 * * SAT,sun", Duration.ofHours(1));
    MaintenanceWindow byNumber = new MaintenanceWindow("0 1 * * 6-7", Duration.ofHours(1));
    for (int d = 0; d < 14; d++) {
      Instant t = at("2026-12-01T01:30:00Z").plus(Duration.ofDays(d));
      DayOfWeek day = LocalDateTime.ofInstant(t, ZoneOffset.UTC).getDayOfWeek();
      boolean weekend = day == DayOfWeek.SATURDAY || day == DayOfWeek.SUNDAY;
      assertThat(byName.isOpen(t)).as(day.toString()).isEqualTo(weekend);
      assertThat(byNumber.isOpen(t)).as(day.toString()).isEqualTo(weekend);
    }
  }

  @Test
  void dayOfMonthAndDayOfWeekBothRestricted_fireOnEither_asCronDoes() {
    MaintenanceWindow w = new MaintenanceWindow("0 3 13 * FRI", Duration.ofHours(1));
    assertThat(w.isOpen(at("2026-12-13T03:10:00Z"))).as("the 13th, a Sunday").isTrue();
    assertThat(w.isOpen(at("2026-12-04T03:10:00Z"))).as("a Friday, the 4th").isTrue();
    assertThat(w.isOpen(at("2026-12-05T03:10:00Z"))).as("Saturday the 5th").isFalse();
    MaintenanceWindow starred = new MaintenanceWindow("0 3 */2 * FRI", Duration.ofHours(1));
    assertThat(starred.isOpen(at("2026-12-04T03:10:00Z"))).as("a Friday on an even day: */2 is odd days")
        .isFalse();
    assertThat(starred.isOpen(at("2026-12-11T03:10:00Z"))).as("Friday the 11th").isTrue();
  }

  @Test
  void february29thOpensInTheNextLeapYear() {
    MaintenanceWindow w = new MaintenanceWindow("0 0 29 2 *", Duration.ofHours(1));
    assertThat(w.nextOpening(at("2026-12-02T00:00:00Z"))).contains(at("2028-02-29T00:00:00Z"));
    MaintenanceWindow monday = new MaintenanceWindow("0 0 */29 2 MON", Duration.ofHours(1));
    // A starred day-of-month must match along with the day of week: */29 is the 1st and the 30th, so February 1st
    // on a Monday, which comes in 2027.
    assertThat(monday.nextOpening(at("2026-12-02T00:00:00Z"))).contains(at("2027-02-01T00:00:00Z"));
  }

  @Test
  void stepsRangesAndListsCombine() {
    MaintenanceWindow w = new MaintenanceWindow("10-40/15 9-17/4 1,15 JAN-MAR,DEC *", Duration.ofMinutes(1));
    // minutes 10, 25, 40; hours 9, 13, 17; days 1 and 15; Jan-Mar and Dec.
    assertThat(w.isOpen(at("2026-12-15T13:25:00Z"))).isTrue();
    assertThat(w.isOpen(at("2026-12-15T13:26:00Z"))).isFalse();
    assertThat(w.isOpen(at("2026-12-15T14:25:00Z"))).isFalse();
    assertThat(w.isOpen(at("2026-11-15T13:25:00Z"))).isFalse();
    assertThat(w.nextOpening(at("2026-12-15T17:41:00Z"))).contains(at("2027-01-01T09:10:00Z"));
    assertThat(new MaintenanceWindow("5/20 * * * *", Duration.ofMinutes(1)).isOpen(at("2026-12-15T13:45:00Z")))
        .as("5/20 is 5, 25, 45").isTrue();
  }

  @Test
  void macrosAreTheirExpressions() {
    assertThat(new MaintenanceWindow("@daily", Duration.ofHours(1)).isOpen(at("2026-12-02T00:30:00Z"))).isTrue();
    assertThat(new MaintenanceWindow("@weekly", Duration.ofHours(1)).nextOpening(at("2026-12-02T00:30:00Z")))
        .contains(at("2026-12-06T00:00:00Z"));
  }

  @Test
  void theExpressionIsReadInTheWindowsZone() {
    MaintenanceWindow w = new MaintenanceWindow("0 2 * * *", Duration.ofHours(1), BERLIN);
    assertThat(w.isOpen(at("2026-12-02T01:30:00Z"))).as("02:30 in Berlin in winter").isTrue();
    assertThat(w.isOpen(at("2026-12-02T02:30:00Z"))).isFalse();
    assertThat(w.isOpen(at("2026-07-02T00:30:00Z"))).as("02:30 in Berlin in summer").isTrue();
  }

  @Test
  void springForward_aFiringInTheSkippedHourOpensWhenTheClocksJump_theDayIsNotLost() {
    // Berlin, 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00Z; 02:30 never happens.
    MaintenanceWindow w = new MaintenanceWindow("30 2 * * *", Duration.ofHours(1), BERLIN);
    assertThat(w.nextOpening(at("2024-03-30T12:00:00Z"))).contains(at("2024-03-31T01:00:00Z"));
    assertThat(w.isOpen(at("2024-03-31T00:59:00Z"))).isFalse();
    assertThat(w.isOpen(at("2024-03-31T01:00:00Z"))).isTrue();
    assertThat(w.openUntil(at("2024-03-31T01:30:00Z"))).contains(at("2024-03-31T02:00:00Z"));
    assertThat(w.nextOpening(at("2024-03-31T02:00:00Z"))).as("the day after, 02:30 CEST")
        .contains(at("2024-04-01T00:30:00Z"));
    // New York, 2024-03-10: 02:00 EST becomes 03:00 EDT at 07:00Z.
    MaintenanceWindow ny = new MaintenanceWindow("0 2 * * *", Duration.ofMinutes(90), NEW_YORK);
    assertThat(ny.nextOpening(at("2024-03-09T12:00:00Z"))).contains(at("2024-03-10T07:00:00Z"));
  }

  @Test
  void fallBack_aRepeatedWallTimeOpensOnce_theFirstTime() {
    // Berlin, 2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00Z; 02:30 happens at 00:30Z and 01:30Z.
    MaintenanceWindow w = new MaintenanceWindow("30 2 * * *", Duration.ofMinutes(30), BERLIN);
    assertThat(w.nextOpening(at("2024-10-26T12:00:00Z"))).contains(at("2024-10-27T00:30:00Z"));
    assertThat(w.isOpen(at("2024-10-27T00:45:00Z"))).isTrue();
    assertThat(w.isOpen(at("2024-10-27T01:00:00Z"))).isFalse();
    assertThat(w.isOpen(at("2024-10-27T01:40:00Z"))).as("02:40 CET, the second pass").isFalse();
    assertThat(w.nextOpening(at("2024-10-27T01:05:00Z"))).as("the next day, 02:30 CET")
        .contains(at("2024-10-28T01:30:00Z"));
    // Opened late in the first pass (02:50 CEST, 00:50Z) for an hour: still open early in the second (02:10 CET).
    MaintenanceWindow late = new MaintenanceWindow("50 2 * * *", Duration.ofHours(1), BERLIN);
    assertThat(late.openUntil(at("2024-10-27T01:10:00Z"))).contains(at("2024-10-27T01:50:00Z"));
    // A firing of every minute of the repeated hour: in its second pass the window opened on the first is closed.
    MaintenanceWindow everyMinute = new MaintenanceWindow("* 2 * * *", Duration.ofMinutes(1), BERLIN);
    assertThat(everyMinute.isOpen(at("2024-10-27T00:59:30Z"))).isTrue();
    assertThat(everyMinute.isOpen(at("2024-10-27T01:10:00Z"))).isFalse();
    assertThat(everyMinute.nextOpening(at("2024-10-27T01:10:00Z"))).contains(at("2024-10-28T01:00:00Z"));
  }

  @Test
  void theDurationIsElapsedTime_whateverTheClocksDoMeanwhile() {
    // Opens at 01:00 CET (00:00Z) on the spring-forward day; three real hours later it is 05:00 CEST.
    MaintenanceWindow w = new MaintenanceWindow("0 1 * * *", Duration.ofHours(3), BERLIN);
    assertThat(w.openUntil(at("2024-03-31T00:00:00Z"))).contains(at("2024-03-31T03:00:00Z"));
  }

  @Test
  void agreesWithAMinuteByMinuteSearch_atRandomInstants() {
    record Case(String cron, Duration d, Predicate<LocalDateTime> fires) {}
    Case[] cases = {
        new Case("*/15 9-17 * * MON-FRI", Duration.ofMinutes(20), t -> t.getMinute() % 15 == 0
            && t.getHour() >= 9 && t.getHour() <= 17 && t.getDayOfWeek().getValue() <= 5),
        new Case("0 22 * * 5", Duration.ofHours(30), t -> t.getMinute() == 0 && t.getHour() == 22
            && t.getDayOfWeek() == DayOfWeek.FRIDAY),
        new Case("45 4 1,15 * *", Duration.ofHours(2), t -> t.getMinute() == 45 && t.getHour() == 4
            && (t.getDayOfMonth() == 1 || t.getDayOfMonth() == 15)),
        new Case("0 0 13 * FRI", Duration.ofDays(1), t -> t.getMinute() == 0 && t.getHour() == 0
            && (t.getDayOfMonth() == 13 || t.getDayOfWeek() == DayOfWeek.FRIDAY)),
    };
    Random random = new Random(18);
    Instant base = at("2026-01-01T00:00:00Z");
    for (Case c : cases) {
      MaintenanceWindow w = new MaintenanceWindow(c.cron(), c.d());
      for (int n = 0; n < 150; n++) {
        Instant t = base.plusSeconds(random.nextInt(3 * 366 * 86_400));
        boolean expected = false;
        Instant s = t.minus(c.d()).plusSeconds(1);
        for (Instant m = s.plusSeconds(59).truncatedTo(java.time.temporal.ChronoUnit.MINUTES); !m.isAfter(t);
            m = m.plusSeconds(60)) {
          expected |= c.fires().test(LocalDateTime.ofInstant(m, ZoneOffset.UTC));
        }
        assertThat(w.isOpen(t)).as(c.cron() + " at " + t).isEqualTo(expected);
        Optional<Instant> next = w.nextOpening(t);
        assertThat(next).isPresent();
        assertThat(w.isOpen(next.get())).as(c.cron() + " opens at " + next.get()).isTrue();
        if (!expected) {
          assertThat(w.isOpen(next.get().minusSeconds(1))).as("closed just before " + next.get()).isFalse();
        }
      }
    }
  }

  @Test
  void badExpressionsSayWhatIsWrong() {
    assertThatThrownBy(() -> new MaintenanceWindow("61 * * * *", Duration.ofHours(1)))
        .isInstanceOf(InvalidSpecException.class)
        .hasMessage("cron: '61 * * * *' is not a cron expression: minute value 61 is out of range 0-59 (in '61')");
    assertThatThrownBy(() -> new MaintenanceWindow("0 2 * *", Duration.ofHours(1)))
        .hasMessageContaining("expected 5 fields (minute hour day-of-month month day-of-week), found 4");
    assertThatThrownBy(() -> new MaintenanceWindow("0 0 2 * * *", Duration.ofHours(1)))
        .hasMessageContaining("found 6 (seconds and years are not supported)");
    assertThatThrownBy(() -> new MaintenanceWindow("0 0 L * *", Duration.ofHours(1)))
        .hasMessageContaining("day-of-month value 'L' is not a number (L, W, # and ? are Quartz's, not supported)");
    assertThatThrownBy(() -> new MaintenanceWindow("0 0 * * FRI-MON", Duration.ofHours(1)))
        .hasMessageContaining("day-of-week range 'FRI-MON' runs backwards");
    assertThatThrownBy(() -> new MaintenanceWindow("*/0 * * * *", Duration.ofHours(1)))
        .hasMessageContaining("minute step 0 is out of range 1-60");
    assertThatThrownBy(() -> new MaintenanceWindow("0 0 * JUNE *", Duration.ofHours(1)))
        .hasMessageContaining("month value 'JUNE' is not a number or a name like JAN");
    assertThatThrownBy(() -> new MaintenanceWindow("0 0 30 2 *", Duration.ofHours(1)))
        .hasMessageContaining("never fires: no month in '2' has a day '30'");
    assertThatThrownBy(() -> new MaintenanceWindow("@reboot", Duration.ofHours(1)))
        .hasMessageContaining("'@reboot' is not a cron macro");
    assertThatThrownBy(() -> new MaintenanceWindow("0 2,,3 * * *", Duration.ofHours(1)))
        .hasMessageContaining("hour value '' is not a number");
    assertThatThrownBy(() -> new MaintenanceWindow(null, Duration.ofHours(1)))
        .hasMessage("cron: missing is not a cron expression: a cron expression is required");
  }

  @Test
  void durationsOutsideAMinuteToAMonthAreRefused_andTheZoneDefaultsToUtc() {
    assertThatThrownBy(() -> new MaintenanceWindow("0 2 * * *", Duration.ZERO))
        .isInstanceOf(InvalidSpecException.class).hasMessage("duration: '0s' must be from 1 minute to 31 days");
    assertThatThrownBy(() -> new MaintenanceWindow("0 2 * * *", Duration.ofDays(32)))
        .hasMessageContaining("must be from 1 minute to 31 days");
    assertThatThrownBy(() -> new MaintenanceWindow("0 2 * * *", null)).hasMessage(
        "duration: missing must be from 1 minute to 31 days");
    assertThat(new MaintenanceWindow("0 2 * * *", Duration.ofHours(1), null).zone()).isEqualTo(ZoneOffset.UTC);
  }

  @Test
  void answersInMicroseconds_forTheTwoThousandMembersOfATick() {
    MaintenanceWindow[] windows = {
        new MaintenanceWindow("0 2 * * SAT,SUN", Duration.ofHours(4), BERLIN),
        new MaintenanceWindow("*/30 1-5 * * *", Duration.ofMinutes(20), NEW_YORK),
        new MaintenanceWindow("0 3 1 * *", Duration.ofDays(2)),
    };
    Instant t = at("2026-12-02T10:00:00Z");
    int calls = 0;
    for (int warm = 0; warm < 20_000; warm++) {
      windows[warm % 3].nextOpening(t.plusSeconds(warm * 37L));
    }
    long start = System.nanoTime();
    for (int i = 0; i < 60_000; i++) {
      MaintenanceWindow w = windows[i % 3];
      Instant at = t.plusSeconds(i * 61L);
      w.isOpen(at);
      w.nextOpening(at);
      calls += 2;
    }
    double micros = (System.nanoTime() - start) / 1_000.0 / calls;
    assertThat(micros).as("µs per call").isLessThan(25.0);
  }
}
