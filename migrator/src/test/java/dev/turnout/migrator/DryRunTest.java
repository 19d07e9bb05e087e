package dev.turnout.migrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import dev.turnout.migrator.check.PreflightFacts;
import dev.turnout.migrator.check.ServerFacts;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The dry run is the run: {@link Migrator#dryRun} walks the migrator's own steps on a platform opened for a dry run,
 * so the transcript lists, in order, what the platform was asked to change; waits pass at once on the dry run's
 * clock. The platform here is a script: it answers reads from fixed facts and records each change as a dry-run
 * platform does.
 */
class DryRunTest {
  private static final ServerAddress SOURCE = new ServerAddress("10.0.0.5", 5432);
  private static final ServerAddress TARGET = new ServerAddress("10.0.0.6", 5432);
  private static final Instant NOW = Instant.parse("2026-03-01T12:00:00Z");

  private final List<String> realChanges = new ArrayList<>();

  private static Migration.Spec spec(Duration window) {
    return new Migration.Spec("app", SOURCE, TARGET, new Migration.Options(window, 1 << 20, Duration.ofMinutes(2),
        false));
  }

  /** A store that keeps what it is given; a migrator whose runner never runs, so what starts stays PLANNED. */
  private Migrator migrator(Script script) {
    List<Migration> saved = new ArrayList<>();
    MigrationStore store = new MigrationStore() {
      @Override
      public Migration save(Migration m) {
        saved.add(m);
        return m.atRevision(m.revision() + 1);
      }

      @Override
      public List<Migration> loadAll() {
        return saved;
      }
    };
    Router router = new Router() {
      @Override
      public java.util.concurrent.CompletableFuture<Void> route(java.util.List<String> databases, ServerAddress endpoint) {
        realChanges.add("route");
        return java.util.concurrent.CompletableFuture.completedFuture(null);
      }

      @Override
      public java.util.concurrent.CompletableFuture<Void> drain(java.util.List<String> databases) {
        realChanges.add("drain");
        return java.util.concurrent.CompletableFuture.completedFuture(null);
      }

      @Override
      public com.google.common.collect.ImmutableSet<String> routedTo(ServerAddress server) {
        return com.google.common.collect.ImmutableSet.of();
      }
    };
    Platform.Factory platforms = new Platform.Factory() {
      @Override
      public Platform open(Migration.Spec spec) {
        return new Script.Opened(script, line -> realChanges.add(line));
      }

      @Override
      public Platform openDryRun(Migration.Spec spec, DryRun dryRun) {
        script.dryRunsClock = dryRun.clock();
        return new Script.Opened(script, dryRun::record, dryRun);
      }
    };
    return new Migrator(store, router, platforms, Clock.fixed(NOW, ZoneOffset.UTC), d -> { }, new Idle());
  }

  @Test
  void theDryRun_listsEachChangeTheStepsAsk_inPhaseOrder_thenARollback_andChangesNothing() throws Exception {
    Migrator migrator = migrator(new Script());

    List<String> transcript = migrator.dryRun(spec(Duration.ofSeconds(30)));

    assertThat(transcript.get(0)).isEqualTo("PLANNED: planned: 10.0.0.5:5432 -> 10.0.0.6:5432");
    assertThat(transcript).containsSubsequence(
        "PREFLIGHT",
        "PREFLIGHT: preflight ok   source is a primary: 10.0.0.5:5432 accepts writes",
        "REPLICATING: preflight passed (21 checks)",
        "QUIESCING",
        "  QUIESCING: drain route 'app' (sidecars open no new connection; the built-in sidecar holds them) and wait"
            + " for every subscribed sidecar's ACK",
        "QUIESCING: fencing roles [app]; the standby's [replicator] keep their login until the target is promoted",
        "  QUIESCING: arm the target read-only",
        "  QUIESCING: read the routes again: no database but 'app' may be routed to 10.0.0.5:5432",
        "  QUIESCING: fence roles [app]",
        "  QUIESCING: verify the fence",
        "CATCHING_UP: source fenced at final LSN 0/3000000",
        "  CATCHING_UP: end sessions (slot streams too: true) (2 times)",
        "PROMOTING: target replayed 0/3000000; no commit on the source after the final LSN (WAL 0/3000000 to 0/3000000)",
        "  PROMOTING: promote the target",
        "PROMOTING: target promoted; the standby's roles [app, replicator] refused on the source too",
        "  PROMOTING: refuse logins [app, replicator]",
        "  PROMOTING: create slots [cdc]",
        "  PROMOTING: admit writes on the target",
        "  SHIFTING: route 'app' to 10.0.0.6:5432 and wait for every subscribed sidecar's ACK",
        "  VERIFYING: write probe on the target",
        "COMPLETED: write probe committed on 10.0.0.6:5432; no commit on the source after the final LSN (WAL 0/3000000"
            + " to 0/3000000)",
        "COMPLETED: a rollback (an operator's, with consent now that the target is promoted) would:",
        "ROLLING_BACK: rollback requested by the operator",
        "  ROLLING_BACK: route 'app' to 10.0.0.5:5432 and wait for every subscribed sidecar's ACK",
        "  ROLLING_BACK: unfence roles [app, replicator]",
        "ROLLED_BACK: source 10.0.0.5:5432 routed and writable; cause: rollback requested by the operator");
    assertThat(transcript).as("slots confirm and the target replays the final LSN as soon as it is known")
        .noneMatch(l -> l.contains("deadline"));
    assertThat(realChanges).as("no real route, nothing done to the servers").isEmpty();
    assertThat(migrator.list()).as("and nothing started").isEmpty();
  }

  @Test
  void aBake_isInTheTranscript_betweenVerifyingAndCompleted_andPassesAtOnce() throws Exception {
    Migration.Spec spec = spec(Duration.ofSeconds(30));
    spec = new Migration.Spec(spec.database(), spec.source(), spec.target(),
        spec.options().withBake(dev.turnout.migrator.bake.Bake.of(Duration.ofMinutes(10))));

    List<String> transcript = migrator(new Script()).dryRun(spec);

    assertThat(transcript).containsSubsequence(
        "VALIDATED: validated over 30.0 s: WAL generated 0 B/s, replayed 0 B/s, max lag 0 B, last lag 0 B, replay delay"
            + " 0.00 s",
        "  VERIFYING: write probe on the target",
        "BAKING: write probe committed on 10.0.0.6:5432; no commit on the source after the final LSN (WAL 0/3000000"
            + " to 0/3000000)",
        "BAKING: baked 600.0 s: baseline vs target: commits 0.0/s vs 0.0/s, rollbacks 0.0/s vs 0.0/s, deadlocks"
            + " 0.00/s vs 0.00/s, conflicts 0.00/s vs 0.00/s, connections 0.0 vs 0.0, temp_bytes 0.0 B/s vs 0.0 B/s,"
            + " latency not available, connect_failures not available, hold_timeouts not available",
        "COMPLETED: the target held the baseline for the bake of 600 s");
    assertThat(transcript).anySatisfy(l -> assertThat(l).startsWith("REPLICATING: baseline over 30.0 s on the source"
        + " (the whole server): commits 0.0/s"));
  }

  @Test
  void aValidationWindowOfAnHour_passesAtOnce_onTheDryRunsClock() throws Exception {
    Script script = new Script();
    long started = System.nanoTime();

    List<String> transcript = migrator(script).dryRun(spec(Duration.ofHours(1)));

    assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(10));
    assertThat(transcript).anySatisfy(l -> assertThat(l).startsWith("VALIDATED: validated over 3600.0 s"));
    assertThat(script.dryRunsClock.instant()).isAfterOrEqualTo(NOW.plus(Duration.ofHours(1)));
  }

  @Test
  void aBlockingCheck_endsTheTranscriptWhereTheRunWouldStop_withNothingToUndo() throws Exception {
    Script script = new Script();
    script.targetInRecovery = false;

    List<String> transcript = migrator(script).dryRun(spec(Duration.ofSeconds(30)));

    assertThat(transcript).contains("PREFLIGHT: preflight FAIL target is a standby: 10.0.0.6:5432 is not in recovery"
        + " (already promoted?)");
    assertThat(transcript.get(transcript.size() - 1)).startsWith("ROLLED_BACK: nothing to undo: the route and"
        + " 10.0.0.5:5432 were never changed; cause: preflight failed for database 'app': target is a standby");
    assertThat(transcript).noneMatch(l -> l.contains("QUIESCING"));
  }

  @Test
  void aReadThatFails_isTheAnswer_withTheErrorTheRunWouldRecord() {
    Script script = new Script();
    script.unreachable = true;

    assertThatThrownBy(() -> migrator(script).dryRun(spec(Duration.ofSeconds(30))))
        .isInstanceOf(MigrationException.class).isNotInstanceOf(MigrationConflictException.class)
        .hasMessage("database 'app': preflight: connection to 10.0.0.5:5432 refused");
  }

  @Test
  void aDatabaseWithAnUnfinishedMigration_isRefused_asStartRefusesIt() throws Exception {
    Migrator migrator = migrator(new Script());
    Migration started = migrator.start(spec(Duration.ofSeconds(30)));

    assertThatThrownBy(() -> migrator.dryRun(spec(Duration.ofSeconds(30))))
        .isInstanceOf(MigrationConflictException.class)
        .hasMessage("database 'app' already has migration " + started.id() + " in PLANNED");
  }

  @Test
  void aPlatformWithoutADryRun_isRefused() {
    Migrator migrator = new Migrator(new MigrationStore() {
      @Override
      public Migration save(Migration m) {
        return m.atRevision(m.revision() + 1);
      }

      @Override
      public List<Migration> loadAll() {
        return List.of();
      }
    }, null, spec -> new Script.Opened(new Script(), l -> { }), Clock.systemUTC(), d -> { }, new Idle());

    assertThatThrownBy(() -> migrator.dryRun(spec(Duration.ofSeconds(30))))
        .isInstanceOf(MigrationConflictException.class).hasMessage("database 'app': this platform has no dry run");
  }

  /** Runs nothing: what is started stays where it was saved. */
  private static final class Idle extends AbstractExecutorService {
    @Override
    public void execute(Runnable command) {}

    @Override
    public void shutdown() {}

    @Override
    public List<Runnable> shutdownNow() {
      return List.of();
    }

    @Override
    public boolean isShutdown() {
      return false;
    }

    @Override
    public boolean isTerminated() {
      return false;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) {
      return true;
    }
  }

  /** The world the platform reads: a healthy source and standby with one logical slot. */
  private static final class Script {
    boolean targetInRecovery = true;
    boolean unreachable;
    Clock dryRunsClock;

    ServerFacts facts() {
      ImmutableMap<String, String> settings = ImmutableMap.of("wal_level", "logical", "server_version_num", "150007");
      return new ServerFacts(
          new ServerFacts.Source(new ServerFacts.Identity(SOURCE.host(), SOURCE.port(), false, "1"), 1, settings,
              ImmutableSet.of(), ImmutableList.of()),
          Optional.of(new ServerFacts.Target(new ServerFacts.Identity(TARGET.host(), TARGET.port(), targetInRecovery, "1"),
              settings, ImmutableSet.of(), Optional.of(new ServerFacts.Receiver("streaming", SOURCE.host(), 5432, 1)))),
          ImmutableList.of(new ServerFacts.Slot("cdc", "pgoutput", true, "0/2000000", 0)),
          new ServerFacts.Fence(new ServerFacts.WalProof(true, true, "postgres"),
              new ServerFacts.HoldSlot("turnout_fence_app", false, 1, 10), ImmutableList.of(),
              new ServerFacts.StandbyRoles(ImmutableList.of(), ImmutableList.of())));
    }

    /** One opening: reads from the script, changes recorded (as a dry-run platform records them). */
    static final class Opened implements Platform {
      private static final Lsn FINAL = Lsn.parse("0/3000000");
      private final Script script;
      private final java.util.function.Consumer<String> change;
      private final DryRun dryRun;
      private boolean fenced;
      private boolean promoted;

      Opened(Script script, java.util.function.Consumer<String> change) {
        this(script, change, null);
      }

      Opened(Script script, java.util.function.Consumer<String> change, DryRun dryRun) {
        this.script = script;
        this.change = change;
        this.dryRun = dryRun;
      }

      @Override
      public Optional<String> ensureTarget() {
        return Optional.empty();
      }

      @Override
      public PreflightFacts preflightFacts() throws MigrationException {
        if (script.unreachable) {
          MigrationException e = new MigrationException("database 'app': preflight: connection to " + SOURCE
              + " refused");
          if (dryRun != null) {
            dryRun.readFailed(e);
          }
          throw e;
        }
        return PreflightFacts.of(script.facts());
      }

      @Override
      public void dropSlot(String name) {
        change.accept("drop slot " + name);
      }

      @Override
      public void installWalProof() {
        change.accept("install pg_walinspect");
      }

      @Override
      public Sample sample() {
        return new Sample(script.dryRunsClock == null ? 0 : script.dryRunsClock.millis() * 1_000_000L,
            Lsn.parse("0/2000000"), Lsn.parse("0/2000000"), 0);
      }

      @Override
      public dev.turnout.migrator.bake.Workload sourceWorkload() {
        return idle();
      }

      @Override
      public dev.turnout.migrator.bake.Workload targetWorkload() {
        return idle();
      }

      private dev.turnout.migrator.bake.Workload idle() {
        return new dev.turnout.migrator.bake.Workload(script.dryRunsClock == null ? 0
            : script.dryRunsClock.millis() * 1_000_000L, dev.turnout.migrator.bake.Workload.Counters.ZERO, 0,
            Optional.empty());
      }

      @Override
      public ImmutableList<String> loginRolesToFence(boolean keepStandby) {
        return keepStandby ? ImmutableList.of("app") : ImmutableList.of("app", "replicator");
      }

      @Override
      public ImmutableList<Session> applicationSessions() {
        return ImmutableList.of();
      }

      @Override
      public void endApplicationSessions(List<Session> sessions) {
        if (!sessions.isEmpty()) {
          change.accept("end sessions " + sessions);
        }
      }

      @Override
      public ImmutableList<PreparedTransaction> preparedTransactions() {
        return ImmutableList.of();
      }

      @Override
      public void rollBackPreparedTransactions(List<PreparedTransaction> transactions) {
        change.accept("roll back " + transactions);
      }

      @Override
      public ImmutableList<PreparedTransaction> targetPreparedTransactions() {
        return ImmutableList.of();
      }

      @Override
      public ImmutableList<Session> targetApplicationSessions() {
        return ImmutableList.of();
      }

      @Override
      public void endTargetApplicationSessions(List<Session> sessions) {
        if (!sessions.isEmpty()) {
          change.accept("end target sessions " + sessions);
        }
      }

      @Override
      public ImmutableList<Session> fence(List<String> roles) {
        change.accept("fence roles " + roles);
        fenced = true;
        return ImmutableList.of();
      }

      @Override
      public ImmutableList<Session> endSessions(boolean slotStreamsToo) {
        change.accept("end sessions (slot streams too: " + slotStreamsToo + ")");
        return ImmutableList.of();
      }

      @Override
      public void refuseLogins(List<String> roles) {
        change.accept("refuse logins " + roles);
      }

      @Override
      public void verifyFence(List<String> roles) {
        change.accept("verify the fence");
      }

      @Override
      public Lsn sourceLsn() {
        return FINAL;
      }

      @Override
      public Lsn finalLsn() {
        return FINAL;
      }

      @Override
      public WalCheck commitsAfter(Lsn from) {
        return new WalCheck(from, from, ImmutableList.of(), 0);
      }

      @Override
      public void releaseFenceHold() {
        change.accept("release the WAL hold");
      }

      @Override
      public void unfence(List<String> roles) {
        change.accept("unfence roles " + roles);
      }

      /** The consumer confirms the final LSN once the fence is up, as the dry-run platforms answer. */
      @Override
      public ImmutableList<Slot> sourceSlots() {
        return ImmutableList.of(new Slot("cdc", "pgoutput", true, fenced ? FINAL : Lsn.parse("0/2000000"), 0));
      }

      @Override
      public Lsn targetReplayLsn() {
        return fenced ? FINAL : Lsn.parse("0/2000000");
      }

      @Override
      public void armTargetReadOnly() {
        change.accept("arm the target read-only");
      }

      @Override
      public void promoteTarget() {
        change.accept("promote the target");
        promoted = true;
      }

      @Override
      public boolean targetPromoted() {
        return promoted;
      }

      @Override
      public void syncFailoverSlots() {}

      @Override
      public ImmutableList<String> createSlotsOnTarget(List<SlotPosition> slots) {
        change.accept("create slots " + slots.stream().map(SlotPosition::name).toList());
        return ImmutableList.of();
      }

      @Override
      public void restoreLoginsOnTarget(List<String> roles) {
        change.accept("restore logins on the target " + roles);
      }

      @Override
      public void admitWritesOnTarget() {
        change.accept("admit writes on the target");
      }

      @Override
      public void disarmTarget() {
        change.accept("disarm the target");
      }

      @Override
      public void writeProbeTarget() {
        change.accept("write probe on the target");
      }

      @Override
      public void close() {}
    }
  }
}
