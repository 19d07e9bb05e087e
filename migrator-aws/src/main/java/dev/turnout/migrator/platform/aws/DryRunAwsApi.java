package dev.turnout.migrator.platform.aws;

import dev.turnout.migrator.DryRun;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.platform.postgres.DryRunPostgresSql;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import software.amazon.awssdk.services.rds.model.DBCluster;
import software.amazon.awssdk.services.rds.model.DBInstance;
import software.amazon.awssdk.services.rds.model.VpcSecurityGroupMembership;

/**
 * The AWS API of a dry run: every Describe, List and GetMetricData call is made, and listed in the transcript as it
 * is made; every call that would change something is listed (built by the same {@link AwsApi.Call} factories as the
 * real one) and not made. What the run reads after a change is answered as the change would leave it: a cluster,
 * writer or parameter group it creates exists and is available (those reads are not made, and the line says so),
 * the source's security groups and tags are the ones it set, a promoted cluster is no longer a replica.
 *
 * <p>The migration's runner thread alone uses it, as it uses any platform.
 */
final class DryRunAwsApi extends AwsApi {
  private final DryRun dryRun;
  private final DryRunPostgresSql sql;
  private final ServerAddress target;
  private final Map<String, DBCluster> createdClusters = new HashMap<>();
  private final Map<String, DBInstance> createdInstances = new HashMap<>();
  private final Set<String> createdParameterGroups = new HashSet<>();
  private final Map<String, Map<String, String>> parametersSet = new HashMap<>();
  private final Map<String, List<String>> groupsSet = new HashMap<>();
  private final Map<String, Map<String, Optional<String>>> tagsSet = new HashMap<>();
  private final Set<String> promoted = new HashSet<>();
  /** Instances described so far, by ARN: a cluster created as their replica takes its endpoint's naming. */
  private final Map<String, DBInstance> seen = new HashMap<>();

  /**
   * @param sql the SQL side of the same dry run, told when the run would create or promote the target
   * @param target the migration's target, where a cluster the run creates is taken to listen when its endpoint
   *     cannot be named from the source's
   */
  DryRunAwsApi(AwsApi aws, DryRun dryRun, DryRunPostgresSql sql, ServerAddress target) {
    super(aws.rds, aws.ec2, aws.cloudWatch);
    this.dryRun = dryRun;
    this.sql = sql;
    this.target = target;
  }

  private interface Read<T> {
    T run() throws MigrationException;
  }

  /** Makes the call; its failure is the dry run's. */
  private <T> T read(Read<T> read) throws MigrationException {
    try {
      return read.run();
    } catch (MigrationException e) {
      dryRun.readFailed(e);
      throw e;
    }
  }

  private void made(Call call, String outcome) {
    dryRun.record(call + outcome);
  }

  private void notMade(Call call) {
    dryRun.record(call.toString());
  }

  private static final String AS_CREATED = " -> not called: this run creates it, taken as available";

  @Override
  Optional<DBInstance> instance(String id) throws MigrationException {
    if (createdInstances.containsKey(id)) {
      made(describeInstanceCall(id), AS_CREATED);
      return Optional.of(createdInstances.get(id));
    }
    Optional<DBInstance> found = read(() -> super.instance(id));
    found.ifPresent(i -> seen.put(i.dbInstanceArn(), i));
    List<String> groups = groupsSet.get(id);
    made(describeInstanceCall(id), found.isEmpty() ? " -> not found" : groups == null ? ""
        : " -> answered with the security groups set above");
    if (found.isEmpty() || groups == null) {
      return found;
    }
    return Optional.of(found.get().toBuilder().dbInstanceStatus("available").vpcSecurityGroups(groups.stream()
        .map(g -> VpcSecurityGroupMembership.builder().vpcSecurityGroupId(g).status("active").build()).toList())
        .build());
  }

  @Override
  Optional<DBCluster> cluster(String id) throws MigrationException {
    Optional<DBCluster> found;
    if (createdClusters.containsKey(id)) {
      made(describeClusterCall(id), AS_CREATED + (promoted.contains(id) ? " and promoted" : ""));
      found = Optional.of(createdClusters.get(id));
    } else {
      found = read(() -> super.cluster(id));
      made(describeClusterCall(id), found.isEmpty() ? " -> not found"
          : promoted.contains(id) ? " -> answered as promoted above" : "");
    }
    if (found.isPresent() && promoted.contains(id)) {
      return Optional.of(found.get().toBuilder().status("available").replicationSourceIdentifier(null).build());
    }
    return found;
  }

  @Override
  Map<String, String> userParameters(String group) throws MigrationException {
    Map<String, String> found = read(() -> super.userParameters(group));
    made(userParametersCall(group), "");
    return found;
  }

  /** A group this run creates is answered with what the run set in it. */
  @Override
  Map<String, String> clusterUserParameters(String group) throws MigrationException {
    if (createdParameterGroups.contains(group)) {
      made(clusterUserParametersCall(group), " -> not called: this run creates it, answered with the parameters set"
          + " above");
      return parametersSet.getOrDefault(group, Map.of());
    }
    Map<String, String> found = new LinkedHashMap<>(read(() -> super.clusterUserParameters(group)));
    found.putAll(parametersSet.getOrDefault(group, Map.of()));
    made(clusterUserParametersCall(group), parametersSet.containsKey(group) ? " -> answered with the parameters set"
        + " above" : "");
    return found;
  }

  @Override
  Map<String, Boolean> clusterParameters(String family) throws MigrationException {
    Map<String, Boolean> found = read(() -> super.clusterParameters(family));
    made(engineDefaultsCall(family), "");
    return found;
  }

  @Override
  boolean clusterParameterGroupExists(String name) throws MigrationException {
    if (createdParameterGroups.contains(name)) {
      made(describeClusterParameterGroupCall(name), AS_CREATED);
      return true;
    }
    boolean exists = read(() -> super.clusterParameterGroupExists(name));
    made(describeClusterParameterGroupCall(name), exists ? "" : " -> not found");
    return exists;
  }

  @Override
  List<SecurityGroup> securityGroups(List<String> ids) throws MigrationException {
    List<SecurityGroup> found = read(() -> super.securityGroups(ids));
    made(describeSecurityGroupsCall(ids), "");
    return found;
  }

  @Override
  Map<String, String> tags(String arn) throws MigrationException {
    Map<String, String> found = new LinkedHashMap<>(read(() -> super.tags(arn)));
    Map<String, Optional<String>> set = tagsSet.getOrDefault(arn, Map.of());
    set.forEach((key, value) -> {
      if (value.isPresent()) {
        found.put(key, value.get());
      } else {
        found.remove(key);
      }
    });
    made(listTagsCall(arn), set.isEmpty() ? "" : " -> answered with the tags set above");
    return found;
  }

  @Override
  Map<String, List<Double>> metrics(String instanceId, List<String> names, Duration window, Instant now)
      throws MigrationException {
    Map<String, List<Double>> found = read(() -> super.metrics(instanceId, names, window, now));
    made(metricsCall(instanceId, names, window), "");
    return found;
  }

  @Override
  void createCluster(String id, String engineVersion, String sourceArn, String subnetGroup, List<String> groups,
      int port, Optional<String> parameterGroup) {
    notMade(createClusterCall(id, engineVersion, sourceArn, subnetGroup, groups, port, parameterGroup));
    ServerAddress writer = writerEndpoint(sourceArn, id, port);
    createdClusters.put(id, DBCluster.builder().dbClusterIdentifier(id).dbClusterArn(clusterArn(sourceArn, id))
        .engine(ENGINE).engineVersion(engineVersion).status("available").replicationSourceIdentifier(sourceArn)
        .endpoint(writer.host()).port(writer.port()).dbClusterParameterGroup(parameterGroup.orElse(null)).build());
    sql.targetCreatedByThisRun();
  }

  /** {@code arn:aws:rds:REGION:ACCOUNT:db:NAME} gives {@code arn:aws:rds:REGION:ACCOUNT:cluster:ID}. */
  private static String clusterArn(String sourceArn, String id) {
    int db = sourceArn.lastIndexOf(":db:");
    return db < 0 ? sourceArn + ":cluster:" + id : sourceArn.substring(0, db) + ":cluster:" + id;
  }

  /**
   * As AWS names a cluster's writer endpoint, from the source's endpoint, on the port the cluster is created with;
   * the migration's target when the source's endpoint is not an RDS name.
   */
  private ServerAddress writerEndpoint(String sourceArn, String id, int port) {
    DBInstance source = seen.get(sourceArn);
    if (source != null && source.endpoint() != null && source.endpoint().address() != null) {
      try {
        return new ServerAddress(AwsPlatform.clusterEndpoint("", source.endpoint().address(), id), port);
      } catch (MigrationException notAnRdsName) {
        // an address, not a name AWS gave: the target the operator gave
      }
    }
    return target;
  }

  @Override
  void createClusterParameterGroup(String name, String family, String description) {
    notMade(createClusterParameterGroupCall(name, family, description));
    createdParameterGroups.add(name);
  }

  @Override
  void modifyClusterParameterGroup(String name, Map<String, String> parameters) {
    notMade(modifyClusterParameterGroupCall(name, parameters));
    parametersSet.computeIfAbsent(name, n -> new LinkedHashMap<>()).putAll(parameters);
  }

  @Override
  void createInstance(String id, String clusterId, String instanceClass) {
    notMade(createInstanceCall(id, clusterId, instanceClass));
    createdInstances.put(id, DBInstance.builder().dbInstanceIdentifier(id).dbClusterIdentifier(clusterId)
        .dbInstanceClass(instanceClass).engine(ENGINE).dbInstanceStatus("available").build());
  }

  @Override
  void addTag(String arn, String key, String value) {
    notMade(addTagCall(arn, key, value));
    tagsSet.computeIfAbsent(arn, a -> new LinkedHashMap<>()).put(key, Optional.of(value));
  }

  @Override
  void removeTag(String arn, String key) {
    notMade(removeTagCall(arn, key));
    tagsSet.computeIfAbsent(arn, a -> new LinkedHashMap<>()).put(key, Optional.empty());
  }

  @Override
  void modifySecurityGroups(String id, List<String> groups) {
    notMade(modifySecurityGroupsCall(id, groups));
    groupsSet.put(id, List.copyOf(groups));
  }

  @Override
  void reboot(String id) {
    notMade(rebootCall(id));
  }

  @Override
  void promote(String clusterId) {
    notMade(promoteCall(clusterId));
    promoted.add(clusterId);
    sql.targetPromotedByThisRun();
  }
}
