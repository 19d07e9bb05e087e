package dev.turnout.migrator;

import com.google.common.collect.ImmutableList;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.turnout.migrator.check.Preflight;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs migrations: one thread per running migration walks it through its phases, saving each new state in
 * the {@link MigrationStore} before acting on it. A failure or deadline before promotion rolls back; after
 * promotion the migration halts for an operator, whose rollback needs consent to lose the target's new writes
 * unless the reverse replication made at promotion carries them back (then it needs none, and a bake breach rolls
 * back by itself).
 * {@link #resumeAll} picks up, after a crash, every migration the store holds unfinished.
 *
 * <p>Every migration has one {@link Owner}: start, resume, rollback and finalize decide and save holding its lock,
 * against the latest saved revision; the runner acts without it and takes it for each save and each decision to go
 * on. Only the owner starts a runner, and only while none runs; every save is a compare-and-set on the revision it
 * was read at, here and in the store, so two operators acting at once cannot leave two runners or overwrite a
 * later phase.
 */
public final class Migrator {
  private static final Logger log = LoggerFactory.getLogger(Migrator.class);
  private static final Duration POLL = Duration.ofMillis(20);

  private final MigrationStore store;
  private final Router router;
  private final Platform.Factory platforms;
  private final Clock clock;
  private final Sleeper sleeper;
  private final ExecutorService runners;

  /** The owner of every migration this migrator has saved or loaded, by id. */
  private final Map<String, Owner> owners = new ConcurrentHashMap<>();
  private final Failpoint failpoint;
  private volatile boolean stopping;
  /** New migrations' ids; a dry run's migrator names its one migration {@link Rehearsal#ID}. Set before first use. */
  java.util.function.Supplier<String> ids = () -> UUID.randomUUID().toString().substring(0, 8);

  /** The latest replication figures of each migration that is validating, for metrics. */
  public record Figures(long lagBytes, double replayDelaySeconds, double walBytesPerSecond, double replayBytesPerSecond,
      long slotLagBytes) {}

  private final Map<String, Figures> figures = new ConcurrentHashMap<>();

  /**
   * The latest bake figures of a migration that is baking: how far in, and each signal against the baseline.
   */
  public record BakeFigures(Duration elapsed, Duration duration,
      ImmutableList<dev.turnout.migrator.bake.Judge.Comparison> signals) {}

  private final Map<String, BakeFigures> bakes = new ConcurrentHashMap<>();
  /** Where the time of each cutover in progress goes, by migration id: from QUIESCING until it leaves VERIFYING. */
  private final Map<String, CutoverSteps> cutovers = new ConcurrentHashMap<>();
  private static final java.util.Set<Phase> CUTOVER = java.util.EnumSet.of(Phase.QUIESCING, Phase.CATCHING_UP,
      Phase.PROMOTING, Phase.SHIFTING, Phase.VERIFYING);
  private final List<Consumer<Migration>> listeners = new java.util.concurrent.CopyOnWriteArrayList<>();
  private volatile CutoverGate gate = CutoverGate.OPEN;
  /** How often a validated migration held by its {@link CutoverGate} asks again, sampling the lag meanwhile. */
  static final Duration HOLD_POLL = Duration.ofSeconds(1);

  /**
   * Whether a validated migration may begin its cutover now. A campaign holds its members outside their
   * maintenance windows; replication goes on meanwhile, and the migration re-validates if the target falls behind.
   */
  @FunctionalInterface
  public interface CutoverGate {
    /** Empty when {@code m} may cut over now; otherwise why not (recorded once in its history). */
    Optional<String> holds(Migration m);

    CutoverGate OPEN = m -> Optional.empty();
  }

  private volatile dev.turnout.migrator.bake.SidecarCounters sidecars = dev.turnout.migrator.bake.SidecarCounters.NONE;

  /**
   * Installs where the bake reads the sidecars' counters (connect failures, hold timeouts); without it those two
   * signals are not available. Set it before {@link #resumeAll}.
   */
  public void setSidecarCounters(dev.turnout.migrator.bake.SidecarCounters counters) {
    this.sidecars = counters;
  }

  /** The source's workload with its databases' sidecars' counters: the baseline's ends. */
  private dev.turnout.migrator.bake.Workload sourceWorkload(Migration m, Platform platform) throws MigrationException {
    return platform.sourceWorkload().withSidecars(sidecars.read(m.spec().databases()));
  }

  /** The target's, the same way: while baking, the same databases' sidecars route to the target. */
  private dev.turnout.migrator.bake.Workload targetWorkload(Migration m, Platform platform) throws MigrationException {
    return platform.targetWorkload().withSidecars(sidecars.read(m.spec().databases()));
  }

  /** Installs the gate validated migrations ask before their cutover; set it before {@link #resumeAll}. */
  public void setCutoverGate(CutoverGate gate) {
    this.gate = gate;
  }

  /**
   * Where tests stop a migration to crash the process or roll it back at an exact point: called around the
   * save of every transition, on the thread that makes it: the migration's runner, or for a transition a command
   * decides (a rollback of a halted or completed migration), the command's, holding the migration's owner.
   * {@link #NONE} in production.
   */
  public interface Failpoint {
    /** Before the new state is saved (the previous phase's effects are done), and after. */
    enum Point { BEFORE_SAVE, AFTER_SAVE }

    void reached(Migration next, Point point) throws InterruptedException;

    Failpoint NONE = (next, point) -> { };
  }

  public Migrator(MigrationStore store, Router router, Platform.Factory platforms, Clock clock, Sleeper sleeper,
      ExecutorService runners) {
    this(store, router, platforms, clock, sleeper, runners, Failpoint.NONE);
  }

  public Migrator(MigrationStore store, Router router, Platform.Factory platforms, Clock clock, Sleeper sleeper,
      ExecutorService runners, Failpoint failpoint) {
    this.failpoint = failpoint;
    this.store = store;
    this.router = router;
    this.platforms = platforms;
    this.clock = clock;
    this.sleeper = sleeper;
    this.runners = runners;
  }

  /**
   * Stops running migrations without recording anything: like a crash, they resume from the store's saved
   * phase at the next start (every step is idempotent).
   */
  public void stop() {
    stopping = true;
    runners.shutdownNow();
    try {
      runners.awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Loads the store and resumes every unfinished migration that is not halted (or completed). */
  public void resumeAll() throws MigrationException {
    for (Migration m : store.loadAll()) {
      owners.putIfAbsent(m.id(), new Owner(m));
    }
    for (Owner owner : owners.values()) {
      Object runner = command(owner, () -> runsByItself(owner.current.phase()) ? owner.claimRunner() : null);
      if (runner != null) {
        log.info("{}: resuming in {} after a restart", owner.current, owner.current.phase());
        startRunner(owner, runner);
      }
    }
  }

  /** Phases a runner works through; in the others (halted, completed, terminal) only a command moves it on. */
  private static boolean runsByItself(Phase phase) {
    return !phase.isTerminal() && phase != Phase.HALTED && phase != Phase.COMPLETED;
  }

  /** Records a new migration and starts it; a database has at most one unfinished migration. */
  public Migration start(Migration.Spec spec) throws MigrationException {
    return start(spec, () -> {});
  }

  /** A condition the caller's plan rests on, checked again under the lock that route changes by hand take. */
  @FunctionalInterface
  public interface Precondition {
    void check() throws MigrationException;
  }

  /**
   * As {@link #start(Migration.Spec)}, after {@code stillTrue} holds under the same lock as
   * {@link #outsideMigrations}: a route changed by hand since the caller read the source cannot slip in between
   * (the migration would be planned from a source the database is no longer routed to).
   */
  public Migration start(Migration.Spec spec, Precondition stillTrue) throws MigrationException {
    return start(Optional.empty(), spec, stillTrue);
  }

  private static final java.util.regex.Pattern ID = java.util.regex.Pattern.compile("[A-Za-z0-9_-]{1,64}");

  /**
   * As {@link #start(Migration.Spec, Precondition)}, under an id the caller chose (a campaign names its members'
   * migrations, so a start lost in a crash is recognised when it is asked again): {@code ALREADY_EXISTS} when a
   * migration of that id exists, started or finished.
   */
  public Migration startAs(String id, Migration.Spec spec, Precondition stillTrue) throws MigrationException {
    if (!ID.matcher(id).matches()) {
      throw new MigrationConflictException(MigrationConflictException.Kind.INVALID_ARGUMENT, "migration id '" + id
          + "' is not 1 to 64 letters, digits, '-' or '_'");
    }
    return start(Optional.of(id), spec, stillTrue);
  }

  private Migration start(Optional<String> chosen, Migration.Spec spec, Precondition stillTrue)
      throws MigrationException {
    Owner owner;
    Migration planned;
    Object runner;
    synchronized (this) {
      if (chosen.isPresent() && owners.containsKey(chosen.get())) {
        Migration there = owners.get(chosen.get()).current;
        throw new MigrationConflictException(MigrationConflictException.Kind.ALREADY_EXISTS, "migration "
            + chosen.get() + " exists (" + there.phase() + ")");
      }
      refuseSecond(spec);
      stillTrue.check();
      try (Platform platform = platforms.open(spec)) {
        // Opening touches no server; it refuses a spec this control plane has no platform for before it is saved.
      }
      String id = chosen.orElse(null);
      while (id == null || owners.containsKey(id)) {
        id = ids.get();
      }
      Owner o = new Owner(Migration.plan(id, spec, clock.instant()));
      planned = command(o, () -> save(o, o.current));
      runner = command(o, o::claimRunner);
      owner = o;
      owners.put(id, owner); // seen by the others only once saved
    }
    // Outside the lock: a runner may run on this thread (a direct executor), and must not hold starts off.
    startRunner(owner, runner);
    return planned;
  }

  /**
   * A database has at most one unfinished migration, and so has a server: the fence and the promotion act on the
   * whole server, so two migrations that share a source or a target (as source or target) would fence or promote
   * under each other.
   */
  private void refuseSecond(Migration.Spec spec) throws MigrationConflictException {
    for (Migration m : current()) {
      if (m.phase().isTerminal()) {
        continue;
      }
      String then = m.phase() == Phase.COMPLETED ? "; finalize it or roll it back first" : "";
      for (String database : spec.databases()) {
        if (m.spec().databases().contains(database)) {
          throw new MigrationConflictException(MigrationConflictException.Kind.ALREADY_EXISTS,
              "database '" + database + "' already has migration " + m.id() + " in " + m.phase() + then);
        }
      }
      Optional<String> shared = sharedServer(spec, m.spec());
      if (shared.isPresent()) {
        throw new MigrationConflictException(MigrationConflictException.Kind.ALREADY_EXISTS, "server "
            + shared.get() + " is already in migration " + m.id() + " (" + m.spec().source() + " -> "
            + m.spec().target() + ", databases " + String.join(", ", m.spec().databases()) + ") in " + m.phase()
            + then);
      }
    }
  }

  /** {@code "10.0.0.5:5432 (the source of both)"}, when the two migrations' servers overlap. */
  private static Optional<String> sharedServer(Migration.Spec a, Migration.Spec b) {
    String[] names = {"source", "target"};
    ServerAddress[] as = {a.source(), a.target()};
    ServerAddress[] bs = {b.source(), b.target()};
    for (int i = 0; i < 2; i++) {
      for (int j = 0; j < 2; j++) {
        if (as[i].equals(bs[j])) {
          return Optional.of(as[i] + " (" + (i == j ? "the " + names[i] + " of both"
              : "this one's " + names[i] + ", that one's " + names[j]) + ")");
        }
      }
    }
    return Optional.empty();
  }

  /** Something done to a database outside any migration of it (an operator's route change by hand). */
  @FunctionalInterface
  public interface Outside<T> {
    T run() throws Exception;
  }

  /**
   * Runs {@code action} unless {@code database} has an unfinished migration, holding off {@link #start} meanwhile,
   * so the two cannot interleave: a migration's source is the endpoint it saw at start, and its steps route as if
   * nobody else did. Throws {@link MigrationConflictException} ({@code FAILED_PRECONDITION}) naming the migration
   * and its phase otherwise, having run nothing.
   */
  public <T> T outsideMigrations(String database, Outside<T> action) throws Exception {
    synchronized (this) {
      for (Migration m : current()) {
        if (m.spec().databases().contains(database) && !m.phase().isTerminal()) {
          throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION,
              "database '" + database + "' has migration " + m.id() + " in " + m.phase() + ": its route changes only"
                  + " through the migration until it is " + (m.phase() == Phase.COMPLETED ? "finalized or rolled back"
                  : "rolled back (or completed and finalized)"));
        }
      }
      return action.run();
    }
  }

  /**
   * The target of a migration of {@code database} whose operator named none, from the platform (an Aurora cluster's
   * writer endpoint, described by AWS); refused when the platform cannot tell.
   */
  public ServerAddress defaultTarget(String database, Optional<Migration.Aurora> aurora) throws MigrationException {
    return platforms.defaultTarget(database, aurora).orElseThrow(() -> new MigrationConflictException(
        MigrationConflictException.Kind.FAILED_PRECONDITION, "database '" + database + "': no default target for"
            + " this platform; give the target as host:port"));
  }

  /** The latest replication figures of a migration, once it has sampled. */
  public Optional<Figures> figures(String id) {
    return Optional.ofNullable(figures.get(id));
  }

  /** The reverse path of each promoted migration as last read (by its bake, or by {@link #reverseHealth}). */
  private final Map<String, Platform.ReverseHealth> reverse = new ConcurrentHashMap<>();
  /** When each entry of {@link #reverse} was read: a status asked more often than once a second reads it once. */
  private final Map<String, Instant> reverseRead = new ConcurrentHashMap<>();
  private static final Duration REVERSE_READ_EVERY = Duration.ofSeconds(1);

  /**
   * The reverse path of a promoted migration that has one and is not finished, read from the servers now (a
   * migration whose path is saved as broken answers so without reading); empty for any other migration. A read that
   * fails answers broken, saying why, and is not saved: the servers may answer again.
   */
  public Optional<Platform.ReverseHealth> reverseHealth(String id) {
    Optional<Migration> found = get(id);
    if (found.isEmpty() || found.get().progress().reverse().isEmpty() || found.get().phase().isTerminal()) {
      return Optional.empty();
    }
    Migration m = found.get();
    ReversePath path = m.progress().reverse().get();
    if (path.broken().isPresent()) {
      return Optional.of(new Platform.ReverseHealth(-1, path.broken()));
    }
    if (m.phase() == Phase.ROLLING_BACK) {
      return Optional.ofNullable(reverse.get(id));
    }
    Instant read = reverseRead.get(id);
    if (read != null && reverse.containsKey(id) && clock.instant().isBefore(read.plus(REVERSE_READ_EVERY))) {
      return Optional.of(reverse.get(id));
    }
    try (Platform platform = platforms.open(m.spec())) {
      Platform.ReverseHealth health = platform.reverseHealth(path);
      reverse.put(id, health);
      reverseRead.put(id, clock.instant());
      return Optional.of(health);
    } catch (MigrationException | RuntimeException e) {
      return Optional.of(new Platform.ReverseHealth(-1, Optional.of("cannot be read: " + e.getMessage())));
    }
  }

  /** The latest bake figures of a migration, once its bake has read the target (in this process). */
  public Optional<BakeFigures> bakeFigures(String id) {
    return Optional.ofNullable(bakes.get(id));
  }

  public Optional<Migration> get(String id) {
    return Optional.ofNullable(owners.get(id)).map(o -> o.current);
  }

  public ImmutableList<Migration> list() {
    return current().stream().sorted(Comparator.comparing(m -> m.history().get(0).at()))
        .collect(ImmutableList.toImmutableList());
  }

  /** The latest saved state of every migration. */
  private List<Migration> current() {
    return owners.values().stream().map(o -> o.current).toList();
  }

  /** Called with every saved state, outside any lock. */
  public void addListener(Consumer<Migration> listener) {
    listeners.add(listener);
  }

  public void removeListener(Consumer<Migration> listener) {
    listeners.remove(listener);
  }

  /**
   * The dry run: the transcript of a run of {@code spec}, made by running it with this migrator's code on the
   * platform opened for a dry run (it reads, and lists each change instead of making it), a router that lists each
   * route, a store in memory and a clock on which every wait passes at once; then a rollback from COMPLETED, the
   * same way. A database with an unfinished migration is refused as {@link #start} would refuse it; a read that fails
   * is thrown, with the error the run would record. See {@link Rehearsal}.
   */
  public ImmutableList<String> dryRun(Migration.Spec spec) throws MigrationException {
    refuseSecond(spec);
    return new Rehearsal(spec, platforms, clock.instant()).run();
  }

  /**
   * Asks for a rollback. Before promotion it needs nothing more; after promotion, while the reverse replication is
   * healthy (read from the servers now), nothing more either: the rollback keeps the target's writes. Otherwise
   * {@code consent} must say the operator accepts losing the writes made on the target since cutover.
   */
  public Migration rollback(String id, boolean consent) throws MigrationException {
    Owner owner = existing(id);
    Object[] runner = {null};
    Migration m = command(owner, () -> {
      Migration now = owner.current;
      if (now.phase() == Phase.FINALIZED) {
        throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION,
            now + " is finalized: the source is no longer a way back");
      }
      if (now.phase() == Phase.ROLLED_BACK) {
        return now;
      }
      if (now.phase() == Phase.ROLLING_BACK) {
        runner[0] = owner.claimRunner(); // a rollback whose runner stopped (it could not open the platform) goes on
        return now;
      }
      if (promotedRecorded(now) && !consent) {
        Optional<String> broken = wayBackBroken(owner, now);
        if (broken.isPresent()) {
          now = owner.current;
          throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION, now + " is in "
              + now.phase() + ": the target has been promoted and may hold writes made since cutover, which a rollback"
              + " to the source would lose (" + broken.get() + "). Roll back with consent to accept that.");
        }
      }
      if (owner.running()) {
        owner.requestRollback(consent); // the runner takes it before its next step or phase
        return now;
      }
      // No runner (halted, completed, or its runner stopped): decided and saved here, then one runner undoes it.
      Migration rolling = rollingBack(owner, now, consent);
      runner[0] = owner.claimRunner();
      return rolling;
    });
    startRunner(owner, runner[0]);
    return m;
  }

  /**
   * Resumes a HALTED migration where it stopped, as a restart resumes one that crashed: it moves back to the phase
   * it halted in (every step is idempotent, so that phase runs again from its start, with a new deadline) and its
   * error is cleared; a runner takes it on unless that phase waits for a command (COMPLETED: a finalize whose proof
   * halted it will prove again). Decided under the migration's owner, so a rollback or a second resume at the
   * same moment finds it resumed (and running) or halted, never both.
   */
  public Migration resume(String id) throws MigrationException {
    Owner owner = existing(id);
    Object[] runner = {null};
    Migration m = command(owner, () -> {
      Migration now = owner.current;
      if (now.phase() != Phase.HALTED) {
        throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION, now + " is in "
            + now.phase() + "; only a HALTED migration can be resumed");
      }
      Phase from = haltedIn(now);
      Migration resumed;
      try {
        resumed = transition(owner, now.with(now.progress().withError(null)), from, "resumed by the operator in "
            + from + " (halted: " + now.progress().error().orElse("no reason recorded") + ")");
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new MigrationException(now + ": interrupted before the resume was recorded", e);
      }
      runner[0] = runsByItself(from) ? owner.claimRunner() : null;
      return resumed;
    });
    startRunner(owner, runner[0]);
    return m;
  }

  /** The phase a HALTED migration was in when it halted. */
  private static Phase haltedIn(Migration m) {
    List<Migration.Event> history = m.history();
    for (int i = history.size() - 1; i >= 0; i--) {
      if (history.get(i).phase() != Phase.HALTED) {
        return history.get(i).phase();
      }
    }
    throw new IllegalStateException(m + " has no phase before HALTED in its history");
  }

  /**
   * Under the owner's lock: why a rollback of promoted {@code m} would lose writes, or empty when the reverse path
   * carries them. A path read broken now is saved as broken (and stays so: a rollback then needs consent).
   */
  private Optional<String> wayBackBroken(Owner owner, Migration m) throws MigrationException, InterruptedException {
    Optional<ReversePath> path = m.progress().reverse();
    if (path.isEmpty()) {
      return Optional.of("no reverse replication was made at promotion");
    }
    if (path.get().broken().isPresent()) {
      return Optional.of("the reverse replication is broken: " + path.get().broken().get());
    }
    if (path.get().caughtUp().isPresent()) {
      return Optional.empty(); // a lossless rollback got past its wait: the path is being taken down
    }
    Platform.ReverseHealth health;
    try (Platform platform = platforms.open(m.spec())) {
      health = platform.reverseHealth(path.get());
    } catch (MigrationException e) {
      return Optional.of("the reverse replication cannot be read: " + e.getMessage());
    }
    if (health.healthy()) {
      return Optional.empty();
    }
    if (!owner.running()) { // a running runner saves next: it would find its revision taken and stop
      save(owner, markBroken(m, health.broken().get()));
    }
    return Optional.of("the reverse replication is broken: " + health.broken().get());
  }

  private Migration markBroken(Migration m, String why) {
    return m.with(m.progress().withReverse(m.progress().reverse().orElseThrow().withBroken(why))).note(clock.instant(),
        "reverse replication broken: " + why + "; a rollback now needs consent and loses the target's writes");
  }

  /** {@code m} moved to ROLLING_BACK at the operator's request (under the owner's lock). */
  private Migration rollingBack(Owner owner, Migration m, boolean consent) throws MigrationException {
    Migration.Progress p = consent ? m.progress().withRollbackConsent() : m.progress();
    try {
      return transition(owner, m.with(p.withError("rollback requested by the operator")), Phase.ROLLING_BACK,
          "rollback requested by the operator");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new MigrationException(m + ": interrupted before the rollback was recorded", e);
    }
  }

  /**
   * Marks a COMPLETED migration final: the source stops being a way back. Decided under the migration's owner,
   * so a rollback asked at the same moment is either refused (finalized) or refuses this (rolling back).
   */
  public Migration finalizeMigration(String id) throws MigrationException, InterruptedException {
    Owner owner = existing(id);
    return command(owner, () -> {
      Migration m = owner.current;
      if (m.phase() == Phase.FINALIZED) {
        return m;
      }
      if (m.phase() != Phase.COMPLETED) {
        throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION,
            m + " is in " + m.phase() + "; only a COMPLETED migration can be finalized");
      }
      if (owner.rollbackRequested()) {
        throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION,
            m + " has a rollback requested; it cannot be finalized");
      }
      // The last proof: nothing committed on the source since the final LSN, up to now.
      try (Platform platform = platforms.open(m.spec())) {
        String proof;
        try {
          proof = proveNothingCommittedAfter(m, platform);
        } catch (CommitsAfterFence e) {
          Migration halted = m.with(m.progress().withError(e.getMessage())).to(Phase.HALTED, clock.instant(),
              "halted for an operator: " + e.getMessage() + "; carry them to the target by hand, or roll back with"
                  + " consent (writes on the target would be lost)");
          save(owner, halted);
          throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION,
              m + " cannot be finalized, and is halted: " + e.getMessage());
        } catch (MigrationException e) {
          throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION, m
              + " cannot be finalized without the proof that nothing committed on the source after the final LSN: "
              + e.getMessage());
        }
        Migration done = save(owner, m.to(Phase.FINALIZED, clock.instant(), "finalized by the operator; " + proof));
        if (m.progress().reverse().isPresent()) {
          // After the save: dropping the subscriptions commits on the source, which a finalize retried after a failed
          // save would otherwise find in its proof. A slot left on the target would keep its WAL: said loudly.
          try {
            platform.stopReverseReplication();
            done = save(owner, done.note(clock.instant(), "reverse replication dropped: subscriptions on the source,"
                + " slots and publications on the target"));
          } catch (MigrationException e) {
            log.warn("{}: finalized, but the reverse replication could not be dropped: {}", m, e.getMessage());
            done = save(owner, done.note(clock.instant(), "could not drop the reverse replication (drop the"
                + " subscriptions turnout_reverse_* on the source, then the slots turnout_reverse_* and the publication"
                + " turnout_reverse on the target, or the target keeps its WAL): " + e.getMessage()));
          }
        }
        try {
          platform.releaseFenceHold();
        } catch (MigrationException e) {
          log.warn("{}: finalized, but the source still keeps its WAL: {}", m, e.getMessage());
        }
        return done;
      }
    });
  }

  private static boolean promotedRecorded(Migration m) {
    return m.history().stream().anyMatch(e -> e.phase() == Phase.PROMOTING);
  }

  private Owner existing(String id) throws MigrationConflictException {
    Owner owner = owners.get(id);
    if (owner == null) {
      throw new MigrationConflictException(MigrationConflictException.Kind.NOT_FOUND, "no migration with id '" + id + "'");
    }
    return owner;
  }

  /**
   * The one owner of a migration in this process. Its lock is held by a command while it decides and saves, and by
   * a runner only while it saves or decides whether to go on: a runner's waits (a validation window, ACKs) hold
   * nobody off. {@link #current} is written under the lock, read anywhere.
   */
  private static final class Owner {
    final ReentrantLock lock = new ReentrantLock();
    /** The latest saved state (or, before the first save, the plan). */
    volatile Migration current;
    /** The runner working this migration, if one is; only the owner starts one, and only while this is null. */
    @GuardedBy("lock")
    private Object runner;
    /** An operator's rollback for the runner to take, and whether they consented to losing target writes. */
    @GuardedBy("lock")
    private Boolean rollbackRequest;
    /** Saved under a command's lock, for the listeners once it is released. */
    @GuardedBy("lock")
    private final List<Migration> unannounced = new ArrayList<>();

    Owner(Migration m) {
      this.current = m;
    }

    /** A token naming the new runner, or null when one runs already. Under the lock. */
    Object claimRunner() {
      if (runner != null) {
        return null;
      }
      runner = new Object();
      return runner;
    }

    boolean running() {
      return runner != null;
    }

    /** The runner {@code token} stops; a later one (claimed after it retired) is not affected. Under the lock. */
    void retire(Object token) {
      if (runner == token) {
        runner = null;
        rollbackRequest = null; // nobody is left to take it; a new rollback decides afresh
      }
    }

    void requestRollback(boolean consent) {
      rollbackRequest = consent || Boolean.TRUE.equals(rollbackRequest);
    }

    Boolean takeRollbackRequest() {
      Boolean r = rollbackRequest;
      rollbackRequest = null;
      return r;
    }

    boolean rollbackRequested() {
      lock.lock();
      try {
        return rollbackRequest != null;
      } finally {
        lock.unlock();
      }
    }
  }

  /** A decision on a migration, made under its owner's lock. */
  @FunctionalInterface
  private interface Decision<T> {
    T decide() throws MigrationException, InterruptedException;
  }

  /** Runs {@code decision} under {@code owner}'s lock, then tells the listeners what it saved. */
  private <T> T command(Owner owner, Decision<T> decision) throws MigrationException {
    try {
      return commandInterruptibly(owner, decision);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new MigrationException(owner.current + ": interrupted", e);
    }
  }

  private <T> T commandInterruptibly(Owner owner, Decision<T> decision) throws MigrationException, InterruptedException {
    owner.lock.lock();
    try {
      return decision.decide();
    } finally {
      // Only the outermost decision announces, once nothing holds the lock: listeners run outside it.
      List<Migration> saved = List.of();
      if (owner.lock.getHoldCount() == 1) {
        saved = new ArrayList<>(owner.unannounced);
        owner.unannounced.clear();
      }
      owner.lock.unlock();
      announce(saved);
    }
  }

  private void announce(List<Migration> saved) {
    for (Migration m : saved) {
      for (Consumer<Migration> listener : listeners) {
        listener.accept(m);
      }
    }
  }

  /**
   * Saves {@code next} through its owner: refused unless it was read at the latest saved revision, and, while an
   * operator's rollback waits for the runner, refused as a step into a further phase (the runner takes the
   * rollback first). Returns it as saved, at its new revision. When the store holds a later revision (another
   * process wrote it), the owner takes that one as the latest before the conflict is thrown, so the next command
   * decides on it.
   */
  private Migration save(Owner owner, Migration next) throws MigrationException, InterruptedException {
    return commandInterruptibly(owner, () -> {
      Migration now = owner.current;
      if (next.revision() != now.revision()) {
        throw new RevisionConflictException(next, now.revision(), Optional.of(now.phase()));
      }
      if (owner.rollbackRequest != null && next.phase() != now.phase() && next.phase() != Phase.ROLLING_BACK
          && next.phase() != Phase.HALTED) {
        throw new RollbackRequested();
      }
      Migration saved;
      CutoverSteps steps = cutovers.get(next.id());
      Instant start = clock.instant();
      try {
        saved = store.save(next);
      } catch (RevisionConflictException e) {
        reread(owner);
        throw e;
      }
      if (steps != null) {
        steps.add("saves", Duration.between(start, clock.instant()));
      }
      owner.current = saved;
      owner.unannounced.add(saved);
      return saved;
    });
  }

  /** Under the owner's lock: takes the store's revision of the migration as the latest, if it can be read. */
  private void reread(Owner owner) {
    String id = owner.current.id();
    try {
      store.loadAll().stream().filter(m -> m.id().equals(id)).findFirst().ifPresent(m -> {
        owner.current = m;
        owner.unannounced.add(m);
      });
    } catch (MigrationException e) {
      log.warn("{}: cannot read it again after a conflicting save: {}", owner.current, e.getMessage());
    }
  }

  /** Saves {@code m} through the owner of its migration (a runner's save). */
  private Migration save(Migration m) throws MigrationException, InterruptedException {
    return save(existing(m.id()), m);
  }

  /** Moves to {@code to}: saved before anything of {@code to} is done, logged as one line. */
  private Migration transition(Migration m, Phase to, String note) throws MigrationException, InterruptedException {
    return transition(existing(m.id()), m, to, note);
  }

  private Migration transition(Owner owner, Migration m, Phase to, String note)
      throws MigrationException, InterruptedException {
    Instant now = clock.instant();
    long ms = Duration.between(m.phaseStarted(), now).toMillis();
    Migration next = m.to(to, now, note);
    failpoint.reached(next, Failpoint.Point.BEFORE_SAVE);
    Migration saved = save(owner, next);
    log.info("migration {} database {}: {} -> {} after {} ms{}{}", m.id(), String.join(",", m.spec().databases()), m.phase(), to, ms,
        m.progress().finalLsn().map(l -> "; final LSN " + l).orElse(""), note.isEmpty() ? "" : "; " + note);
    failpoint.reached(saved, Failpoint.Point.AFTER_SAVE);
    if (!CUTOVER.contains(to)) {
      cutovers.remove(m.id());
    }
    return saved;
  }

  /** The source's WAL holds commits after the final LSN: the fence did not hold. */
  private static final class CommitsAfterFence extends MigrationException {
    private static final long serialVersionUID = 1L;

    CommitsAfterFence(String message) {
      super(message);
    }
  }

  /** Thrown inside a phase when the operator asked to roll back. */
  private static final class RollbackRequested extends MigrationException {
    private static final long serialVersionUID = 1L;

    RollbackRequested() {
      super("rollback requested by the operator");
    }
  }

  /** Starts the runner {@code token} names (claimed under the owner's lock); nothing for a null token. */
  private void startRunner(Owner owner, Object token) {
    if (token == null) {
      return;
    }
    try {
      runners.execute(() -> run(owner, token));
    } catch (java.util.concurrent.RejectedExecutionException e) {
      log.warn("{}: not run now, the migrator is stopping; it resumes from the store", owner.current);
      retire(owner, token);
    }
  }

  private void retire(Owner owner, Object token) {
    owner.lock.lock();
    try {
      owner.retire(token);
    } finally {
      owner.lock.unlock();
    }
  }

  private void run(Owner owner, Object token) {
    Migration m = owner.current;
    try (Platform platform = platforms.open(m.spec())) {
      while (true) {
        store.confirmWriter(); // another process may have taken migrations over: then act on nothing
        m = nextStep(owner, token);
        if (m == null) {
          return;
        }
        try {
          Migration after = advance(m, platform);
          if (after.phase() == m.phase()) {
            continue; // state saved inside the phase; run it again
          }
        } catch (RollbackRequested e) {
          // loop: the request is handled at the top
        } catch (MigrationStore.StaleWriterException | RevisionConflictException e) {
          throw e;
        } catch (MigrationException | RuntimeException e) {
          if (stopping) {
            return; // the process is stopping: the next start resumes from the saved phase
          }
          fail(owner, e.getMessage());
        }
      }
    } catch (MigrationStore.StaleWriterException e) {
      log.warn("{}: stopped here: {}", m, e.getMessage());
    } catch (RevisionConflictException e) {
      log.warn("{}: stopped here, another writer moved it on: {}", m, e.getMessage());
    } catch (MigrationException | RuntimeException e) {
      log.error("{}: cannot run: {}", m, e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      retire(owner, token);
    }
  }

  /**
   * Under the owner's lock: the migration as the runner is to work it now, with an operator's rollback taken
   * (moving it to ROLLING_BACK); or null when it is in a phase no runner works (halted, completed, terminal), and
   * this runner retires in the same breath, so a command that finds none running may start one.
   */
  private Migration nextStep(Owner owner, Object token) throws MigrationException, InterruptedException {
    return commandInterruptibly(owner, () -> {
      Migration m = owner.current;
      Boolean consent = owner.takeRollbackRequest();
      if (consent != null && m.phase() != Phase.ROLLING_BACK && !m.phase().isTerminal()) {
        m = rollingBack(owner, m, consent);
      }
      if (!runsByItself(m.phase())) {
        owner.retire(token);
        return null;
      }
      return m;
    });
  }

  private void fail(Owner owner, String error) throws MigrationException, InterruptedException {
    Migration m = owner.current;
    try {
      Migration withError = m.with(m.progress().withError(error));
      if (m.phase() == Phase.ROLLING_BACK
          || m.phase().isPastPointOfNoReturn() && m.phase() != Phase.PROMOTING && !m.progress().rollbackConsented()) {
        transition(owner, withError, Phase.HALTED, "halted for an operator: " + error
            + (m.phase() == Phase.ROLLING_BACK ? "; rollback did not finish, retry it"
                : "; the target is promoted: resume, or roll back with consent (writes on the target would be lost)"));
      } else if (m.phase() == Phase.PROMOTING && !m.progress().rollbackConsented() && !targetNotPromoted(m)) {
        transition(owner, withError, Phase.HALTED, "halted for an operator: " + error
            + "; the target may be promoted: resume, or roll back with consent (writes on the target would be lost)");
      } else if (m.phase() == Phase.QUIESCING && !sourceReachable(m)) {
        transition(owner, withError, Phase.HALTED, "halted for an operator: the source is unreachable while quiescing;"
            + " the route is drained. Decide: bring the source back and roll back, or promote the target by hand");
      } else {
        transition(owner, withError, Phase.ROLLING_BACK, "failed: " + error);
      }
    } catch (MigrationStore.StaleWriterException e) {
      log.warn("{}: not recording the failure '{}': {}", m, error, e.getMessage()); // the loop stops at its top
    } catch (RevisionConflictException e) {
      throw e; // another writer moved it on: this runner stops
    } catch (MigrationException e) {
      log.error("{}: cannot record the failure '{}': {}", m, error, e.getMessage());
    }
  }

  /**
   * True only when the target answers that it is still a standby: a promotion that failed before it began
   * (AWS refused the call, say) leaves nothing to lose, so the migration rolls back instead of halting.
   */
  private boolean targetNotPromoted(Migration m) {
    try (Platform p = platforms.open(m.spec())) {
      return !p.targetPromoted();
    } catch (MigrationException | RuntimeException e) {
      return false;
    }
  }

  private boolean sourceReachable(Migration m) {
    try (Platform p = platforms.open(m.spec())) {
      p.sourceLsn();
      return true;
    } catch (MigrationException | RuntimeException e) {
      return false;
    }
  }

  private Migration advance(Migration m, Platform platform) throws MigrationException, InterruptedException {
    return switch (m.phase()) {
      case PLANNED -> transition(m, Phase.PREFLIGHT, "");
      case PREFLIGHT -> preflight(m, platform);
      case REPLICATING -> validate(m, platform);
      case VALIDATED -> cutOverWhenAllowed(m, platform);
      case QUIESCING -> quiesce(m, platform);
      case CATCHING_UP -> catchUp(m, platform);
      case PROMOTING -> promote(m, platform);
      case SHIFTING -> shift(m);
      case VERIFYING -> verify(m, platform);
      case BAKING -> bake(m, platform);
      case ROLLING_BACK -> rollBack(m, platform);
      default -> throw new IllegalStateException(m + " cannot advance from " + m.phase());
    };
  }

  /**
   * The platform gathers facts and {@link Preflight} judges them; only when nothing blocks does preflight change
   * anything on the source (the stale slots the operator allowed dropping, pg_walinspect).
   */
  private Migration preflight(Migration m, Platform platform) throws MigrationException, InterruptedException {
    Optional<String> made = platform.ensureTarget();
    if (made.isPresent()) {
      m = m.note(clock.instant(), made.get());
    }
    boolean declined = m.spec().options().withoutReverseReplication();
    Preflight.Verdict verdict = Preflight.judge(platform.preflightFacts(), m.spec().options().allowDroppingStaleSlots(),
        Optional.of(new Preflight.Routed(com.google.common.collect.ImmutableSet.copyOf(m.spec().databases()),
            m.spec().options().allowUnroutedDatabases())),
        new Preflight.WayBack(!declined && platform.supportsReverseReplication(), declined), clock.instant());
    for (dev.turnout.migrator.check.Check c : verdict.checks()) {
      m = m.note(clock.instant(), "preflight " + c);
    }
    List<dev.turnout.migrator.check.Check> blocking = verdict.blocking();
    if (!blocking.isEmpty()) {
      save(m);
      throw new MigrationException("preflight failed for database '" + m.database() + "': " + blocking.stream()
          .map(c -> c.name() + ": " + c.detail()).collect(java.util.stream.Collectors.joining("; ")));
    }
    if (!verdict.slotsToDrop().isEmpty() || verdict.installWalProof()) {
      m = save(m); // the checks on record before preflight changes the source
    }
    for (String slot : verdict.slotsToDrop()) {
      platform.dropSlot(slot);
    }
    if (verdict.installWalProof()) {
      platform.installWalProof();
    }
    return transition(m, Phase.REPLICATING, "preflight passed (" + verdict.checks().size() + " checks)"
        + (verdict.slotsToDrop().isEmpty() ? "" : "; dropped inactive slots " + verdict.slotsToDrop()));
  }

  private static final Duration SAMPLE_EVERY = Duration.ofMillis(250);

  /** The target must keep up for the whole window: lag within bounds at every sample, and not growing. */
  private Migration validate(Migration m, Platform platform) throws MigrationException, InterruptedException {
    Migration.Options options = m.spec().options();
    Platform.Sample first = platform.sample();
    // The baseline the bake holds the target against: the source's workload over the same window.
    dev.turnout.migrator.bake.Workload workloadAtStart = sourceWorkload(m, platform);
    Platform.Sample last = first;
    long maxLag = first.lagBytes();
    Instant windowEnd = clock.instant().plus(options.validationWindow());
    while (clock.instant().isBefore(windowEnd)) {
      checkInterrupts(m);
      // Every 250 ms, the last look at the window's end: not up to a period past it (a sample takes time too, so
      // whole periods drifted 150 ms past a 30 s window).
      Duration left = Duration.between(clock.instant(), windowEnd);
      sleeper.sleep(left.compareTo(SAMPLE_EVERY) < 0 ? left : SAMPLE_EVERY);
      Platform.Sample previous = last;
      last = platform.sample();
      maxLag = Math.max(maxLag, last.lagBytes());
      double dt = Math.max(1e-9, (last.atNanos() - previous.atNanos()) / 1e9);
      long slotLag = 0;
      for (Platform.Slot slot : platform.sourceSlots()) {
        slotLag = Math.max(slotLag, last.sourceLsn().minus(slot.confirmedLsn()));
      }
      figures.put(m.id(), new Figures(last.lagBytes(), last.replayDelaySeconds(),
          last.sourceLsn().minus(previous.sourceLsn()) / dt, last.replayLsn().minus(previous.replayLsn()) / dt, slotLag));
      if (last.lagBytes() > options.maxLagBytes()) {
        checkDeadline(m, "the target to keep up (lag " + last.lagBytes() + " bytes > " + options.maxLagBytes() + ")");
        // Same phase: the window starts over.
        return save(m.note(clock.instant(), "target behind by " + last.lagBytes() + " bytes: window restarted"));
      }
    }
    double seconds = Math.max(1e-9, (last.atNanos() - first.atNanos()) / 1e9);
    double walRate = last.sourceLsn().minus(first.sourceLsn()) / seconds;
    double replayRate = last.replayLsn().minus(first.replayLsn()) / seconds;
    String figures = String.format(java.util.Locale.ROOT,
        "validated over %.1f s: WAL generated %.0f B/s, replayed %.0f B/s, max lag %d B, last lag %d B, replay delay %.2f s",
        seconds, walRate, replayRate, maxLag, last.lagBytes(), last.replayDelaySeconds());
    dev.turnout.migrator.bake.Rates baseline = dev.turnout.migrator.bake.Rates.between(workloadAtStart,
        sourceWorkload(m, platform));
    m = m.with(m.progress().withBaseline(baseline)).note(clock.instant(), String.format(java.util.Locale.ROOT,
        "baseline over %.1f s on the source (the whole server): %s", baseline.seconds(), baseline.describe()));
    return transition(m, Phase.VALIDATED, figures);
  }

  /**
   * Begins the cutover when the gate lets it; otherwise waits a poll, sampling the target's lag: a target that
   * falls behind meanwhile is validated again before any cutover. The hold is recorded once per reason and is not
   * bounded by the phase deadline (a maintenance window may be days away); a rollback is taken between polls.
   */
  private Migration cutOverWhenAllowed(Migration m, Platform platform) throws MigrationException, InterruptedException {
    Optional<String> held = gate.holds(m);
    if (held.isEmpty()) {
      return transition(m, Phase.QUIESCING, "");
    }
    String note = "cutover held: " + held.get();
    if (!m.history().get(m.history().size() - 1).note().equals(note)) {
      m = save(m.note(clock.instant(), note));
    }
    sleeper.sleep(HOLD_POLL);
    Platform.Sample sample = platform.sample();
    if (sample.lagBytes() > m.spec().options().maxLagBytes()) {
      return transition(m, Phase.REPLICATING, "target behind by " + sample.lagBytes() + " bytes while the cutover"
          + " was held: validating again");
    }
    return m;
  }

  /**
   * Drain, let in-flight work finish, fence, handle what is left prepared, verify, record the final LSN. The
   * order matters: the drain first, so no new connection reaches the source; then the grace, while every role can
   * still log in (a connection accepted before the drain may still be logging in, and a transaction manager must
   * be able to finish what it prepared); then the fence cuts only what is left. What the fence can prepare without
   * touching the application (the roles listed and saved, the WAL hold, the target armed) is done meanwhile, while
   * the writes wait for the ACKs and for the work in flight anyway.
   */
  private Migration quiesce(Migration m, Platform platform) throws MigrationException, InterruptedException {
    CutoverSteps steps = cutovers.computeIfAbsent(m.id(), id -> new CutoverSteps(clock));
    // What of the fence needs no session ended is done while the sidecars ACK the drain, and what is left of it in
    // the grace's waits, while the work in flight finishes: none of it touches the application.
    Deque<Chore> preparation = new ArrayDeque<>();
    if (m.progress().fencedRoles().isEmpty()) {
      // Record which roles the fence takes away before taking them, so an unfence after a crash restores them.
      // The fence lists them again: a role made since is fenced all the same.
      preparation.add(x -> {
        ImmutableList<String> roles = platform.loginRolesToFence(true);
        List<String> kept = new ArrayList<>(platform.loginRolesToFence(false));
        kept.removeAll(roles);
        return x.with(x.progress().withFencedRoles(roles)).note(clock.instant(), "fencing roles " + roles
            + (kept.isEmpty() ? "" : "; the standby's " + kept + " keep their login until the target is promoted"));
      });
      preparation.add(this::save);
    }
    preparation.add(x -> {
      platform.prepareFence();
      return x;
    });
    preparation.add(x -> {
      platform.armTargetReadOnly(); // a standby is read-only anyway: armed now, it admits no write when promoted
      return x;
    });
    Instant draining = clock.instant();
    // Requested first: from here no new connection reaches the source, whatever the preparation meets.
    CompletableFuture<Void> drain = router.drain(m.spec().databases());
    AtomicReference<Instant> acked = new AtomicReference<>();
    drain.whenComplete((ok, failed) -> acked.compareAndSet(null, clock.instant()));
    while (!drain.isDone() && !preparation.isEmpty()) {
      m = preparation.removeFirst().run(m);
    }
    await(m, "the route drain to be ACKed", drain);
    steps.add("drain-ack", Duration.between(draining, clock.instant()));
    m = m.note(clock.instant(), "route drained: every sidecar ACKed in "
        + Duration.between(draining, Objects.requireNonNullElse(acked.get(), clock.instant())).toMillis() + " ms");
    m = letInFlightWorkFinish(m, Quiesced.source(platform), preparation, steps);
    ImmutableList<Platform.PreparedTransaction> left = platform.preparedTransactions();
    if (!left.isEmpty() && !m.spec().options().cutover().rollbackPreparedTransactions()) {
      m = save(m); // the grace's notes, then stop before fencing: nothing to undo but the drain
      refuseLeftoverPrepared(m, left);
    }
    refuseNewCoTenants(m);
    store.confirmWriter(); // the irreversible steps are re-checked right before they act
    List<String> listed = m.progress().fencedRoles();
    ImmutableList<Platform.Session> fenceEnded = steps.time("fence", () -> platform.fence(listed));
    List<Platform.Session> ended = new ArrayList<>(fenceEnded);
    // A role made since the listing (before the fence ended every session that could make one) is fenced too.
    List<String> made = new ArrayList<>(platform.loginRolesToFence(true));
    made.removeAll(listed);
    if (!made.isEmpty()) {
      List<String> all = new ArrayList<>(listed);
      all.addAll(made);
      m = m.with(m.progress().withFencedRoles(all)).note(clock.instant(), "fencing roles " + made
          + " too, made since the roles were listed");
      m = save(m);
      platform.refuseLogins(made);
      ended.addAll(platform.endSessions(false));
    }
    List<String> fencing = m.progress().fencedRoles();
    List<Platform.Session> cut = ended.stream().filter(Platform.Session::busy).toList();
    if (!ended.isEmpty()) {
      m = m.note(clock.instant(), "fence cut " + cut.size() + " session(s) at work" + roles(cut) + " and ended "
          + (ended.size() - cut.size()) + " idle one(s)" + roles(ended.stream().filter(x -> !x.busy()).toList()));
    }
    ImmutableList<Platform.PreparedTransaction> prepared = platform.preparedTransactions();
    if (!prepared.isEmpty()) {
      refuseLeftoverPrepared(m, prepared);
      // The gids are recorded before they are rolled back.
      m = m.note(clock.instant(), "rolling back " + prepared.size() + " prepared transaction(s) on the source, as"
          + " the operator allowed: " + describe(prepared));
      m = save(m);
      platform.rollBackPreparedTransactions(prepared);
    }
    steps.time("verify-fence", () -> {
      platform.verifyFence(fencing);
      return null;
    });
    Lsn finalLsn = steps.time("final-lsn", platform::finalLsn);
    m = m.with(m.progress().withFinalLsn(finalLsn));
    return transition(m, Phase.CATCHING_UP, "source fenced at final LSN " + finalLsn);
  }

  /**
   * Right before the fence: the routes are read again, and no database but the migration's own may be routed to the
   * source (one routed there since the migration was planned would be fenced and left behind).
   */
  private void refuseNewCoTenants(Migration m) throws MigrationException {
    List<String> others = new ArrayList<>(router.routedTo(m.spec().source()));
    others.removeAll(m.spec().databases());
    if (!others.isEmpty()) {
      java.util.Collections.sort(others);
      throw new MigrationException("database(s) " + others + " routed to the source " + m.spec().source()
          + " since the migration was planned: the fence would cut them off; roll back and start the migration again"
          + " to move them too");
    }
  }

  /**
   * A step of the fence's preparation, run while the drain's ACKs come or between two looks of the grace; returns
   * the migration as it leaves it.
   */
  @FunctionalInterface
  private interface Chore {
    Migration run(Migration m) throws MigrationException, InterruptedException;
  }

  private static final Duration QUIESCE_POLL = Duration.ofMillis(2);
  /** How often a lossless rollback waiting for the source to apply the target's WAL reads the path's health. */
  private static final Duration REVERSE_HEALTH_EVERY = Duration.ofMillis(250);

  /**
   * PgBouncer's PAUSE, done at the server: the drain stops new connections, so wait up to the quiesce grace for
   * the work in flight at the drain to finish: each session's transaction open when it is first seen (or, for a
   * connection that logged in a moment before and is idle, its first transaction: its driver's own statements at
   * login do not count), and
   * prepared transactions. A session is ended as soon as it is idle between transactions, or has begun another
   * transaction: a TCP proxy cannot hold a persistent connection's next transaction as PgBouncer holds its
   * clients', so that one fails at its start rather than later. What still works at the deadline the fence cuts.
   *
   * <p>The first look is taken at once, right after the drain's ACK: what is in flight then is the work at the
   * drain (a transaction a session begins after it is not waited for). What is left of the fence's preparation
   * ({@code chores}) runs one chore after each look instead of the pause between looks, hidden in the wait for the
   * work in flight; what is left of it when that work is done runs after (timed as {@code prepare-fence}).
   */
  private Migration letInFlightWorkFinish(Migration m, Quiesced server, Deque<Chore> chores,
      CutoverSteps steps) throws MigrationException, InterruptedException {
    boolean preparing = !chores.isEmpty();
    Duration grace = m.spec().options().cutover().quiesceGrace();
    Instant start = clock.instant();
    Map<Integer, Optional<Instant>> inFlight = new HashMap<>(); // the transaction each session had when first seen
    Map<Integer, Platform.Session> idleEnded = new java.util.LinkedHashMap<>();
    Map<Integer, Platform.Session> moreEnded = new java.util.LinkedHashMap<>();
    List<Platform.Session> busy;
    ImmutableList<Platform.PreparedTransaction> prepared;
    while (true) {
      checkInterrupts(m);
      busy = new ArrayList<>();
      List<Platform.Session> end = new ArrayList<>();
      for (Platform.Session s : server.sessions()) {
        Optional<Instant> first = inFlight.computeIfAbsent(s.pid(), pid -> s.transactionStart());
        // A fresh login counts as busy while idle: once seen in a transaction, idle again means that work is done.
        boolean done = first.isPresent() && s.transactionStart().isEmpty();
        if (!s.busy() || done) {
          end.add(s);
          idleEnded.putIfAbsent(s.pid(), s);
        } else if (first.isPresent() && !first.equals(s.transactionStart())) {
          end.add(s);
          moreEnded.putIfAbsent(s.pid(), s);
        } else {
          if (first.isEmpty()) {
            inFlight.put(s.pid(), s.transactionStart()); // a fresh login's first transaction is its work
          }
          busy.add(s);
        }
      }
      server.end(end);
      prepared = server.prepared();
      if (busy.isEmpty() && prepared.isEmpty() || !clock.instant().isBefore(start.plus(grace))) {
        break;
      }
      if (chores.isEmpty()) {
        sleeper.sleep(QUIESCE_POLL);
      } else {
        m = chores.removeFirst().run(m);
      }
    }
    Instant over = clock.instant();
    steps.add("grace", Duration.between(start, over));
    long ms = Duration.between(start, over).toMillis();
    String note = busy.isEmpty() && prepared.isEmpty() ? "work in flight on the " + server.name() + " finished in "
        + ms + " ms" : "quiesce grace of " + grace.toMillis() + " ms over: " + busy.size() + " session(s) still at work" + roles(busy)
            + (prepared.isEmpty() ? "" : ", " + prepared.size() + " prepared transaction(s): " + describe(prepared));
    if (!idleEnded.isEmpty()) {
      note += "; ended " + idleEnded.size() + " session(s) idle between transactions" + roles(idleEnded.values());
    }
    if (!moreEnded.isEmpty()) {
      note += "; ended " + moreEnded.size() + " session(s) that began another transaction" + roles(moreEnded.values());
    }
    m = m.note(over, note); // saved with the roles, or the next state
    while (!chores.isEmpty()) {
      m = chores.removeFirst().run(m);
    }
    if (preparing) {
      steps.add("prepare-fence", Duration.between(over, clock.instant()));
    }
    return m;
  }

  /**
   * The server whose work in flight a quiesce lets finish: the source at the cutover, the promoted target at a
   * rollback after promotion.
   */
  private interface Quiesced {
    String name();

    ImmutableList<Platform.Session> sessions() throws MigrationException;

    void end(List<Platform.Session> sessions) throws MigrationException;

    ImmutableList<Platform.PreparedTransaction> prepared() throws MigrationException;

    static Quiesced source(Platform platform) {
      return new Quiesced() {
        @Override
        public String name() {
          return "source";
        }

        @Override
        public ImmutableList<Platform.Session> sessions() throws MigrationException {
          return platform.applicationSessions();
        }

        @Override
        public void end(List<Platform.Session> sessions) throws MigrationException {
          platform.endApplicationSessions(sessions);
        }

        @Override
        public ImmutableList<Platform.PreparedTransaction> prepared() throws MigrationException {
          return platform.preparedTransactions();
        }
      };
    }

    static Quiesced target(Platform platform) {
      return new Quiesced() {
        @Override
        public String name() {
          return "target";
        }

        @Override
        public ImmutableList<Platform.Session> sessions() throws MigrationException {
          return platform.targetApplicationSessions();
        }

        @Override
        public void end(List<Platform.Session> sessions) throws MigrationException {
          platform.endTargetApplicationSessions(sessions);
        }

        @Override
        public ImmutableList<Platform.PreparedTransaction> prepared() throws MigrationException {
          return platform.targetPreparedTransactions();
        }
      };
    }
  }

  /** Stops the migration naming {@code prepared} unless the operator allowed rolling them back. */
  private void refuseLeftoverPrepared(Migration m, List<Platform.PreparedTransaction> prepared) throws MigrationException {
    if (!prepared.isEmpty() && !m.spec().options().cutover().rollbackPreparedTransactions()) {
      throw new MigrationException("database '" + m.database() + "': " + prepared.size() + " prepared transaction(s)"
          + " on " + m.spec().source() + " did not finish within the quiesce grace of "
          + m.spec().options().cutover().quiesceGrace().toMillis() + " ms: " + describe(prepared) + ". Finish them"
          + " (COMMIT PREPARED or ROLLBACK PREPARED), or start the migration with --rollback-prepared-transactions");
    }
  }

  private String describe(List<Platform.PreparedTransaction> prepared) {
    Instant now = clock.instant();
    return prepared.stream().map(p -> p.describe(now)).collect(java.util.stream.Collectors.joining(", "));
  }

  /** {@code " (roles app x2, cdc)"}, or nothing for no session. */
  private static String roles(java.util.Collection<Platform.Session> sessions) {
    if (sessions.isEmpty()) {
      return "";
    }
    Map<String, Long> byRole = new java.util.TreeMap<>(sessions.stream().collect(java.util.stream.Collectors
        .groupingBy(x -> x.role().isEmpty() ? "?" : x.role(), java.util.stream.Collectors.counting())));
    return " (roles " + byRole.entrySet().stream().map(e -> e.getKey() + (e.getValue() > 1 ? " x" + e.getValue() : ""))
        .collect(java.util.stream.Collectors.joining(", ")) + ")";
  }

  /**
   * Logical slot consumers confirm the final LSN on the walsenders the fence left streaming; each poll ends
   * whatever session appeared meanwhile (a walsender that stopped streaming to run SQL, a login as a standby's
   * role). Then those walsenders are ended too, the target replays the final LSN, and the source's WAL is checked
   * before promotion: a finding here rolls back, and the source keeps the write.
   */
  private Migration catchUp(Migration m, Platform platform) throws MigrationException, InterruptedException {
    Lsn finalLsn = m.progress().finalLsn().orElseThrow();
    CutoverSteps steps = cutovers.computeIfAbsent(m.id(), id -> new CutoverSteps(clock));
    Instant slotsStart = clock.instant();
    List<Platform.Session> reasserted = new ArrayList<>();
    List<SlotPosition> recorded = new ArrayList<>();
    for (Platform.Slot slot : platform.sourceSlots()) {
      String name = slot.name();
      poll(m, "logical slot " + name + " to confirm " + finalLsn, () -> {
        reasserted.addAll(platform.endSessions(false));
        return platform.sourceSlots().stream().anyMatch(s -> s.name().equals(name) && s.confirmedLsn().atLeast(finalLsn));
      });
      Platform.Slot confirmed = platform.sourceSlots().stream().filter(s -> s.name().equals(name)).findFirst().orElseThrow();
      recorded.add(new SlotPosition(name, confirmed.plugin(), confirmed.confirmedLsn()));
    }
    ImmutableList<Platform.Session> streams = platform.endSessions(true); // every consumer has the final LSN now
    steps.add("cdc-slots", Duration.between(slotsStart, clock.instant()));
    // Saved with PROMOTING, before the promotion: a resume before that records them again, from the same slots.
    m = m.with(m.progress().withSlots(recorded)).note(clock.instant(), "slots recorded: " + recorded
        + (streams.isEmpty() ? "" : "; ended " + streams.size() + " session(s) left streaming" + roles(streams))
        + (reasserted.isEmpty() ? "" : "; ended " + reasserted.size() + " session(s) opened after the fence"
            + roles(reasserted)));
    Migration slotsSaved = m;
    AtomicReference<Lsn> replayed = new AtomicReference<>();
    steps.time("replay", () -> {
      // Streaming replays within milliseconds: looked at as often as the grace looks, not every 20 ms.
      poll(slotsSaved, "the target to replay " + finalLsn, QUIESCE_POLL, () -> {
        platform.endSessions(true);
        replayed.set(platform.targetReplayLsn());
        return replayed.get().atLeast(finalLsn);
      });
      return null;
    });
    steps.time("sync-slots", () -> {
      platform.syncFailoverSlots();
      return null;
    });
    String proof = steps.time("wal-proof", () -> proveNothingCommittedAfter(slotsSaved, platform));
    return transition(m, Phase.PROMOTING, "target replayed " + replayed.get() + "; " + proof);
  }

  /**
   * Reads the source's WAL from the final LSN and throws, naming each transaction, unless nothing but
   * statistics committed there. Returns what it checked, for the history.
   */
  private static String proveNothingCommittedAfter(Migration m, Platform platform) throws MigrationException {
    Lsn finalLsn = m.progress().finalLsn().orElseThrow();
    Platform.WalCheck check = platform.commitsAfter(finalLsn);
    if (!check.findings().isEmpty()) {
      throw new CommitsAfterFence("database '" + m.database() + "': " + check.findings().size() + " transaction(s)"
          + " committed on the source " + m.spec().source() + " after the final LSN " + finalLsn + ": "
          + String.join("; ", check.findings()) + ". Their writes are on the source only");
    }
    return "no commit on the source after the final LSN (WAL " + check.from() + " to " + check.to()
        + (check.exempt() == 0 ? "" : "; " + check.exempt() + " statistics-only commit(s) by ANALYZE")
        + (check.replicated() == 0 ? "" : "; " + check.replicated() + " commit(s) of the reverse replication, applied"
            + " from the target") + ")";
  }

  private Migration promote(Migration m, Platform platform) throws MigrationException, InterruptedException {
    store.confirmWriter();
    CutoverSteps steps = cutovers.computeIfAbsent(m.id(), id -> new CutoverSteps(clock));
    steps.time("promote", () -> {
      platform.promoteTarget();
      return null;
    });
    Instant afterPromotion = clock.instant();
    // The standby's roles kept their login so it could reconnect while catching up; it streams no more.
    ImmutableList<String> open = platform.loginRolesToFence(false);
    if (!open.isEmpty()) {
      List<String> all = new ArrayList<>(m.progress().fencedRoles());
      open.stream().filter(r -> !all.contains(r)).forEach(all::add);
      m = m.with(m.progress().withFencedRoles(all)).note(clock.instant(), "target promoted; the standby's roles "
          + open + " refused on the source too");
      m = save(m);
      platform.refuseLogins(open);
    }
    steps.add("standby-roles", Duration.between(afterPromotion, clock.instant()));
    ImmutableList<Platform.PreparedTransaction> carried = platform.targetPreparedTransactions();
    if (!carried.isEmpty()) {
      throw new MigrationException("database '" + m.database() + "': " + carried.size() + " transaction(s) came"
          + " over to the target still prepared, holding their locks there: " + describe(carried)
          + ". Commit or roll them back on " + m.spec().target());
    }
    List<SlotPosition> positions = m.progress().slots();
    ImmutableList<String> slots = steps.time("target-slots", () -> platform.createSlotsOnTarget(positions)); // before any write is admitted
    m = startReverseReplication(m, platform, steps);
    List<String> fenced = m.progress().fencedRoles();
    steps.time("admit-writes", () -> {
      platform.restoreLoginsOnTarget(fenced);
      platform.admitWritesOnTarget();
      return null;
    });
    return transition(m, Phase.SHIFTING, "target promoted; slots: " + (slots.isEmpty() ? "none" : String.join("; ", slots)));
  }

  /**
   * The way back, made before the target admits a write, so the slot on the target starts at the promotion point and
   * every later commit there reaches the old source. Nothing when the operator asked for none or the platform has
   * none: a rollback after promotion then needs consent. Idempotent (a resumed promotion finds it made); the path is
   * saved with SHIFTING.
   */
  private Migration startReverseReplication(Migration m, Platform platform, CutoverSteps steps)
      throws MigrationException, InterruptedException {
    if (m.spec().options().withoutReverseReplication() || !platform.supportsReverseReplication()) {
      if (m.progress().reverse().isEmpty() && m.history().stream().noneMatch(e -> e.note().startsWith(NO_WAY_BACK))) {
        m = m.note(clock.instant(), NO_WAY_BACK + (m.spec().options().withoutReverseReplication()
            ? "the migration was started without reverse replication" : "this platform has none")
            + ": a rollback after promotion needs consent, and loses the target's writes");
      }
      return m;
    }
    String fingerprint = steps.time("reverse-path", platform::startReverseReplication);
    if (m.progress().reverse().isPresent()) {
      return m;
    }
    return m.with(m.progress().withReverse(ReversePath.made(fingerprint))).note(clock.instant(),
        "reverse replication from " + m.spec().target() + " to " + m.spec().source() + " made at the promotion point,"
            + " before any write: a rollback keeps the target's writes while the path is healthy");
  }

  private static final String NO_WAY_BACK = "no reverse replication: ";

  /**
   * The source subscribes to the slots made at the promotion, once the route is on the target (CREATE SUBSCRIPTION
   * connects to the target: tens of milliseconds kept out of the write gap); the slots have kept every commit since
   * the promotion. Idempotent; saved with the next state (a resumed migration subscribes again, making nothing twice).
   */
  private Migration subscribeReverse(Migration m, Platform platform, CutoverSteps steps)
      throws MigrationException, InterruptedException {
    Optional<ReversePath> path = m.progress().reverse();
    if (path.isEmpty() || !path.get().awaitingSubscription() || path.get().broken().isPresent()) {
      return m;
    }
    steps.time("subscribe", () -> {
      platform.subscribeReverse();
      return null;
    });
    return m.with(m.progress().withReverse(path.get().subscribed())).note(clock.instant(), "the source "
        + m.spec().source() + " subscribed to the reverse replication: the target's commits since the promotion are"
        + " applied there");
  }

  private Migration shift(Migration m) throws MigrationException, InterruptedException {
    CutoverSteps steps = cutovers.computeIfAbsent(m.id(), id -> new CutoverSteps(clock));
    steps.time("route-ack", () -> {
      await(m, "every sidecar to ACK the route to the target", router.route(m.spec().databases(), m.spec().target()));
      return null;
    });
    return transition(m, Phase.VERIFYING, "route to " + m.spec().target() + " ACKed");
  }

  private Migration verify(Migration shifted, Platform platform) throws MigrationException, InterruptedException {
    CutoverSteps steps = cutovers.computeIfAbsent(shifted.id(), id -> new CutoverSteps(clock));
    Migration m = subscribeReverse(shifted, platform, steps);
    steps.time("probe", () -> {
      platform.writeProbeTarget();
      return null;
    });
    String proof = steps.time("final-proof", () -> proveNothingCommittedAfter(m, platform));
    dev.turnout.migrator.bake.Bake bake = m.spec().options().bake();
    return transition(m.note(clock.instant(), steps.line()), bake.skipped() ? Phase.COMPLETED : Phase.BAKING,
        "write probe committed on " + m.spec().target() + "; " + proof);
  }

  /** How often the bake reads the target's counters (more often for a bake too short for three reads). */
  static final Duration BAKE_SAMPLE = Duration.ofSeconds(5);

  /**
   * Holds the target's workload since the bake began (or, after a restart, since it resumed: the counters it began
   * from are not saved) against the baseline, signal by signal, every {@link #BAKE_SAMPLE}, until the bake asked
   * for has passed since BAKING was entered. The phase deadline does not bound it: the bake is its own length.
   *
   * <p>A breach rolls back by itself, naming the signal and both figures, when the reverse path is healthy (the
   * rollback keeps the target's writes); without a healthy path it halts for an operator, since every way back would
   * lose them (a rollback with consent). With {@code noAutoRollback} a breach is a warning in the history (once per
   * signal) and the bake goes on. Each read also looks at the reverse path: one found broken is recorded.
   */
  private Migration bake(Migration m, Platform platform) throws MigrationException, InterruptedException {
    dev.turnout.migrator.bake.Bake bake = m.spec().options().bake();
    Instant end = m.phaseStarted().plus(bake.duration());
    Optional<dev.turnout.migrator.bake.Rates> baseline = m.progress().baseline();
    if (baseline.isEmpty()) {
      return transition(m, Phase.COMPLETED, "no baseline was recorded while validating: nothing to bake against");
    }
    Duration every = bake.duration().dividedBy(3).compareTo(BAKE_SAMPLE) < 0
        ? Duration.ofMillis(Math.max(250, bake.duration().dividedBy(3).toMillis())) : BAKE_SAMPLE;
    dev.turnout.migrator.bake.Workload first = targetWorkload(m, platform);
    Optional<dev.turnout.migrator.bake.Rates> now = Optional.empty();
    java.util.Set<dev.turnout.migrator.bake.Signal> warned = java.util.EnumSet.noneOf(dev.turnout.migrator.bake.Signal.class);
    while (clock.instant().isBefore(end)) {
      checkInterrupts(m);
      Duration left = Duration.between(clock.instant(), end);
      sleeper.sleep(left.compareTo(every) < 0 ? left : every);
      dev.turnout.migrator.bake.Rates rates = dev.turnout.migrator.bake.Rates.between(first, targetWorkload(m, platform));
      now = Optional.of(rates);
      bakes.put(m.id(), new BakeFigures(Duration.between(m.phaseStarted(), clock.instant()), bake.duration(),
          dev.turnout.migrator.bake.Judge.compare(baseline.get(), rates, bake)));
      m = lookAtTheWayBack(m, platform);
      for (dev.turnout.migrator.bake.Judge.Comparison breach
          : dev.turnout.migrator.bake.Judge.breaches(baseline.get(), rates, bake)) {
        String what = String.format(java.util.Locale.ROOT, "bake breach on the target after %.1f s: %s",
            rates.seconds(), breach.describe());
        if (!bake.noAutoRollback()) {
          return breached(m, platform, "database '" + m.database() + "': " + what);
        }
        if (warned.add(breach.signal())) {
          m = save(m.note(clock.instant(), "warning: " + what + " (--no-auto-rollback: the bake goes on)"));
        }
      }
    }
    String figures = now.map(r -> String.format(java.util.Locale.ROOT, "baked %.1f s: baseline vs target: %s",
        r.seconds(), dev.turnout.migrator.bake.Judge.sideBySide(baseline.get(), r)))
        .orElse("bake over before any read of the target (it ended while the control plane was down)");
    return transition(m.note(clock.instant(), figures), Phase.COMPLETED, "the target held the baseline for the bake of "
        + bake.duration().toSeconds() + " s" + (warned.isEmpty() ? "" : " (with warnings: " + warned.stream()
            .map(dev.turnout.migrator.bake.Signal::label).collect(java.util.stream.Collectors.joining(", ")) + ")"));
  }

  /** Reads the reverse path while baking: its lag for the status, and a path found broken is saved as broken. */
  private Migration lookAtTheWayBack(Migration m, Platform platform) throws MigrationException, InterruptedException {
    if (!m.progress().wayBack()) {
      return m;
    }
    Platform.ReverseHealth health = platform.reverseHealth(m.progress().reverse().get());
    reverse.put(m.id(), health);
    return health.healthy() ? m : save(markBroken(m, health.broken().get()));
  }

  /**
   * A bake breach: rolls back by itself when the reverse path carries the target's writes to the source (read healthy
   * now); otherwise halts for an operator, saying why no way back keeps them.
   */
  private Migration breached(Migration m, Platform platform, String what) throws MigrationException,
      InterruptedException {
    Optional<ReversePath> path = m.progress().reverse();
    String why;
    if (path.isEmpty()) {
      why = "no reverse replication was made at promotion";
    } else if (path.get().broken().isPresent()) {
      why = "the reverse replication is broken: " + path.get().broken().get();
    } else {
      Platform.ReverseHealth health = platform.reverseHealth(path.get());
      if (health.healthy()) {
        return transition(m.with(m.progress().withError(what)), Phase.ROLLING_BACK, what + "; rolling back over the"
            + " reverse replication (lag " + health.lagBytes() + " bytes), keeping the target's writes");
      }
      why = "the reverse replication is broken: " + health.broken().get();
      m = save(markBroken(m, health.broken().get()));
    }
    throw new MigrationException(what + "; no rollback keeps the target's writes (" + why + "), so the migration"
        + " stops here");
  }

  /**
   * Undo in reverse, collecting every failure rather than stopping at the first. A migration that never reached
   * QUIESCING drained no route and fenced nothing: it has nothing to undo and must not need the source to say so
   * (a preflight that failed because the source does not answer would otherwise halt, and hold the database).
   */
  private Migration rollBack(Migration m, Platform platform) throws MigrationException, InterruptedException {
    if (m.history().stream().noneMatch(e -> e.phase() == Phase.QUIESCING)) {
      return transition(m, Phase.ROLLED_BACK, "nothing to undo: the route and " + m.spec().source()
          + " were never changed" + m.progress().error().map(e -> "; cause: " + e).orElse(""));
    }
    if (promotedRecorded(m) && m.progress().wayBack()) {
      return rollBackLosslessly(m, platform);
    }
    if (promotedRecorded(m) && m.progress().reverse().isPresent()) {
      // A broken path, and the operator consented to lose the target's writes: the source must not go on applying
      // what still reaches it once it is writable again.
      try {
        platform.stopReverseReplication();
        m = m.note(clock.instant(), "reverse replication taken down (it was broken: the target's writes since are"
            + " not on the source)");
      } catch (MigrationException e) {
        m = m.note(clock.instant(), "could not take the reverse replication down: " + e.getMessage());
      }
    }
    List<String> failures = new ArrayList<>();
    try {
      await(m, "the route back to the source to be ACKed", router.route(m.spec().databases(), m.spec().source()));
    } catch (MigrationException e) {
      failures.add(e.getMessage());
    }
    store.confirmWriter(); // a replica that lost the leadership must not unfence what another may have moved on from
    try {
      platform.unfence(m.progress().fencedRoles());
    } catch (MigrationException e) {
      failures.add(e.getMessage());
    }
    try {
      if (!platform.targetPromoted()) {
        platform.disarmTarget();
      }
    } catch (MigrationException e) {
      // The target is not routed, so its read-only setting does not matter for safety: note it and go on.
      m = m.note(clock.instant(), "could not reset the target's read-only default: " + e.getMessage());
    }
    if (!failures.isEmpty()) {
      throw new MigrationException("rollback of " + m + " incomplete: " + String.join("; ", failures));
    }
    return transition(m, Phase.ROLLED_BACK, "source " + m.spec().source() + " routed and writable"
        + m.progress().error().map(e -> "; cause: " + e).orElse(""));
  }

  /**
   * A rollback after promotion that keeps every write the target took, over the reverse path: drain, so no new
   * connection reaches the target; fence the target, so nothing more commits there; bring the source's sequences
   * forward (logical replication carries none; the fenced target's are final) and wait until the source has applied
   * the target's WAL up to its end (every commit it took); drop the source's subscriptions (it must not apply anything
   * once it is writable); unfence the source; route back; then drop the slots and publication on the fenced target,
   * outside the write gap. Each step checks the world first, and the position waited for is saved before the
   * subscriptions are dropped, so a resumed rollback neither waits for subscriptions it dropped nor moves a sequence
   * backwards.
   *
   * <p>A path found broken on the way (DDL on the target, an apply error) stops the rollback: the migration halts
   * with the path marked broken, and a rollback then needs consent.
   */
  private Migration rollBackLosslessly(Migration m, Platform platform) throws MigrationException, InterruptedException {
    Instant start = clock.instant();
    CutoverSteps steps = new CutoverSteps(clock); // where the rollback's write gap goes, for its last history line
    // Rolled back before the source subscribed (during SHIFTING): it subscribes now, and applies the target's commits
    // from the promotion point while the route drains.
    m = subscribeReverse(m, platform, steps);
    ReversePath path = m.progress().reverse().orElseThrow();
    Migration draining = m;
    steps.time("drain-ack", () -> {
      await(draining, "the route drain before the rollback to be ACKed", router.drain(draining.spec().databases()));
      return null;
    });
    // As at the cutover: the work in flight on the target at the drain finishes within the quiesce grace (what a
    // session begins after it fails at its start), and so may a transaction prepared there, while its owner still
    // can (the fence ends its session and refuses its login): once committed, the reverse path carries it.
    m = letInFlightWorkFinish(m, Quiesced.target(platform), new ArrayDeque<>(), steps);
    store.confirmWriter();
    List<String> roles = m.progress().fencedRoles();
    steps.time("fence-target", () -> {
      platform.fenceTarget(roles);
      return null;
    });
    m = handlePreparedOnTarget(m, platform);
    Instant fenced = clock.instant();
    String sequences = null;
    if (path.caughtUp().isEmpty()) {
      Lsn end = platform.targetEndLsn();
      // The target is fenced, so its sequences are final: brought forward while its last commits travel to the
      // source (the source is fenced too, and no subscription carries sequences).
      sequences = steps.time("sequences", platform::bringSequencesForward);
      AtomicReference<Lsn> applied = new AtomicReference<>(new Lsn(0));
      AtomicReference<String> broken = new AtomicReference<>();
      Instant waiting = clock.instant();
      AtomicReference<Instant> healthRead = new AtomicReference<>(waiting);
      poll(m, "the source to apply the target's WAL up to " + end, QUIESCE_POLL, () -> {
        applied.set(platform.reverseAppliedLsn());
        if (applied.get().atLeast(end)) {
          return true;
        }
        // A path that broke would never catch up; reading its health (the schema of every database, the
        // subscriptions) costs tens of milliseconds, so it is read every REVERSE_HEALTH_EVERY, not every poll.
        if (clock.instant().isBefore(healthRead.get().plus(REVERSE_HEALTH_EVERY))) {
          return false;
        }
        healthRead.set(clock.instant());
        Platform.ReverseHealth health = platform.reverseHealth(path);
        if (!health.healthy()) {
          broken.set(health.broken().get());
          return true;
        }
        return false;
      });
      steps.add("catch-up", Duration.between(waiting, clock.instant()));
      if (broken.get() != null) {
        save(markBroken(m, broken.get()));
        throw new MigrationException("database '" + m.database() + "': the reverse replication broke during the"
            + " rollback (" + broken.get() + "): the target's writes since the promotion are not all on the source."
            + " The target is fenced and the route drained; roll back with consent to lose them, or fix the path and"
            + " roll back again");
      }
      // CDC consumers that moved to the target confirm its end on the streams the fence left them, as they
      // confirmed the final LSN on the source at the cutover: then nothing they processed there is sent again.
      Instant cdcWait = clock.instant();
      for (SlotPosition slot : m.progress().slots()) {
        poll(m, "CDC slot " + slot.name() + " on the target to confirm " + end, QUIESCE_POLL, () -> platform
            .targetSlots().stream().noneMatch(x -> x.name().equals(slot.name()) && x.active()
                && !x.confirmedLsn().atLeast(end)));
      }
      steps.add("cdc-confirm", Duration.between(cdcWait, clock.instant()));
      m = save(m.with(m.progress().withReverse(path.withCaughtUp(end))).note(clock.instant(), "target fenced; the"
          + " source applied its WAL up to " + end + " (applied " + applied.get() + ") "
          + Duration.between(fenced, clock.instant()).toMillis() + " ms after the fence"));
    }
    platform.endTargetSlotStreams();
    if (sequences == null) { // a rollback resumed past its wait
      sequences = steps.time("sequences", platform::bringSequencesForward);
    }
    Migration forSlots = m;
    List<String> cdc = forSlots.progress().slots().isEmpty() ? List.of() : steps.time("cdc-slots",
        () -> platform.bringSourceSlotsForward(forSlots.progress().slots(), forSlots.progress().finalLsn().orElseThrow()));
    // Before the source is writable it must apply nothing more: its subscriptions go now; the slots and the
    // publication on the fenced target, once the route is back (outside the write gap).
    steps.time("stop-apply", () -> {
      platform.stopReverseApply();
      return null;
    });
    m = m.note(clock.instant(), sequences + (cdc.isEmpty() ? "" : "; CDC slots on the source: " + String.join("; ",
        cdc)) + "; the source's reverse subscriptions dropped");
    List<String> failures = new ArrayList<>();
    store.confirmWriter();
    Instant unfencing = clock.instant();
    try {
      platform.unfence(m.progress().fencedRoles());
    } catch (MigrationException e) {
      failures.add(e.getMessage());
    }
    steps.add("unfence", Duration.between(unfencing, clock.instant()));
    Instant routing = clock.instant();
    try {
      await(m, "the route back to the source to be ACKed", router.route(m.spec().databases(), m.spec().source()));
    } catch (MigrationException e) {
      failures.add(e.getMessage());
    }
    steps.add("route-ack", Duration.between(routing, clock.instant()));
    if (!failures.isEmpty()) {
      throw new MigrationException("rollback of " + m + " incomplete: " + String.join("; ", failures));
    }
    try {
      steps.time("path-down", () -> {
        platform.stopReverseReplication();
        return null;
      });
      m = m.note(clock.instant(), "reverse replication taken down");
    } catch (MigrationException e) {
      // The source is routed and writable, the target fenced: a leftover slot only keeps the target's WAL.
      log.warn("{}: rolled back, but the reverse replication's slots could not be dropped: {}", m, e.getMessage());
      m = m.note(clock.instant(), "could not drop the reverse replication on the target (drop the slots"
          + " turnout_reverse_* and the publication turnout_reverse there, or the target keeps its WAL): "
          + e.getMessage());
    }
    m = m.note(clock.instant(), CutoverSteps.ROLLBACK_PREFIX + steps.line().substring(CutoverSteps.PREFIX.length()));
    return transition(m, Phase.ROLLED_BACK, "source " + m.spec().source() + " routed and writable with every write"
        + " the target took (lossless rollback in " + Duration.between(start, clock.instant()).toMillis() + " ms);"
        + " the target is fenced" + m.progress().error().map(e -> "; cause: " + e).orElse(""));
  }

  /**
   * Transactions still prepared on the fenced target: nobody but the migrator can commit them now, and the reverse
   * path would carry them only once committed. Left alone they would vanish with the target, silently; so the
   * rollback stops naming them, or, as the operator allowed at the start (--rollback-prepared-transactions), rolls
   * them back there and records their gids. No acknowledged commit is among them: a prepared transaction is not one.
   */
  private Migration handlePreparedOnTarget(Migration m, Platform platform)
      throws MigrationException, InterruptedException {
    ImmutableList<Platform.PreparedTransaction> prepared = platform.targetPreparedTransactions();
    if (prepared.isEmpty()) {
      return m;
    }
    if (!m.spec().options().cutover().rollbackPreparedTransactions()) {
      throw new MigrationException("database '" + m.database() + "': " + prepared.size() + " transaction(s) still"
          + " prepared on the target " + m.spec().target() + " after "
          + m.spec().options().cutover().quiesceGrace().toMillis() + " ms: " + describe(prepared) + ". The target is"
          + " fenced and the route drained; commit them (the reverse path then carries them to the source) or roll"
          + " them back on the target as the migrator's role, and roll back again");
    }
    platform.rollBackTargetPreparedTransactions(prepared);
    return save(m.note(clock.instant(), "rolled back " + prepared.size() + " transaction(s) prepared on the target,"
        + " as the operator allowed: " + describe(prepared)));
  }

  private void await(Migration m, String what, java.util.concurrent.CompletableFuture<Void> future)
      throws MigrationException, InterruptedException {
    Duration left = Duration.between(clock.instant(), m.phaseStarted().plus(m.spec().options().phaseDeadline()));
    try {
      sleeper.awaitDone(future, left);
      future.get(); // done: its outcome
    } catch (ExecutionException e) {
      Throwable cause = e.getCause() instanceof java.util.concurrent.CompletionException c ? c.getCause() : e.getCause();
      throw new MigrationException(m + ": waiting for " + what + " failed: " + cause.getMessage(), cause);
    } catch (TimeoutException e) {
      throw new MigrationException(m + ": deadline of " + m.phase() + " passed waiting for " + what);
    }
  }

  /** A condition polled until true, within the phase's deadline. */
  private interface Check {
    boolean holds() throws MigrationException;
  }

  private void poll(Migration m, String what, Check condition) throws MigrationException, InterruptedException {
    poll(m, what, POLL, condition);
  }

  private void poll(Migration m, String what, Duration every, Check condition)
      throws MigrationException, InterruptedException {
    while (!condition.holds()) {
      checkInterrupts(m);
      checkDeadline(m, what);
      sleeper.sleep(every);
    }
  }

  private void checkDeadline(Migration m, String what) throws MigrationException {
    if (clock.instant().isAfter(m.phaseStarted().plus(m.spec().options().phaseDeadline()))) {
      throw new MigrationException(m + ": deadline of " + m.phase() + " (" + m.spec().options().phaseDeadline()
          + ") passed waiting for " + what);
    }
  }

  private void checkInterrupts(Migration m) throws MigrationException {
    if (m.phase() != Phase.ROLLING_BACK && existing(m.id()).rollbackRequested()) {
      throw new RollbackRequested();
    }
  }

}
