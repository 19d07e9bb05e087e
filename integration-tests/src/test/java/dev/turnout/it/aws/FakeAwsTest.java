package dev.turnout.it.aws;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.client.builder.AwsClientBuilder;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.client.builder.SdkSyncClientBuilder;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.retries.api.BackoffStrategy;
import software.amazon.awssdk.services.cloudwatch.CloudWatchClient;
import software.amazon.awssdk.services.cloudwatch.model.Dimension;
import software.amazon.awssdk.services.cloudwatch.model.GetMetricDataResponse;
import software.amazon.awssdk.services.cloudwatch.model.MetricDataQuery;
import software.amazon.awssdk.services.cloudwatch.model.MetricDataResult;
import software.amazon.awssdk.services.cloudwatch.model.StatusCode;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Ec2Exception;
import software.amazon.awssdk.services.ec2.model.SecurityGroup;
import software.amazon.awssdk.services.rds.RdsClient;
import software.amazon.awssdk.services.rds.model.ApplyMethod;
import software.amazon.awssdk.services.rds.model.DBCluster;
import software.amazon.awssdk.services.rds.model.DBClusterParameterGroup;
import software.amazon.awssdk.services.rds.model.DBInstance;
import software.amazon.awssdk.services.rds.model.DbClusterParameterGroupNotFoundException;
import software.amazon.awssdk.services.rds.model.DbInstanceNotFoundException;
import software.amazon.awssdk.services.rds.model.DbParameterGroupAlreadyExistsException;
import software.amazon.awssdk.services.rds.model.DbParameterGroupNotFoundException;
import software.amazon.awssdk.services.rds.model.DescribeDbParametersResponse;
import software.amazon.awssdk.services.rds.model.EngineDefaults;
import software.amazon.awssdk.services.rds.model.Parameter;
import software.amazon.awssdk.services.rds.model.RdsException;
import software.amazon.awssdk.services.rds.model.Tag;
import software.amazon.awssdk.services.rds.model.VpcSecurityGroupMembership;

/** Drives every operation of {@link FakeAws} through the real AWS SDK v2 clients: the answers parse. */
class FakeAwsTest {

  private static final String SOURCE_ARN = "arn:aws:rds:us-east-1:" + FakeAws.ACCOUNT + ":db:orders";

  private FakeAws fake;
  private RdsClient rds;
  private Ec2Client ec2;
  private CloudWatchClient cloudWatch;

  @BeforeEach
  void start() throws Exception {
    fake = FakeAws.start();
    fake.addSecurityGroup("sg-old", "vpc-1", List.of("10.0.0.0/16"));
    fake.addSecurityGroup("sg-new", "vpc-1", List.of("10.0.0.0/16", "10.1.0.0/16"));
    fake.addInstance("orders", "16.4", "orders.abc.us-east-1.rds.amazonaws.com", 5432, List.of("sg-old"),
        "private-subnets", "orders-params");
    rds = client(RdsClient.builder());
    ec2 = client(Ec2Client.builder());
    cloudWatch = client(CloudWatchClient.builder());
  }

  /** A real client against the fake; standard retries without backoff so throttling tests stay fast. */
  private <B extends AwsClientBuilder<B, C> & SdkSyncClientBuilder<B, C>, C> C client(B builder) {
    return builder.endpointOverride(fake.endpoint())
        .region(Region.US_EAST_1)
        .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create("AKIDFAKE", "fake-secret")))
        .httpClientBuilder(UrlConnectionHttpClient.builder())
        .overrideConfiguration(o -> o.retryStrategy(AwsRetryStrategy.standardRetryStrategy().toBuilder()
            .backoffStrategy(BackoffStrategy.retryImmediately())
            .throttlingBackoffStrategy(BackoffStrategy.retryImmediately())
            .build()))
        .build();
  }

  @AfterEach
  void stop() {
    rds.close();
    ec2.close();
    cloudWatch.close();
    fake.close();
  }

  private DBInstance instance(String id) {
    return rds.describeDBInstances(r -> r.dbInstanceIdentifier(id)).dbInstances().get(0);
  }

  private DBCluster cluster(String id) {
    return rds.describeDBClusters(r -> r.dbClusterIdentifier(id)).dbClusters().get(0);
  }

  @Test
  void describeInstance_returnsDocumentedShape() {
    DBInstance i = instance("orders");

    assertThat(i.dbInstanceIdentifier()).isEqualTo("orders");
    assertThat(i.dbInstanceArn()).isEqualTo(SOURCE_ARN);
    assertThat(i.dbInstanceClass()).isEqualTo("db.r6g.large");
    assertThat(i.engine()).isEqualTo("postgres");
    assertThat(i.engineVersion()).isEqualTo("16.4");
    assertThat(i.dbInstanceStatus()).isEqualTo("available");
    assertThat(i.endpoint().address()).isEqualTo("orders.abc.us-east-1.rds.amazonaws.com");
    assertThat(i.endpoint().port()).isEqualTo(5432);
    assertThat(i.allocatedStorage()).isEqualTo(100);
    assertThat(i.vpcSecurityGroups())
        .extracting(VpcSecurityGroupMembership::vpcSecurityGroupId, VpcSecurityGroupMembership::status)
        .containsExactly(tuple("sg-old", "active"));
    assertThat(i.dbSubnetGroup().dbSubnetGroupName()).isEqualTo("private-subnets");
    assertThat(i.dbSubnetGroup().vpcId()).isEqualTo("vpc-1");
    assertThat(i.dbParameterGroups().get(0).dbParameterGroupName()).isEqualTo("orders-params");
    assertThat(i.dbParameterGroups().get(0).parameterApplyStatus()).isEqualTo("in-sync");
    assertThat(i.dbClusterIdentifier()).isNull();
    assertThat(i.readReplicaDBClusterIdentifiers()).isEmpty();
    assertThat(rds.describeDBInstances().dbInstances()).hasSize(1);
    assertThat(fake.calls()).containsExactly("DescribeDBInstances DBInstanceIdentifier=orders", "DescribeDBInstances");
  }

  @Test
  void createCluster_becomesAvailable_afterStatusSteps() {
    fake.endpointForNewCluster("orders-aurora", "127.0.0.1", 6543);

    DBCluster created = rds.createDBCluster(r -> r.dbClusterIdentifier("orders-aurora").engine("aurora-postgresql")
        .engineVersion("16.4").replicationSourceIdentifier(SOURCE_ARN).dbSubnetGroupName("private-subnets")
        .vpcSecurityGroupIds("sg-old")).dbCluster();
    rds.createDBInstance(r -> r.dbInstanceIdentifier("orders-aurora-1").dbClusterIdentifier("orders-aurora")
        .dbInstanceClass("db.r6g.large").engine("aurora-postgresql"));

    assertThat(created.status()).isEqualTo("creating");
    List<String> clusterStatuses = new ArrayList<>();
    List<String> instanceStatuses = new ArrayList<>();
    for (int n = 0; n < 3; n++) {
      clusterStatuses.add(cluster("orders-aurora").status());
      instanceStatuses.add(instance("orders-aurora-1").dbInstanceStatus());
    }
    assertThat(clusterStatuses).containsExactly("creating", "creating", "available");
    assertThat(instanceStatuses).containsExactly("creating", "creating", "available");
    DBCluster c = cluster("orders-aurora");
    assertThat(c.dbClusterArn()).isEqualTo("arn:aws:rds:us-east-1:" + FakeAws.ACCOUNT + ":cluster:orders-aurora");
    assertThat(c.engine()).isEqualTo("aurora-postgresql");
    assertThat(c.endpoint()).isEqualTo("127.0.0.1");
    assertThat(c.port()).isEqualTo(6543);
    assertThat(c.replicationSourceIdentifier()).isEqualTo(SOURCE_ARN);
    assertThat(c.dbClusterMembers()).singleElement().satisfies(m -> {
      assertThat(m.dbInstanceIdentifier()).isEqualTo("orders-aurora-1");
      assertThat(m.isClusterWriter()).isTrue();
    });
    assertThat(c.vpcSecurityGroups()).extracting(VpcSecurityGroupMembership::vpcSecurityGroupId)
        .containsExactly("sg-old");
    assertThat(instance("orders-aurora-1").dbClusterIdentifier()).isEqualTo("orders-aurora");
    assertThat(instance("orders").readReplicaDBClusterIdentifiers()).containsExactly("orders-aurora");
    assertThat(fake.calls()).contains("CreateDBCluster DBClusterIdentifier=orders-aurora"
        + " DBSubnetGroupName=private-subnets Engine=aurora-postgresql EngineVersion=16.4"
        + " ReplicationSourceIdentifier=" + SOURCE_ARN
        + " VpcSecurityGroupIds.VpcSecurityGroupId.1=sg-old");
    assertThatThrownBy(() -> rds.createDBCluster(r -> r.dbClusterIdentifier("orders-aurora")))
        .isInstanceOfSatisfying(RdsException.class,
            e -> assertThat(e.awsErrorDetails().errorCode()).isEqualTo("DBClusterAlreadyExistsFault"));

    fake.neverAvailable("stuck");
    rds.createDBCluster(r -> r.dbClusterIdentifier("stuck").engine("aurora-postgresql"));
    for (int n = 0; n < 5; n++) {
      assertThat(cluster("stuck").status()).isEqualTo("creating");
    }
  }

  @Test
  void modifySecurityGroups_applyWhenAvailable_andRebootRunsHook() {
    fake.statusSteps(1);
    AtomicInteger rebooted = new AtomicInteger();
    fake.onReboot("orders", rebooted::incrementAndGet);

    DBInstance modifying = rds.modifyDBInstance(r -> r.dbInstanceIdentifier("orders")
        .vpcSecurityGroupIds("sg-old", "sg-new").applyImmediately(true)).dbInstance();
    assertThat(modifying.dbInstanceStatus()).isEqualTo("modifying");
    assertThat(instance("orders").dbInstanceStatus()).isEqualTo("modifying");
    assertThat(fake.instanceSecurityGroups("orders")).containsExactly("sg-old");
    assertThatThrownBy(() -> rds.rebootDBInstance(r -> r.dbInstanceIdentifier("orders")))
        .isInstanceOfSatisfying(RdsException.class,
            e -> assertThat(e.awsErrorDetails().errorCode()).isEqualTo("InvalidDBInstanceState"));
    DBInstance modified = instance("orders");
    assertThat(modified.dbInstanceStatus()).isEqualTo("available");
    assertThat(modified.vpcSecurityGroups()).extracting(VpcSecurityGroupMembership::vpcSecurityGroupId)
        .containsExactly("sg-old", "sg-new");

    assertThat(rds.rebootDBInstance(r -> r.dbInstanceIdentifier("orders")).dbInstance().dbInstanceStatus())
        .isEqualTo("rebooting");
    assertThat(instance("orders").dbInstanceStatus()).isEqualTo("rebooting");
    assertThat(rebooted).hasValue(0);
    assertThat(instance("orders").dbInstanceStatus()).isEqualTo("available");
    assertThat(rebooted).hasValue(1);
    assertThat(fake.instanceStatus("orders")).isEqualTo("available");
    assertThat(fake.calls()).contains("ModifyDBInstance ApplyImmediately=true DBInstanceIdentifier=orders"
        + " VpcSecurityGroupIds.VpcSecurityGroupId.1=sg-old VpcSecurityGroupIds.VpcSecurityGroupId.2=sg-new");
  }

  @Test
  void promote_runsHook_andClearsReplicationSource() {
    fake.addReplicaCluster("orders-aurora", "orders", "127.0.0.1", 6543);
    AtomicInteger promoted = new AtomicInteger();
    fake.onPromote("orders-aurora", promoted::incrementAndGet);
    assertThat(cluster("orders-aurora").replicationSourceIdentifier()).isEqualTo(SOURCE_ARN);
    assertThat(instance("orders-aurora-1").dbInstanceStatus()).isEqualTo("available");
    assertThat(instance("orders").readReplicaDBClusterIdentifiers()).containsExactly("orders-aurora");

    assertThat(rds.promoteReadReplicaDBCluster(r -> r.dbClusterIdentifier("orders-aurora")).dbCluster().status())
        .isEqualTo("promoting");
    assertThat(cluster("orders-aurora").status()).isEqualTo("promoting");
    assertThat(cluster("orders-aurora").status()).isEqualTo("promoting");
    assertThat(promoted).hasValue(0);
    DBCluster done = cluster("orders-aurora");

    assertThat(done.status()).isEqualTo("available");
    assertThat(promoted).hasValue(1);
    assertThat(done.replicationSourceIdentifier()).isNull();
    assertThat(fake.clusterReplicationSource("orders-aurora")).isEmpty();
    assertThat(instance("orders").readReplicaDBClusterIdentifiers()).isEmpty();
    assertThatThrownBy(() -> rds.promoteReadReplicaDBCluster(r -> r.dbClusterIdentifier("orders-aurora")))
        .isInstanceOfSatisfying(RdsException.class,
            e -> assertThat(e.awsErrorDetails().errorCode()).isEqualTo("InvalidDBClusterStateFault"));
  }

  @Test
  void tags_addListRemove() {
    rds.addTagsToResource(r -> r.resourceName(SOURCE_ARN).tags(
        Tag.builder().key("turnout:migration").value("m-1").build(), Tag.builder().key("team").value("db").build()));
    assertThat(rds.listTagsForResource(r -> r.resourceName(SOURCE_ARN)).tagList())
        .extracting(Tag::key, Tag::value)
        .containsExactly(tuple("turnout:migration", "m-1"),
            tuple("team", "db"));

    rds.removeTagsFromResource(r -> r.resourceName(SOURCE_ARN).tagKeys("team"));

    assertThat(fake.tags(SOURCE_ARN)).containsExactly(Map.entry("turnout:migration", "m-1"));
    assertThat(rds.listTagsForResource(r -> r.resourceName(SOURCE_ARN)).tagList()).extracting(Tag::key)
        .containsExactly("turnout:migration");
    assertThat(fake.calls()).contains("RemoveTagsFromResource ResourceName=" + SOURCE_ARN + " TagKeys.member.1=team");
  }

  @Test
  void describeSecurityGroups_returnsIngressRules_andUnknownGroupFails() {
    List<SecurityGroup> groups = ec2.describeSecurityGroups(r -> r.groupIds("sg-new")).securityGroups();

    assertThat(groups).singleElement().satisfies(g -> {
      assertThat(g.groupId()).isEqualTo("sg-new");
      assertThat(g.vpcId()).isEqualTo("vpc-1");
      assertThat(g.ipPermissions()).singleElement().satisfies(p -> {
        assertThat(p.ipProtocol()).isEqualTo("tcp");
        assertThat(p.fromPort()).isEqualTo(5432);
        assertThat(p.toPort()).isEqualTo(5432);
        assertThat(p.ipRanges()).extracting(range -> range.cidrIp()).containsExactly("10.0.0.0/16", "10.1.0.0/16");
      });
    });
    assertThat(fake.calls()).containsExactly("DescribeSecurityGroups GroupId.1=sg-new");
    assertThatThrownBy(() -> ec2.describeSecurityGroups(r -> r.groupIds("sg-nope")))
        .isInstanceOfSatisfying(Ec2Exception.class, e -> {
          assertThat(e.awsErrorDetails().errorCode()).isEqualTo("InvalidGroup.NotFound");
          assertThat(e.statusCode()).isEqualTo(400);
        });
  }

  @Test
  void getMetricData_answersSetValue_onePointPerPeriod_newestFirst() {
    fake.metric("RDSToAuroraPostgreSQLReplicaLag", 3.5);
    Instant end = Instant.parse("2030-01-01T00:05:00Z");

    GetMetricDataResponse response = cloudWatch.getMetricData(r -> r.startTime(end.minusSeconds(300)).endTime(end)
        .metricDataQueries(query("lag", "RDSToAuroraPostgreSQLReplicaLag"), query("wal", "TransactionLogsGeneration")));

    MetricDataResult lag = response.metricDataResults().get(0);
    assertThat(lag.id()).isEqualTo("lag");
    assertThat(lag.label()).isEqualTo("RDSToAuroraPostgreSQLReplicaLag");
    assertThat(lag.statusCode()).isEqualTo(StatusCode.COMPLETE);
    assertThat(lag.values()).containsExactly(3.5, 3.5, 3.5, 3.5, 3.5);
    assertThat(lag.timestamps()).hasSize(5).first().isEqualTo(end.minusSeconds(60));
    assertThat(lag.timestamps()).last().isEqualTo(end.minusSeconds(300));
    assertThat(response.metricDataResults().get(1).values()).hasSize(5).containsOnly(1200.0);
    assertThat(fake.calls()).containsExactly("GetMetricData RDSToAuroraPostgreSQLReplicaLag TransactionLogsGeneration");
  }

  private static MetricDataQuery query(String id, String metric) {
    return MetricDataQuery.builder().id(id).metricStat(s -> s.period(60).stat("Maximum").metric(m -> m
        .namespace("AWS/RDS").metricName(metric).dimensions(Dimension.builder().name("DBInstanceIdentifier")
            .value("orders").build()))).build();
  }

  @Test
  void throttle_isRetriedBySdk_andLogged() {
    fake.throttle("DescribeDBInstances", 2);
    fake.throttle("GetMetricData", 1);

    assertThat(instance("orders").dbInstanceStatus()).isEqualTo("available");
    Instant end = Instant.now();
    assertThat(cloudWatch.getMetricData(r -> r.startTime(end.minusSeconds(120)).endTime(end)
        .metricDataQueries(query("slot", "OldestReplicationSlotLag"))).metricDataResults().get(0).values())
        .isNotEmpty().containsOnly(0.0);

    assertThat(fake.calls()).containsExactly(
        "DescribeDBInstances DBInstanceIdentifier=orders -> Throttling",
        "DescribeDBInstances DBInstanceIdentifier=orders -> Throttling",
        "DescribeDBInstances DBInstanceIdentifier=orders",
        "GetMetricData OldestReplicationSlotLag -> Throttling",
        "GetMetricData OldestReplicationSlotLag");
    fake.throttle("GetMetricData", 5);
    assertThatThrownBy(() -> cloudWatch.getMetricData(r -> r.startTime(end.minusSeconds(120)).endTime(end)
        .metricDataQueries(query("slot", "OldestReplicationSlotLag"))))
        .isInstanceOfSatisfying(AwsServiceException.class,
            e -> assertThat(e.awsErrorDetails().errorCode()).isEqualTo("Throttling"));
  }

  @Test
  void failPromotion_andUnknownInstance_surfaceAsSdkErrors() {
    fake.addReplicaCluster("orders-aurora", "orders", "127.0.0.1", 6543);
    fake.failPromotion("orders-aurora");

    assertThatThrownBy(() -> rds.promoteReadReplicaDBCluster(r -> r.dbClusterIdentifier("orders-aurora")))
        .isInstanceOfSatisfying(RdsException.class, e -> {
          assertThat(e.awsErrorDetails().errorCode()).isEqualTo("InvalidDBClusterStateFault");
          assertThat(e.statusCode()).isEqualTo(400);
        });
    assertThat(fake.clusterStatus("orders-aurora")).isEqualTo("available");
    assertThatThrownBy(() -> instance("nope")).isInstanceOf(DbInstanceNotFoundException.class);
    assertThatThrownBy(() -> cluster("nope")).isInstanceOfSatisfying(RdsException.class,
        e -> assertThat(e.awsErrorDetails().errorCode()).isEqualTo("DBClusterNotFoundFault"));
  }

  @Test
  void parameterGroups_userParametersAndAuroraDefaults_areDescribed() {
    fake.addParameterGroup("orders-params", "postgres16", Map.of("rds.logical_replication", "1",
        "max_replication_slots", "20", "shared_preload_libraries", "pg_stat_statements"));
    assertThat(instance("orders").dbParameterGroups().get(0).dbParameterGroupName()).isEqualTo("orders-params");

    DescribeDbParametersResponse user = rds.describeDBParameters(r -> r.dbParameterGroupName("orders-params")
        .source("user"));

    assertThat(user.marker()).isNull();
    assertThat(user.parameters())
        .extracting(Parameter::parameterName, Parameter::parameterValue, Parameter::source, Parameter::isModifiable)
        .containsExactlyInAnyOrder(tuple("rds.logical_replication", "1", "user", true),
            tuple("max_replication_slots", "20", "user", true),
            tuple("shared_preload_libraries", "pg_stat_statements", "user", true));
    assertThat(user.parameters()).allSatisfy(p -> {
      assertThat(p.applyType()).isEqualTo("static");
      assertThat(p.dataType()).isEqualTo("string");
    });
    assertThat(rds.describeDBParametersPaginator(r -> r.dbParameterGroupName("orders-params")).parameters())
        .hasSize(3);
    assertThat(rds.describeDBParameters(r -> r.dbParameterGroupName("default.postgres16").source("user"))
        .parameters()).isEmpty();
    assertThat(rds.describeDBParameterGroups(r -> r.dbParameterGroupName("orders-params")).dbParameterGroups())
        .singleElement().satisfies(g -> {
          assertThat(g.dbParameterGroupFamily()).isEqualTo("postgres16");
          assertThat(g.dbParameterGroupArn())
              .isEqualTo("arn:aws:rds:us-east-1:" + FakeAws.ACCOUNT + ":pg:orders-params");
        });
    assertThatThrownBy(() -> rds.describeDBParameters(r -> r.dbParameterGroupName("nope")))
        .isInstanceOfSatisfying(DbParameterGroupNotFoundException.class, e -> {
          assertThat(e.awsErrorDetails().errorCode()).isEqualTo("DBParameterGroupNotFound");
          assertThat(e.statusCode()).isEqualTo(404);
        });

    EngineDefaults aurora = rds.describeEngineDefaultClusterParameters(r -> r.dbParameterGroupFamily(
        "aurora-postgresql15")).engineDefaults();
    assertThat(aurora.dbParameterGroupFamily()).isEqualTo("aurora-postgresql15");
    assertThat(aurora.parameters()).extracting(Parameter::parameterName, Parameter::isModifiable, Parameter::source)
        .containsExactly(tuple("max_replication_slots", true, "engine-default"),
            tuple("max_wal_senders", true, "engine-default"), tuple("rds.force_ssl", true, "engine-default"),
            tuple("rds.logical_replication", true, "engine-default"), tuple("timezone", true, "engine-default"),
            tuple("wal_level", false, "engine-default"));
    assertThat(aurora.parameters()).filteredOn(p -> p.parameterName().equals("rds.force_ssl"))
        .extracting(Parameter::applyType).containsExactly("dynamic");
    fake.auroraClusterParameters("aurora-postgresql17", Map.of("timezone", true, "wal_level", false));
    assertThat(rds.describeEngineDefaultClusterParameters(r -> r.dbParameterGroupFamily("aurora-postgresql17"))
        .engineDefaults().parameters()).extracting(Parameter::parameterName).containsExactly("timezone", "wal_level");
    assertThat(fake.calls()).contains("DescribeDBParameters DBParameterGroupName=orders-params Source=user",
        "DescribeEngineDefaultClusterParameters DBParameterGroupFamily=aurora-postgresql15");
  }

  @Test
  void clusterParameterGroup_createdModifiedAndUsedByCreateDBCluster() {
    DBClusterParameterGroup created = rds.createDBClusterParameterGroup(r -> r
        .dbClusterParameterGroupName("orders-aurora-params").dbParameterGroupFamily("aurora-postgresql16")
        .description("Turnout: orders")).dbClusterParameterGroup();

    assertThat(created.dbClusterParameterGroupName()).isEqualTo("orders-aurora-params");
    assertThat(created.dbParameterGroupFamily()).isEqualTo("aurora-postgresql16");
    assertThat(created.description()).isEqualTo("Turnout: orders");
    assertThat(created.dbClusterParameterGroupArn())
        .isEqualTo("arn:aws:rds:us-east-1:" + FakeAws.ACCOUNT + ":cluster-pg:orders-aurora-params");
    assertThatThrownBy(() -> rds.createDBClusterParameterGroup(r -> r.dbClusterParameterGroupName(
        "orders-aurora-params").dbParameterGroupFamily("aurora-postgresql16").description("again")))
        .isInstanceOfSatisfying(DbParameterGroupAlreadyExistsException.class, e -> {
          assertThat(e.awsErrorDetails().errorCode()).isEqualTo("DBParameterGroupAlreadyExists");
          assertThat(e.statusCode()).isEqualTo(400);
        });

    String modified = rds.modifyDBClusterParameterGroup(r -> r.dbClusterParameterGroupName("orders-aurora-params")
        .parameters(parameter("rds.logical_replication", "1", ApplyMethod.PENDING_REBOOT),
            parameter("rds.force_ssl", "0", ApplyMethod.IMMEDIATE))).dbClusterParameterGroupName();

    assertThat(modified).isEqualTo("orders-aurora-params");
    assertThat(fake.clusterParameterGroupFamily("orders-aurora-params")).hasValue("aurora-postgresql16");
    assertThat(fake.clusterParameterGroupParameters("orders-aurora-params"))
        .containsExactly(Map.entry("rds.logical_replication", "1"), Map.entry("rds.force_ssl", "0"));
    assertThat(fake.clusterParameterGroupFamily("nope")).isEmpty();
    assertThat(fake.clusterParameterGroupParameters("nope")).isEmpty();
    assertThat(fake.calls()).contains("ModifyDBClusterParameterGroup DBClusterParameterGroupName=orders-aurora-params"
        + " Parameters.Parameter.1.ApplyMethod=pending-reboot"
        + " Parameters.Parameter.1.ParameterName=rds.logical_replication Parameters.Parameter.1.ParameterValue=1"
        + " Parameters.Parameter.2.ApplyMethod=immediate Parameters.Parameter.2.ParameterName=rds.force_ssl"
        + " Parameters.Parameter.2.ParameterValue=0");
    assertThat(rds.describeDBClusterParameterGroups(r -> r.dbClusterParameterGroupName("orders-aurora-params"))
        .dbClusterParameterGroups()).singleElement()
        .extracting(DBClusterParameterGroup::dbParameterGroupFamily).isEqualTo("aurora-postgresql16");
    assertThatThrownBy(() -> rds.describeDBClusterParameterGroups(r -> r.dbClusterParameterGroupName("nope")))
        .isInstanceOfSatisfying(DbParameterGroupNotFoundException.class,
            e -> assertThat(e.statusCode()).isEqualTo(404));

    DBCluster withGroup = rds.createDBCluster(r -> r.dbClusterIdentifier("orders-aurora").engine("aurora-postgresql")
        .engineVersion("16.4").replicationSourceIdentifier(SOURCE_ARN)
        .dbClusterParameterGroupName("orders-aurora-params")).dbCluster();
    DBCluster withDefault = rds.createDBCluster(r -> r.dbClusterIdentifier("other").engine("aurora-postgresql")
        .engineVersion("15.7")).dbCluster();

    assertThat(withGroup.dbClusterParameterGroup()).isEqualTo("orders-aurora-params");
    assertThat(cluster("orders-aurora").dbClusterParameterGroup()).isEqualTo("orders-aurora-params");
    assertThat(fake.clusterParameterGroup("orders-aurora")).isEqualTo("orders-aurora-params");
    assertThat(withDefault.dbClusterParameterGroup()).isEqualTo("default.aurora-postgresql15");
    assertThat(fake.clusterParameterGroup("other")).isEqualTo("default.aurora-postgresql15");
    assertThat(rds.describeDBClusterParameterGroups(r -> r.dbClusterParameterGroupName("default.aurora-postgresql15"))
        .dbClusterParameterGroups()).singleElement()
        .extracting(DBClusterParameterGroup::dbParameterGroupFamily).isEqualTo("aurora-postgresql15");
    assertThatThrownBy(() -> rds.createDBCluster(r -> r.dbClusterIdentifier("third").engine("aurora-postgresql")
        .dbClusterParameterGroupName("nope")))
        .isInstanceOfSatisfying(DbClusterParameterGroupNotFoundException.class, e -> {
          assertThat(e.awsErrorDetails().errorCode()).isEqualTo("DBClusterParameterGroupNotFound");
          assertThat(e.statusCode()).isEqualTo(404);
        });
    assertThatThrownBy(() -> cluster("third")).isInstanceOf(RdsException.class);
  }

  @Test
  void modifyClusterParameterGroup_refusesUnknownNonModifiableAndTooManyParameters_applyingNothing() {
    rds.createDBClusterParameterGroup(r -> r.dbClusterParameterGroupName("orders-aurora-params")
        .dbParameterGroupFamily("aurora-postgresql15").description("Turnout: orders"));

    assertInvalid(List.of(parameter("rds.force_ssl", "1", ApplyMethod.IMMEDIATE),
        parameter("wal_level", "logical", ApplyMethod.PENDING_REBOOT)), "InvalidParameterValue", "wal_level");
    assertInvalid(List.of(parameter("no_such_parameter", "1", ApplyMethod.PENDING_REBOOT)), "InvalidParameterValue",
        "no_such_parameter");
    assertInvalid(IntStream.rangeClosed(1, 21).mapToObj(n -> parameter("timezone", "UTC", ApplyMethod.IMMEDIATE))
        .toList(), "InvalidParameterValue", "20");
    assertInvalid(List.of(parameter("rds.logical_replication", "1", ApplyMethod.IMMEDIATE)),
        "InvalidParameterCombination", "static");

    assertThat(fake.clusterParameterGroupParameters("orders-aurora-params")).isEmpty();
    assertThatThrownBy(() -> rds.modifyDBClusterParameterGroup(r -> r.dbClusterParameterGroupName("nope")
        .parameters(parameter("timezone", "UTC", ApplyMethod.IMMEDIATE))))
        .isInstanceOf(DbParameterGroupNotFoundException.class);
  }

  private void assertInvalid(List<Parameter> parameters, String errorCode, String messagePart) {
    assertThatThrownBy(() -> rds.modifyDBClusterParameterGroup(r -> r
        .dbClusterParameterGroupName("orders-aurora-params").parameters(parameters)))
        .isInstanceOfSatisfying(RdsException.class, e -> {
          assertThat(e.awsErrorDetails().errorCode()).isEqualTo(errorCode);
          assertThat(e.statusCode()).isEqualTo(400);
          assertThat(e.awsErrorDetails().errorMessage()).contains(messagePart);
        });
  }

  private static Parameter parameter(String name, String value, ApplyMethod applyMethod) {
    return Parameter.builder().parameterName(name).parameterValue(value).applyMethod(applyMethod).build();
  }

  /**
   * The shapes of failure a client meets in front of AWS reach the SDK as they do from a proxy or a wrong endpoint:
   * an exception with the HTTP status and the raw body but no AWS error code (and, but for the 403, no request id).
   */
  @Test
  void faults_reachTheSdk_withAStatusButNoErrorCode() {
    fake.fault("DescribeDBInstances", 3, FakeAws.Fault.HTML_500);
    assertThatThrownBy(() -> instance("orders")).isInstanceOfSatisfying(RdsException.class, e -> {
      assertThat(e.statusCode()).isEqualTo(500);
      assertThat(e.awsErrorDetails().errorCode()).isNull();
      assertThat(e.requestId()).isNull();
      assertThat(e.numAttempts()).as("a 5xx is retried").isEqualTo(3);
      assertThat(e.awsErrorDetails().rawResponse().asUtf8String()).contains("<title>500 Internal Server Error</title>");
    });
    fake.fault("DescribeDBClusters", 1, FakeAws.Fault.NOT_FOUND_404);
    assertThatThrownBy(() -> cluster("orders-aurora")).isInstanceOfSatisfying(RdsException.class, e -> {
      assertThat(e.statusCode()).isEqualTo(404);
      assertThat(e.awsErrorDetails().errorCode()).isNull();
      assertThat(e).as("a bare 404 is not the service saying the cluster does not exist")
          .isNotInstanceOf(software.amazon.awssdk.services.rds.model.DbClusterNotFoundException.class);
    });
    fake.fault("DescribeSecurityGroups", 1, FakeAws.Fault.AUTH_403);
    assertThatThrownBy(() -> ec2.describeSecurityGroups(r -> r.groupIds("sg-old")))
        .isInstanceOfSatisfying(Ec2Exception.class, e -> {
          assertThat(e.statusCode()).isEqualTo(403);
          assertThat(e.awsErrorDetails().errorCode()).isNull();
          assertThat(e.requestId()).isNotBlank();
          assertThat(e.numAttempts()).as("a 403 is not retried").isEqualTo(1);
        });
    fake.fault("GetMetricData", 1, FakeAws.Fault.HTML_500);
    Instant end = Instant.now();
    assertThatCode(() -> cloudWatch.getMetricData(r -> r.startTime(end.minusSeconds(120)).endTime(end)
        .metricDataQueries(query("slot", "OldestReplicationSlotLag")))).as("retried once, then answered")
        .doesNotThrowAnyException();

    assertThat(fake.calls()).containsExactly(
        "DescribeDBInstances DBInstanceIdentifier=orders -> HTML_500",
        "DescribeDBInstances DBInstanceIdentifier=orders -> HTML_500",
        "DescribeDBInstances DBInstanceIdentifier=orders -> HTML_500",
        "DescribeDBClusters DBClusterIdentifier=orders-aurora -> NOT_FOUND_404",
        "DescribeSecurityGroups GroupId.1=sg-old -> AUTH_403",
        "GetMetricData OldestReplicationSlotLag -> HTML_500",
        "GetMetricData OldestReplicationSlotLag");
  }

  @Test
  void createCluster_listensOnThePortAsked() {
    rds.createDBCluster(r -> r.dbClusterIdentifier("orders-aurora").engine("aurora-postgresql").engineVersion("16.4")
        .replicationSourceIdentifier(SOURCE_ARN).port(6543));
    rds.createDBCluster(r -> r.dbClusterIdentifier("other").engine("aurora-postgresql").engineVersion("16.4"));

    assertThat(cluster("orders-aurora").port()).isEqualTo(6543);
    assertThat(cluster("orders-aurora").endpoint()).isEqualTo("orders-aurora.cluster-fake.us-east-1.rds.amazonaws.com");
    assertThat(cluster("other").port()).as("Aurora PostgreSQL's default").isEqualTo(5432);
    assertThat(fake.calls()).anySatisfy(c -> assertThat(c).startsWith("CreateDBCluster").contains("Port=6543"));
  }
}
