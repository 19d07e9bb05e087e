package dev.turnout.migrator;

import com.google.common.collect.ImmutableList;
import dev.turnout.migrator.check.PreflightFacts;
import java.util.List;

/**
 * Every side effect a migration has on its two servers, one method each, so a run reads as a list of named
 * actions, and the reads its steps and checks need. Implementations check the world first (promote is a no-op on
 * a primary, fence on a fenced source), so re-running any of them after a crash is harmless. A platform gathers
 * facts; {@link dev.turnout.migrator.check.Preflight} judges them.
 */
public interface Platform extends AutoCloseable {

  /** Replication as seen at one moment: WAL written at the source, replayed at the target. */
  record Sample(long atNanos, Lsn sourceLsn, Lsn replayLsn, double replayDelaySeconds) {
    public long lagBytes() {
      return Math.max(0, sourceLsn.minus(replayLsn));
    }
  }

  /** A logical slot on the source and how much WAL it holds back. */
  record Slot(String name, String plugin, boolean active, Lsn confirmedLsn, long retainedBytes) {}

  /**
   * When the migration asks the migrator to make its target (a same-host replica, an Aurora replica cluster)
   * and it is not there yet, creates it and waits until it replicates; otherwise does nothing. Returns a line
   * for the migration's history when it did something.
   */
  java.util.Optional<String> ensureTarget() throws MigrationException;

  /**
   * What preflight judges (is the target a streaming standby of the source; do parameters, extensions, slots and
   * the provider allow the move), read without changing anything.
   */
  PreflightFacts preflightFacts() throws MigrationException;

  /** Drops an inactive logical slot on the source (preflight, when the operator allowed dropping stale slots). */
  void dropSlot(String name) throws MigrationException;

  /**
   * Installs pg_walinspect on the source, in the migrator's database, for the proof that nothing committed after
   * the final LSN ({@link #commitsAfter}).
   */
  void installWalProof() throws MigrationException;

  Sample sample() throws MigrationException;

  /**
   * The source's cumulative workload counters now, summed over the server's databases: the server is what moves (the baseline is
   * two of these, at each end of the validation window). Statement totals only where pg_stat_statements is loaded
   * and installed in the migrator's database.
   */
  dev.turnout.migrator.bake.Workload sourceWorkload() throws MigrationException;

  /** The target's, the same way (the bake samples them). */
  dev.turnout.migrator.bake.Workload targetWorkload() throws MigrationException;

  /**
   * A transaction prepared for two-phase commit on the source. It outlives its session, restarts and reboots,
   * and {@code COMMIT PREPARED} is allowed in a read-only transaction: the read-only default does not stop it.
   */
  record PreparedTransaction(String gid, java.time.Instant prepared, String owner, String database) {
    /** {@code 'g1' (owner app, database orders, prepared 12 s ago)}. */
    public String describe(java.time.Instant now) {
      long seconds = Math.max(0, java.time.Duration.between(prepared, now).toSeconds());
      return "'" + gid + "' (owner " + owner + ", database " + database + ", prepared " + seconds + " s ago)";
    }
  }

  /**
   * A session on the source that can run SQL (one connected to a database), as the quiesce and the fence see it.
   *
   * @param busy running a statement, inside a transaction, or logged in a moment ago (its first transaction may
   *     be ahead of it): work the quiesce lets finish, and the fence cuts; not busy means idle between transactions
   * @param transactionStart when its current transaction began (the source's clock), if it is in one
   */
  record Session(int pid, String role, String backendType, String state, boolean busy,
      java.util.Optional<java.time.Instant> transactionStart) {}

  /**
   * What the source's WAL after the final LSN holds.
   *
   * @param findings one line per transaction that committed there (xid, LSN, time, what it changed)
   * @param exempt commits that only wrote planner statistics (autovacuum's ANALYZE), which nothing needs kept
   * @param replicated commits of the reverse path: the target's commits applied by the migrator's subscriptions
   *     (their replication origin), and the migrator's own transactions that made those subscriptions
   */
  record WalCheck(Lsn from, Lsn to, ImmutableList<String> findings, int exempt, int replicated) {
    public WalCheck(Lsn from, Lsn to, ImmutableList<String> findings, int exempt) {
      this(from, to, findings, exempt, 0);
    }
  }

  /**
   * The source's login roles the fence refuses: every one but the migrator's own, superusers and replication
   * roles included. With {@code keepStandby}, the roles a physical standby of the source streams as are left
   * out: they keep their login until the target is promoted, so the standby can reconnect while catching up.
   */
  ImmutableList<String> loginRolesToFence(boolean keepStandby) throws MigrationException;

  /**
   * The application's sessions on the source: clients and walsenders that are not streaming a slot. Sessions of
   * the migrator, of a physical standby and logical walsenders streaming a slot are never the application's.
   */
  ImmutableList<Session> applicationSessions() throws MigrationException;

  /** Ends those of {@code sessions} that are still open (by process id). */
  void endApplicationSessions(List<Session> sessions) throws MigrationException;

  /** Transactions prepared on the source and not yet committed or rolled back. */
  ImmutableList<PreparedTransaction> preparedTransactions() throws MigrationException;

  /** Rolls back each of {@code transactions} on the source that still exists (in its own database). */
  void rollBackPreparedTransactions(List<PreparedTransaction> transactions) throws MigrationException;

  /** Transactions that came over to the promoted target still prepared: they would hold their locks there. */
  ImmutableList<PreparedTransaction> targetPreparedTransactions() throws MigrationException;

  /**
   * The application's sessions on the promoted target, as {@link #applicationSessions} sees them on the source:
   * the work a rollback after promotion lets finish before it fences the target. The reverse path's walsenders and
   * CDC consumers streaming a slot are not the application's.
   */
  ImmutableList<Session> targetApplicationSessions() throws MigrationException;

  /** Ends those of {@code sessions} that are still open on the target (by process id). */
  void endTargetApplicationSessions(List<Session> sessions) throws MigrationException;

  /**
   * Before the drain, while the source still serves: what of the fence can be done without touching the
   * application (keeping the source's WAL from here on, below the final LSN), so the writes do not wait for it.
   * Idempotent; {@link #unfence} undoes it. Nothing by default.
   */
  default void prepareFence() throws MigrationException {}

  /**
   * Hard fence: read-only by default, the source's WAL after this point kept until finalized, {@code roles}
   * refused at login, and every session that can run SQL ended (whatever its role or backend type) except the
   * migrator's own, physical walsenders and logical walsenders streaming a slot, whose consumers must still
   * confirm the final LSN (see {@link #endSessions}). Returns the sessions it ended.
   */
  ImmutableList<Session> fence(List<String> roles) throws MigrationException;

  /**
   * Ends every session on the source that can run SQL but the migrator's own (and a PostgreSQL 17 standby's
   * slot-sync reader); logical walsenders streaming a slot too when {@code slotStreamsToo}. Returns those ended.
   */
  ImmutableList<Session> endSessions(boolean slotStreamsToo) throws MigrationException;

  /**
   * Refuses {@code roles} at login on the source (used at promotion for the standby's roles, which the source
   * no longer needs once the target stopped streaming from it).
   */
  void refuseLogins(List<String> roles) throws MigrationException;

  /**
   * Throws unless no session but the migrator's and streaming walsenders is left on the source, no prepared
   * transaction is left, new sessions are read-only and the roles are refused.
   */
  void verifyFence(List<String> roles) throws MigrationException;

  /** The source's current WAL position. */
  Lsn sourceLsn() throws MigrationException;

  /**
   * The source's WAL position once every record already inserted is flushed (asynchronous commits included),
   * so that it covers every commit acknowledged so far: the final LSN.
   */
  Lsn finalLsn() throws MigrationException;

  /**
   * Reads the source's own WAL from {@code from} to its end and lists every transaction that committed there:
   * the proof that nothing but the migrator committed after the final LSN.
   */
  WalCheck commitsAfter(Lsn from) throws MigrationException;

  /** Lets the source recycle the WAL the fence kept for {@link #commitsAfter} (at finalize). */
  void releaseFenceHold() throws MigrationException;

  /** Undo of {@link #fence}: logins and writes accepted again, the WAL hold released. */
  void unfence(List<String> roles) throws MigrationException;

  ImmutableList<Slot> sourceSlots() throws MigrationException;

  Lsn targetReplayLsn() throws MigrationException;

  /** While still a standby, arm the target read-only, so it admits no write when promoted. */
  void armTargetReadOnly() throws MigrationException;

  /** Promotes the target if it is still in recovery, and confirms it runs on a new timeline. */
  void promoteTarget() throws MigrationException;

  boolean targetPromoted() throws MigrationException;

  /**
   * Before promotion: where the target syncs failover slots from the source (PostgreSQL 17+), stops the sync
   * worker and syncs once more, so the slots carry the source's final positions into the promotion.
   */
  void syncFailoverSlots() throws MigrationException;

  /**
   * On the promoted, still read-only target: verifies each slot that came over by failover sync (same plugin,
   * usable) and creates each one it lacks. Returns one line per slot saying which.
   */
  ImmutableList<String> createSlotsOnTarget(List<SlotPosition> slots) throws MigrationException;

  /** The fenced roles came over to the target as NOLOGIN with the catalog: let them log in there. */
  void restoreLoginsOnTarget(List<String> roles) throws MigrationException;

  /** Lets the promoted target accept writes. */
  void admitWritesOnTarget() throws MigrationException;

  /** Undo of {@link #armTargetReadOnly} on a target that was not promoted. */
  void disarmTarget() throws MigrationException;

  /** Commits a transaction that needs a write-capable server. */
  void writeProbeTarget() throws MigrationException;

  // The way back (issue 19, part 2): from promotion on, the target's commits are applied on the old source.

  /**
   * The reverse path as read now: how far behind the source is, and what breaks it, if anything does.
   *
   * @param lagBytes the target's WAL not yet confirmed by the source's subscriptions (-1 when not read)
   * @param lagMillis the target's own measure of the time its commits take to be applied on the source (the
   *     subscriptions' walsenders' {@code replay_lag}; 0 once caught up, -1 when not read)
   */
  record ReverseHealth(long lagBytes, long lagMillis, java.util.Optional<String> broken) {
    public ReverseHealth(long lagBytes, java.util.Optional<String> broken) {
      this(lagBytes, -1, broken);
    }

    public boolean healthy() {
      return broken.isEmpty();
    }
  }

  /** Whether this platform replicates a promoted target back to the old source; the methods below need it. */
  default boolean supportsReverseReplication() {
    return false;
  }

  private MigrationException noReversePath() {
    return new MigrationException("this platform does not replicate the target back to the source");
  }

  /**
   * On the promoted target, before it admits a write: in every database, a publication of all tables and a logical
   * slot at the promotion point. Idempotent. Returns the target's schema fingerprint, which {@link #reverseHealth}
   * compares later.
   */
  default String startReverseReplication() throws MigrationException {
    throw noReversePath();
  }

  /**
   * On the fenced source, a subscription to each slot {@link #startReverseReplication} made, copying nothing (the
   * source equals the target at the final LSN): made once the route is on the target, outside the write gap (the
   * slots keep every commit since the promotion until it streams). Idempotent: only the missing ones are made.
   */
  default void subscribeReverse() throws MigrationException {
    throw noReversePath();
  }

  /**
   * Whether the reverse path still carries every commit: subscriptions there (unless the path still awaits them),
   * enabled, applying without errors, slots on the target, and the target's schema unchanged since the path's
   * fingerprint (logical replication carries no DDL).
   */
  default ReverseHealth reverseHealth(ReversePath path) throws MigrationException {
    throw noReversePath();
  }

  /**
   * A rollback after promotion fences the target as the cutover fenced the source: new sessions read-only,
   * {@code roles} refused at login, every session ended but the migrator's and the walsenders streaming a logical
   * slot (the reverse path's, and CDC consumers', which must still confirm the target's last position).
   */
  default void fenceTarget(List<String> roles) throws MigrationException {
    throw noReversePath();
  }

  /**
   * Rolls back each of {@code transactions} still prepared on the promoted target (a rollback after promotion that
   * the operator allowed to roll back prepared transactions): the reverse path carries none while it is prepared.
   */
  default void rollBackTargetPreparedTransactions(List<PreparedTransaction> transactions) throws MigrationException {
    throw noReversePath();
  }

  /** The target's logical slots (the CDC slots recreated at promotion among them), as {@link #sourceSlots}. */
  default ImmutableList<Slot> targetSlots() throws MigrationException {
    throw noReversePath();
  }

  /** Ends the target's walsenders streaming a CDC slot (not the reverse path's): their consumers come back on the source. */
  default void endTargetSlotStreams() throws MigrationException {
    throw noReversePath();
  }

  /**
   * Re-arms CDC on the source after the reverse path carried the target's commits there: each of {@code slots} on
   * the source is advanced past the applied commits its consumer already confirmed on the target (the source's
   * commit whose replication origin position is the last one at or before the target slot's confirmed position),
   * never backwards. Reads the source's WAL from {@code finalLsn}. Returns one line per slot.
   */
  default ImmutableList<String> bringSourceSlotsForward(List<SlotPosition> slots, Lsn finalLsn)
      throws MigrationException {
    throw noReversePath();
  }

  /** The target's WAL position once flushed: after {@link #fenceTarget}, every commit it took lies before it. */
  default Lsn targetEndLsn() throws MigrationException {
    throw noReversePath();
  }

  /**
   * The target's position up to which the source has applied everything (the least over the subscriptions): the
   * end of WAL its walsender last reported, which the source's apply worker has processed everything before.
   */
  default Lsn reverseAppliedLsn() throws MigrationException {
    throw noReversePath();
  }

  /**
   * Logical replication carries no sequences (before PostgreSQL 19): sets each sequence on the source to the
   * target's value, never backwards. Returns one line saying how many moved.
   */
  default String bringSequencesForward() throws MigrationException {
    throw noReversePath();
  }

  /** Drops the subscriptions on the source, and the slots and publications on the target. Idempotent. */
  default void stopReverseReplication() throws MigrationException {
    throw noReversePath();
  }

  /**
   * The half of {@link #stopReverseReplication} a rollback needs before the source is writable: the source applies
   * nothing from the target once this returns (its subscriptions dropped, their apply workers stopped). The slots and
   * publications on the fenced target can go after the route is back. Idempotent; by default, the whole path.
   */
  default void stopReverseApply() throws MigrationException {
    stopReverseReplication();
  }

  @Override
  void close();

  /** Opens the platform of one migration's source and target. */
  interface Factory {
    Platform open(Migration.Spec spec) throws MigrationException;

    /**
     * Opens the platform of {@code spec} for a dry run ({@link Migrator#dryRun}): the same platform code, on servers
     * and APIs that it reads for real and whose every change it lists in {@code dryRun} instead of making; each wait
     * it answers as the change it waits for would (the target replays the final LSN it read, a cluster it would
     * create is available). A read that cannot be made before the run changes something (a target the run would
     * create) is answered as the change would leave it, and the transcript says so. Refused by platforms without one.
     */
    default Platform openDryRun(Migration.Spec spec, DryRun dryRun) throws MigrationException {
      throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION, "database '"
          + spec.database() + "': this platform has no dry run");
    }

    /**
     * Where a migration of {@code database} goes when the operator names no target, when the platform can tell
     * from the servers' own descriptions (an Aurora cluster's writer endpoint); empty when it cannot.
     */
    default java.util.Optional<ServerAddress> defaultTarget(String database, java.util.Optional<Migration.Aurora> aurora)
        throws MigrationException {
      return java.util.Optional.empty();
    }
  }
}
