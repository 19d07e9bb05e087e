package dev.turnout.migrator;

import com.google.common.collect.ImmutableList;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * One move of a source server, with every database routed to it, to its target (a physical standby of it): what
 * was asked, where it is, and what it has recorded so far. Immutable; every change is a new value saved before acting.
 *
 * @param revision how many times the store has saved this migration: 0 until its first save (and for journals
 *     written before revisions were kept). A value derived from another keeps its revision, which is the one the
 *     change was read at: the store saves it only if it still holds that revision ({@link MigrationStore#save})
 */
public record Migration(String id, Spec spec, Phase phase, Progress progress, ImmutableList<Event> history,
    long revision) {

  /**
   * What the operator asked for. The fence and the promotion act on the whole server, so a migration moves every
   * database routed to its source together: drained together, routed to the target in one change.
   *
   * @param database the database the migration is named after (the one the operator named, or the first routed to
   *     the server the operator named)
   * @param aurora present when the source is an Amazon RDS instance and the target an Aurora cluster: the AWS
   *     platform runs the migration, and {@code target} is the cluster's writer endpoint
   * @param coTenants the other databases routed to the source when the migration was planned, in name order
   */
  public record Spec(String database, ServerAddress source, ServerAddress target, Options options,
      Optional<Aurora> aurora, ImmutableList<String> coTenants) {
    public Spec {
      aurora = aurora == null ? Optional.empty() : aurora; // migrations saved before the field existed
      coTenants = coTenants == null ? ImmutableList.of() : coTenants;
      if (coTenants.contains(database)) {
        throw new IllegalArgumentException("database '" + database + "' is named twice: as the migration's and as a"
            + " co-tenant");
      }
    }

    public Spec(String database, ServerAddress source, ServerAddress target, Options options,
        Optional<Aurora> aurora) {
      this(database, source, target, options, aurora, ImmutableList.of());
    }

    /** A migration between two PostgreSQL servers reachable by JDBC. */
    public Spec(String database, ServerAddress source, ServerAddress target, Options options) {
      this(database, source, target, options, Optional.empty());
    }

    /** Every database the migration moves: its own first, then its co-tenants. */
    public ImmutableList<String> databases() {
      return ImmutableList.<String>builder().add(database).addAll(coTenants).build();
    }

    /** {@code 'orders'}, or {@code 'orders' with 'billing', 'audit'}: for messages. */
    public String describeDatabases() {
      return "'" + database + "'" + (coTenants.isEmpty() ? "" : coTenants.stream().map(d -> "'" + d + "'")
          .collect(java.util.stream.Collectors.joining(", ", " with ", "")));
    }

    public Spec withCoTenants(java.util.Collection<String> others) {
      return new Spec(database, source, target, options, aurora,
          others.stream().filter(d -> !d.equals(database)).distinct().sorted().collect(ImmutableList.toImmutableList()));
    }
  }

  /**
   * An RDS for PostgreSQL instance moving to an Aurora PostgreSQL cluster that is (or will be made) its read
   * replica.
   *
   * @param sourceInstance the RDS instance identifier
   * @param targetCluster the Aurora cluster identifier
   * @param createInstanceClass when present, the migrator creates the cluster and its writer instance of this
   *     class; when empty, the cluster must already exist as a replica of the source
   */
  public record Aurora(String sourceInstance, String targetCluster, Optional<String> createInstanceClass) {
    private static final java.util.regex.Pattern ID = java.util.regex.Pattern.compile("[a-zA-Z][a-zA-Z0-9-]{0,62}");
    private static final java.util.regex.Pattern INSTANCE_CLASS = java.util.regex.Pattern.compile("db\\.[a-z0-9]+\\.[a-z0-9]+");

    public Aurora {
      createInstanceClass = createInstanceClass == null ? Optional.empty() : createInstanceClass;
      check(sourceInstance, "source instance");
      check(targetCluster, "target cluster");
      if (createInstanceClass.isPresent() && !INSTANCE_CLASS.matcher(createInstanceClass.get()).matches()) {
        throw new IllegalArgumentException("instance class '" + createInstanceClass.get()
            + "' is not an RDS instance class like db.r6g.large");
      }
    }

    private static void check(String id, String what) {
      if (id == null || !ID.matcher(id).matches() || id.endsWith("-") || id.contains("--")) {
        throw new IllegalArgumentException(what + " identifier '" + id + "' is not an RDS identifier (a letter,"
            + " then up to 62 letters, digits or single hyphens, not ending in a hyphen)");
      }
    }

    /** The writer instance the migrator creates in the cluster. */
    public String writerInstance() {
      return targetCluster + "-1";
    }
  }

  /**
   * How the migration behaves.
   *
   * @param validationWindow how long the target must keep up before cutover
   * @param maxLagBytes the replay lag that counts as keeping up
   * @param phaseDeadline how long any one phase may take before the migration rolls back (or halts)
   * @param allowDroppingStaleSlots whether preflight may drop inactive logical slots that retain WAL
   * @param createReplica when present, the migrator makes the target itself on this host before preflight
   * @param cutover how the cutover treats the work in flight on the source
   * @param allowUnroutedDatabases whether preflight lets the migration go on when the source holds databases no
   *     route points to (their direct clients lose their writes at the fence)
   * @param bake how long, and against which limits, the target's workload is held against the baseline after
   *     VERIFYING; {@link dev.turnout.migrator.bake.Bake#NONE} skips it (and is what a record saved before bakes
   *     existed reads as). One more component than the conventions like: it groups its own settings, as
   *     {@link Cutover} does
   * @param withoutReverseReplication no reverse replication at promotion (and preflight does not refuse tables it
   *     could not replicate): a rollback after promotion then needs consent, as before the reverse path existed.
   *     False in records saved before the field existed, which made no path either (none is recorded, so their
   *     rollbacks still ask for consent)
   */
  public record Options(Duration validationWindow, long maxLagBytes, Duration phaseDeadline,
      boolean allowDroppingStaleSlots, Optional<Replica> createReplica, Cutover cutover, boolean allowUnroutedDatabases,
      dev.turnout.migrator.bake.Bake bake, boolean withoutReverseReplication) {
    public Options {
      createReplica = createReplica == null ? Optional.empty() : createReplica;
      cutover = cutover == null ? Cutover.DEFAULT : cutover; // migrations saved before the field existed
      bake = bake == null ? dev.turnout.migrator.bake.Bake.NONE : bake; // likewise
    }

    public Options(Duration validationWindow, long maxLagBytes, Duration phaseDeadline,
        boolean allowDroppingStaleSlots, Optional<Replica> createReplica, Cutover cutover, boolean allowUnroutedDatabases) {
      this(validationWindow, maxLagBytes, phaseDeadline, allowDroppingStaleSlots, createReplica, cutover,
          allowUnroutedDatabases, dev.turnout.migrator.bake.Bake.NONE, false);
    }

    public Options(Duration validationWindow, long maxLagBytes, Duration phaseDeadline,
        boolean allowDroppingStaleSlots, Optional<Replica> createReplica, Cutover cutover) {
      this(validationWindow, maxLagBytes, phaseDeadline, allowDroppingStaleSlots, createReplica, cutover, false);
    }

    public static Options defaults() {
      return new Options(Duration.ofSeconds(30), 16L * 1024 * 1024, Duration.ofMinutes(2), false, Optional.empty());
    }

    public Options(Duration validationWindow, long maxLagBytes, Duration phaseDeadline, boolean allowDroppingStaleSlots,
        Optional<Replica> createReplica) {
      this(validationWindow, maxLagBytes, phaseDeadline, allowDroppingStaleSlots, createReplica, Cutover.DEFAULT);
    }

    public Options(Duration validationWindow, long maxLagBytes, Duration phaseDeadline, boolean allowDroppingStaleSlots) {
      this(validationWindow, maxLagBytes, phaseDeadline, allowDroppingStaleSlots, Optional.empty());
    }

    public Options withCutover(Cutover c) {
      return new Options(validationWindow, maxLagBytes, phaseDeadline, allowDroppingStaleSlots, createReplica, c,
          allowUnroutedDatabases, bake, withoutReverseReplication);
    }

    public Options allowingUnroutedDatabases(boolean allow) {
      return new Options(validationWindow, maxLagBytes, phaseDeadline, allowDroppingStaleSlots, createReplica, cutover,
          allow, bake, withoutReverseReplication);
    }

    public Options withBake(dev.turnout.migrator.bake.Bake b) {
      return new Options(validationWindow, maxLagBytes, phaseDeadline, allowDroppingStaleSlots, createReplica, cutover,
          allowUnroutedDatabases, b, withoutReverseReplication);
    }

    public Options withoutReverseReplication(boolean without) {
      return new Options(validationWindow, maxLagBytes, phaseDeadline, allowDroppingStaleSlots, createReplica, cutover,
          allowUnroutedDatabases, bake, without);
    }
  }

  /**
   * How the cutover treats the work in flight on the source (PgBouncer's PAUSE is the model).
   *
   * @param quiesceGrace after the drain is ACKed, how long transactions in flight, connections accepted before
   *     the drain and prepared transactions get to finish before the fence cuts what still runs
   * @param rollbackPreparedTransactions whether prepared transactions still there after the grace are rolled back
   *     on the source (their gids recorded); without it the migration stops and rolls back, naming them
   */
  public record Cutover(Duration quiesceGrace, boolean rollbackPreparedTransactions) {
    public static final Duration DEFAULT_GRACE = Duration.ofSeconds(2);
    public static final Cutover DEFAULT = new Cutover(DEFAULT_GRACE, false);

    public Cutover {
      if (quiesceGrace == null || quiesceGrace.isNegative()) {
        throw new IllegalArgumentException("quiesce grace " + quiesceGrace + " must be zero or more");
      }
    }
  }

  /**
   * A same-host target for the migrator to create: the source's data directory (readable here), the new
   * standby's directory, and the PostgreSQL binaries (pg_ctl, postgres) to start it with.
   */
  public record Replica(java.nio.file.Path sourceDataDir, java.nio.file.Path targetDataDir, java.nio.file.Path binDir) {}

  /**
   * What the migration has recorded in the world.
   *
   * @param fencedRoles the source's login roles the fence set NOLOGIN (restored by unfence, and on the target)
   * @param error why the migration rolled back or halted
   * @param baseline the source's workload over the validation window, which the bake holds the target against;
   *     empty before VALIDATED (and in records saved before baselines existed)
   * @param reverse the way back made at promotion (reverse replication), if one was
   */
  public record Progress(Optional<Lsn> finalLsn, ImmutableList<SlotPosition> slots,
      ImmutableList<String> fencedRoles, Optional<String> error, boolean rollbackConsented,
      Optional<dev.turnout.migrator.bake.Rates> baseline, Optional<ReversePath> reverse) {
    public static final Progress NONE = new Progress(Optional.empty(), ImmutableList.of(), ImmutableList.of(),
        Optional.empty(), false, Optional.empty(), Optional.empty());

    public Progress {
      baseline = baseline == null ? Optional.empty() : baseline; // records saved before the field existed
      reverse = reverse == null ? Optional.empty() : reverse; // likewise
    }

    public Progress(Optional<Lsn> finalLsn, ImmutableList<SlotPosition> slots, ImmutableList<String> fencedRoles,
        Optional<String> error, boolean rollbackConsented) {
      this(finalLsn, slots, fencedRoles, error, rollbackConsented, Optional.empty(), Optional.empty());
    }

    public Progress withReverse(ReversePath r) {
      return new Progress(finalLsn, slots, fencedRoles, error, rollbackConsented, baseline, Optional.of(r));
    }

    /** Whether a rollback after promotion can bring the target's writes back: a reverse path, not seen broken. */
    public boolean wayBack() {
      return reverse.map(ReversePath::healthy).orElse(false);
    }

    public Progress withFinalLsn(Lsn lsn) {
      return new Progress(Optional.of(lsn), slots, fencedRoles, error, rollbackConsented, baseline, reverse);
    }

    public Progress withSlots(List<SlotPosition> s) {
      return new Progress(finalLsn, ImmutableList.copyOf(s), fencedRoles, error, rollbackConsented, baseline, reverse);
    }

    public Progress withFencedRoles(List<String> roles) {
      return new Progress(finalLsn, slots, ImmutableList.copyOf(roles), error, rollbackConsented, baseline, reverse);
    }

    public Progress withError(String e) {
      return new Progress(finalLsn, slots, fencedRoles, Optional.ofNullable(e), rollbackConsented, baseline, reverse);
    }

    public Progress withRollbackConsent() {
      return new Progress(finalLsn, slots, fencedRoles, error, true, baseline, reverse);
    }

    public Progress withBaseline(dev.turnout.migrator.bake.Rates b) {
      return new Progress(finalLsn, slots, fencedRoles, error, rollbackConsented, Optional.of(b), reverse);
    }
  }

  /** One line of the migration's history: entering a phase, or a figure worth keeping. */
  public record Event(Instant at, Phase phase, String note) {}

  public static Migration plan(String id, Spec spec, Instant now) {
    return new Migration(id, spec, Phase.PLANNED, Progress.NONE,
        ImmutableList.of(new Event(now, Phase.PLANNED, "planned: " + spec.source() + " -> " + spec.target()
            + (spec.coTenants().isEmpty() ? "" : "; moving every database routed to the source together: "
                + String.join(", ", spec.databases())))), 0);
  }

  /** The database the migration is named after; {@link Spec#databases} lists every one it moves. */
  public String database() {
    return spec.database();
  }

  /** A copy in phase {@code to}, with the transition checked and recorded. */
  public Migration to(Phase to, Instant now, String note) {
    phase.checkTransition(to);
    return new Migration(id, spec, to, progress,
        ImmutableList.<Event>builder().addAll(history).add(new Event(now, to, note)).build(), revision);
  }

  public Migration with(Progress newProgress) {
    return new Migration(id, spec, phase, newProgress, history, revision);
  }

  public Migration note(Instant now, String note) {
    return new Migration(id, spec, phase, progress,
        ImmutableList.<Event>builder().addAll(history).add(new Event(now, phase, note)).build(), revision);
  }

  /** This value as the store holds it at {@code saved} (stores call it; a migration read back carries it). */
  public Migration atRevision(long saved) {
    return new Migration(id, spec, phase, progress, history, saved);
  }

  /** When the current phase was entered (notes made in it since do not count). */
  public Instant phaseStarted() {
    int i = history.size() - 1;
    while (i > 0 && history.get(i - 1).phase() == phase) {
      i--;
    }
    return history.get(i).at();
  }

  @Override
  public String toString() {
    return "migration " + id + " of " + (spec.coTenants().isEmpty() ? "database " : "databases ")
        + spec.describeDatabases();
  }
}
