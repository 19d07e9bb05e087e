package dev.turnout.migrator;

import com.google.common.collect.ImmutableList;
import java.util.List;

/**
 * Every side effect a migration has on its two servers, one method each, so a run reads as a list of named
 * actions. Implementations check the world first (promote is a no-op on a primary, fence on a fenced source),
 * so re-running any of them after a crash is harmless.
 */
public interface Platform extends AutoCloseable {

  /** One preflight finding; a blocking one stops the migration. */
  record Check(String name, boolean ok, boolean blocking, String detail) {
    @Override
    public String toString() {
      return (ok ? "ok   " : blocking ? "FAIL " : "warn ") + name + ": " + detail;
    }
  }

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

  /** Target is a streaming standby of source; parameters, extensions and slots allow the move. */
  ImmutableList<Check> preflight(boolean allowDroppingStaleSlots) throws MigrationException;

  Sample sample() throws MigrationException;

  /** The source's roles that can log in and must be refused during the fence (the migrator's own excluded). */
  ImmutableList<String> loginRolesToFence() throws MigrationException;

  /** Hard fence: read-only by default, {@code roles} refused at login, every client session ended. */
  void fence(List<String> roles) throws MigrationException;

  /** Throws unless no client session is left on the source, new sessions are read-only and the roles are refused. */
  void verifyFence(List<String> roles) throws MigrationException;

  /** The source's current WAL position. */
  Lsn sourceLsn() throws MigrationException;

  /** Undo of {@link #fence}: logins and writes accepted again. */
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

  /**
   * Calls on outside APIs a real run would make, in order, each as {@code "PHASE: Call Param=value ..."}, for
   * the dry run. Platforms that act only through SQL have none.
   */
  default ImmutableList<String> plannedCalls() throws MigrationException {
    return ImmutableList.of();
  }

  @Override
  void close();

  /** Opens the platform of one migration's source and target. */
  interface Factory {
    Platform open(Migration.Spec spec) throws MigrationException;

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
