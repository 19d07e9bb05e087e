package dev.turnout.it.bench;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import dev.turnout.migrator.Lsn;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.Platform;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.SlotPosition;
import dev.turnout.migrator.check.PreflightFacts;
import dev.turnout.migrator.check.ServerFacts;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A SIMULATION, for scale only: PostgreSQL servers that do not exist. Every source is a healthy primary whose
 * standby already streams from it, with nothing to drain (no application session, no prepared transaction, no
 * logical slot); every call answers as such a pair would and takes a fixed simulated time ({@link Step}), slept on
 * the migration's own thread: the fence 50 ms, the promotion 100 ms, a lag sample 2 ms and so on. Nothing is
 * connected to and nothing is proven: what {@code campaign-bench} measures with it is the control plane's own
 * cost of running a fleet (decisions, saves, route changes and their ACKs), never a migration's safety, which the
 * tests on real servers ({@code CampaignEndToEndTest}, {@code MigrationEndToEndTest}) are for.
 *
 * <p>It keeps, per migration, the sum of the simulated step times it slept outside the validation window's
 * sampling: with the window, what a member would take if the control plane cost nothing ({@link #idealOf}).
 * Adapted from the migrator's test {@code ScriptedPlatform} (test scope of another module, so copied).
 */
final class SimulatedPlatform implements Platform.Factory {

  /** The simulated duration of each kind of call, in milliseconds, loosely those of PostgreSQL on a LAN. */
  enum Step {
    /** Reading both servers' settings, identities, receiver, slots, databases. */
    PREFLIGHT(40),
    /** One lag sample (the source's LSN, the target's replay LSN): every 250 ms while validating. */
    SAMPLE(2),
    /** A one-row read (roles, sessions, prepared transactions, an LSN, the slots). */
    READ(1),
    /** The physical slot that keeps the source's WAL from here on. */
    PREPARE_FENCE(10),
    /** {@code ALTER SYSTEM SET default_transaction_read_only} on the standby, and a reload. */
    ARM_TARGET(10),
    /** Read-only default, every role NOLOGIN in one statement, every session ended. */
    FENCE(50),
    VERIFY_FENCE(5),
    /** Reading the source's WAL after the final LSN (pg_walinspect). */
    WAL_PROOF(5),
    /** {@code pg_promote}, polled until the new timeline. */
    PROMOTE(100),
    /** Logins restored on the target, writes admitted there. */
    ADMIT_WRITES(15),
    REFUSE_LOGINS(5),
    WRITE_PROBE(5),
    UNFENCE(20);

    final long millis;

    Step(long millis) {
      this.millis = millis;
    }
  }

  /** What one pair of simulated servers has become, by source address; kept across the platforms opened on it. */
  private static final class Pair {
    volatile boolean fenced;
    volatile boolean promoted;
    long sourceLsn = 0x3000000;
    /** Simulated time slept outside samples, in ms. */
    long steps;
  }

  private final Map<ServerAddress, Pair> pairs = new ConcurrentHashMap<>();
  /** The samples before the window (one) count; those inside it are the window's time. */
  private static final long SAMPLES_OUTSIDE_WINDOW = 1;

  @Override
  public Platform open(Migration.Spec spec) {
    return new Servers(spec, pairs.computeIfAbsent(spec.source(), s -> new Pair()));
  }

  /**
   * What the member migrating {@code source} would take if the control plane cost nothing: its validation window,
   * the sample before it, and every other simulated step it took.
   */
  long idealOf(ServerAddress source, Duration window) {
    Pair p = pairs.get(source);
    long steps;
    synchronized (p) {
      steps = p.steps;
    }
    return window.toMillis() + SAMPLES_OUTSIDE_WINDOW * Step.SAMPLE.millis + steps;
  }

  /** Forgets every pair (between runs). */
  void clear() {
    pairs.clear();
  }

  private static void take(Pair p, Step step) throws MigrationException {
    if (step != Step.SAMPLE) {
      synchronized (p) {
        p.steps += step.millis;
      }
    }
    try {
      Thread.sleep(step.millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new MigrationException("interrupted while simulating " + step);
    }
  }

  /** One migration's view of its simulated pair. */
  private static final class Servers implements Platform {
    private final Migration.Spec spec;
    private final Pair p;

    Servers(Migration.Spec spec, Pair p) {
      this.spec = spec;
      this.p = p;
    }

    @Override
    public Optional<String> ensureTarget() {
      return Optional.empty(); // the standby exists and streams
    }

    @Override
    public PreflightFacts preflightFacts() throws MigrationException {
      take(p, Step.PREFLIGHT);
      ImmutableMap<String, String> settings = ImmutableMap.of("wal_level", "logical", "server_version_num", "150007");
      ServerAddress s = spec.source();
      ServerAddress t = spec.target();
      ImmutableList<String> databases = ImmutableList.<String>builder().add("postgres").addAll(spec.databases()).build();
      return PreflightFacts.of(new ServerFacts(
          new ServerFacts.Source(new ServerFacts.Identity(s.host(), s.port(), false, "7301"), 1, settings,
              ImmutableSet.of(), ImmutableList.of(), databases),
          Optional.of(new ServerFacts.Target(new ServerFacts.Identity(t.host(), t.port(), true, "7301"), settings,
              ImmutableSet.of(), Optional.of(new ServerFacts.Receiver("streaming", s.host(), s.port(), 1)))),
          ImmutableList.of(),
          new ServerFacts.Fence(new ServerFacts.WalProof(true, true, "postgres"),
              new ServerFacts.HoldSlot("turnout_fence_app", false, 1, 10), ImmutableList.of(),
              new ServerFacts.StandbyRoles(ImmutableList.of(), ImmutableList.of()))));
    }

    @Override
    public void dropSlot(String name) throws MigrationException {
      take(p, Step.READ);
    }

    @Override
    public void installWalProof() throws MigrationException {
      take(p, Step.READ);
    }

    @Override
    public dev.turnout.migrator.bake.Workload sourceWorkload() {
      return idle();
    }

    @Override
    public dev.turnout.migrator.bake.Workload targetWorkload() {
      return idle();
    }

    /** Simulated servers have no workload to compare: campaign members start with no bake. */
    private static dev.turnout.migrator.bake.Workload idle() {
      return new dev.turnout.migrator.bake.Workload(System.nanoTime(),
          new dev.turnout.migrator.bake.Workload.Counters(0, 0, 0, 0, 0), 0, java.util.Optional.empty());
    }

    @Override
    public Sample sample() throws MigrationException {
      take(p, Step.SAMPLE);
      synchronized (p) {
        if (!p.fenced) {
          p.sourceLsn += 4096; // the application writes; the standby keeps up
        }
        return new Sample(System.nanoTime(), new Lsn(p.sourceLsn), new Lsn(p.sourceLsn), 0);
      }
    }

    @Override
    public ImmutableList<String> loginRolesToFence(boolean keepStandby) throws MigrationException {
      take(p, Step.READ);
      return keepStandby ? ImmutableList.of("app") : ImmutableList.of("app", "replicator");
    }

    @Override
    public ImmutableList<Session> applicationSessions() throws MigrationException {
      take(p, Step.READ);
      return ImmutableList.of();
    }

    @Override
    public void endApplicationSessions(List<Session> sessions) {
      // none to end
    }

    @Override
    public ImmutableList<PreparedTransaction> preparedTransactions() throws MigrationException {
      take(p, Step.READ);
      return ImmutableList.of();
    }

    @Override
    public void rollBackPreparedTransactions(List<PreparedTransaction> transactions) {
      // none prepared
    }

    @Override
    public ImmutableList<PreparedTransaction> targetPreparedTransactions() throws MigrationException {
      take(p, Step.READ);
      return ImmutableList.of();
    }

    @Override
    public ImmutableList<Session> targetApplicationSessions() throws MigrationException {
      take(p, Step.READ);
      return ImmutableList.of();
    }

    @Override
    public void endTargetApplicationSessions(List<Session> sessions) {
      // none to end
    }

    @Override
    public void prepareFence() throws MigrationException {
      take(p, Step.PREPARE_FENCE);
    }

    @Override
    public ImmutableList<Session> fence(List<String> roles) throws MigrationException {
      take(p, Step.FENCE);
      p.fenced = true;
      return ImmutableList.of();
    }

    @Override
    public ImmutableList<Session> endSessions(boolean slotStreamsToo) throws MigrationException {
      take(p, Step.READ);
      return ImmutableList.of();
    }

    @Override
    public void refuseLogins(List<String> roles) throws MigrationException {
      take(p, Step.REFUSE_LOGINS);
    }

    @Override
    public void verifyFence(List<String> roles) throws MigrationException {
      take(p, Step.VERIFY_FENCE);
      if (!p.fenced) {
        throw new MigrationException("simulated source " + spec.source() + " is not fenced");
      }
    }

    @Override
    public Lsn sourceLsn() throws MigrationException {
      take(p, Step.READ);
      synchronized (p) {
        return new Lsn(p.sourceLsn);
      }
    }

    @Override
    public Lsn finalLsn() throws MigrationException {
      return sourceLsn();
    }

    @Override
    public WalCheck commitsAfter(Lsn from) throws MigrationException {
      take(p, Step.WAL_PROOF);
      synchronized (p) {
        return new WalCheck(from, new Lsn(p.sourceLsn), ImmutableList.of(), 0);
      }
    }

    @Override
    public void releaseFenceHold() throws MigrationException {
      take(p, Step.READ);
    }

    @Override
    public void unfence(List<String> roles) throws MigrationException {
      take(p, Step.UNFENCE);
      p.fenced = false;
    }

    @Override
    public ImmutableList<Slot> sourceSlots() throws MigrationException {
      take(p, Step.READ);
      return ImmutableList.of();
    }

    @Override
    public Lsn targetReplayLsn() throws MigrationException {
      take(p, Step.READ);
      synchronized (p) {
        return new Lsn(p.sourceLsn);
      }
    }

    @Override
    public void armTargetReadOnly() throws MigrationException {
      take(p, Step.ARM_TARGET);
    }

    @Override
    public void promoteTarget() throws MigrationException {
      if (!p.promoted) {
        take(p, Step.PROMOTE);
      }
      p.promoted = true;
    }

    @Override
    public boolean targetPromoted() throws MigrationException {
      take(p, Step.READ);
      return p.promoted;
    }

    @Override
    public void syncFailoverSlots() {
      // PostgreSQL 15: nothing to sync
    }

    @Override
    public ImmutableList<String> createSlotsOnTarget(List<SlotPosition> slots) {
      return ImmutableList.of();
    }

    @Override
    public void restoreLoginsOnTarget(List<String> roles) {
      // counted in admitWritesOnTarget
    }

    @Override
    public void admitWritesOnTarget() throws MigrationException {
      take(p, Step.ADMIT_WRITES);
    }

    @Override
    public void disarmTarget() throws MigrationException {
      take(p, Step.ARM_TARGET);
    }

    @Override
    public void writeProbeTarget() throws MigrationException {
      take(p, Step.WRITE_PROBE);
    }

    @Override
    public void close() {
    }
  }
}
