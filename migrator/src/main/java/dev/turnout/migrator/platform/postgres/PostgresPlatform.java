package dev.turnout.migrator.platform.postgres;

import com.google.common.collect.ImmutableList;
import dev.turnout.migrator.DryRun;
import dev.turnout.migrator.Lsn;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.Platform;
import dev.turnout.migrator.SlotPosition;
import dev.turnout.migrator.check.PreflightFacts;
import java.util.List;
import java.util.Optional;

/**
 * The {@link Platform} of any PostgreSQL reachable over JDBC with a superuser role: the source and a target
 * that is a physical streaming standby of it. Its SQL is {@link PostgresSql}'s; what it adds is {@code ALTER SYSTEM}.
 *
 * <p>The fence does not rely on {@code default_transaction_read_only} alone (a session can
 * {@code SET TRANSACTION READ WRITE}): it also makes every other login role NOLOGIN and ends every client
 * session. {@code ALTER ROLE} replicates, so the target inherits the NOLOGIN and gets the logins back after
 * promotion; {@code ALTER SYSTEM} does not replicate, so each server is armed on its own.
 */
public final class PostgresPlatform implements Platform {

  /** The role and password the migrator connects with (a superuser). */
  public record Credentials(String user, String password) {
    @Override
    public String toString() {
      return "Credentials[user=" + user + ", password=***]";
    }
  }

  private final Migration.Spec spec;
  private final PostgresSql sql;

  PostgresPlatform(Migration.Spec spec, PostgresSql sql) {
    this.spec = spec;
    this.sql = sql;
  }

  /** A factory connecting every migration with the same credentials. */
  public static Platform.Factory factory(Credentials credentials, java.time.Clock clock,
      dev.turnout.migrator.Sleeper sleeper) {
    return new Platform.Factory() {
      @Override
      public Platform open(Migration.Spec spec) {
        return new PostgresPlatform(spec, PostgresSql.connect(spec, credentials, clock, sleeper));
      }

      @Override
      public Platform openDryRun(Migration.Spec spec, DryRun dryRun) {
        return new PostgresPlatform(spec, PostgresSql.dryRun(PostgresSql.connect(spec, credentials, dryRun.clock(),
            dryRun.sleeper()), spec, dryRun));
      }
    };
  }

  @Override
  public Optional<String> ensureTarget() throws MigrationException {
    return spec.options().createReplica().isEmpty() ? Optional.empty()
        : sql.ensureReplica(spec.options().createReplica().get());
  }

  /** The source is probed for reaching the target where {@link #subscribeReverse} would connect it to. */
  @Override
  public PreflightFacts preflightFacts() throws MigrationException {
    return PreflightFacts.of(sql.facts(true, spec.options().withoutReverseReplication() ? Optional.empty()
        : Optional.of(spec.target())));
  }

  @Override
  public void dropSlot(String name) throws MigrationException {
    sql.dropSlot(name);
  }

  @Override
  public void installWalProof() throws MigrationException {
    sql.installWalProof();
  }

  @Override
  public Sample sample() throws MigrationException {
    return sql.sample();
  }

  @Override
  public dev.turnout.migrator.bake.Workload sourceWorkload() throws MigrationException {
    return sql.workload(PostgresSql.Server.SOURCE);
  }

  @Override
  public dev.turnout.migrator.bake.Workload targetWorkload() throws MigrationException {
    return sql.workload(PostgresSql.Server.TARGET);
  }

  @Override
  public ImmutableList<String> loginRolesToFence(boolean keepStandby) throws MigrationException {
    return sql.loginRolesToFence(keepStandby);
  }

  @Override
  public ImmutableList<Session> applicationSessions() throws MigrationException {
    return sql.applicationSessions();
  }

  @Override
  public void endApplicationSessions(List<Session> sessions) throws MigrationException {
    sql.endApplicationSessions(sessions);
  }

  @Override
  public ImmutableList<PreparedTransaction> preparedTransactions() throws MigrationException {
    return sql.preparedTransactions();
  }

  @Override
  public void rollBackPreparedTransactions(List<PreparedTransaction> transactions) throws MigrationException {
    sql.rollBackPreparedTransactions(transactions);
  }

  @Override
  public ImmutableList<PreparedTransaction> targetPreparedTransactions() throws MigrationException {
    return sql.targetPreparedTransactions();
  }

  @Override
  public ImmutableList<Session> targetApplicationSessions() throws MigrationException {
    return sql.targetApplicationSessions();
  }

  @Override
  public void endTargetApplicationSessions(List<Session> sessions) throws MigrationException {
    sql.endTargetApplicationSessions(sessions);
  }

  @Override
  public void prepareFence() throws MigrationException {
    sql.holdWal();
  }

  /** New sessions read-only first, so nothing that logs in meanwhile can write; then the WAL hold, logins, sessions. */
  @Override
  public ImmutableList<Session> fence(List<String> roles) throws MigrationException {
    sql.readOnlyByDefault(PostgresSql.Server.SOURCE, true);
    sql.holdWal();
    sql.refuseLogins(roles);
    return sql.endSessions(false);
  }

  @Override
  public ImmutableList<Session> endSessions(boolean slotStreamsToo) throws MigrationException {
    return sql.endSessions(slotStreamsToo);
  }

  @Override
  public void refuseLogins(List<String> roles) throws MigrationException {
    sql.refuseLogins(roles);
  }

  @Override
  public void verifyFence(List<String> roles) throws MigrationException {
    sql.verifySessionsEndedAndLoginsRefused(roles);
    sql.verifyReadOnlyByDefault();
  }

  @Override
  public Lsn sourceLsn() throws MigrationException {
    return sql.sourceLsn();
  }

  @Override
  public Lsn finalLsn() throws MigrationException {
    sql.flushWal();
    return sql.finalLsn();
  }

  @Override
  public WalCheck commitsAfter(Lsn from) throws MigrationException {
    return sql.commitsAfter(from);
  }

  @Override
  public void releaseFenceHold() throws MigrationException {
    sql.releaseFenceHold();
  }

  @Override
  public void unfence(List<String> roles) throws MigrationException {
    sql.restoreLogins(roles);
    sql.readOnlyByDefault(PostgresSql.Server.SOURCE, false);
    sql.releaseFenceHold();
  }

  @Override
  public ImmutableList<Slot> sourceSlots() throws MigrationException {
    return sql.sourceSlots();
  }

  @Override
  public Lsn targetReplayLsn() throws MigrationException {
    return sql.targetReplayLsn();
  }

  @Override
  public void armTargetReadOnly() throws MigrationException {
    sql.readOnlyByDefault(PostgresSql.Server.TARGET, true);
  }

  @Override
  public void promoteTarget() throws MigrationException {
    sql.promoteTarget();
  }

  @Override
  public boolean targetPromoted() throws MigrationException {
    return !sql.targetInRecovery();
  }

  @Override
  public void syncFailoverSlots() throws MigrationException {
    sql.syncFailoverSlots();
  }

  @Override
  public ImmutableList<String> createSlotsOnTarget(List<SlotPosition> slots) throws MigrationException {
    return sql.createSlotsOnTarget(slots);
  }

  @Override
  public void restoreLoginsOnTarget(List<String> roles) throws MigrationException {
    sql.restoreLoginsOnTarget(roles);
  }

  @Override
  public void admitWritesOnTarget() throws MigrationException {
    sql.readOnlyByDefault(PostgresSql.Server.TARGET, false);
  }

  @Override
  public void disarmTarget() throws MigrationException {
    admitWritesOnTarget();
  }

  @Override
  public void writeProbeTarget() throws MigrationException {
    sql.writeProbeTarget();
  }

  @Override
  public boolean supportsReverseReplication() {
    return true;
  }

  @Override
  public String startReverseReplication() throws MigrationException {
    return sql.startReverseReplication();
  }

  @Override
  public void subscribeReverse() throws MigrationException {
    sql.quickApplyLauncher(true);
    sql.subscribeReverse(spec.target());
  }

  @Override
  public ReverseHealth reverseHealth(dev.turnout.migrator.ReversePath path) throws MigrationException {
    return sql.reverseHealth(path.fingerprint(), !path.awaitingSubscription());
  }

  /** As the source's fence: read-only first, so nothing that logs in meanwhile can write; then logins, sessions. */
  @Override
  public void fenceTarget(List<String> roles) throws MigrationException {
    sql.readOnlyByDefault(PostgresSql.Server.TARGET, true);
    sql.refuseLoginsOnTarget(roles);
    sql.endTargetSessions(false);
  }

  @Override
  public void rollBackTargetPreparedTransactions(List<PreparedTransaction> transactions) throws MigrationException {
    sql.rollBackTargetPreparedTransactions(transactions);
  }

  @Override
  public ImmutableList<Slot> targetSlots() throws MigrationException {
    return sql.targetSlots();
  }

  @Override
  public void endTargetSlotStreams() throws MigrationException {
    sql.endTargetSessions(true);
  }

  @Override
  public ImmutableList<String> bringSourceSlotsForward(List<SlotPosition> slots, Lsn finalLsn)
      throws MigrationException {
    return sql.bringSourceSlotsForward(slots, finalLsn);
  }

  @Override
  public Lsn targetEndLsn() throws MigrationException {
    return sql.targetEndLsn();
  }

  @Override
  public Lsn reverseAppliedLsn() throws MigrationException {
    return sql.reverseAppliedLsn();
  }

  @Override
  public String bringSequencesForward() throws MigrationException {
    return sql.bringSequencesForward();
  }

  @Override
  public void stopReverseReplication() throws MigrationException {
    sql.stopReverseReplication();
    sql.quickApplyLauncher(false);
  }

  @Override
  public void stopReverseApply() throws MigrationException {
    sql.stopReverseSubscriptions();
  }

  @Override
  public void close() {
    sql.close();
  }
}
