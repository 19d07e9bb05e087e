package dev.turnout.migrator.platform.aws;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.Sleeper;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.awscore.exception.AwsErrorDetails;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.retries.api.BackoffStrategy;
import software.amazon.awssdk.retries.api.RetryStrategy;
import software.amazon.awssdk.services.cloudwatch.CloudWatchClient;
import software.amazon.awssdk.services.cloudwatch.model.Dimension;
import software.amazon.awssdk.services.cloudwatch.model.GetMetricDataResponse;
import software.amazon.awssdk.services.cloudwatch.model.Metric;
import software.amazon.awssdk.services.cloudwatch.model.MetricDataQuery;
import software.amazon.awssdk.services.cloudwatch.model.MetricDataResult;
import software.amazon.awssdk.services.cloudwatch.model.MetricStat;
import software.amazon.awssdk.services.rds.RdsClient;
import software.amazon.awssdk.services.rds.model.DBCluster;
import software.amazon.awssdk.services.rds.model.ApplyMethod;
import software.amazon.awssdk.services.rds.model.DBInstance;
import software.amazon.awssdk.services.rds.model.DbParameterGroupNotFoundException;
import software.amazon.awssdk.services.rds.model.Parameter;
import software.amazon.awssdk.services.rds.model.DbClusterNotFoundException;
import software.amazon.awssdk.services.rds.model.DbInstanceNotFoundException;
import software.amazon.awssdk.services.rds.model.Tag;

/**
 * Every AWS call the platform makes passes here and is logged as one line in the form the dry run prints
 * ({@code CreateDBCluster DBClusterIdentifier=orders-aurora Engine=aurora-postgresql ...}); in a dry run
 * {@link DryRunAwsApi} makes the reads through it and lists the changes instead of making them. Retries with backoff on
 * throttling, 5xx answers and network errors are the SDK's (standard mode, up to {@link #MAX_ATTEMPTS} attempts per
 * call). Every failure becomes an {@link AwsCallException} whose message names the call, its resource, the HTTP
 * status, AWS's error code and request id (or says there are none) and the attempts made.
 */
class AwsApi implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(AwsApi.class);
  static final int MAX_ATTEMPTS = 8;
  static final String ENGINE = "aurora-postgresql";

  /** One API call with its parameters in the order AWS documents them. Holds no secret. */
  record Call(String action, ImmutableMap<String, String> params) {
    static Call of(String action, String... keyValues) {
      Map<String, String> p = new LinkedHashMap<>();
      for (int i = 0; i < keyValues.length; i += 2) {
        p.put(keyValues[i], keyValues[i + 1]);
      }
      return new Call(action, ImmutableMap.copyOf(p));
    }

    @Override
    public String toString() {
      return action + params.entrySet().stream().map(e -> " " + e.getKey() + "=" + e.getValue()).collect(Collectors.joining());
    }

    /** The call as an error names it: the action and the resource it is about (its first parameter but a namespace). */
    String named() {
      return action + params.entrySet().stream().filter(e -> !e.getKey().equals("Namespace")).findFirst()
          .map(e -> " " + e.getKey() + "=" + e.getValue()).orElse("");
    }
  }

  static Call describeInstanceCall(String id) {
    return Call.of("DescribeDBInstances", "DBInstanceIdentifier", id);
  }

  static Call describeClusterCall(String id) {
    return Call.of("DescribeDBClusters", "DBClusterIdentifier", id);
  }

  /** The cluster listens on {@code port}, the source's, so a target derived from the source's endpoint is right. */
  static Call createClusterCall(String id, String engineVersion, String sourceArn, String subnetGroup, List<String> groups,
      int port, Optional<String> parameterGroup) {
    Call c = Call.of("CreateDBCluster", "DBClusterIdentifier", id, "Engine", ENGINE, "EngineVersion", engineVersion,
        "ReplicationSourceIdentifier", sourceArn, "DBSubnetGroupName", subnetGroup,
        "VpcSecurityGroupIds", String.join(",", groups), "Port", Integer.toString(port));
    return parameterGroup.map(g -> Call.of("CreateDBCluster", flatten(c.params(), "DBClusterParameterGroupName", g)))
        .orElse(c);
  }

  private static String[] flatten(Map<String, String> params, String key, String value) {
    List<String> out = new ArrayList<>();
    params.forEach((k, v) -> {
      out.add(k);
      out.add(v);
    });
    out.add(key);
    out.add(value);
    return out.toArray(String[]::new);
  }

  static Call userParametersCall(String group) {
    return Call.of("DescribeDBParameters", "DBParameterGroupName", group, "Source", "user");
  }

  static Call clusterUserParametersCall(String group) {
    return Call.of("DescribeDBClusterParameters", "DBClusterParameterGroupName", group, "Source", "user");
  }

  static Call engineDefaultsCall(String family) {
    return Call.of("DescribeEngineDefaultClusterParameters", "DBParameterGroupFamily", family);
  }

  static Call describeClusterParameterGroupCall(String name) {
    return Call.of("DescribeDBClusterParameterGroups", "DBClusterParameterGroupName", name);
  }

  static Call createClusterParameterGroupCall(String name, String family, String description) {
    return Call.of("CreateDBClusterParameterGroup", "DBClusterParameterGroupName", name, "DBParameterGroupFamily", family,
        "Description", description);
  }

  static Call modifyClusterParameterGroupCall(String name, Map<String, String> parameters) {
    return Call.of("ModifyDBClusterParameterGroup", "DBClusterParameterGroupName", name, "Parameters",
        parameters.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(","))
            + " (pending-reboot)");
  }

  static Call createInstanceCall(String id, String clusterId, String instanceClass) {
    return Call.of("CreateDBInstance", "DBInstanceIdentifier", id, "DBClusterIdentifier", clusterId,
        "DBInstanceClass", instanceClass, "Engine", ENGINE);
  }

  static Call describeSecurityGroupsCall(List<String> ids) {
    return Call.of("DescribeSecurityGroups", "GroupIds", String.join(",", ids));
  }

  static Call listTagsCall(String arn) {
    return Call.of("ListTagsForResource", "ResourceName", arn);
  }

  static Call addTagCall(String arn, String key, String value) {
    return Call.of("AddTagsToResource", "ResourceName", arn, "Tags", key + "=" + value);
  }

  static Call removeTagCall(String arn, String key) {
    return Call.of("RemoveTagsFromResource", "ResourceName", arn, "TagKeys", key);
  }

  static Call modifySecurityGroupsCall(String id, List<String> groups) {
    return Call.of("ModifyDBInstance", "DBInstanceIdentifier", id, "VpcSecurityGroupIds", String.join(",", groups),
        "ApplyImmediately", "true");
  }

  static Call rebootCall(String id) {
    return Call.of("RebootDBInstance", "DBInstanceIdentifier", id);
  }

  static Call promoteCall(String clusterId) {
    return Call.of("PromoteReadReplicaDBCluster", "DBClusterIdentifier", clusterId);
  }

  static Call metricsCall(String instanceId, List<String> names, Duration window) {
    return Call.of("GetMetricData", "Namespace", "AWS/RDS", "DBInstanceIdentifier", instanceId,
        "MetricNames", String.join(",", names), "Period", "60", "Stat", "Maximum", "Window", window.toMinutes() + "m");
  }

  /** Opens the API when the platform first needs it. */
  interface Opener {
    AwsApi open() throws MigrationException;
  }

  final RdsClient rds;
  final Ec2Query ec2;
  final CloudWatchClient cloudWatch;

  AwsApi(RdsClient rds, Ec2Query ec2, CloudWatchClient cloudWatch) {
    this.rds = rds;
    this.ec2 = ec2;
    this.cloudWatch = cloudWatch;
  }

  /** Clients with the default credential and region chains; throws if either finds nothing. */
  static AwsApi connect(AwsSettings settings) throws MigrationException {
    try {
      var rds = RdsClient.builder().httpClient(UrlConnectionHttpClient.create())
          .overrideConfiguration(o -> o.retryStrategy(retries(settings)));
      var cw = CloudWatchClient.builder().httpClient(UrlConnectionHttpClient.create())
          .overrideConfiguration(o -> o.retryStrategy(retries(settings)));
      settings.endpointOverride().ifPresent(uri -> {
        rds.endpointOverride(uri);
        cw.endpointOverride(uri);
      });
      return new AwsApi(rds.build(), Ec2Query.connect(settings.endpointOverride(), retries(settings), Sleeper.SYSTEM),
          cw.build());
    } catch (SdkException e) {
      throw new MigrationException("cannot set up the AWS clients (region and credentials come from the SDK's"
          + " default chains: AWS_REGION, AWS_PROFILE, instance or container role): " + e.getMessage(), e);
    }
  }

  /**
   * The SDK's standard strategy (it retries throttling, 5xx answers and I/O errors) with {@link #MAX_ATTEMPTS} and
   * the settings' first pauses; each pause doubles, with jitter, up to {@link #MAX_BACKOFF}.
   */
  private static RetryStrategy retries(AwsSettings settings) {
    return AwsRetryStrategy.standardRetryStrategy().toBuilder().maxAttempts(MAX_ATTEMPTS)
        .backoffStrategy(BackoffStrategy.exponentialDelay(settings.retryBackoff().dividedBy(10), MAX_BACKOFF))
        .throttlingBackoffStrategy(BackoffStrategy.exponentialDelay(settings.retryBackoff(), MAX_BACKOFF))
        .build();
  }

  private static final Duration MAX_BACKOFF = Duration.ofSeconds(20);

  private interface Action<T> {
    T run();
  }

  private <T> T call(Call call, Action<T> action) throws MigrationException {
    log.debug("AWS {}", call);
    try {
      return action.run();
    } catch (SdkException e) {
      AwsCallException failure = AwsCallException.of(call, e);
      log.debug("{}", failure.getMessage());
      throw failure;
    }
  }

  /**
   * A refused or failed AWS call. Its message is what the operator reads in a dry run's answer and in the
   * migration's history, so it says everything known, in one line: {@code AWS DescribeDBInstances
   * DBInstanceIdentifier=orders-rds failed after 8 attempts: HTTP 500, no AWS error code, no request id: not an AWS
   * error answer (text/html): "500 Internal Server Error"}. An answer without AWS's error shape (a proxy's page, a
   * bare 404, a body the SDK cannot parse) has no code: its status and the start of its body are all there is.
   */
  static final class AwsCallException extends MigrationException {
    private static final long serialVersionUID = 1L;
    private static final int EXCERPT = 160;
    private final String code;

    private AwsCallException(String message, String code, Throwable cause) {
      super(message, cause);
      this.code = code;
    }

    static AwsCallException of(Call call, SdkException e) {
      int attempts = e.numAttempts() == null ? 1 : e.numAttempts();
      String head = "AWS " + call.named() + " failed" + (attempts > 1 ? " after " + attempts + " attempts" : "") + ": ";
      if (!(e instanceof AwsServiceException s)) {
        // Nothing came back: no credentials or region, the endpoint unreachable, a timeout.
        return new AwsCallException(head + "no HTTP answer: " + text(e.rawMessage(), e.getMessage()), "", e);
      }
      AwsErrorDetails details = s.awsErrorDetails();
      String code = details == null || isBlank(details.errorCode()) ? "" : details.errorCode();
      StringBuilder m = new StringBuilder(head).append("HTTP ").append(s.statusCode())
          .append(code.isEmpty() ? ", no AWS error code" : " " + code)
          .append(isBlank(s.requestId()) ? ", no request id" : ", request id " + s.requestId()).append(": ");
      if (!code.isEmpty()) {
        m.append(text(details.errorMessage(), "(no message)"));
      } else {
        m.append("not an AWS error answer").append(body(details));
      }
      return new AwsCallException(m.toString(), code, e);
    }

    /** The answer's content type and the start of its body (an HTML page's title), on one line. */
    private static String body(AwsErrorDetails details) {
      String type = details == null || details.sdkHttpResponse() == null ? ": "
          : details.sdkHttpResponse().firstMatchingHeader("Content-Type").map(t -> " (" + t + "): ").orElse(": ");
      String raw = details == null || details.rawResponse() == null ? "" : details.rawResponse().asUtf8String();
      raw = raw.equals("<eof/>") ? "" : raw; // what the SDK's Query protocol parser makes of an empty body
      java.util.regex.Matcher title = java.util.regex.Pattern.compile("(?is)<title>(.*?)</title>").matcher(raw);
      String text = (title.find() ? title.group(1) : raw).replaceAll("\\s+", " ").strip();
      if (text.isEmpty()) {
        return type + "empty body";
      }
      return type + "\"" + (text.length() > EXCERPT ? text.substring(0, EXCERPT) + "..." : text) + "\"";
    }

    private static boolean isBlank(String s) {
      return s == null || s.isBlank();
    }

    private static String text(String preferred, String fallback) {
      return isBlank(preferred) ? String.valueOf(fallback) : preferred;
    }

    /** AWS's error code ({@code Throttling}, {@code DBInstanceNotFound}); empty when the answer had none. */
    String code() {
      return code;
    }
  }

  Optional<DBInstance> instance(String id) throws MigrationException {
    try {
      return call(describeInstanceCall(id), () -> rds.describeDBInstances(r -> r.dbInstanceIdentifier(id))
          .dbInstances().stream().findFirst());
    } catch (AwsCallException e) {
      if (e.getCause() instanceof DbInstanceNotFoundException) {
        return Optional.empty();
      }
      throw e;
    }
  }

  Optional<DBCluster> cluster(String id) throws MigrationException {
    try {
      return call(describeClusterCall(id), () -> rds.describeDBClusters(r -> r.dbClusterIdentifier(id))
          .dbClusters().stream().findFirst());
    } catch (AwsCallException e) {
      if (e.getCause() instanceof DbClusterNotFoundException) {
        return Optional.empty();
      }
      throw e;
    }
  }

  void createCluster(String id, String engineVersion, String sourceArn, String subnetGroup, List<String> groups,
      int port, Optional<String> parameterGroup) throws MigrationException {
    call(createClusterCall(id, engineVersion, sourceArn, subnetGroup, groups, port, parameterGroup),
        () -> rds.createDBCluster(r -> r.dbClusterIdentifier(id).engine(ENGINE).engineVersion(engineVersion)
            .replicationSourceIdentifier(sourceArn).dbSubnetGroupName(subnetGroup).vpcSecurityGroupIds(groups)
            .port(port).dbClusterParameterGroupName(parameterGroup.orElse(null))));
  }

  /** The parameters a DB parameter group sets itself (not the engine's defaults), by name. */
  Map<String, String> userParameters(String group) throws MigrationException {
    return call(userParametersCall(group), () -> {
      Map<String, String> out = new LinkedHashMap<>();
      rds.describeDBParametersPaginator(r -> r.dbParameterGroupName(group).source("user")).parameters()
          .forEach(p -> out.put(p.parameterName(), p.parameterValue()));
      return out;
    });
  }

  /** The parameters a DB cluster parameter group sets itself (not the engine's defaults), by name. */
  Map<String, String> clusterUserParameters(String group) throws MigrationException {
    return call(clusterUserParametersCall(group), () -> {
      Map<String, String> out = new LinkedHashMap<>();
      rds.describeDBClusterParametersPaginator(r -> r.dbClusterParameterGroupName(group).source("user")).parameters()
          .forEach(p -> out.put(p.parameterName(), p.parameterValue()));
      return out;
    });
  }

  /** Whether each parameter an Aurora cluster parameter group of {@code family} knows can be set. */
  Map<String, Boolean> clusterParameters(String family) throws MigrationException {
    return call(engineDefaultsCall(family), () -> {
      Map<String, Boolean> out = new LinkedHashMap<>();
      rds.describeEngineDefaultClusterParameters(r -> r.dbParameterGroupFamily(family)).engineDefaults().parameters()
          .forEach(p -> out.put(p.parameterName(), Boolean.TRUE.equals(p.isModifiable())));
      return out;
    });
  }

  boolean clusterParameterGroupExists(String name) throws MigrationException {
    try {
      return call(describeClusterParameterGroupCall(name), () -> !rds.describeDBClusterParameterGroups(r -> r
          .dbClusterParameterGroupName(name)).dbClusterParameterGroups().isEmpty());
    } catch (AwsCallException e) {
      if (e.getCause() instanceof DbParameterGroupNotFoundException) {
        return false;
      }
      throw e;
    }
  }

  void createClusterParameterGroup(String name, String family, String description) throws MigrationException {
    call(createClusterParameterGroupCall(name, family, description), () -> rds.createDBClusterParameterGroup(r -> r
        .dbClusterParameterGroupName(name).dbParameterGroupFamily(family).description(description)));
  }

  /** At most 20 parameters per call, as RDS allows. */
  void modifyClusterParameterGroup(String name, Map<String, String> parameters) throws MigrationException {
    call(modifyClusterParameterGroupCall(name, parameters), () -> rds.modifyDBClusterParameterGroup(r -> r
        .dbClusterParameterGroupName(name).parameters(parameters.entrySet().stream()
            .map(e -> Parameter.builder().parameterName(e.getKey()).parameterValue(e.getValue())
                .applyMethod(ApplyMethod.PENDING_REBOOT).build()).toList())));
  }

  void createInstance(String id, String clusterId, String instanceClass) throws MigrationException {
    call(createInstanceCall(id, clusterId, instanceClass), () -> rds.createDBInstance(r -> r
        .dbInstanceIdentifier(id).dbClusterIdentifier(clusterId).dbInstanceClass(instanceClass).engine(ENGINE)));
  }

  List<SecurityGroup> securityGroups(List<String> ids) throws MigrationException {
    return call(describeSecurityGroupsCall(ids), () -> ec2.describeSecurityGroups(ids));
  }

  Map<String, String> tags(String arn) throws MigrationException {
    return call(listTagsCall(arn), () -> rds.listTagsForResource(r -> r.resourceName(arn)).tagList().stream()
        .collect(Collectors.toMap(Tag::key, Tag::value, (a, b) -> b, LinkedHashMap::new)));
  }

  void addTag(String arn, String key, String value) throws MigrationException {
    call(addTagCall(arn, key, value), () -> rds.addTagsToResource(r -> r.resourceName(arn)
        .tags(Tag.builder().key(key).value(value).build())));
  }

  void removeTag(String arn, String key) throws MigrationException {
    call(removeTagCall(arn, key), () -> rds.removeTagsFromResource(r -> r.resourceName(arn).tagKeys(key)));
  }

  void modifySecurityGroups(String id, List<String> groups) throws MigrationException {
    call(modifySecurityGroupsCall(id, groups), () -> rds.modifyDBInstance(r -> r.dbInstanceIdentifier(id)
        .vpcSecurityGroupIds(groups).applyImmediately(true)));
  }

  void reboot(String id) throws MigrationException {
    call(rebootCall(id), () -> rds.rebootDBInstance(r -> r.dbInstanceIdentifier(id)));
  }

  void promote(String clusterId) throws MigrationException {
    call(promoteCall(clusterId), () -> rds.promoteReadReplicaDBCluster(r -> r.dbClusterIdentifier(clusterId)));
  }

  /** The maximum of each metric per minute over {@code window} before {@code now}, newest first. */
  Map<String, List<Double>> metrics(String instanceId, List<String> names, Duration window, Instant now)
      throws MigrationException {
    List<MetricDataQuery> queries = new ArrayList<>();
    for (int i = 0; i < names.size(); i++) {
      queries.add(MetricDataQuery.builder().id("m" + i).metricStat(MetricStat.builder()
          .metric(Metric.builder().namespace("AWS/RDS").metricName(names.get(i))
              .dimensions(Dimension.builder().name("DBInstanceIdentifier").value(instanceId).build()).build())
          .period(60).stat("Maximum").build()).build());
    }
    GetMetricDataResponse response = call(metricsCall(instanceId, names, window), () -> cloudWatch.getMetricData(r -> r
        .startTime(now.minus(window)).endTime(now).metricDataQueries(queries)));
    Map<String, List<Double>> out = new LinkedHashMap<>();
    for (MetricDataResult result : response.metricDataResults()) {
      int index = Integer.parseInt(result.id().substring(1));
      out.put(names.get(index), ImmutableList.copyOf(result.values()));
    }
    return out;
  }

  @Override
  public void close() {
    rds.close();
    ec2.close();
    cloudWatch.close();
  }
}
