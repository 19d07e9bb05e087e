package dev.turnout.migrator;

import dev.turnout.migrator.check.PreflightFacts;
import dev.turnout.migrator.check.ServerFacts;

import com.google.common.collect.ImmutableList;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * The two servers of a migration as a test scripts them: one shared state (fenced, promoted, armed...) that every
 * platform the migrator opens acts on, each action written to the journal the router writes to too, and answers
 * the test chooses. Actions check the world first as the real platforms do: promoting a promoted target, or
 * fencing a fenced source, changes nothing and is journalled as such.
 *
 * <p>A scripted failure throws at an action {@link When#BEFORE} it acts (the call was refused) or
 * {@link When#AFTER} (it acted and then failed, as a call that timed out after the server did what it asked).
 */
final class ScriptedPlatform implements Platform.Factory {
  enum When { BEFORE, AFTER }

  private record Failure(When when, String message, int[] left) {}

  static final Lsn START = Lsn.parse("0/3000000");

  private final Journal journal;
  private final java.time.Clock clock;
  private final Map<String, Failure> failures = new HashMap<>();

  // The world. Guarded by this.
  private boolean fenced;
  private boolean promoted;
  private boolean targetArmed;
  private boolean writesAdmitted;
  private boolean holdReleased;
  private boolean sourceDown;
  private boolean replayStuck;
  private int promotions;
  private int fences;
  private int unfences;
  private Lsn sourceLsn = START;
  private Supplier<Long> lagBytes = () -> 0L;
  /** What preflight reads: a healthy source and its streaming standby, changed by {@link #preflightReads}. */
  private ServerFacts facts = healthy();
  private List<String> commitsAfterFence = List.of();
  private List<Platform.PreparedTransaction> prepared = new ArrayList<>();
  /** What each look at the application's sessions answers, in turn; none once they are used up. */
  private final java.util.Deque<List<Platform.Session>> sessionLooks = new java.util.ArrayDeque<>();
  private final java.util.Deque<List<Platform.Session>> targetSessionLooks = new java.util.ArrayDeque<>();
  /** The source's login roles refused at login; replicator is the role the standby streams as. */
  private final java.util.Set<String> refused = new java.util.TreeSet<>();
  private String diesAt = "";
  private int opened;
  /** Whether the platform makes a reverse path at all ({@link #reverseReplication}), and that path's state. */
  private boolean reverseSupported;
  private boolean reverseMade;
  private boolean reverseSubscribed;
  private boolean reverseStopped;
  /** The source's subscriptions dropped (the first half of taking the path down). */
  private boolean reverseApplyStopped;
  private boolean targetFenced;
  private Optional<String> reverseBroken = Optional.empty();
  /** How many looks at the applied position answer behind the target's end before it is reached. */
  private int appliedLooksBehind;
  private int sequencesBrought;
  private static final Lsn TARGET_END = Lsn.parse("0/5000000");
  /** Each server's workload, integrated over the fake clock's time. */
  private final Counters sourceCounters = new Counters(Load.STEADY);
  private final Counters targetCounters = new Counters(Load.STEADY);

  /**
   * What a server's workload does per second of the fake clock, from when it is set on.
   *
   * @param latencyMs each statement's time (200 statements a second), or negative: pg_stat_statements not there
   */
  record Load(double commits, double rollbacks, double deadlocks, long connections, double latencyMs) {
    /** The default on both servers: a steady application. */
    static final Load STEADY = new Load(100, 1, 0, 10, 1.0);

    Load withRollbacks(double perSecond) {
      return new Load(commits, perSecond, deadlocks, connections, latencyMs);
    }

    Load withLatency(double ms) {
      return new Load(commits, rollbacks, deadlocks, connections, ms);
    }

    Load withCommits(double perSecond) {
      return new Load(perSecond, rollbacks, deadlocks, connections, latencyMs);
    }
  }

  /** A server's cumulative counters. Guarded by the platform's lock. */
  private final class Counters {
    private Load load;
    private java.time.Instant at;
    private double commits;
    private double rollbacks;
    private double deadlocks;
    private double calls;
    private double millis;

    Counters(Load load) {
      this.load = load;
    }

    void set(Load newLoad) {
      read(); // what the old load made until now stays counted
      load = newLoad;
    }

    dev.turnout.migrator.bake.Workload read() {
      java.time.Instant now = clock.instant();
      double s = at == null ? 0 : java.time.Duration.between(at, now).toNanos() / 1e9;
      at = now;
      commits += load.commits() * s;
      rollbacks += load.rollbacks() * s;
      deadlocks += load.deadlocks() * s;
      calls += 200 * s;
      millis += 200 * s * Math.max(0, load.latencyMs());
      return new dev.turnout.migrator.bake.Workload(java.time.Duration.between(java.time.Instant.EPOCH, now).toNanos(),
          new dev.turnout.migrator.bake.Workload.Counters((long) commits, (long) rollbacks, (long) deadlocks, 0, 0),
          load.connections(), load.latencyMs() < 0 ? Optional.empty()
              : Optional.of(new dev.turnout.migrator.bake.Workload.Statements((long) calls, millis)));
    }
  }

  ScriptedPlatform(Journal journal, java.time.Clock clock) {
    this.journal = journal;
    this.clock = clock;
  }

  // ---- the script

  /** {@code action} fails {@code times} times (Integer.MAX_VALUE: always), before or after it acts. */
  synchronized ScriptedPlatform fail(String action, When when, int times, String message) {
    failures.put(action, new Failure(when, message, new int[] {times}));
    return this;
  }

  synchronized ScriptedPlatform failAlways(String action, String message) {
    return fail(action, When.BEFORE, Integer.MAX_VALUE, message);
  }

  /** Preflight reads {@code change} of what a healthy pair would show. */
  synchronized ScriptedPlatform preflightReads(java.util.function.UnaryOperator<ServerFacts> change) {
    facts = change.apply(healthy());
    return this;
  }

  static ServerFacts healthy() {
    com.google.common.collect.ImmutableMap<String, String> settings =
        com.google.common.collect.ImmutableMap.of("wal_level", "logical", "server_version_num", "150007");
    return new ServerFacts(
        new ServerFacts.Source(new ServerFacts.Identity(Harness.SOURCE.host(), Harness.SOURCE.port(), false, "7301"), 1,
            settings, com.google.common.collect.ImmutableSet.of(), ImmutableList.of()),
        Optional.of(new ServerFacts.Target(new ServerFacts.Identity(Harness.TARGET.host(), Harness.TARGET.port(), true,
            "7301"), settings, com.google.common.collect.ImmutableSet.of(),
            Optional.of(new ServerFacts.Receiver("streaming", Harness.SOURCE.host(), Harness.SOURCE.port(), 1)))),
        ImmutableList.of(),
        new ServerFacts.Fence(new ServerFacts.WalProof(true, true, "postgres"),
            new ServerFacts.HoldSlot("turnout_fence_app", false, 1, 10), ImmutableList.of(),
            new ServerFacts.StandbyRoles(ImmutableList.of(), ImmutableList.of())));
  }

  /** The source's workload from now on (its baseline is read over the validation window). */
  synchronized ScriptedPlatform sourceLoad(Load load) {
    sourceCounters.set(load);
    return this;
  }

  /** The target's workload from now on (the bake reads it). */
  synchronized ScriptedPlatform targetLoad(Load load) {
    targetCounters.set(load);
    return this;
  }

  /** The target's replay lag at each sample. */
  synchronized ScriptedPlatform lag(Supplier<Long> bytes) {
    lagBytes = bytes;
    return this;
  }

  /** The target stops replaying: it never reaches the final LSN. */
  synchronized ScriptedPlatform replayStops() {
    replayStuck = true;
    return this;
  }

  /** The source's WAL after the final LSN holds these commits. */
  synchronized ScriptedPlatform commitsAfterTheFence(String... findings) {
    commitsAfterFence = List.of(findings);
    return this;
  }

  /** The source stops answering when {@code action} is called, and every call on it fails from then on. */
  synchronized ScriptedPlatform sourceDiesAt(String action) {
    diesAt = action;
    return this;
  }

  /** The application's sessions the quiesce sees at its first look, its second, and so on; none after. */
  @SafeVarargs
  final synchronized ScriptedPlatform sessionsAtEachLook(List<Platform.Session>... looks) {
    sessionLooks.clear();
    sessionLooks.addAll(List.of(looks));
    return this;
  }

  /** The application's sessions on the promoted target at a rollback's first look, its second, and so on. */
  @SafeVarargs
  final synchronized ScriptedPlatform targetSessionsAtEachLook(List<Platform.Session>... looks) {
    targetSessionLooks.clear();
    targetSessionLooks.addAll(List.of(looks));
    return this;
  }

  synchronized ScriptedPlatform prepared(Platform.PreparedTransaction... transactions) {
    prepared = new ArrayList<>(List.of(transactions));
    return this;
  }

  /** The platform replicates the promoted target back to the source; the source applies its end after {@code looks}. */
  synchronized ScriptedPlatform reverseReplication(int looksBehind) {
    reverseSupported = true;
    appliedLooksBehind = looksBehind;
    return this;
  }

  /** The reverse path reads broken from now on (DDL on the target, an apply error). */
  synchronized ScriptedPlatform reverseBreaks(String why) {
    reverseBroken = Optional.of(why);
    return this;
  }

  synchronized boolean reverseMade() {
    return reverseMade;
  }

  synchronized boolean reverseStopped() {
    return reverseStopped;
  }

  synchronized boolean targetFenced() {
    return targetFenced;
  }

  synchronized int sequencesBrought() {
    return sequencesBrought;
  }

  // ---- what the world is now

  synchronized boolean fenced() {
    return fenced;
  }

  synchronized boolean promoted() {
    return promoted;
  }

  synchronized boolean writesAdmitted() {
    return writesAdmitted;
  }

  synchronized boolean holdReleased() {
    return holdReleased;
  }

  synchronized boolean targetArmed() {
    return targetArmed;
  }

  /** How many times the target went from standby to primary, and the source from open to fenced and back. */
  synchronized int promotions() {
    return promotions;
  }

  synchronized int fences() {
    return fences;
  }

  synchronized int unfences() {
    return unfences;
  }

  synchronized int opened() {
    return opened;
  }

  @Override
  public synchronized Platform open(Migration.Spec spec) {
    opened++;
    return new Servers();
  }

  /** Throws the scripted failure of {@code action} if it fails before acting. */
  private synchronized void before(String action) throws MigrationException {
    if (action.equals(diesAt)) {
      sourceDown = true;
      journal.add(action + " FAILED: the source died");
    }
    source();
    Failure f = failures.get(action);
    if (f != null && f.when == When.BEFORE && f.left[0] > 0) {
      f.left[0]--;
      journal.add(action + " FAILED: " + f.message);
      throw new MigrationException(f.message);
    }
  }

  private synchronized void after(String action) throws MigrationException {
    Failure f = failures.get(action);
    if (f != null && f.when == When.AFTER && f.left[0] > 0) {
      f.left[0]--;
      journal.add(action + " FAILED after acting: " + f.message);
      throw new MigrationException(f.message);
    }
  }

  synchronized java.util.Set<String> refusedRoles() {
    return new java.util.TreeSet<>(refused);
  }

  private synchronized void source() throws MigrationException {
    if (sourceDown) {
      throw new MigrationException("connection to the source refused");
    }
  }

  /** One migration's view of the scripted servers. */
  private final class Servers implements Platform {
    @Override
    public Optional<String> ensureTarget() {
      return Optional.empty();
    }

    @Override
    public PreflightFacts preflightFacts() throws MigrationException {
      before("preflight");
      synchronized (ScriptedPlatform.this) {
        return PreflightFacts.of(facts);
      }
    }

    @Override
    public void dropSlot(String name) throws MigrationException {
      before("dropSlot");
      synchronized (ScriptedPlatform.this) {
        journal.add("drop slot " + name);
      }
    }

    @Override
    public void installWalProof() throws MigrationException {
      before("installWalProof");
      synchronized (ScriptedPlatform.this) {
        journal.add("install pg_walinspect");
      }
    }

    @Override
    public Sample sample() throws MigrationException {
      before("sample");
      synchronized (ScriptedPlatform.this) {
        sourceLsn = new Lsn(sourceLsn.value() + 4096);
        return new Sample(java.time.Duration.between(java.time.Instant.EPOCH, clock.instant()).toNanos(), sourceLsn,
            new Lsn(sourceLsn.value() - lagBytes.get()), 0);
      }
    }

    @Override
    public dev.turnout.migrator.bake.Workload sourceWorkload() throws MigrationException {
      before("sourceWorkload");
      synchronized (ScriptedPlatform.this) {
        return sourceCounters.read();
      }
    }

    @Override
    public dev.turnout.migrator.bake.Workload targetWorkload() throws MigrationException {
      synchronized (ScriptedPlatform.this) {
        Failure f = failures.get("targetWorkload");
        if (f != null && f.left[0] > 0) {
          f.left[0]--;
          journal.add("targetWorkload FAILED: " + f.message);
          throw new MigrationException(f.message);
        }
        return targetCounters.read();
      }
    }

    @Override
    public ImmutableList<String> loginRolesToFence(boolean keepStandby) throws MigrationException {
      source();
      synchronized (ScriptedPlatform.this) {
        return java.util.stream.Stream.of("app", "replicator").filter(r -> !refused.contains(r))
            .filter(r -> !keepStandby || !r.equals("replicator")).collect(ImmutableList.toImmutableList());
      }
    }

    @Override
    public ImmutableList<Session> applicationSessions() throws MigrationException {
      before("applicationSessions");
      synchronized (ScriptedPlatform.this) {
        List<Session> look = sessionLooks.pollFirst();
        return look == null ? ImmutableList.of() : ImmutableList.copyOf(look);
      }
    }

    @Override
    public void endApplicationSessions(List<Session> sessions) throws MigrationException {
      source();
      if (!sessions.isEmpty()) {
        journal.add("end sessions " + sessions.stream().map(Session::pid).toList());
      }
    }

    @Override
    public ImmutableList<PreparedTransaction> preparedTransactions() throws MigrationException {
      source();
      synchronized (ScriptedPlatform.this) {
        return ImmutableList.copyOf(prepared);
      }
    }

    @Override
    public void rollBackPreparedTransactions(List<PreparedTransaction> transactions) throws MigrationException {
      source();
      synchronized (ScriptedPlatform.this) {
        journal.add("roll back prepared " + transactions.stream().map(PreparedTransaction::gid).toList());
        prepared.removeAll(transactions);
      }
    }

    @Override
    public ImmutableList<PreparedTransaction> targetPreparedTransactions() {
      return ImmutableList.of();
    }

    @Override
    public ImmutableList<Session> targetApplicationSessions() throws MigrationException {
      before("targetApplicationSessions");
      synchronized (ScriptedPlatform.this) {
        List<Session> look = targetSessionLooks.pollFirst();
        return look == null ? ImmutableList.of() : ImmutableList.copyOf(look);
      }
    }

    @Override
    public void endTargetApplicationSessions(List<Session> sessions) throws MigrationException {
      if (!sessions.isEmpty()) {
        journal.add("end target sessions " + sessions.stream().map(Session::pid).toList());
      }
    }

    @Override
    public ImmutableList<Session> fence(List<String> roles) throws MigrationException {
      before("fence");
      synchronized (ScriptedPlatform.this) {
        journal.add(fenced ? "fence " + roles + " (already fenced)" : "fence " + roles);
        if (!fenced) {
          fences++;
        }
        fenced = true;
        refused.addAll(roles);
      }
      after("fence");
      return ImmutableList.of();
    }

    @Override
    public ImmutableList<Session> endSessions(boolean slotStreamsToo) throws MigrationException {
      source();
      return ImmutableList.of();
    }

    @Override
    public void refuseLogins(List<String> roles) throws MigrationException {
      source();
      synchronized (ScriptedPlatform.this) {
        journal.add("refuse logins " + roles);
        refused.addAll(roles);
      }
    }

    @Override
    public void verifyFence(List<String> roles) throws MigrationException {
      before("verifyFence");
      synchronized (ScriptedPlatform.this) {
        if (!fenced) {
          throw new MigrationException("fence not holding");
        }
      }
    }

    @Override
    public Lsn sourceLsn() throws MigrationException {
      source();
      synchronized (ScriptedPlatform.this) {
        return sourceLsn;
      }
    }

    @Override
    public Lsn finalLsn() throws MigrationException {
      return sourceLsn();
    }

    @Override
    public WalCheck commitsAfter(Lsn from) throws MigrationException {
      before("commitsAfter");
      synchronized (ScriptedPlatform.this) {
        return new WalCheck(from, sourceLsn, ImmutableList.copyOf(commitsAfterFence), 0);
      }
    }

    @Override
    public void releaseFenceHold() throws MigrationException {
      before("releaseFenceHold");
      synchronized (ScriptedPlatform.this) {
        journal.add("release the fence's WAL hold");
        holdReleased = true;
      }
    }

    @Override
    public void unfence(List<String> roles) throws MigrationException {
      before("unfence");
      synchronized (ScriptedPlatform.this) {
        journal.add(fenced ? "unfence " + roles : "unfence " + roles + " (not fenced)");
        if (fenced) {
          unfences++;
        }
        fenced = false;
        refused.removeAll(roles);
      }
    }

    @Override
    public ImmutableList<Slot> sourceSlots() throws MigrationException {
      source();
      return ImmutableList.of();
    }

    @Override
    public Lsn targetReplayLsn() {
      synchronized (ScriptedPlatform.this) {
        return replayStuck ? START : sourceLsn;
      }
    }

    @Override
    public void prepareFence() throws MigrationException {
      before("prepareFence");
      synchronized (ScriptedPlatform.this) {
        journal.add("hold the source's WAL");
      }
    }

    @Override
    public void armTargetReadOnly() throws MigrationException {
      before("armTargetReadOnly");
      synchronized (ScriptedPlatform.this) {
        journal.add("arm the target read-only");
        targetArmed = true;
      }
    }

    @Override
    public void promoteTarget() throws MigrationException {
      before("promoteTarget");
      synchronized (ScriptedPlatform.this) {
        journal.add(promoted ? "promote the target (already promoted)" : "promote the target");
        if (!promoted) {
          promotions++;
        }
        promoted = true;
      }
      after("promoteTarget");
    }

    @Override
    public boolean targetPromoted() throws MigrationException {
      before("targetPromoted");
      synchronized (ScriptedPlatform.this) {
        return promoted;
      }
    }

    @Override
    public void syncFailoverSlots() {
    }

    @Override
    public ImmutableList<String> createSlotsOnTarget(List<SlotPosition> slots) {
      return ImmutableList.of();
    }

    @Override
    public void restoreLoginsOnTarget(List<String> roles) {
      journal.add("restore logins on the target " + roles);
    }

    @Override
    public void admitWritesOnTarget() throws MigrationException {
      before("admitWritesOnTarget");
      synchronized (ScriptedPlatform.this) {
        journal.add("admit writes on the target");
        writesAdmitted = true;
      }
    }

    @Override
    public void disarmTarget() throws MigrationException {
      synchronized (ScriptedPlatform.this) {
        journal.add("disarm the target");
        targetArmed = false;
      }
    }

    @Override
    public void writeProbeTarget() throws MigrationException {
      before("writeProbeTarget");
      journal.add("write probe on the target");
    }

    @Override
    public boolean supportsReverseReplication() {
      synchronized (ScriptedPlatform.this) {
        return reverseSupported;
      }
    }

    @Override
    public String startReverseReplication() throws MigrationException {
      before("startReverseReplication");
      synchronized (ScriptedPlatform.this) {
        journal.add(reverseMade ? "reverse replication (already made)"
            : "reverse replication: publication and slot on the target");
        reverseMade = true;
      }
      after("startReverseReplication");
      return "fp1";
    }

    @Override
    public void subscribeReverse() throws MigrationException {
      before("subscribeReverse");
      synchronized (ScriptedPlatform.this) {
        if (!reverseMade) {
          throw new IllegalStateException("subscribed before the slots were made");
        }
        journal.add(reverseSubscribed ? "reverse subscription (already made)" : "reverse subscription on the source");
        reverseSubscribed = true;
      }
      after("subscribeReverse");
    }

    @Override
    public ReverseHealth reverseHealth(dev.turnout.migrator.ReversePath path) throws MigrationException {
      before("reverseHealth");
      synchronized (ScriptedPlatform.this) {
        if (!path.fingerprint().equals("fp1")) {
          throw new IllegalStateException("fingerprint " + path.fingerprint());
        }
        boolean subscriptionMissing = !reverseSubscribed && !path.awaitingSubscription();
        return new ReverseHealth(128, !reverseMade || reverseStopped || reverseApplyStopped || subscriptionMissing
            ? Optional.of("no subscription on the source") : reverseBroken);
      }
    }

    @Override
    public void fenceTarget(List<String> roles) throws MigrationException {
      before("fenceTarget");
      synchronized (ScriptedPlatform.this) {
        journal.add("fence the target " + roles);
        targetFenced = true;
      }
    }

    @Override
    public ImmutableList<Slot> targetSlots() {
      return ImmutableList.of();
    }

    @Override
    public void endTargetSlotStreams() {
      journal.add("end the target's CDC streams");
    }

    @Override
    public ImmutableList<String> bringSourceSlotsForward(List<SlotPosition> slots, Lsn finalLsn) {
      return ImmutableList.of();
    }

    @Override
    public Lsn targetEndLsn() throws MigrationException {
      before("targetEndLsn");
      return TARGET_END;
    }

    @Override
    public Lsn reverseAppliedLsn() throws MigrationException {
      before("reverseAppliedLsn");
      synchronized (ScriptedPlatform.this) {
        if (!reverseSubscribed) {
          return START; // nothing applies on the source before it subscribes
        }
        if (appliedLooksBehind > 0) {
          appliedLooksBehind--;
          return START;
        }
        journal.add("source applied the target's WAL to its end");
        return TARGET_END;
      }
    }

    @Override
    public String bringSequencesForward() throws MigrationException {
      before("bringSequencesForward");
      synchronized (ScriptedPlatform.this) {
        journal.add("sequences forward on the source");
        sequencesBrought++;
      }
      return "sequences brought forward on the source to the target's values: 2 of 3 used on the target moved";
    }

    @Override
    public void stopReverseReplication() throws MigrationException {
      before("stopReverseReplication");
      synchronized (ScriptedPlatform.this) {
        journal.add("reverse replication dropped");
        reverseStopped = true;
      }
    }

    @Override
    public void stopReverseApply() throws MigrationException {
      before("stopReverseApply");
      synchronized (ScriptedPlatform.this) {
        journal.add("reverse apply stopped");
        reverseApplyStopped = true;
      }
    }

    @Override
    public void close() {
    }
  }
}
