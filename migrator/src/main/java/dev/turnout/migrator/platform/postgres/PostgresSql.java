package dev.turnout.migrator.platform.postgres;

import com.google.common.collect.ImmutableList;
import dev.turnout.migrator.DryRun;
import dev.turnout.migrator.Lsn;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.Platform.PreparedTransaction;
import dev.turnout.migrator.Platform.Sample;
import dev.turnout.migrator.Platform.Session;
import dev.turnout.migrator.Platform.Slot;
import dev.turnout.migrator.Platform.WalCheck;
import dev.turnout.migrator.SlotPosition;
import dev.turnout.migrator.check.ServerFacts;
import java.util.List;
import java.util.Optional;

/**
 * The SQL a migration runs on its PostgreSQL source and the physical standby that is its target, whichever platform
 * hosts them (any PostgreSQL reachable by JDBC; RDS and Aurora): the facts preflight judges, sessions, prepared
 * transactions, logins, slots, WAL positions and the proof read from the source's WAL. Platforms add what differs
 * (ALTER SYSTEM where the server allows it, a provider's API where it does not) and call nothing else over SQL.
 * {@link #connect} runs it on the servers; {@link #dryRun} reads through that and lists every change instead.
 */
public interface PostgresSql extends AutoCloseable {

  /** The SQL of {@code spec}'s two servers, connecting (on first use) as {@code credentials}. */
  static PostgresSql connect(Migration.Spec spec, PostgresPlatform.Credentials credentials, java.time.Clock clock,
      dev.turnout.migrator.Sleeper sleeper) {
    return new JdbcPostgresSql(spec, credentials, clock, sleeper);
  }

  /** {@code servers} for a dry run: reads made through it, each change listed in {@code dryRun} instead. */
  static DryRunPostgresSql dryRun(PostgresSql servers, Migration.Spec spec, DryRun dryRun) {
    return new DryRunPostgresSql(servers, spec, dryRun);
  }

  /** Which of the migration's servers. */
  enum Server { SOURCE, TARGET }

  // Reads.

  /**
   * What preflight judges about the two servers. Without {@code readTarget} the target is not read (it does not
   * exist yet) and the facts' target is empty. With {@code reversePublisher} (reverse replication wanted, and the
   * address its subscriptions would connect to), a target read and a role that may make subscriptions, the source is
   * probed for reaching it: in each database the reverse path covers, a disabled subscription without a slot is made
   * with the subscriptions' connection string, connecting once, and dropped at once (the only write; nothing is left
   * behind). Else reads only.
   */
  ServerFacts facts(boolean readTarget, Optional<dev.turnout.migrator.ServerAddress> reversePublisher)
      throws MigrationException;

  /** The source's WAL position and the target's replay position and delay. */
  Sample sample() throws MigrationException;

  /**
   * {@code server}'s cumulative counters from pg_stat_database, summed over the whole server, and the
   * statements' calls and total time from pg_stat_statements where it is loaded and installed in the migrator's
   * database (empty otherwise). Reads only.
   */
  dev.turnout.migrator.bake.Workload workload(Server server) throws MigrationException;

  /**
   * The source's login roles the fence refuses: every one but the migrator's own, superusers and replication
   * roles included; with {@code keepStandby}, not the roles a physical standby of the source streams as.
   */
  ImmutableList<String> loginRolesToFence(boolean keepStandby) throws MigrationException;

  /** Clients and walsenders on the source that are not streaming a slot (see {@link dev.turnout.migrator.Platform}). */
  ImmutableList<Session> applicationSessions() throws MigrationException;

  ImmutableList<PreparedTransaction> preparedTransactions() throws MigrationException;

  ImmutableList<PreparedTransaction> targetPreparedTransactions() throws MigrationException;

  /** The same sessions as {@link #applicationSessions}, on the promoted target. */
  ImmutableList<Session> targetApplicationSessions() throws MigrationException;

  Lsn sourceLsn() throws MigrationException;

  /** The source's WAL position once everything inserted so far is flushed: it covers every acknowledged commit. */
  Lsn finalLsn() throws MigrationException;

  /** Every transaction that committed in the source's WAL from {@code from} to its end. */
  WalCheck commitsAfter(Lsn from) throws MigrationException;

  ImmutableList<Slot> sourceSlots() throws MigrationException;

  Lsn targetReplayLsn() throws MigrationException;

  boolean targetInRecovery() throws MigrationException;

  /** Whether the target syncs failover slots from the source (PostgreSQL 17+ with sync_replication_slots on). */
  boolean syncsFailoverSlots() throws MigrationException;

  /**
   * Throws unless no session that can run SQL is open on the source (but the migrator's and walsenders streaming a
   * logical slot), no transaction is left prepared, and none of {@code roles} can log in.
   */
  void verifySessionsEndedAndLoginsRefused(List<String> roles) throws MigrationException;

  /** Throws unless new sessions on the source start read-only (after {@link #readOnlyByDefault}). */
  void verifyReadOnlyByDefault() throws MigrationException;

  // Changes.

  /** Ends those of {@code sessions} that are still open on the source and still the application's. */
  void endApplicationSessions(List<Session> sessions) throws MigrationException;

  /** The same on the promoted target. */
  void endTargetApplicationSessions(List<Session> sessions) throws MigrationException;

  /**
   * Ends every session on the source that can run SQL but the migrator's own; logical walsenders streaming a slot
   * too when {@code slotStreamsToo}. Returns those ended.
   */
  ImmutableList<Session> endSessions(boolean slotStreamsToo) throws MigrationException;

  /** ROLLBACK PREPARED, in each transaction's own database, of each of them that still exists. */
  void rollBackPreparedTransactions(List<PreparedTransaction> transactions) throws MigrationException;

  /** The same on the promoted target, when a rollback after promotion finds them there once it is fenced. */
  void rollBackTargetPreparedTransactions(List<PreparedTransaction> transactions) throws MigrationException;

  /**
   * Commits an empty transaction of the migrator's on the source, to its local disk: every WAL record inserted
   * before it is flushed at once, so {@link #finalLsn} does not wait for the WAL writer. It lies before the final LSN.
   */
  void flushWal() throws MigrationException;

  /** Keeps the source's WAL from here on (a physical slot reserving WAL now) until {@link #releaseFenceHold}. */
  void holdWal() throws MigrationException;

  void releaseFenceHold() throws MigrationException;

  /** Sets {@code roles} NOLOGIN on the source ({@code ALTER ROLE} replicates to the target). */
  void refuseLogins(List<String> roles) throws MigrationException;

  /** Undo of {@link #refuseLogins} on the source. */
  void restoreLogins(List<String> roles) throws MigrationException;

  /** The fenced roles came over to the target as NOLOGIN with the catalog: lets them log in there. */
  void restoreLoginsOnTarget(List<String> roles) throws MigrationException;

  /**
   * {@code ALTER SYSTEM} sets (or resets) {@code default_transaction_read_only} on {@code server} and reloads: it
   * does not replicate, so each server is set on its own. Managed services forbid it.
   */
  void readOnlyByDefault(Server server, boolean on) throws MigrationException;

  /** Promotes the target if it is still in recovery, and confirms it runs on a timeline above the source's. */
  void promoteTarget() throws MigrationException;

  /**
   * Where the target {@link #syncsFailoverSlots}, stops the sync worker and syncs once more, so the slots carry the
   * source's final positions into the promotion; elsewhere nothing.
   */
  void syncFailoverSlots() throws MigrationException;

  /** Verifies each slot that came over by failover sync, creates each one the target lacks; one line per slot. */
  ImmutableList<String> createSlotsOnTarget(List<SlotPosition> slots) throws MigrationException;

  /** Commits a transaction that needs a write-capable target, on a fresh connection. */
  void writeProbeTarget() throws MigrationException;

  // The reverse path (issue 19, part 2): see dev.turnout.migrator.Platform.

  /**
   * In every database of the promoted target: the publication {@code turnout_reverse} of all tables, then a logical
   * slot (pgoutput) at this point. Each made only when missing. Returns the target's schema fingerprint.
   */
  String startReverseReplication() throws MigrationException;

  /**
   * On the source, in every database, a subscription from the slot {@link #startReverseReplication} made there, that
   * copies nothing, connecting to the target at {@code publisher} (the address the source reaches it at: the route's
   * target on plain PostgreSQL, the Aurora cluster's writer endpoint on AWS). Each made only when missing.
   */
  void subscribeReverse(dev.turnout.migrator.ServerAddress publisher) throws MigrationException;

  /**
   * See {@link dev.turnout.migrator.Platform#reverseHealth}: a missing subscription breaks the path only when
   * {@code subscribed} (the source has subscribed).
   */
  dev.turnout.migrator.Platform.ReverseHealth reverseHealth(String fingerprint, boolean subscribed)
      throws MigrationException;

  /** Refuses {@code roles} at login on the target (its own primary now: this does not reach the source). */
  void refuseLoginsOnTarget(List<String> roles) throws MigrationException;

  /**
   * Ends every session on the target that can run SQL but the migrator's and the walsenders streaming the reverse
   * path's slots; those streaming another logical slot (CDC) too only when {@code slotStreamsToo}. Returns how many
   * it ended.
   */
  int endTargetSessions(boolean slotStreamsToo) throws MigrationException;

  /** The target's logical slots. */
  ImmutableList<Slot> targetSlots() throws MigrationException;

  /** See {@link dev.turnout.migrator.Platform#bringSourceSlotsForward}. */
  ImmutableList<String> bringSourceSlotsForward(List<SlotPosition> slots, Lsn finalLsn) throws MigrationException;

  /** Commits a transaction of the migrator's on the target to its disk; returns the end of its WAL then. */
  Lsn targetEndLsn() throws MigrationException;

  /** See {@link dev.turnout.migrator.Platform#reverseAppliedLsn}. */
  Lsn reverseAppliedLsn() throws MigrationException;

  /** Sets each sequence on the source to the target's value where that is ahead; one line for the history. */
  String bringSequencesForward() throws MigrationException;

  /** Drops the subscriptions on the source, then the slots and the publications on the target, where present. */
  void stopReverseReplication() throws MigrationException;

  /**
   * Before PostgreSQL 16 the logical replication launcher starts apply workers at most once every {@code
   * wal_retrieve_retry_interval} (5 s by default) for the whole server, so of the reverse path's subscriptions (one
   * per database) the second would start its worker 5 s after the first, and a rollback soon after the promotion
   * would wait for it. With {@code on}, where the source has the default, {@code ALTER SYSTEM} sets it to 100 ms
   * there; without, what was set so is reset. PostgreSQL 16 times each subscription's start on its own: nothing is
   * done there.
   */
  void quickApplyLauncher(boolean on) throws MigrationException;

  /** Drops the subscriptions on the source, where present (the first half of {@link #stopReverseReplication}). */
  void stopReverseSubscriptions() throws MigrationException;

  /** Drops an inactive logical slot on the source. */
  void dropSlot(String name) throws MigrationException;

  /** Installs pg_walinspect on the source, in the migrator's database. */
  void installWalProof() throws MigrationException;

  /**
   * Unless the target answers already, copies the source into a same-host replica as {@code replica} says, starts it
   * and waits until it streams. Returns a line for the history.
   */
  Optional<String> ensureReplica(Migration.Replica replica) throws MigrationException;

  @Override
  void close();
}
