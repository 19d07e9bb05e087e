package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.AuroraPlan;
import dev.turnout.admin.v1.GetMigrationRequest;
import dev.turnout.admin.v1.MigrationOptions;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.demo.CdcConsumer;
import dev.turnout.controlplane.demo.Writer;
import dev.turnout.envoy.Endpoint;
import dev.turnout.it.aws.FakeAws;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.platform.aws.AwsSettings;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Amazon RDS to Aurora against {@link FakeAws} (AWS is not reachable here): the RDS instance and the Aurora
 * cluster's writer are real PostgreSQL 15 servers — a primary and its streaming standby — that the fake names
 * as their endpoints, promotes when the cluster is promoted, and whose sessions it ends when the instance
 * reboots. An application writes through the sidecar the whole time.
 */
class AwsMigrationTest {
  private static final String SOURCE = "orders-rds";
  private static final String CLUSTER = "orders-aurora";
  private static final String APP_GROUP = "sg-0a1b2c3d";
  private static final String FENCE_GROUP = "sg-0fe4ce";
  private static final List<String> MUTATING = List.of("CreateDBClusterParameterGroup", "ModifyDBClusterParameterGroup",
      "CreateDBCluster", "CreateDBInstance", "AddTagsToResource",
      "ModifyDBInstance", "RebootDBInstance", "PromoteReadReplicaDBCluster", "RemoveTagsFromResource");

  @TempDir Path dir;
  FakeAws aws;
  MigrationFixture f;

  @BeforeAll
  static void credentials() {
    // The SDK's default chains read these; nothing here is a real credential.
    System.setProperty("aws.accessKeyId", "AKIAFAKEFAKEFAKEFAKE");
    System.setProperty("aws.secretAccessKey", "fake-secret-for-the-fake");
    System.setProperty("aws.region", "us-east-1");
  }

  private void setUp(Duration replicaDeadline) throws Exception {
    setUp(replicaDeadline, Migrator.Failpoint.NONE);
  }

  private void setUp(Duration replicaDeadline, Migrator.Failpoint failpoint) throws Exception {
    aws = FakeAws.start();
    AwsSettings settings = new AwsSettings(Optional.of(aws.endpoint()), FENCE_GROUP, replicaDeadline,
        Duration.ofSeconds(30), Duration.ofMillis(20), Duration.ofMillis(10));
    f = new MigrationFixture(dir, failpoint, PostgresServer.BIN, false, false,
        new TurnoutConfig.MigratorSettings("postgres", Optional.empty(), Optional.of(settings)));
    aws.addSecurityGroup(APP_GROUP, "vpc-1", List.of("10.0.0.0/16"));
    aws.addSecurityGroup(FENCE_GROUP, "vpc-1", List.of("10.9.0.10/32"));
    aws.addParameterGroup("orders-pg15", "postgres15", java.util.Map.of("rds.logical_replication", "1",
        "max_wal_senders", "20", "work_mem", "65536"));
    aws.addInstance(SOURCE, "15.4", "127.0.0.1", f.source.port(), List.of(APP_GROUP), "orders-subnets",
        "orders-pg15");
    aws.endpointForNewCluster(CLUSTER, "127.0.0.1", f.target.port());
    aws.onPromote(CLUSTER, () -> sql(f.target, "select pg_promote(true, 60)"));
    aws.onReboot(SOURCE, () -> sql(f.source, "select pg_terminate_backend(pid) from pg_stat_activity"
        + " where backend_type = 'client backend' and pid <> pg_backend_pid()"));
  }

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
    if (aws != null) {
      aws.close();
    }
  }

  private static void sql(PostgresServer server, String statement) {
    try (Connection c = server.connect(); Statement s = c.createStatement()) {
      s.execute(statement);
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  private Migration.Spec spec(Optional<String> createClass, Duration window) {
    return new Migration.Spec("app", new ServerAddress("127.0.0.1", f.source.port()),
        new ServerAddress("127.0.0.1", f.target.port()),
        new Migration.Options(window, 16L * 1024 * 1024, Duration.ofSeconds(60), false),
        Optional.of(new Migration.Aurora(SOURCE, CLUSTER, createClass)));
  }

  /** A transcript line that is an AWS call ({@code "  QUIESCING: RebootDBInstance DBInstanceIdentifier=..."}). */
  private static final java.util.regex.Pattern AWS_CALL = java.util.regex.Pattern.compile("  [A-Z_]+: [A-Z][A-Za-z]+ .*");

  private List<String> mutatingCalls(List<String> lines) {
    return lines.stream().map(l -> l.replaceFirst("^\\s*[A-Z_]+: ", "").split(" ")[0])
        .filter(MUTATING::contains).toList();
  }

  @Test
  void rdsToAurora_createsTheReplica_fencesBySecurityGroup_promotes_andShiftsTheRoute_losingNoCommit() throws Exception {
    setUp(Duration.ofSeconds(60));
    int callsBefore;
    List<String> forward;
    try (Connection c = f.source.connect(); Statement s = c.createStatement()) {
      s.execute("select pg_create_logical_replication_slot('cdc', 'test_decoding')");
    }
    Migration.Spec spec = spec(Optional.of("db.r6g.large"), Duration.ofSeconds(2));
    try (CdcConsumer consumer = new CdcConsumer(f.appPort, "cdc").start();
         Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(500);
      // Under the same load as the run (the slot's consumer streaming: an inactive slot would stop both).
      List<String> planned = f.migrator().dryRun(spec);
      assertThat(planned).as("the dry run gets as far as the run").anySatisfy(l -> assertThat(l).startsWith("COMPLETED"));
      aws.throttle("DescribeDBClusters", 2);
      aws.throttle("ModifyDBInstance", 1);
      callsBefore = aws.calls().size();
      forward = planned.stream().filter(l -> !l.trim().startsWith("ROLLING_BACK")).toList();
      Migration started = f.migrator().start(spec);
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(120));
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      Thread.sleep(500);
      writer.close();

      assertThat(done.history().stream().map(Migration.Event::phase).distinct().toList())
          .as("the same phase log as the PostgreSQL platform").containsExactly(Phase.PLANNED, Phase.PREFLIGHT,
              Phase.REPLICATING, Phase.VALIDATED, Phase.QUIESCING, Phase.CATCHING_UP, Phase.PROMOTING,
              Phase.SHIFTING, Phase.VERIFYING, Phase.COMPLETED);
      assertThat(done.history()).extracting(Migration.Event::note).anySatisfy(n -> assertThat(n)
          .contains("Aurora cluster " + CLUSTER).contains("creating -> available")
          .contains("not Aurora cluster parameters, not carried: [work_mem]"));
      Set<Long> onTarget = MigrationFixture.seqs(f.target);
      assertThat(MigrationFixture.missing(writer.acknowledged(), onTarget))
          .as("every acknowledged commit is on the promoted cluster").isEmpty();
      assertThat(MigrationFixture.missing(MigrationFixture.seqs(f.source), onTarget))
          .as("nothing committed on the source after the fence").isEmpty();
      MigrationFixture.assertEveryCommitSeenOnce(consumer, writer.acknowledged());
      assertThat(f.plane.routing().table().get("app").orElseThrow().endpoint())
          .contains(new Endpoint("127.0.0.1", f.target.port()));
      assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.target.port());
    }

    assertThat(aws.instanceSecurityGroups(SOURCE)).as("fenced: only the fence group").containsExactly(FENCE_GROUP);
    assertThat(aws.tags(arn(SOURCE))).as("the original groups recorded for a rollback")
        .containsEntry("turnout:fenced-security-groups", APP_GROUP);
    assertThat(aws.clusterReplicationSource(CLUSTER)).as("promoted: no longer a replica").isEmpty();
    assertThat(aws.clusterParameterGroup(CLUSTER)).isEqualTo(CLUSTER + "-params");
    assertThat(aws.clusterParameterGroupFamily(CLUSTER + "-params")).contains("aurora-postgresql15");
    assertThat(aws.clusterParameterGroupParameters(CLUSTER + "-params")).as("the source's own parameters Aurora knows")
        .containsExactlyInAnyOrderEntriesOf(java.util.Map.of("rds.logical_replication", "1", "max_wal_senders", "20"));
    List<String> made = aws.calls().subList(callsBefore, aws.calls().size());
    assertThat(made).as("throttled calls were retried").anyMatch(c -> c.endsWith("-> Throttling"));
    assertThat(mutatingCalls(made.stream().filter(c -> !c.endsWith("-> Throttling")).toList()))
        .as("the changes the dry run listed, in its order").containsExactlyElementsOf(mutatingCalls(forward));
    assertThat(made).anySatisfy(c -> assertThat(c).startsWith("CreateDBCluster")
        .contains("ReplicationSourceIdentifier=" + arn(SOURCE)).contains("DBClusterIdentifier=" + CLUSTER)
        .as("on the source's port (not Aurora's default 5432), as a target derived from it expects")
        .contains("Port=" + f.source.port()));

    ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", f.plane.adminPort()).usePlaintext().build();
    try {
      var view = AdminGrpc.newBlockingStub(channel).getMigration(GetMigrationRequest.newBuilder()
          .setId(f.migrator().list().get(0).id()).build());
      assertThat(view.getPhase()).isEqualTo("COMPLETED");
      assertThat(view.getTarget()).isEqualTo("127.0.0.1:" + f.target.port());
      assertThat(view.getSlotsList()).extracting(s -> s.getName()).containsExactly("cdc");
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /**
   * The way back on AWS: the cluster parameter group the migrator creates sets rds.logical_replication = 1 before the
   * cluster exists; at promotion the RDS source subscribes to the cluster's writer endpoint as DescribeDBClusters
   * names it ("localhost" here, where the route holds 127.0.0.1); the application writes on Aurora; a rollback without
   * consent brings every one of those writes back to RDS, unfences it by its recorded security groups, and drops the
   * path.
   */
  @Test
  void rdsToAurora_underWrites_aRollbackWithoutConsent_bringsEveryWriteOnAuroraBackToRds() throws Exception {
    setUp(Duration.ofSeconds(60));
    aws.endpointForNewCluster(CLUSTER, "localhost", f.target.port());
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(300);
      Migration started = f.migrator().start(spec(Optional.of("db.r6g.large"), Duration.ofSeconds(1)));
      Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(120));
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      assertThat(done.progress().reverse()).as(MigrationFixture.history(done)).isPresent();
      assertThat(MigrationFixture.history(done)).contains("ok   way back: rds.logical_replication")
          .contains("rds.logical_replication = 1 for the reverse path")
          .as("preflight made RDS connect to the writer endpoint as AWS describes it, where the subscriptions connect")
          .contains("ok   way back: connection from the source: the source connected to localhost:" + f.target.port()
              + " as postgres in 1 database(s)");
      assertThat(aws.clusterParameterGroupParameters(CLUSTER + "-params")).containsEntry("rds.logical_replication", "1");
      try (Connection c = f.source.connect(); Statement s = c.createStatement();
           java.sql.ResultSet rs = s.executeQuery("select subconninfo from pg_subscription")) {
        assertThat(rs.next()).as("a subscription on the source").isTrue();
        assertThat(rs.getString(1)).as("to the cluster's writer endpoint as AWS describes it, not the route's address")
            .contains("host='localhost' port=" + f.target.port()).doesNotContain("127.0.0.1");
      }

      int before = writer.acknowledged().size();
      long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      while (writer.acknowledged().size() < before + 300 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertThat(writer.acknowledged().size()).as("writes on Aurora").isGreaterThan(before + 100);
      ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", f.plane.adminPort()).usePlaintext().build();
      try {
        var view = AdminGrpc.newBlockingStub(channel).getMigration(GetMigrationRequest.newBuilder().setId(done.id())
            .build());
        assertThat(view.getLive().getReversePath()).as("migrate status shows the path").isEqualTo("healthy");
        assertThat(view.getLive().getReverseLagBytes()).as("and its lag").isGreaterThanOrEqualTo(0);
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }

      f.migrator().rollback(done.id(), false); // no consent: the path is healthy
      Migration back = f.awaitPhase(done.id(), p -> p.isTerminal() || p == Phase.HALTED, Duration.ofSeconds(90));
      assertThat(back.phase()).as(MigrationFixture.history(back)).isEqualTo(Phase.ROLLED_BACK);
      int atRollback = writer.acknowledged().size();
      deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      while (writer.acknowledged().size() < atRollback + 50 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      writer.close();

      assertThat(MigrationFixture.missing(writer.acknowledged(), MigrationFixture.seqs(f.source)))
          .as("every acknowledged commit is on RDS, those Aurora took included").isEmpty();
      assertThat(writer.acknowledged().size()).as("the writer goes on on RDS").isGreaterThanOrEqualTo(atRollback + 50);
      assertThat(MigrationFixture.history(back)).contains("reverse replication taken down");
    }
    try (Connection c = f.source.connect(); Statement s = c.createStatement();
         java.sql.ResultSet rs = s.executeQuery("select count(*) from pg_subscription")) {
      rs.next();
      assertThat(rs.getLong(1)).as("the subscriptions are dropped").isZero();
    }
    try (Connection c = f.target.connect(); Statement s = c.createStatement();
         java.sql.ResultSet rs = s.executeQuery("select count(*) from pg_replication_slots where slot_name like"
             + " 'turnout_reverse%'")) {
      rs.next();
      assertThat(rs.getLong(1)).as("the slots on Aurora are dropped").isZero();
    }
    assertThat(aws.instanceSecurityGroups(SOURCE)).as("unfenced: its own groups back").containsExactly(APP_GROUP);
    assertThat(aws.calls()).as("the writer was never rebooted").noneMatch(c -> c.startsWith("RebootDBInstance")
        && c.contains("DBInstanceIdentifier=" + CLUSTER));
    assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.source.port());
  }

  /**
   * rds.logical_replication set in an existing cluster's parameter group but its writer not rebooted since (a static
   * parameter, "pending-reboot"): preflight names the parameter, the writer and the way out, and changes nothing (the
   * migrator does not reboot the writer). Once the operator reboots it, preflight passes it.
   */
  @Test
  void rdsLogicalReplicationNotInEffectOnTheWriter_failsPreflight_namingIt() throws Exception {
    setUp(Duration.ofSeconds(60));
    aws.addClusterParameterGroup("orders-aurora-custom", "aurora-postgresql15", java.util.Map.of());
    aws.addReplicaCluster(CLUSTER, SOURCE, "127.0.0.1", f.target.port(), "orders-aurora-custom");
    aws.setClusterParameter("orders-aurora-custom", "rds.logical_replication", "1");
    Migration started = f.migrator().start(spec(Optional.empty(), Duration.ofSeconds(1)));
    Migration done = f.awaitPhase(started.id(), p -> p.isTerminal() || p == Phase.HALTED || p == Phase.COMPLETED,
        Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(done.progress().error().orElseThrow()).contains("way back: rds.logical_replication")
        .contains("not in effect on " + CLUSTER + "-1 (pending-reboot)").contains("reboot " + CLUSTER + "-1")
        .contains("--without-reverse-replication");
    assertThat(aws.calls()).noneMatch(c -> MUTATING.contains(c.split(" ")[0]));

    aws.rebootClusterWriter(CLUSTER);
    List<String> planned = f.migrator().dryRun(spec(Optional.empty(), Duration.ofSeconds(1)));
    assertThat(planned).anySatisfy(l -> assertThat(l).contains("ok   way back: rds.logical_replication")
        .contains("in effect on " + CLUSTER + "-1"));
    assertThat(planned).as("the dry run lists the probe of RDS's connection to the writer endpoint, and makes none")
        .anySatisfy(l -> assertThat(l).contains("source 127.0.0.1:" + f.source.port() + ": in every database the"
            + " reverse path covers: CREATE SUBSCRIPTION turnout_probe_<pid> connecting to 127.0.0.1:" + f.target.port()))
        .anySatisfy(l -> assertThat(l).contains("warn way back: connection from the source: not tried in a dry run"));
  }

  /** Finalize on AWS drops the path as on PostgreSQL: the subscriptions on RDS, the slots and publication on Aurora. */
  @Test
  void finalize_dropsTheReversePath_onRdsAndAurora() throws Exception {
    setUp(Duration.ofSeconds(60));
    Migration done;
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(300);
      Migration started = f.migrator().start(spec(Optional.of("db.r6g.large"), Duration.ofSeconds(1)));
      done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
          Duration.ofSeconds(120));
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
      Thread.sleep(500);
    }
    assertThat(f.migrator().reverseHealth(done.id())).hasValueSatisfying(h -> assertThat(h.healthy())
        .as(h.broken().orElse("")).isTrue());
    Migration finalized = f.migrator().finalizeMigration(done.id());
    assertThat(finalized.phase()).as(MigrationFixture.history(finalized)).isEqualTo(Phase.FINALIZED);
    assertThat(MigrationFixture.history(f.migrator().get(done.id()).orElseThrow())).contains("reverse replication dropped");
    try (Connection c = f.source.connect(); Statement s = c.createStatement();
         java.sql.ResultSet rs = s.executeQuery("select count(*) from pg_subscription")) {
      rs.next();
      assertThat(rs.getLong(1)).as("subscriptions on RDS").isZero();
    }
    try (Connection c = f.target.connect(); Statement s = c.createStatement();
         java.sql.ResultSet rs = s.executeQuery("select (select count(*) from pg_replication_slots where slot_name like"
             + " 'turnout_reverse%'), (select count(*) from pg_publication)")) {
      rs.next();
      assertThat(rs.getLong(1)).as("slots on Aurora").isZero();
      assertThat(rs.getLong(2)).as("publications on Aurora").isZero();
    }
  }

  /** --without-reverse-replication on AWS: no path, no parameter check, and a rollback after promotion needs consent. */
  @Test
  void withoutReverseReplication_aRollbackAfterPromotionStillNeedsConsent() throws Exception {
    setUp(Duration.ofSeconds(60));
    aws.addReplicaCluster(CLUSTER, SOURCE, "127.0.0.1", f.target.port()); // the default group: logical replication off
    Migration.Spec base = spec(Optional.empty(), Duration.ofSeconds(1));
    Migration.Spec spec = new Migration.Spec(base.database(), base.source(), base.target(),
        base.options().withoutReverseReplication(true), base.aurora());
    Migration started = f.migrator().start(spec);
    Migration done = f.awaitPhase(started.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED,
        Duration.ofSeconds(120));
    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(done.progress().reverse()).isEmpty();
    assertThat(MigrationFixture.history(done)).doesNotContain("way back: rds.logical_replication")
        .contains("no reverse replication: the migration was started without reverse replication");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> f.migrator().rollback(done.id(), false))
        .isInstanceOf(dev.turnout.migrator.MigrationConflictException.class).hasMessageContaining("consent");
    try (Connection c = f.source.connect(); Statement s = c.createStatement();
         java.sql.ResultSet rs = s.executeQuery("select count(*) from pg_subscription")) {
      rs.next();
      assertThat(rs.getLong(1)).as("no subscription on the source").isZero();
    }
  }

  @Test
  void aReplicaThatNeverBecomesAvailable_passesItsDeadline_andRollsBack_leavingTheSourceUntouched() throws Exception {
    setUp(Duration.ofSeconds(2));
    aws.neverAvailable(CLUSTER);
    Migration started = f.migrator().start(spec(Optional.of("db.r6g.large"), Duration.ofSeconds(1)));
    Migration done = f.awaitPhase(started.id(), p -> p.isTerminal() || p == Phase.HALTED || p == Phase.COMPLETED,
        Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(done.progress().error().orElseThrow()).contains("deadline").contains("Aurora cluster " + CLUSTER)
        .contains("creating");
    assertThat(aws.instanceSecurityGroups(SOURCE)).containsExactly(APP_GROUP);
    assertThat(aws.tags(arn(SOURCE))).doesNotContainKey("turnout:fenced-security-groups");
    assertThat(aws.calls()).noneMatch(c -> c.startsWith("ModifyDBInstance") || c.startsWith("RebootDBInstance"));
    assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).as("still routed to the source").isEqualTo(f.source.port());
  }

  @Test
  void aFailedPromotion_rollsBack_restoringTheSecurityGroupsAndLogins() throws Exception {
    setUp(Duration.ofSeconds(60));
    aws.failPromotion(CLUSTER);
    try (Writer writer = new Writer(f.appPort, "app").start()) {
      Thread.sleep(300);
      Migration started = f.migrator().start(spec(Optional.of("db.r6g.large"), Duration.ofSeconds(1)));
      Migration done = f.awaitPhase(started.id(), p -> p.isTerminal() || p == Phase.HALTED || p == Phase.COMPLETED,
          Duration.ofSeconds(90));
      assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
      assertThat(done.progress().error().orElseThrow()).contains("PromoteReadReplicaDBCluster")
          .contains("InvalidDBClusterStateFault");
      assertThat(done.history()).extracting(Migration.Event::phase).contains(Phase.QUIESCING, Phase.PROMOTING);
      Thread.sleep(500);
      writer.close();
      assertThat(MigrationFixture.missing(writer.acknowledged(), MigrationFixture.seqs(f.source)))
          .as("every acknowledged commit is on the source")
          .isEmpty();
    }
    assertThat(aws.calls().stream().filter(c -> c.startsWith("ModifyDBInstance") && !c.endsWith("-> Throttling")))
        .as("fenced with the fence group, then given its own back")
        .satisfiesExactly(c -> assertThat(c).contains(FENCE_GROUP), c -> assertThat(c).contains(APP_GROUP));
    assertThat(aws.instanceSecurityGroups(SOURCE)).as("the recorded groups are back").containsExactly(APP_GROUP);
    assertThat(aws.tags(arn(SOURCE))).as("the record is gone with the fence").doesNotContainKey("turnout:fenced-security-groups");
    assertThat(aws.clusterReplicationSource(CLUSTER)).as("the cluster is still a replica").contains(arn(SOURCE));
    assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).as("the application reaches the source again")
        .isEqualTo(f.source.port());
    assertThat(f.target.inRecovery()).as("the target server is still a standby").isTrue();
  }

  @Test
  void aCrashAfterTheFence_thenAFailedPromotion_rollsBackFromTheRecordKeptInAws() throws Exception {
    MigrationFaultsTest.Stop stop = new MigrationFaultsTest.Stop(Phase.CATCHING_UP, Migrator.Failpoint.Point.AFTER_SAVE);
    setUp(Duration.ofSeconds(60), stop);
    aws.failPromotion(CLUSTER);
    Migration started = f.migrator().start(spec(Optional.of("db.r6g.large"), Duration.ofSeconds(1)));
    stop.awaitReached();
    assertThat(aws.instanceSecurityGroups(SOURCE)).as("fenced when the control plane dies").containsExactly(FENCE_GROUP);

    f.crashPlane();
    f.startPlane(Migrator.Failpoint.NONE);
    Migration done = f.awaitPhase(started.id(), p -> p.isTerminal() || p == Phase.HALTED || p == Phase.COMPLETED,
        Duration.ofSeconds(90));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(aws.calls().stream().filter(c -> c.startsWith("RebootDBInstance"))).as("the fence ran once").hasSize(1);
    assertThat(aws.instanceSecurityGroups(SOURCE)).as("restored by a process that only had the tag")
        .containsExactly(APP_GROUP);
    assertThat(aws.tags(arn(SOURCE))).doesNotContainKey("turnout:fenced-security-groups");
    assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.source.port());
  }

  @Test
  void aSourceShortOfStorage_failsPreflight_namingTheFigures_andChangesNothing() throws Exception {
    setUp(Duration.ofSeconds(60));
    aws.addReplicaCluster(CLUSTER, SOURCE, "127.0.0.1", f.target.port());
    aws.metric("FreeStorageSpace", 600L * 1024 * 1024);
    Migration started = f.migrator().start(spec(Optional.empty(), Duration.ofSeconds(1)));
    Migration done = f.awaitPhase(started.id(), p -> p.isTerminal() || p == Phase.HALTED || p == Phase.COMPLETED,
        Duration.ofSeconds(60));

    assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(done.progress().error().orElseThrow()).contains("storage: free 0.6 GiB");
    assertThat(done.history()).extracting(Migration.Event::note)
        .anySatisfy(n -> assertThat(n).contains("ok   aws replica").contains("a read replica of " + SOURCE))
        .anySatisfy(n -> assertThat(n).contains("ok   oldest slot lag: within one 64 MB WAL segment"));
    assertThat(aws.calls()).noneMatch(c -> MUTATING.contains(c.split(" ")[0]));
  }

  /**
   * The AWS calls of the dry run's transcript — each under its phase, with its parameters, in the order the run's
   * own code makes them (reads made, changes listed) — against a golden file, with the reverse path's SQL lines
   * (the publication, slots and subscriptions, and the writer endpoint the subscriptions connect to). Ports are the
   * only thing that varies between runs; the transcript's other lines (the history, with LSNs and system
   * identifiers, and the rest of the SQL) are not golden material. Regenerate with -Dturnout.regenerate=true.
   */
  @Test
  void theDryRun_listsEveryAwsCall_inOrder_withItsParameters() throws Exception {
    setUp(Duration.ofSeconds(60));
    List<String> planned = f.migrator().dryRun(spec(Optional.of("db.r6g.large"), Duration.ofSeconds(30)));
    assertThat(planned).as("nothing in the way: the dry run completes, then rolls back")
        .anySatisfy(l -> assertThat(l).startsWith("COMPLETED: write probe committed"))
        .last().asString().startsWith("ROLLED_BACK");
    String transcript = planned.stream().filter(l -> AWS_CALL.matcher(l).matches() || l.contains("turnout_reverse"))
        .collect(Collectors.joining("\n", "", "\n"))
        .replace("127.0.0.1:" + f.source.port(), "127.0.0.1:SOURCE_PORT")
        .replace("127.0.0.1:" + f.target.port(), "127.0.0.1:TARGET_PORT")
        .replace("Port=" + f.source.port(), "Port=SOURCE_PORT");
    Path golden = Path.of("src/test/resources/aws/dry-run.golden.txt");
    if (Boolean.getBoolean("turnout.regenerate")) {
      Files.createDirectories(golden.getParent());
      Files.writeString(golden, transcript, StandardCharsets.UTF_8);
    }
    assertThat(transcript).isEqualTo(Files.readString(golden, StandardCharsets.UTF_8));
    assertThat(aws.calls()).as("a dry run changes nothing")
        .noneMatch(c -> MUTATING.contains(c.split(" ")[0]));
    assertThat(f.migrator().list()).as("and starts nothing").isEmpty();
  }

  /**
   * One way an AWS call fails, and the line the operator must read about it (REQUEST_ID stands for the id AWS
   * gave). {@code attach}: the cluster exists; the dry run then reads no CloudWatch figures, so it meets no
   * CloudWatch failure.
   */
  private record Failure(String action, FakeAws.Fault fault, int times, boolean attach, String message) {
    String regex() {
      return java.util.Arrays.stream(message.split("REQUEST_ID", -1)).map(java.util.regex.Pattern::quote)
          .collect(Collectors.joining("[0-9a-f-]{36}"));
    }
  }

  /**
   * Every shape of AWS failure — an HTML 500 from a proxy, a bare 404, a 403 the SDK cannot parse, throttling past
   * the retries; on RDS's Query API and CloudWatch's CBOR one — reaches the operator as one line naming the call, its
   * resource, the HTTP status, the AWS code and request id or their absence, and the attempts: in the dry run's
   * answer and in the history of a real run, which changed nothing and so ends ROLLED_BACK and lets the database
   * take its next migration at once.
   */
  @Test
  void everyAwsFailure_namesTheCallAndTheAnswer_inTheDryRunAndTheHistory_andTheDatabaseTakesTheNextMigration()
      throws Exception {
    setUp(Duration.ofSeconds(60));
    String describe = "AWS DescribeDBInstances DBInstanceIdentifier=" + SOURCE + " failed";
    List<Failure> failures = List.of(
        new Failure("DescribeDBInstances", FakeAws.Fault.HTML_500, 8, false, describe + " after 8 attempts: HTTP 500,"
            + " no AWS error code, no request id: not an AWS error answer (text/html): \"500 Internal Server Error\""),
        new Failure("DescribeDBInstances", FakeAws.Fault.NOT_FOUND_404, 1, false, describe + ": HTTP 404, no AWS error"
            + " code, no request id: not an AWS error answer (text/plain): empty body"),
        new Failure("DescribeDBInstances", FakeAws.Fault.AUTH_403, 1, false, describe + ": HTTP 403, no AWS error code,"
            + " request id REQUEST_ID: not an AWS error answer (application/json): \"{\"message\":\"The security"
            + " token included in the request is invalid.\"}\""),
        new Failure("DescribeDBInstances", FakeAws.Fault.THROTTLED, 8, false, describe + " after 8 attempts: HTTP 400"
            + " Throttling, request id REQUEST_ID: Rate exceeded"),
        // --aurora-create for a source with its own parameter group, whose Aurora counterparts cannot be read.
        new Failure("DescribeEngineDefaultClusterParameters", FakeAws.Fault.NOT_FOUND_404, 1, false, "database 'app':"
            + " cannot map the parameters of " + SOURCE + "'s DB parameter group orders-pg15 onto an Aurora cluster"
            + " parameter group (aurora-postgresql15): AWS DescribeEngineDefaultClusterParameters"
            + " DBParameterGroupFamily=aurora-postgresql15 failed: HTTP 404, no AWS error code, no request id: not an"
            + " AWS error answer (text/plain): empty body"),
        // CloudWatch speaks CBOR, not XML: its failures read the same.
        new Failure("GetMetricData", FakeAws.Fault.HTML_500, 8, true, "AWS GetMetricData DBInstanceIdentifier="
            + SOURCE + " failed after 8 attempts: HTTP 500, no AWS error code, no request id: not an AWS error answer"
            + " (text/html): \"500 Internal Server Error\""));
    ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", f.plane.adminPort()).usePlaintext().build();
    try {
      var admin = AdminGrpc.newBlockingStub(channel);
      for (Failure failure : failures) {
        if (failure.attach()) {
          aws.addReplicaCluster(CLUSTER, SOURCE, "127.0.0.1", f.target.port());
        } else {
          aws.fault(failure.action(), failure.times(), failure.fault());
          io.grpc.Status dryRun = catchStatus(() -> admin.startMigration(request(true, true)));
          assertThat(dryRun.getCode()).as(failure.toString()).isEqualTo(io.grpc.Status.Code.UNAVAILABLE);
          assertThat(dryRun.getDescription()).as(failure.toString()).matches(failure.regex());
        }

        aws.fault(failure.action(), failure.times(), failure.fault());
        int callsBefore = aws.calls().size();
        String id = admin.startMigration(request(!failure.attach(), false)).getId();
        Migration done = f.awaitPhase(id, p -> p.isTerminal() || p == Phase.HALTED || p == Phase.COMPLETED,
            Duration.ofSeconds(60));

        assertThat(done.phase()).as(MigrationFixture.history(done)).isEqualTo(Phase.ROLLED_BACK);
        assertThat(done.progress().error().orElseThrow()).as(failure.toString()).matches(failure.regex());
        assertThat(done.history()).extracting(Migration.Event::note).last().asString()
            .startsWith("nothing to undo").contains(failure.action()).contains("HTTP");
        assertThat(aws.calls().subList(callsBefore, aws.calls().size())).as("the source was never touched")
            .noneMatch(c -> MUTATING.contains(c.split(" ")[0]));
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    assertThat(aws.instanceSecurityGroups(SOURCE)).containsExactly(APP_GROUP);
    assertThat(MigrationFixture.serverPortOf(f.appPort, "app")).isEqualTo(f.source.port());
  }

  private StartMigrationRequest request(boolean create, boolean dryRun) {
    return StartMigrationRequest.newBuilder().setDatabase("app").setTarget("127.0.0.1:" + f.target.port())
        .setOptions(MigrationOptions.newBuilder().setBake(com.google.protobuf.Duration.getDefaultInstance()).setDryRun(dryRun)
            .setValidationWindow(com.google.protobuf.Duration.newBuilder().setSeconds(1))
            .setAurora(AuroraPlan.newBuilder().setSourceInstance(SOURCE).setTargetCluster(CLUSTER)
                .setCreateInstanceClass(create ? "db.r6g.large" : "")))
        .build();
  }

  /**
   * Without --target the writer endpoint comes from AWS's descriptions, never from the route, which holds the
   * address the instance's name resolved to (here 127.0.0.1): a new cluster's from the instance's endpoint name and
   * port (a source on 5433, so the cluster is created on 5433 too), an existing cluster's from the cluster.
   */
  @Test
  void withoutATarget_theWriterEndpointComesFromAws_notFromTheRoutesAddress() throws Exception {
    setUp(Duration.ofSeconds(60));
    aws.addInstance("ledger-rds", "15.4", "ledger-rds.c9akciq32.us-east-1.rds.amazonaws.com", 5433,
        List.of(APP_GROUP), "orders-subnets", "default.postgres15");
    ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", f.plane.adminPort()).usePlaintext().build();
    try {
      var admin = AdminGrpc.newBlockingStub(channel);
      var created = admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("app")
          .setOptions(MigrationOptions.newBuilder().setBake(com.google.protobuf.Duration.getDefaultInstance()).setDryRun(true).setAurora(AuroraPlan.newBuilder()
              .setSourceInstance("ledger-rds").setTargetCluster("ledger-aurora").setCreateInstanceClass("db.r6g.large")))
          .build());
      assertThat(created.getSource()).isEqualTo("127.0.0.1:" + f.source.port());
      assertThat(created.getTarget()).isEqualTo("ledger-aurora.cluster-c9akciq32.us-east-1.rds.amazonaws.com:5433");
      assertThat(created.getPlannedActionsList()).as("a source on its engine's default group maps nothing, but gets a"
              + " group of rds.logical_replication = 1 for the reverse path")
          .anySatisfy(a -> assertThat(a).contains("CreateDBCluster DBClusterIdentifier=ledger-aurora")
              .contains("Port=5433").contains("DBClusterParameterGroupName=ledger-aurora-params"))
          .anySatisfy(a -> assertThat(a).contains("ModifyDBClusterParameterGroup DBClusterParameterGroupName="
              + "ledger-aurora-params Parameters=rds.logical_replication=1 (pending-reboot)"))
          .noneSatisfy(a -> assertThat(a).contains("DescribeEngineDefaultClusterParameters"));

      aws.addReplicaCluster(CLUSTER, SOURCE, "127.0.0.1", f.target.port());
      var attached = admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("app")
          .setOptions(MigrationOptions.newBuilder().setBake(com.google.protobuf.Duration.getDefaultInstance()).setDryRun(true).setAurora(AuroraPlan.newBuilder()
              .setSourceInstance(SOURCE).setTargetCluster(CLUSTER))).build());
      assertThat(attached.getTarget()).as("the existing cluster's own endpoint").isEqualTo("127.0.0.1:" + f.target.port());

      var notRds = catchStatus(() -> admin.startMigration(StartMigrationRequest.newBuilder().setDatabase("app")
          .setOptions(MigrationOptions.newBuilder().setBake(com.google.protobuf.Duration.getDefaultInstance()).setDryRun(true).setAurora(AuroraPlan.newBuilder()
              .setSourceInstance(SOURCE).setTargetCluster("other-aurora").setCreateInstanceClass("db.r6g.large")))
          .build()));
      assertThat(notRds.getCode()).isEqualTo(io.grpc.Status.Code.FAILED_PRECONDITION);
      assertThat(notRds.getDescription()).isEqualTo("database 'app': cannot derive the Aurora cluster endpoint from"
          + " the RDS instance's endpoint '127.0.0.1' (not an RDS endpoint name); give the target as host:port");
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    assertThat(f.migrator().list()).isEmpty();
  }

  private static io.grpc.Status catchStatus(Runnable call) {
    try {
      call.run();
    } catch (StatusRuntimeException e) {
      return e.getStatus();
    }
    throw new AssertionError("no error");
  }

  private static String arn(String instance) {
    return "arn:aws:rds:us-east-1:" + FakeAws.ACCOUNT + ":db:" + instance;
  }
}
