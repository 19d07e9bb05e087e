package dev.turnout.migrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableSortedMap;
import dev.turnout.migrator.bake.Bake;
import dev.turnout.migrator.bake.Limit;
import dev.turnout.migrator.bake.Signal;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * After VERIFYING the target's workload is held against the baseline the source showed while validating, signal by
 * signal, for the bake asked for. On a platform without a reverse path (these scripted servers by default) a breach
 * halts for an operator, naming the signal and both figures: it never rolls back by itself, since every way back would
 * lose the target's writes. With a healthy reverse path it rolls back by itself ({@link ReversePathTest}).
 */
class BakeTest {
  static final Duration BAKE = Duration.ofSeconds(30);

  static Migration.Spec baking(Bake bake) {
    return Harness.spec(Harness.options().withBake(bake));
  }

  @Test
  void theBaseline_isRecordedFromTheSourceWhileValidating_andSaved() throws Exception {
    Harness h = new Harness();
    h.servers.sourceLoad(new ScriptedPlatform.Load(200, 2, 0, 12, 1.5));

    Migration m = h.run(baking(Bake.of(BAKE)));

    assertThat(m.progress().baseline()).as(Harness.history(m)).isPresent();
    assertThat(m.progress().baseline().get().byLabel()).containsEntry("commits", 200.0).containsEntry("rollbacks", 2.0)
        .containsEntry("connections", 12.0).containsEntry("latency", 1.5);
    assertThat(m.history()).anySatisfy(e -> {
      assertThat(e.phase()).isEqualTo(Phase.REPLICATING);
      assertThat(e.note()).startsWith("baseline over 5.0 s on the source (the whole server): commits 200.0/s,"
          + " rollbacks 2.0/s, deadlocks 0.00/s, conflicts 0.00/s, connections 12.0, temp_bytes 0.0 B/s, latency 1.50 ms");
    });
  }

  @Test
  void aBakeWithinTheBaseline_completes() throws Exception {
    Harness h = new Harness();

    Migration m = h.run(baking(Bake.of(BAKE)));

    assertThat(Harness.phases(m)).as(Harness.history(m)).endsWith(Phase.VERIFYING, Phase.BAKING, Phase.COMPLETED);
    assertThat(Duration.between(m.history().stream().filter(e -> e.phase() == Phase.BAKING).findFirst().orElseThrow()
        .at(), m.phaseStarted())).isEqualTo(BAKE);
    assertThat(m.history()).anySatisfy(e -> assertThat(e.note()).isEqualTo("baked 30.0 s: baseline vs target:"
        + " commits 100.0/s vs 100.0/s, rollbacks 1.0/s vs 1.0/s, deadlocks 0.00/s vs 0.00/s, conflicts 0.00/s vs"
        + " 0.00/s, connections 10.0 vs 10.0, temp_bytes 0.0 B/s vs 0.0 B/s, latency 1.00 ms vs 1.00 ms,"
        + " connect_failures not available, hold_timeouts not available"));
    assertThat(h.servers.fenced()).as("the source stays fenced until finalized").isTrue();
  }

  @Test
  void aRollbackRateAboveTheThreshold_haltsNamingTheSignalAndBothFigures() throws Exception {
    Harness h = new Harness();
    h.servers.targetLoad(ScriptedPlatform.Load.STEADY.withRollbacks(40)); // the target's, read by the bake only

    Migration m = h.run(baking(Bake.of(BAKE)));

    assertThat(Harness.phases(m)).as(Harness.history(m)).endsWith(Phase.BAKING, Phase.HALTED);
    assertThat(m.progress().error().orElseThrow()).contains("bake breach on the target")
        .contains("rollbacks 40.0/s (baseline 1.0/s, allowed 3.0/s by 2x+1)")
        .contains("no rollback keeps the target's writes (no reverse replication was made at promotion)");
    assertThat(h.servers.unfences()).as("no lossy rollback by itself").isZero();
    assertThat(h.router.endpoint("app")).isEqualTo(Harness.TARGET.toString());
  }

  @Test
  void aBreachUnderNoAutoRollback_isAWarning_andTheBakeGoesOn() throws Exception {
    Harness h = new Harness();
    h.servers.targetLoad(ScriptedPlatform.Load.STEADY.withLatency(20));

    Migration m = h.run(baking(Bake.of(BAKE).withNoAutoRollback(true)));

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.COMPLETED);
    assertThat(m.history().stream().filter(e -> e.note().startsWith("warning: bake breach"))).singleElement()
        .satisfies(e -> assertThat(e.note()).contains("latency 20.00 ms (baseline 1.00 ms, allowed 7.00 ms by 2x+5)"));
    assertThat(m.history().get(m.history().size() - 1).note()).endsWith("(with warnings: latency)");
  }

  @Test
  void aLimitSetForTheMigration_replacesTheDefault() throws Exception {
    Harness h = new Harness();
    h.servers.targetLoad(ScriptedPlatform.Load.STEADY.withRollbacks(3)); // within the default 2x+1 of 1/s

    Migration m = h.run(baking(Bake.of(BAKE).withLimits(ImmutableSortedMap.of(Signal.ROLLBACKS, Limit.parse("1x+0.5")))));

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.HALTED);
    assertThat(m.progress().error().orElseThrow()).contains("rollbacks 3.0/s (baseline 1.0/s, allowed 1.5/s by 1x+0.5)");
  }

  @Test
  void commitsFallingBelowHalfTheBaseline_halt() throws Exception {
    Harness h = new Harness();
    h.servers.targetLoad(ScriptedPlatform.Load.STEADY.withCommits(10));

    Migration m = h.run(baking(Bake.of(BAKE)));

    assertThat(m.progress().error().orElseThrow()).as(Harness.history(m))
        .contains("commits 10.0/s (baseline 100.0/s, at least 40.0/s by 0.5x-10)");
  }

  @Test
  void withoutPgStatStatements_latencyIsNotAvailable_andNotJudged() throws Exception {
    Harness h = new Harness();
    h.servers.sourceLoad(ScriptedPlatform.Load.STEADY.withLatency(-1));
    h.servers.targetLoad(ScriptedPlatform.Load.STEADY.withLatency(-1));

    Migration m = h.run(baking(Bake.of(BAKE)));

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.COMPLETED);
    assertThat(m.history()).anySatisfy(e -> assertThat(e.note()).contains("latency not available"));
  }

  @Test
  void aCrashDuringTheBake_resumesTheBake() throws Exception {
    Harness h = new Harness();
    h.failpoint = (next, point) -> {
      if (next.phase() == Phase.BAKING && point == Migrator.Failpoint.Point.AFTER_SAVE) {
        h.failpoint = Migrator.Failpoint.NONE;
        throw new InMemoryMigrationStore.Crash("crashed in BAKING");
      }
    };
    assertThatThrownBy(() -> h.run(baking(Bake.of(BAKE)))).isInstanceOf(InMemoryMigrationStore.Crash.class);
    h.clock.advance(Duration.ofSeconds(10)); // the control plane is down for 10 s of the bake

    h.restart();

    Migration m = h.now(h.onlyId());
    assertThat(Harness.phases(m)).as(Harness.history(m)).endsWith(Phase.BAKING, Phase.COMPLETED);
    assertThat(Duration.between(m.history().stream().filter(e -> e.phase() == Phase.BAKING).findFirst().orElseThrow()
        .at(), m.phaseStarted())).as("the bake ends when it would have, counted from BAKING").isEqualTo(BAKE);
    assertThat(m.history()).anySatisfy(e -> assertThat(e.note()).startsWith("baked 20.0 s: baseline vs target:"));
    assertThat(h.servers.promotions()).isEqualTo(1);
  }

  @Test
  void bakeZeroSkipsTheBake() throws Exception {
    Harness h = new Harness();

    Migration m = h.run(baking(Bake.NONE));

    assertThat(Harness.phases(m)).as(Harness.history(m)).endsWith(Phase.VERIFYING, Phase.COMPLETED);
    assertThat(m.progress().baseline()).as("recorded all the same").isPresent();
  }

  @Test
  void aRollbackDuringTheBake_needsConsent_asAfterAnyPromotion() throws Exception {
    Harness h = new Harness();
    String[] id = new String[1];
    h.clock.schedule(Duration.ofSeconds(8), () -> {
      id[0] = h.onlyId();
      assertThatThrownBy(() -> h.migrator.rollback(id[0], false)).hasMessageContaining("Roll back with consent");
      try {
        h.migrator.rollback(id[0], true);
      } catch (MigrationException e) {
        throw new AssertionError(e);
      }
    });

    Migration m = h.run(baking(Bake.of(BAKE)));

    assertThat(Harness.phases(m)).as(Harness.history(m)).endsWith(Phase.BAKING, Phase.ROLLING_BACK, Phase.ROLLED_BACK);
  }

  @Test
  void sidecarsFailingToConnectToTheTarget_haltNamingConnectFailures_againstTheSourcesSidecarsBaseline()
      throws Exception {
    Harness h = new Harness();
    java.util.concurrent.atomic.AtomicLong failures = new java.util.concurrent.atomic.AtomicLong();
    java.util.List<java.util.Collection<String>> asked = new java.util.concurrent.CopyOnWriteArrayList<>();
    // The sidecars' sums: steady while they route to the source; 10 more at each read once they route to the target.
    h.migrator.setSidecarCounters(databases -> {
      asked.add(databases);
      long n = Harness.TARGET.toString().equals(h.router.endpoint("app")) ? failures.addAndGet(10) : failures.get();
      return java.util.Optional.of(new dev.turnout.migrator.bake.Workload.Sidecars(n, 0, 2));
    });

    Migration m = h.run(baking(Bake.of(BAKE)));

    assertThat(m.progress().baseline()).as(Harness.history(m)).isPresent();
    assertThat(m.progress().baseline().orElseThrow().byLabel()).containsEntry("connect_failures", 0.0)
        .containsEntry("hold_timeouts", 0.0);
    assertThat(Harness.phases(m)).as(Harness.history(m)).endsWith(Phase.BAKING, Phase.HALTED);
    assertThat(m.progress().error().orElseThrow()).contains("bake breach on the target")
        .contains("connect_failures 10 (baseline 0.00/s, allowed 5 by 2x+5)");
    assertThat(asked).as("the migration's databases").allSatisfy(d -> assertThat(d).containsExactly("app"));
  }

  @Test
  void noSidecarReporting_leavesItsSignalsNotAvailable_notZero() throws Exception {
    Harness h = new Harness();
    h.migrator.setSidecarCounters(dev.turnout.migrator.bake.SidecarCounters.NONE);

    Migration m = h.run(baking(Bake.of(BAKE)));

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.COMPLETED);
    assertThat(m.progress().baseline().orElseThrow().byLabel()).doesNotContainKeys("connect_failures",
        "hold_timeouts");
    assertThat(m.history()).anySatisfy(e -> assertThat(e.note()).startsWith("baked ")
        .endsWith("connect_failures not available, hold_timeouts not available"));
  }

  @Test
  void theSidecarSignals_areNamedLikeTheOthers_forLimits() {
    assertThat(Signal.named("connect-failures")).isEqualTo(Signal.CONNECT_FAILURES);
    assertThat(Signal.named("HOLD_TIMEOUTS")).isEqualTo(Signal.HOLD_TIMEOUTS);
    assertThatThrownBy(() -> Signal.named("cx_fail")).hasMessageEndingWith("latency, connect_failures, hold_timeouts");
  }
}
