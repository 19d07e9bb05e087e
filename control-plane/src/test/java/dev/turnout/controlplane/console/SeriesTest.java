package dev.turnout.controlplane.console;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The console's charts: a point for each sample the migrator takes, none for the figures it no longer updates. */
class SeriesTest {
  private Instant now = Instant.parse("2026-12-03T07:00:00Z");
  private final Clock clock = new Clock() {
    @Override
    public java.time.ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(java.time.ZoneId zone) {
      return this;
    }

    @Override
    public Instant instant() {
      return now;
    }
  };
  private Migration migration = Migration.plan("m1", new Migration.Spec("orders",
      new ServerAddress("10.0.0.1", 5432), new ServerAddress("10.0.0.2", 5432), Migration.Options.defaults()), now);
  private final Map<String, Migrator.Figures> latest = new HashMap<>();
  private final Series series = new Series(new Series.Source() {
    @Override
    public List<Migration> running() {
      return List.of(migration);
    }

    @Override
    public Optional<Migrator.Figures> figures(String id) {
      return Optional.ofNullable(latest.get(id));
    }
  }, clock);

  /** The migration moved forward phase by phase up to {@code phase}. */
  private Migration through(Phase phase) {
    Migration m = migration;
    for (Phase p : Phase.values()) {
      if (p.compareTo(m.phase()) > 0 && p.compareTo(phase) <= 0) {
        m = m.to(p, now, "");
      }
    }
    return m;
  }

  private void second() {
    now = now.plus(Duration.ofSeconds(1));
    series.sample();
  }

  @Test
  void aChartEndsWhenTheMigratorStopsSampling_insteadOfRepeatingItsLastFiguresEverySecond() {
    for (int i = 0; i < 30; i++) { // validating: a new sample every second
      latest.put("m1", new Migrator.Figures(1000 + i, 0.01, 5e5, 5e5, 0));
      second();
    }
    assertThat(series.of("m1")).hasSize(30).last().extracting(Series.Point::lagBytes).isEqualTo(1029L);

    migration = through(Phase.COMPLETED); // validated, cut over, waiting to be finalized
    for (int i = 0; i < 600; i++) { // ten minutes with the last figures left as they were
      second();
    }
    assertThat(series.of("m1")).as("no point without a new sample").hasSize(30);

    latest.put("m1", new Migrator.Figures(7, 0.0, 1e5, 1e5, 0)); // a figure equal in value is still a new sample
    second();
    latest.put("m1", new Migrator.Figures(7, 0.0, 1e5, 1e5, 0));
    second();
    assertThat(series.of("m1")).hasSize(32);
  }

  @Test
  void aSettledMigrationsChart_isKeptForAnHour_thenDropped() {
    latest.put("m1", new Migrator.Figures(1, 0, 0, 0, 0));
    second();
    migration = through(Phase.COMPLETED);
    for (int i = 0; i < 7200; i++) { // two hours unsettled: its chart stays
      second();
    }
    assertThat(series.of("m1")).hasSize(1);
    migration = through(Phase.FINALIZED);
    for (int i = 0; i < 3599; i++) {
      second();
    }
    assertThat(series.of("m1")).hasSize(1);
    now = now.plus(Duration.ofSeconds(2));
    series.sample();
    assertThat(series.of("m1")).isEmpty();
  }
}
