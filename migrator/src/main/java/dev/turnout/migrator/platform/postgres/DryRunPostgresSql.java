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
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.SlotPosition;
import dev.turnout.migrator.check.ServerFacts;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * {@link PostgresSql} for a dry run: reads go to the servers; each change is listed in the transcript instead of
 * made, and what the run reads after a change is answered as the change would leave it: sessions ended are gone,
 * rolled-back transactions and dropped slots too, slot consumers confirm and the target replays the final LSN once
 * it is read, a promoted target is out of recovery. A target the run itself would create cannot be read: its facts
 * are empty (preflight says so) and its replay is the source's position. The world outside the migrator is taken to
 * stand still, but for the work in flight at the drain, which is taken to finish within the grace; prepared
 * transactions do not finish by themselves.
 *
 * <p>The migration's runner thread alone uses it, as it uses any platform.
 */
public final class DryRunPostgresSql implements PostgresSql {
  private final PostgresSql servers;
  private final Migration.Spec spec;
  private final DryRun dryRun;
  private boolean targetThere = true;
  private boolean promoted;
  /** Read when the run reads it after the fence; the positions the run waits for are this one. */
  private Lsn finalLsn;
  private Sample sampled;
  /** Each server's workload as first read; later reads repeat it (an idle workload: the dry run's time passes at once). */
  private final Map<Server, dev.turnout.migrator.bake.Workload> workloads = new java.util.EnumMap<>(Server.class);
  /** The application's sessions as last answered; null until first read. */
  private List<Session> sessions;
  private final Set<Integer> ended = new HashSet<>();
  private List<PreparedTransaction> prepared;
  private List<Slot> slots;
  private final Set<String> dropped = new HashSet<>();

  DryRunPostgresSql(PostgresSql servers, Migration.Spec spec, DryRun dryRun) {
    this.servers = servers;
    this.spec = spec;
    this.dryRun = dryRun;
  }

  /** The run makes the target by other means than SQL (an Aurora cluster it creates): it cannot be read before. */
  public void targetCreatedByThisRun() {
    targetThere = false;
  }

  /** The run promotes the target by other means than SQL (a provider's API). */
  public void targetPromotedByThisRun() {
    promoted = true;
  }

  private interface Read<T> {
    T run() throws MigrationException;
  }

  private <T> T read(Read<T> read) throws MigrationException {
    try {
      return read.run();
    } catch (MigrationException e) {
      dryRun.readFailed(e);
      throw e;
    }
  }

  private void source(String change) {
    dryRun.record("source " + spec.source() + ": " + change);
  }

  private void target(String change) {
    dryRun.record("target " + spec.target() + ": " + change);
  }

  /**
   * The facts read without the probe of the source's reach (a subscription made and dropped: a change), which is
   * listed instead; its check then says it was not tried.
   */
  @Override
  public ServerFacts facts(boolean readTarget, Optional<ServerAddress> reversePublisher) throws MigrationException {
    boolean target = readTarget && targetThere;
    ServerFacts facts = read(() -> servers.facts(target, Optional.empty()));
    if (!target || reversePublisher.isEmpty() || facts.wayBack().isEmpty()
        || !facts.wayBack().get().migratorSuperuser()) {
      return facts;
    }
    source("in every database the reverse path covers: CREATE SUBSCRIPTION turnout_probe_<pid> connecting to "
        + reversePublisher.get() + " as the reverse path's subscriptions will (connect = true, enabled = false,"
        + " slot_name = NONE), then DROP SUBSCRIPTION: whether the source reaches the target for the way back");
    return new ServerFacts(facts.source(), facts.target(), facts.logicalSlots(), facts.fence(),
        Optional.of(facts.wayBack().get().withReach(ServerFacts.Reach.notTried(reversePublisher.get().toString()))));
  }

  /**
   * Read once: the run samples every 250 ms over the validation window, which the dry run's clock passes at once,
   * so every sample after the first repeats it at the dry run's time.
   */
  @Override
  public Sample sample() throws MigrationException {
    if (sampled == null) {
      if (targetThere) {
        sampled = read(servers::sample);
      } else {
        Lsn now = read(servers::sourceLsn);
        sampled = new Sample(0, now, now, 0);
        target("not there yet: its replay is taken to keep up with the source");
      }
      dryRun.record("sampled replication once: lag " + sampled.lagBytes() + " bytes, replay delay "
          + String.format(java.util.Locale.ROOT, "%.2f", sampled.replayDelaySeconds()) + " s; the dry run takes it"
          + " for the whole validation window");
    }
    Instant at = dryRun.clock().instant();
    return new Sample(at.getEpochSecond() * 1_000_000_000L + at.getNano(), sampled.sourceLsn(), sampled.replayLsn(),
        sampled.replayDelaySeconds());
  }

  /**
   * Read once per server: the baseline and the bake read the counters at each end of windows that the dry run's
   * clock passes at once, so every later read repeats the first at the dry run's time (the figures are those of an
   * idle workload, which never breaches a limit). A target the run would create is read as idle too.
   */
  @Override
  public dev.turnout.migrator.bake.Workload workload(Server server) throws MigrationException {
    dev.turnout.migrator.bake.Workload first = workloads.get(server);
    if (first == null) {
      if (server == Server.TARGET && !targetThere) {
        first = new dev.turnout.migrator.bake.Workload(0, dev.turnout.migrator.bake.Workload.Counters.ZERO, 0,
            Optional.empty());
      } else {
        first = read(() -> servers.workload(server));
      }
      workloads.put(server, first);
      dryRun.record("read the " + (server == Server.SOURCE ? "source's" : "target's") + " workload once (pg_stat_database"
          + (first.statements().isPresent() ? ", pg_stat_statements" : "; pg_stat_statements not available")
          + "); the dry run takes it as idle for the whole " + (server == Server.SOURCE ? "validation window" : "bake"));
    }
    Instant at = dryRun.clock().instant();
    return new dev.turnout.migrator.bake.Workload(at.getEpochSecond() * 1_000_000_000L + at.getNano(),
        first.counters(), first.connections(), first.statements());
  }

  @Override
  public ImmutableList<String> loginRolesToFence(boolean keepStandby) throws MigrationException {
    return read(() -> servers.loginRolesToFence(keepStandby));
  }

  /** After the first look, the work in flight then has finished: each session not ended is idle. */
  @Override
  public ImmutableList<Session> applicationSessions() throws MigrationException {
    if (sessions == null) {
      sessions = read(servers::applicationSessions);
    } else {
      sessions = sessions.stream().filter(s -> !ended.contains(s.pid()))
          .map(s -> s.busy() ? new Session(s.pid(), s.role(), s.backendType(), "idle", false, Optional.empty()) : s)
          .toList();
    }
    return ImmutableList.copyOf(sessions);
  }

  @Override
  public void endApplicationSessions(List<Session> sessions) {
    if (!sessions.isEmpty()) {
      source("end " + sessions.size() + " application session(s) (" + roles(sessions) + ") with pg_terminate_backend");
      sessions.forEach(s -> ended.add(s.pid()));
    }
  }

  private static String roles(List<Session> sessions) {
    Map<String, Long> byRole = new TreeMap<>(sessions.stream().collect(Collectors.groupingBy(
        s -> s.role().isEmpty() ? "?" : s.role(), Collectors.counting())));
    return "roles " + byRole.entrySet().stream().map(e -> e.getKey() + (e.getValue() > 1 ? " x" + e.getValue() : ""))
        .collect(Collectors.joining(", "));
  }

  @Override
  public ImmutableList<PreparedTransaction> preparedTransactions() throws MigrationException {
    if (prepared == null) {
      prepared = new ArrayList<>(read(servers::preparedTransactions));
    }
    return ImmutableList.copyOf(prepared);
  }

  @Override
  public void rollBackPreparedTransactions(List<PreparedTransaction> transactions) {
    source("ROLLBACK PREPARED " + transactions.stream().map(t -> "'" + t.gid() + "' (in database " + t.database() + ")")
        .collect(Collectors.joining(", ")));
    if (prepared != null) {
      prepared.removeAll(transactions);
    }
  }

  @Override
  public void rollBackTargetPreparedTransactions(List<PreparedTransaction> transactions) {
    target("ROLLBACK PREPARED " + transactions.stream().map(t -> "'" + t.gid() + "' (in database " + t.database()
        + ")").collect(Collectors.joining(", ")));
  }

  @Override
  public ImmutableList<Session> targetApplicationSessions() throws MigrationException {
    return read(servers::targetApplicationSessions);
  }

  @Override
  public void endTargetApplicationSessions(List<Session> sessions) {
    if (!sessions.isEmpty()) {
      target("end " + sessions.size() + " application session(s) (" + roles(sessions) + ") with pg_terminate_backend");
    }
  }

  /** What would come over: the source's transactions still prepared at the fence. */
  @Override
  public ImmutableList<PreparedTransaction> targetPreparedTransactions() throws MigrationException {
    return preparedTransactions();
  }

  @Override
  public Lsn sourceLsn() throws MigrationException {
    return read(servers::sourceLsn);
  }

  @Override
  public Lsn finalLsn() throws MigrationException {
    finalLsn = read(servers::finalLsn);
    return finalLsn;
  }

  @Override
  public WalCheck commitsAfter(Lsn from) {
    source("read its WAL after " + from + " for commits (pg_walinspect): unfenced in a dry run, it is not read and"
        + " taken to hold none");
    return new WalCheck(from, from, ImmutableList.of(), 0);
  }

  /** Consumers confirm the final LSN once it is read: the fence left their walsenders streaming for that. */
  @Override
  public ImmutableList<Slot> sourceSlots() throws MigrationException {
    if (slots == null) {
      slots = read(servers::sourceSlots);
    }
    return slots.stream().filter(s -> !dropped.contains(s.name()))
        .map(s -> finalLsn == null || s.confirmedLsn().atLeast(finalLsn) ? s
            : new Slot(s.name(), s.plugin(), s.active(), finalLsn, s.retainedBytes()))
        .collect(ImmutableList.toImmutableList());
  }

  @Override
  public Lsn targetReplayLsn() throws MigrationException {
    if (finalLsn != null) {
      return finalLsn;
    }
    return targetThere ? read(servers::targetReplayLsn) : read(servers::sourceLsn);
  }

  @Override
  public boolean targetInRecovery() throws MigrationException {
    if (promoted) {
      return false;
    }
    return !targetThere || read(servers::targetInRecovery);
  }

  @Override
  public boolean syncsFailoverSlots() throws MigrationException {
    return targetThere && read(servers::syncsFailoverSlots);
  }

  @Override
  public void verifySessionsEndedAndLoginsRefused(List<String> roles) {
    source("verify that no session but the migrator's and logical walsenders streaming a slot is left, no"
        + " transaction is prepared, and " + (roles.isEmpty() ? "no role was to be refused" : roles + " cannot log in"));
  }

  @Override
  public void verifyReadOnlyByDefault() {
    source("verify that new sessions start read-only");
  }

  @Override
  public ImmutableList<Session> endSessions(boolean slotStreamsToo) {
    source("end every session that can run SQL but the migrator's" + (slotStreamsToo
        ? ", logical walsenders streaming a slot too" : " and logical walsenders streaming a slot"));
    return ImmutableList.of();
  }

  @Override
  public void flushWal() {
    source("commit an empty transaction, flushing the WAL before the final LSN is read");
  }

  @Override
  public void holdWal() {
    source("keep its WAL from here on: physical slot " + JdbcPostgresSql.holdSlot(spec) + ", reserving WAL now");
  }

  @Override
  public void releaseFenceHold() {
    source("drop the WAL hold " + JdbcPostgresSql.holdSlot(spec));
  }

  @Override
  public void refuseLogins(List<String> roles) {
    if (!roles.isEmpty()) {
      source("ALTER ROLE ... NOLOGIN for " + roles);
    }
  }

  @Override
  public void restoreLogins(List<String> roles) {
    if (!roles.isEmpty()) {
      source("ALTER ROLE ... LOGIN for " + roles);
    }
  }

  @Override
  public void restoreLoginsOnTarget(List<String> roles) {
    if (!roles.isEmpty()) {
      target("ALTER ROLE ... LOGIN for " + roles);
    }
  }

  @Override
  public void readOnlyByDefault(Server server, boolean on) {
    String change = (on ? "ALTER SYSTEM SET default_transaction_read_only = on"
        : "ALTER SYSTEM RESET default_transaction_read_only") + "; reload the configuration";
    if (server == Server.SOURCE) {
      source(change);
    } else {
      target(change);
    }
  }

  @Override
  public void promoteTarget() {
    target("pg_promote, wait until it is out of recovery, confirm it runs on a timeline above the source's");
    promoted = true;
  }

  @Override
  public void syncFailoverSlots() throws MigrationException {
    if (syncsFailoverSlots()) {
      target("turn sync_replication_slots off, wait for the slot sync worker to stop, pg_sync_replication_slots()");
    }
  }

  @Override
  public ImmutableList<String> createSlotsOnTarget(List<SlotPosition> slots) {
    ImmutableList.Builder<String> done = ImmutableList.builder();
    for (SlotPosition slot : slots) {
      target("create logical slot " + slot.name() + " (" + slot.plugin() + "), or verify the one synced there as a"
          + " failover slot");
      done.add(slot.name() + " created or verified (" + slot.plugin() + "; consumers resume from "
          + slot.confirmedLsn() + ")");
    }
    return done.build();
  }

  @Override
  public void writeProbeTarget() {
    target("commit a write probe (txid_current()) on a fresh connection to database" + (spec.coTenants().isEmpty()
        ? " '" + spec.database() + "'" : "s " + spec.describeDatabases().replace(" with ", ", ") + ", each"));
  }

  /** The fingerprint the run would record: the path is taken to stay healthy in a world that stands still. */
  private static final String DRY_RUN_FINGERPRINT = "dry-run";

  @Override
  public String startReverseReplication() {
    target("in every database: CREATE PUBLICATION turnout_reverse FOR ALL TABLES, then a logical slot"
        + " turnout_reverse_<database oid> (pgoutput) at the promotion point");
    return DRY_RUN_FINGERPRINT;
  }

  @Override
  public void subscribeReverse(ServerAddress publisher) {
    source("in every database: CREATE SUBSCRIPTION turnout_reverse_<database oid> connecting to " + publisher
        + " from that slot (copy_data = false, create_slot = false): the target's commits since the promotion are"
        + " applied here");
  }

  @Override
  public dev.turnout.migrator.Platform.ReverseHealth reverseHealth(String fingerprint, boolean subscribed) {
    return new dev.turnout.migrator.Platform.ReverseHealth(0, Optional.empty());
  }

  @Override
  public void refuseLoginsOnTarget(List<String> roles) {
    if (!roles.isEmpty()) {
      target("ALTER ROLE ... NOLOGIN for " + roles);
    }
  }

  @Override
  public int endTargetSessions(boolean slotStreamsToo) {
    target(slotStreamsToo ? "end the walsenders streaming CDC slots"
        : "end every session but the migrator's and the walsenders streaming logical slots");
    return 0;
  }

  @Override
  public ImmutableList<Slot> targetSlots() {
    return ImmutableList.of(); // the consumers are taken to have confirmed the target's end
  }

  @Override
  public ImmutableList<String> bringSourceSlotsForward(List<SlotPosition> slots, Lsn finalLsn) {
    ImmutableList.Builder<String> done = ImmutableList.builder();
    for (SlotPosition slot : slots) {
      source("advance logical slot " + slot.name() + " past the applied commits its consumer confirmed on the target");
      done.add(slot.name() + " advanced");
    }
    return done.build();
  }

  @Override
  public Lsn targetEndLsn() {
    target("commit one transaction to disk; read the end of its WAL");
    return new Lsn(0);
  }

  @Override
  public Lsn reverseAppliedLsn() {
    source("wait until the subscriptions have applied the target's WAL to its end");
    return new Lsn(0);
  }

  @Override
  public String bringSequencesForward() {
    source("set each sequence to the target's value where the target's is ahead");
    return "sequences brought forward on the source to the target's values";
  }

  @Override
  public void quickApplyLauncher(boolean on) {
    source(on ? "ALTER SYSTEM SET wal_retrieve_retry_interval = '100ms' where it is the default (before PostgreSQL 16:"
        + " the launcher starts the subscriptions' apply workers at most once an interval); reload the configuration"
        : "ALTER SYSTEM RESET wal_retrieve_retry_interval where the migration set it; reload the configuration");
  }

  @Override
  public void stopReverseReplication() {
    stopReverseSubscriptions();
    target("drop the slots turnout_reverse_* and the publication turnout_reverse");
  }

  @Override
  public void stopReverseSubscriptions() {
    if (!subscriptionsDropped) { // a rollback drops them before the unfence; the rest of the path goes after the route
      source("disable and drop the subscriptions turnout_reverse_*");
      subscriptionsDropped = true;
    }
  }

  private boolean subscriptionsDropped;

  @Override
  public void dropSlot(String name) {
    source("drop inactive logical slot " + name);
    dropped.add(name);
  }

  @Override
  public void installWalProof() {
    source("CREATE EXTENSION pg_walinspect in the migrator's database");
  }

  /** A target that answers is up already (the run would do nothing); else the run would create it. */
  @Override
  public Optional<String> ensureReplica(Migration.Replica replica) {
    String done = "replica " + spec.target() + " in " + replica.targetDataDir() + " is up";
    try {
      servers.targetInRecovery();
      return Optional.of(done);
    } catch (MigrationException notUp) {
      // the run creates it
    }
    dryRun.record("create a same-host replica of " + spec.source() + " in " + replica.targetDataDir() + ": physical"
        + " slot, pg_backup_start, copy " + replica.sourceDataDir() + ", pg_backup_stop; start it with "
        + replica.binDir().resolve("pg_ctl") + " and wait until it streams");
    targetThere = false;
    return Optional.of(done);
  }

  @Override
  public void close() {
    servers.close();
  }
}
