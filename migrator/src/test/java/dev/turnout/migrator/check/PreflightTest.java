package dev.turnout.migrator.check;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

/**
 * The preflight judgement on facts alone, no server: what blocks a migration, what only warns, and what preflight
 * is told to change once nothing blocks.
 */
class PreflightTest {
  private static final Instant NOW = Instant.parse("2026-03-01T12:00:00Z");
  private static final ImmutableMap<String, String> SETTINGS = ImmutableMap.<String, String>builder()
      .put("max_connections", "100").put("max_worker_processes", "8").put("max_wal_senders", "10")
      .put("max_prepared_transactions", "10").put("max_locks_per_transaction", "64").put("max_replication_slots", "10")
      .put("wal_level", "logical").put("server_version_num", "150007").build();

  /** A source at 10.0.0.5 and its healthy streaming standby at 10.0.0.6, nothing in the fence's way. */
  private static ServerFacts healthy() {
    ServerFacts.Source source = new ServerFacts.Source(new ServerFacts.Identity("10.0.0.5", 5432, false, "7312"), 1,
        SETTINGS, ImmutableSet.of("plpgsql", "pg_walinspect"), ImmutableList.of());
    ServerFacts.Target target = new ServerFacts.Target(new ServerFacts.Identity("10.0.0.6", 5432, true, "7312"),
        SETTINGS, ImmutableSet.of("plpgsql", "pg_walinspect", "postgis"),
        Optional.of(new ServerFacts.Receiver("streaming", "10.0.0.5", 5432, 1)));
    ServerFacts.Fence fence = new ServerFacts.Fence(new ServerFacts.WalProof(true, true, "postgres"),
        new ServerFacts.HoldSlot("turnout_fence_app", false, 2, 10), ImmutableList.of(),
        new ServerFacts.StandbyRoles(ImmutableList.of(), ImmutableList.of()));
    return new ServerFacts(source, Optional.of(target), ImmutableList.of(), fence);
  }

  private static Preflight.Verdict judge(ServerFacts facts) {
    return Preflight.judge(PreflightFacts.of(facts), false, NOW);
  }

  private static Check named(Preflight.Verdict verdict, String name) {
    return verdict.checks().stream().filter(c -> c.name().equals(name)).findFirst().orElseThrow(
        () -> new AssertionError("no check '" + name + "' in " + verdict.checks()));
  }

  private static ServerFacts withTarget(ServerFacts f, UnaryOperator<ServerFacts.Target> change) {
    return new ServerFacts(f.source(), f.target().map(change), f.logicalSlots(), f.fence());
  }

  private static ServerFacts withFence(ServerFacts f, ServerFacts.Fence fence) {
    return new ServerFacts(f.source(), f.target(), f.logicalSlots(), fence);
  }

  @Test
  void aStreamingStandbyOfTheSource_passesEveryCheck_andPreflightChangesNothing() {
    Preflight.Verdict verdict = judge(healthy());

    assertThat(verdict.checks()).allSatisfy(c -> assertThat(c.ok()).as(c.toString()).isTrue());
    assertThat(verdict.blocking()).isEmpty();
    assertThat(verdict.slotsToDrop()).isEmpty();
    assertThat(verdict.installWalProof()).isFalse();
    assertThat(named(verdict, "target streams from source"))
        .hasToString("ok   target streams from source: WAL receiver streaming from 10.0.0.5:5432 (source is 10.0.0.5:5432)");
  }

  @Test
  void aStrangerAsTarget_blocks_namingTheRecoveryStateAndBothSystemIdentifiers() {
    ServerFacts stranger = withTarget(healthy(), t -> new ServerFacts.Target(
        new ServerFacts.Identity("10.0.0.6", 5432, false, "9999"), t.settings(), t.availableExtensions(), Optional.empty()));

    Preflight.Verdict verdict = judge(stranger);

    assertThat(verdict.blocking()).extracting(Check::toString).containsExactly(
        "FAIL target is a standby: 10.0.0.6:5432 is not in recovery (already promoted?)",
        "FAIL same system identifier: source 7312, target 9999");
    assertThat(verdict.checks()).extracting(Check::name).as("a primary has no receiver or timeline to compare")
        .doesNotContain("target streams from source", "same timeline");
  }

  @Test
  void aStandbyStreamingFromAnotherServer_orOnAnotherTimeline_blocks() {
    ServerFacts elsewhere = withTarget(healthy(), t -> new ServerFacts.Target(t.identity(), t.settings(),
        t.availableExtensions(), Optional.of(new ServerFacts.Receiver("streaming", "10.0.0.9", 5433, 2))));

    Preflight.Verdict verdict = judge(elsewhere);

    assertThat(verdict.blocking()).extracting(Check::name).containsExactly("target streams from source", "same timeline");
    assertThat(named(verdict, "same timeline").detail()).isEqualTo("source timeline 1, target receives timeline 2");
  }

  @Test
  void aTargetWithLowerLimits_blocksOnEachSetting_namingBothValues() {
    Map<String, String> lower = new java.util.HashMap<>(SETTINGS);
    lower.put("max_connections", "50");
    lower.put("max_prepared_transactions", "0");
    ServerFacts facts = withTarget(healthy(), t -> new ServerFacts.Target(t.identity(), ImmutableMap.copyOf(lower),
        t.availableExtensions(), t.receiver()));

    Preflight.Verdict verdict = judge(facts);

    assertThat(verdict.blocking()).extracting(Check::toString).containsExactly(
        "FAIL parameter max_connections: target 50, source 100: the target needs at least the source's value",
        "FAIL parameter max_prepared_transactions: target 0, source 10: the target needs at least the source's value");
  }

  @Test
  void aDifferentMajorVersion_orAMissingExtension_blocks() {
    Map<String, String> newer = new java.util.HashMap<>(SETTINGS);
    newer.put("server_version_num", "160002");
    ServerFacts facts = withTarget(healthy(), t -> new ServerFacts.Target(t.identity(), ImmutableMap.copyOf(newer),
        ImmutableSet.of("plpgsql"), t.receiver()));

    assertThat(judge(facts).blocking()).extracting(Check::toString).containsExactly(
        "FAIL parameter server_version_num: target 160002, source 150007",
        "FAIL extensions available on target: missing on the target: [pg_walinspect]");
  }

  @Test
  void anInactiveSlot_blocksNamingItsRetainedWal_unlessTheOperatorAllowsDroppingIt_thenItIsToBeDropped() {
    ServerFacts base = healthy();
    ServerFacts facts = new ServerFacts(base.source(), base.target(), ImmutableList.of(
        new ServerFacts.Slot("cdc", "pgoutput", true, "0/3000148", 1024),
        new ServerFacts.Slot("old", "test_decoding", false, "0/1000000", 50L << 20)), base.fence());

    Preflight.Verdict refused = Preflight.judge(PreflightFacts.of(facts), false, NOW);
    Preflight.Verdict allowed = Preflight.judge(PreflightFacts.of(facts), true, NOW);

    assertThat(refused.blocking()).singleElement().hasToString("FAIL logical slot old: inactive slot retaining"
        + " 50.0 MiB of WAL (52428800 bytes): its consumer is not running, so it cannot reach the cutover position;"
        + " start the consumer or allow dropping stale slots");
    assertThat(refused.slotsToDrop()).isEmpty();
    assertThat(named(refused, "logical slot cdc"))
        .hasToString("ok   logical slot cdc: pgoutput, active, confirmed 0/3000148, retains 0.0 MiB");
    assertThat(allowed.blocking()).isEmpty();
    assertThat(allowed.slotsToDrop()).containsExactly("old");
  }

  @Test
  void logicalSlotsOnTheSource_needALogicalWalLevelOnTheTarget() {
    Map<String, String> replica = new java.util.HashMap<>(SETTINGS);
    replica.put("wal_level", "replica");
    ServerFacts base = withTarget(healthy(), t -> new ServerFacts.Target(t.identity(), ImmutableMap.copyOf(replica),
        t.availableExtensions(), t.receiver()));
    ServerFacts withSlot = new ServerFacts(base.source(), base.target(),
        ImmutableList.of(new ServerFacts.Slot("cdc", "pgoutput", true, "0/1", 0)), base.fence());

    assertThat(judge(base).blocking()).as("no slot to recreate: replica is enough").isEmpty();
    assertThat(judge(withSlot).blocking()).singleElement().hasToString("FAIL parameter wal_level: target replica; the"
        + " source has logical slots to recreate, which needs logical");
  }

  @Test
  void theFence_needsPgWalinspectAndASlot_andWarnsOfPreparedTransactionsAndASuperuserStandbyRole() {
    ServerFacts facts = withFence(healthy(), new ServerFacts.Fence(new ServerFacts.WalProof(false, false, "postgres"),
        new ServerFacts.HoldSlot("turnout_fence_app", false, 10, 10),
        ImmutableList.of(new ServerFacts.Prepared("g1", NOW.minusSeconds(12), "app", "orders")),
        new ServerFacts.StandbyRoles(ImmutableList.of("postgres"), ImmutableList.of("postgres"))));

    Preflight.Verdict verdict = judge(facts);

    assertThat(verdict.blocking()).extracting(Check::name)
        .containsExactly("WAL proof (pg_walinspect)", "replication slot for the fence");
    assertThat(named(verdict, "replication slot for the fence").detail()).startsWith("10 of 10 slots used");
    assertThat(named(verdict, "prepared transactions")).satisfies(c -> {
      assertThat(c.blocking()).isFalse();
      assertThat(c.toString()).isEqualTo("warn prepared transactions: 1 on the source: 'g1' (owner app, database"
          + " orders, prepared 12 s ago); at cutover the migration waits the quiesce grace for them, then stops"
          + " unless told to roll them back");
    });
    assertThat(named(verdict, "standby's role").toString()).startsWith("warn standby's role: the standby streams as"
        + " [postgres]").contains("[postgres] is a superuser");
    assertThat(verdict.installWalProof()).as("nothing to install: the server has none").isFalse();
  }

  @Test
  void anAvailableButUninstalledPgWalinspect_passes_andIsToBeInstalled() {
    ServerFacts facts = withFence(healthy(), new ServerFacts.Fence(new ServerFacts.WalProof(true, false, "postgres"),
        healthy().fence().holdSlot(), ImmutableList.of(), healthy().fence().standby()));

    Preflight.Verdict verdict = judge(facts);

    assertThat(named(verdict, "WAL proof (pg_walinspect)"))
        .hasToString("ok   WAL proof (pg_walinspect): installed once preflight passes, in database postgres");
    assertThat(verdict.installWalProof()).isTrue();
  }

  @Test
  void unloggedTables_onlyWarn() {
    ServerFacts base = healthy();
    ServerFacts.Source source = new ServerFacts.Source(base.source().identity(), 1, SETTINGS,
        base.source().extensions(), ImmutableList.of("public.sessions"));
    Preflight.Verdict verdict = judge(new ServerFacts(source, base.target(), base.logicalSlots(), base.fence()));

    assertThat(verdict.blocking()).isEmpty();
    assertThat(named(verdict, "unlogged tables"))
        .hasToString("warn unlogged tables: not replicated, empty on the target after cutover: public.sessions");
  }

  @Test
  void aTargetNotThereYet_inADryRun_isSaidOnce_andNothingAboutItBlocks() {
    ServerFacts facts = new ServerFacts(healthy().source(), Optional.empty(), ImmutableList.of(), healthy().fence());

    Preflight.Verdict verdict = judge(facts);

    assertThat(verdict.blocking()).isEmpty();
    assertThat(named(verdict, "target").toString()).startsWith("warn target: not there yet: this run creates it");
    assertThat(verdict.checks()).extracting(Check::name).doesNotContain("target is a standby", "same system identifier");
  }

  // AWS.

  private static final String SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:db:orders-rds";
  private static final AwsFacts.Names NAMES = new AwsFacts.Names("orders-rds", "orders-aurora", "orders-aurora-1",
      "10.0.0.5:5432", "orders-aurora.cluster-c9.us-east-1.rds.amazonaws.com:5432");

  private static AwsFacts.Instance instance(String status, boolean routed, String... replicas) {
    return new AwsFacts.Instance(SOURCE_ARN, new AwsFacts.Engine("postgres", "15.4"), status,
        Optional.of(new AwsFacts.Endpoint("orders-rds.c9.us-east-1.rds.amazonaws.com", 5432, routed)),
        ImmutableList.copyOf(replicas));
  }

  private static AwsFacts.Cluster cluster(String replicationSource, String version) {
    return new AwsFacts.Cluster("arn:aws:rds:us-east-1:123456789012:cluster:orders-aurora",
        new AwsFacts.Engine("aurora-postgresql", version), "available", Optional.ofNullable(replicationSource),
        Optional.of(new AwsFacts.Endpoint("orders-aurora.cluster-c9.us-east-1.rds.amazonaws.com", 5432, true)));
  }

  private static AwsFacts.Metrics metrics(double freeBytes, double replicaLagSeconds) {
    return new AwsFacts.Metrics(Duration.ofMinutes(10), ImmutableMap.of("FreeStorageSpace", ImmutableList.of(freeBytes),
        "TransactionLogsDiskUsage", ImmutableList.of(64.0 * (1 << 20)), "TransactionLogsGeneration",
        ImmutableList.of(1200.0, 1300.0), "OldestReplicationSlotLag", ImmutableList.of(0.0)),
        ImmutableList.of(replicaLagSeconds));
  }

  private static final AwsFacts.FenceGroup FENCE = new AwsFacts.FenceGroup("sg-0fe4ce", Optional.empty(),
      Optional.of("vpc-1"), ImmutableList.of("10.9.0.10/32"), Optional.of("vpc-1"));

  private static Preflight.Verdict judgeAws(AwsFacts aws) {
    return Preflight.judge(new PreflightFacts(Optional.of(healthy()), Optional.of(aws)), false, NOW);
  }

  @Test
  void anRdsInstanceAndItsAuroraReplica_pass_andTheServerChecksFollowTheAwsOnes() {
    Preflight.Verdict verdict = judgeAws(new AwsFacts(NAMES, Optional.of(instance("available", true, "orders-aurora")),
        Optional.of(cluster(SOURCE_ARN, "15.4")), Optional.of(FENCE), Optional.of(metrics(100e9, 2))));

    assertThat(verdict.blocking()).isEmpty();
    assertThat(verdict.checks()).extracting(Check::name).startsWith("aws source", "aws replica",
        "aws one aurora replica", "aws region and account", "aws engine version", "aws fence group", "storage",
        "wal generation", "oldest slot lag", "aurora replica lag", "source is a primary");
    assertThat(named(verdict, "aws replica").toString()).isEqualTo("ok   aws replica: Aurora cluster orders-aurora"
        + " aurora-postgresql 15.4, available, a read replica of orders-rds, writer endpoint " + NAMES.target());
    assertThat(named(verdict, "oldest slot lag").detail()).isEqualTo("within one 64 MB WAL segment (the metric's step)");
  }

  @Test
  void aMissingClusterOrInstance_isTheOneFinding() {
    Preflight.Verdict verdict = Preflight.judge(new PreflightFacts(Optional.empty(), Optional.of(new AwsFacts(NAMES,
        Optional.of(instance("available", true)), Optional.empty(), Optional.empty(), Optional.empty()))), false, NOW);

    assertThat(verdict.checks()).singleElement()
        .hasToString("FAIL aws resources: Aurora cluster 'orders-aurora' does not exist");
  }

  @Test
  void anInstanceThatIsNotTheRoute_aClusterReplicatingFromElsewhere_anotherReplica_andAnOlderMinor_eachBlock() {
    Preflight.Verdict verdict = judgeAws(new AwsFacts(NAMES,
        Optional.of(instance("modifying", false, "orders-aurora", "arn:aws:rds:us-east-1:123456789012:cluster:reports")),
        Optional.of(cluster("arn:aws:rds:us-east-1:123456789012:db:other", "15.2")), Optional.of(FENCE),
        Optional.of(metrics(100e9, 2))));

    assertThat(verdict.blocking()).extracting(Check::name).containsExactly("aws source", "aws replica",
        "aws one aurora replica", "aws engine version");
    assertThat(named(verdict, "aws source").detail()).isEqualTo("RDS instance orders-rds engine postgres 15.4,"
        + " modifying, endpoint orders-rds.c9.us-east-1.rds.amazonaws.com:5432 is not the database's route"
        + " 10.0.0.5:5432 (must be available)");
    assertThat(named(verdict, "aws one aurora replica").detail()).contains("already replicates to"
        + " [arn:aws:rds:us-east-1:123456789012:cluster:reports]");
  }

  @Test
  void aFenceGroupInAnotherVpc_orNotThere_blocks() {
    AwsFacts.FenceGroup elsewhere = new AwsFacts.FenceGroup("sg-0fe4ce", Optional.empty(), Optional.of("vpc-2"),
        ImmutableList.of(), Optional.of("vpc-1"));
    AwsFacts.FenceGroup missing = new AwsFacts.FenceGroup("sg-0fe4ce", Optional.empty(), Optional.empty(),
        ImmutableList.of(), Optional.of("vpc-1"));
    AwsFacts base = new AwsFacts(NAMES, Optional.of(instance("available", true)), Optional.of(cluster(SOURCE_ARN, "15.4")),
        Optional.empty(), Optional.of(metrics(100e9, 2)));

    assertThat(named(judgeAws(new AwsFacts(base.names(), base.source(), base.cluster(), Optional.of(elsewhere),
        base.metrics())), "aws fence group")).hasToString("FAIL aws fence group: sg-0fe4ce is in vpc-2, the source in"
            + " vpc-1; admits nothing (it must admit the control plane and no application)");
    assertThat(named(judgeAws(new AwsFacts(base.names(), base.source(), base.cluster(), Optional.of(missing),
        base.metrics())), "aws fence group")).hasToString("FAIL aws fence group: sg-0fe4ce does not exist");
  }

  @Test
  void littleFreeStorage_blocks_whileAReplicaLaggingOrWithoutDatapoints_onlyWarns() {
    AwsFacts facts = new AwsFacts(NAMES, Optional.of(instance("available", true)), Optional.of(cluster(SOURCE_ARN, "15.4")),
        Optional.of(FENCE), Optional.of(metrics(600.0 * (1 << 20), 45)));

    Preflight.Verdict verdict = judgeAws(facts);

    assertThat(verdict.blocking()).singleElement().satisfies(c -> assertThat(c.toString())
        .startsWith("FAIL storage: free 0.6 GiB, WAL on disk 64 MiB (at least 1.0 GiB free needed"));
    assertThat(named(verdict, "aurora replica lag")).hasToString("warn aurora replica lag: at most 45 s over 10 min");
    AwsFacts.Metrics none = new AwsFacts.Metrics(Duration.ofMinutes(10), ImmutableMap.of(), ImmutableList.of());
    Preflight.Verdict silent = judgeAws(new AwsFacts(NAMES, facts.source(), facts.cluster(), facts.fenceGroup(),
        Optional.of(none)));
    assertThat(silent.blocking()).isEmpty();
    assertThat(named(silent, "aurora replica lag")).hasToString("warn aurora replica lag: no datapoints for orders-aurora-1");
  }

  private static Preflight.Verdict judgeAwsWayBack(AwsFacts.LogicalReplication l, Preflight.WayBack wayBack) {
    AwsFacts aws = new AwsFacts(NAMES, Optional.of(instance("available", true)), Optional.of(cluster(SOURCE_ARN, "15.4")),
        Optional.of(FENCE), Optional.of(metrics(100.0 * (1L << 30), 0)), Optional.of(l));
    return Preflight.judge(new PreflightFacts(Optional.of(healthy()), Optional.of(aws)), false, Optional.empty(), wayBack,
        NOW);
  }

  @Test
  void onAurora_rdsLogicalReplicationMustBeSetAndInEffectOnTheWriter_unlessTheMigrationGoesWithoutAWayBack() {
    String name = "way back: rds.logical_replication";
    Check off = named(judgeAwsWayBack(new AwsFacts.LogicalReplication("default.aurora-postgresql15", "0",
        Optional.of("in-sync")), REVERSE), name);
    assertThat(off.blocks()).isTrue();
    assertThat(off.detail()).contains("rds.logical_replication = 0 in default.aurora-postgresql15")
        .contains("reboot orders-aurora-1").contains("--without-reverse-replication");

    Check pending = named(judgeAwsWayBack(new AwsFacts.LogicalReplication("orders-aurora-params", "1",
        Optional.of("pending-reboot")), REVERSE), name);
    assertThat(pending.blocks()).isTrue();
    assertThat(pending.detail()).contains("not in effect on orders-aurora-1 (pending-reboot)")
        .contains("the migrator does not");

    assertThat(named(judgeAwsWayBack(new AwsFacts.LogicalReplication("orders-aurora-params", "1",
        Optional.of("in-sync")), REVERSE), name)).hasToString("ok   " + name
            + ": rds.logical_replication = 1 in orders-aurora-params, in effect on orders-aurora-1");
    assertThat(named(judgeAwsWayBack(new AwsFacts.LogicalReplication("orders-aurora-params", "1", Optional.empty()),
        REVERSE), name).ok()).as("a cluster without a writer yet: the writer starts with it").isTrue();

    Preflight.Verdict declined = judgeAwsWayBack(new AwsFacts.LogicalReplication("default.aurora-postgresql15", "0",
        Optional.of("in-sync")), new Preflight.WayBack(false, true));
    assertThat(declined.checks()).extracting(Check::name).doesNotContain(name);
    assertThat(declined.blocking()).isEmpty();
  }

  private static ServerFacts withWayBack(ServerFacts f, ServerFacts.WayBack wayBack) {
    return new ServerFacts(f.source(), f.target(), f.logicalSlots(), f.fence(), Optional.of(wayBack));
  }

  private static final Preflight.WayBack REVERSE = new Preflight.WayBack(true, false);

  @Test
  void theWayBack_isCheckedBeforeTheWayForward_andATableWithoutAPrimaryKeyBlocks_namingIt() {
    ServerFacts facts = withWayBack(healthy(), new ServerFacts.WayBack(ImmutableList.of("orders.public.audit_log"),
        ImmutableMap.of(), true));

    Preflight.Verdict verdict = Preflight.judge(PreflightFacts.of(facts), false, Optional.empty(), REVERSE, NOW);

    assertThat(verdict.checks().get(0).name()).as("the way back first").startsWith("way back");
    Check identity = named(verdict, "way back: replica identity");
    assertThat(identity.blocks()).isTrue();
    assertThat(identity.detail()).contains("1 table(s) with neither a primary key nor a replica identity")
        .contains("orders.public.audit_log").contains("--without-reverse-replication");
    assertThat(named(verdict, "way back: large objects").ok()).isTrue();
    assertThat(named(verdict, "way back: target wal_level").ok()).isTrue();
    assertThat(named(verdict, "way back: subscription role").ok()).isTrue();
  }

  @Test
  void largeObjects_aTargetWithoutLogicalWal_andAMigratorThatIsNoSuperuser_eachBlock() {
    ServerFacts facts = withWayBack(withTarget(healthy(), t -> new ServerFacts.Target(t.identity(),
        ImmutableMap.<String, String>builder().putAll(Map.of("wal_level", "replica", "max_replication_slots", "10"))
            .build(), t.availableExtensions(), t.receiver())),
        new ServerFacts.WayBack(ImmutableList.of(), ImmutableMap.of("orders", 3L), false));

    Preflight.Verdict verdict = Preflight.judge(PreflightFacts.of(facts), false, Optional.empty(), REVERSE, NOW);

    assertThat(named(verdict, "way back: large objects").blocks()).isTrue();
    assertThat(named(verdict, "way back: large objects").detail()).contains("3 large object(s) in use {orders=3}");
    assertThat(named(verdict, "way back: target wal_level").blocks()).isTrue();
    assertThat(named(verdict, "way back: subscription role").blocks()).isTrue();
  }

  private static ServerFacts.WayBack reaching(ServerFacts.Reach reach) {
    return new ServerFacts.WayBack(ImmutableList.of(), ImmutableMap.of(), true).withReach(reach);
  }

  @Test
  void aSourceThatReachedTheTarget_passes_namingTheAddressTheRoleAndTheDatabases() {
    ServerFacts facts = withWayBack(healthy(), reaching(new ServerFacts.Reach("10.0.0.6:5432", "turnout", 3,
        ImmutableList.of(), true)));

    Preflight.Verdict verdict = Preflight.judge(PreflightFacts.of(facts), false, Optional.empty(), REVERSE, NOW);

    assertThat(verdict.blocking()).isEmpty();
    assertThat(named(verdict, "way back: connection from the source")).hasToString("ok   way back: connection from"
        + " the source: the source connected to 10.0.0.6:5432 as turnout in 3 database(s), as the reverse path's"
        + " subscriptions will");
  }

  @Test
  void aSourceThatCannotReachTheTarget_blocks_namingEachDatabaseAndPostgresMessage_andTheWayOut() {
    ServerFacts facts = withWayBack(healthy(), reaching(new ServerFacts.Reach("10.0.0.6:5432", "turnout", 2,
        ImmutableList.of(new ServerFacts.Refusal("orders", "could not connect to the publisher: connection to server at"
            + " \"10.0.0.6\", port 5432 failed: FATAL: no pg_hba.conf entry for replication connection from host"
            + " \"10.0.0.5\", user \"turnout\", no encryption")), true)));

    Preflight.Verdict verdict = Preflight.judge(PreflightFacts.of(facts), false, Optional.empty(), REVERSE, NOW);

    Check reach = named(verdict, "way back: connection from the source");
    assertThat(verdict.blocking()).containsExactly(reach);
    assertThat(reach.detail()).startsWith("the source could not connect to 10.0.0.6:5432 as turnout in 1 of 2"
        + " database(s): orders: could not connect to the publisher: connection to server at \"10.0.0.6\"")
        .contains("no pg_hba.conf entry").contains("pg_hba.conf for the role and databases")
        .contains("password").contains("--without-reverse-replication");
  }

  @Test
  void aDryRun_didNotTryTheSourcesConnection_andSaysSo_withoutBlocking() {
    ServerFacts facts = withWayBack(healthy(), reaching(ServerFacts.Reach.notTried("10.0.0.6:5432")));

    Preflight.Verdict verdict = Preflight.judge(PreflightFacts.of(facts), false, Optional.empty(), REVERSE, NOW);

    assertThat(verdict.blocking()).isEmpty();
    assertThat(named(verdict, "way back: connection from the source")).hasToString("warn way back: connection from"
        + " the source: not tried in a dry run: the run makes and drops a disabled subscription without a slot on the"
        + " source, connecting to 10.0.0.6:5432 in every database");
  }

  @Test
  void withoutReverseReplication_theWayBackOnlyWarns_andNothingOfItBlocks() {
    ServerFacts facts = withWayBack(healthy(), new ServerFacts.WayBack(ImmutableList.of("orders.public.audit_log"),
        ImmutableMap.of("orders", 3L), false).withReach(new ServerFacts.Reach("10.0.0.6:5432", "turnout", 1,
            ImmutableList.of(new ServerFacts.Refusal("orders", "could not connect to the publisher")), true)));

    Preflight.Verdict verdict = Preflight.judge(PreflightFacts.of(facts), false, Optional.empty(),
        new Preflight.WayBack(false, true), NOW);

    assertThat(verdict.blocking()).isEmpty();
    assertThat(named(verdict, "way back").detail()).contains("a rollback after promotion needs consent");
  }

  @Test
  void aPlatformWithoutAReversePath_isNotAskedAboutTheWayBack() {
    ServerFacts facts = withWayBack(healthy(), new ServerFacts.WayBack(ImmutableList.of("orders.public.audit_log"),
        ImmutableMap.of(), true));

    Preflight.Verdict verdict = Preflight.judge(PreflightFacts.of(facts), false, NOW);

    assertThat(verdict.checks()).noneSatisfy(c -> assertThat(c.name()).startsWith("way back"));
  }
}
