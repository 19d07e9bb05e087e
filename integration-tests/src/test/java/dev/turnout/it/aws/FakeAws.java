package dev.turnout.it.aws;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.cbor.CBORFactory;
import com.fasterxml.jackson.dataformat.cbor.CBORGenerator;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * A FAKE of the AWS APIs Turnout's AWS platform calls, for tests only: the RDS Query API (namespace
 * {@code http://rds.amazonaws.com/doc/2014-10-31/}), the EC2 Query API (namespace
 * {@code http://ec2.amazonaws.com/doc/2016-11-15/}, DescribeSecurityGroups only) and CloudWatch GetMetricData (Smithy
 * RPC v2 CBOR, as SDK 2.57.8's CloudWatch client speaks it). It answers with the documented response and error
 * shapes, keeps its state in memory and moves resources through statuses. It is not AWS: it checks no signatures and
 * knows only the operations and fields listed on its methods.
 *
 * <p>One endpoint ({@link #endpoint()}, plain HTTP on 127.0.0.1) serves the three services: CloudWatch by its path
 * {@code /service/GraniteServiceVersion20100801/operation/NAME}; EC2 by {@code Action=DescribeSecurityGroups} or
 * {@code Version=2016-11-15}; anything else is RDS. A transitional status (creating, modifying, rebooting, promoting)
 * lasts {@link #statusSteps} Describe calls of that resource and the next one reports "available", so tests do not
 * depend on time. The test's hooks run when their transition completes, before the Describe that reports it answers.
 * Besides the services' own refusals, {@link #fault} makes calls meet what stands in front of AWS: an HTML 500 from
 * a proxy, a bare 404, a 403 whose body is not the service's error shape, and throttling.
 */
public final class FakeAws implements AutoCloseable {

  public static final String ACCOUNT = "123456789012";
  private static final String REGION = "us-east-1";
  private static final String RDS_NS = "http://rds.amazonaws.com/doc/2014-10-31/";
  private static final String EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/";
  private static final String CLOUDWATCH_PATH = "/service/GraniteServiceVersion20100801/operation/";
  private static final int MAX_DATAPOINTS = 60;
  private static final Map<String, Double> DEFAULT_METRICS = Map.of("RDSToAuroraPostgreSQLReplicaLag", 0.0,
      "OldestReplicationSlotLag", 0.0, "TransactionLogsGeneration", 1200.0,
      "TransactionLogsDiskUsage", 67108864.0, "FreeStorageSpace", 107374182400.0);
  /** What an Aurora PostgreSQL DB cluster parameter group knows (name -> modifiable) unless the test says otherwise. */
  private static final Map<String, Boolean> DEFAULT_AURORA_CLUSTER_PARAMETERS = Map.of("rds.logical_replication", true,
      "max_replication_slots", true, "max_wal_senders", true, "rds.force_ssl", true, "timezone", true,
      "wal_level", false);
  /** Parameters reported with ApplyType "static" (they take effect after a reboot); all others are "dynamic". */
  private static final Set<String> STATIC_PARAMETERS = Set.of("rds.logical_replication", "max_replication_slots",
      "max_wal_senders", "wal_level", "shared_preload_libraries");
  private static final int MAX_MODIFIED_PARAMETERS = 20;
  private static final CBORFactory CBOR_FACTORY = new CBORFactory();
  private static final ObjectMapper CBOR = new ObjectMapper(CBOR_FACTORY);

  /** What instances and clusters share: a status and the transition in progress. */
  private abstract static class Resource {
    final String id;
    String status = "available";
    boolean transitioning;        // status is transitional; "available" follows after describesLeft Describes
    int describesLeft;
    Runnable onComplete;          // state change applied (under the lock) when the transition completes
    Map<String, Runnable> hooks;  // the test's hooks by id, looked up when the transition completes
    Resource(String id) { this.id = id; }
  }

  private static final class Instance extends Resource {
    final String engine, engineVersion, instanceClass, host, subnetGroup, parameterGroup;
    final String cluster; // DBClusterIdentifier of a cluster member, else null
    final int port;
    List<String> securityGroups;
    final List<String> replicaClusters = new ArrayList<>();

    Instance(String id, String engine, String engineVersion, String instanceClass, String host, int port,
        List<String> securityGroups, String subnetGroup, String parameterGroup, String cluster) {
      super(id);
      this.engine = engine;
      this.engineVersion = engineVersion;
      this.instanceClass = instanceClass;
      this.host = host;
      this.port = port;
      this.securityGroups = List.copyOf(securityGroups);
      this.subnetGroup = subnetGroup;
      this.parameterGroup = parameterGroup;
      this.cluster = cluster;
    }
  }

  private static final class Cluster extends Resource {
    final String engineVersion, host, subnetGroup, parameterGroup;
    final int port;
    final List<String> securityGroups;
    String replicationSource; // the source instance ARN while a replica
    final List<String> members = new ArrayList<>(); // the first is the writer
    /**
     * The static parameters of its group as its instances last started with them: a static parameter changed in the
     * group since then is "pending-reboot" on them until the instance reboots (as on AWS). The fake does not change
     * the real server behind the endpoint: its wal_level is what the test started it with.
     */
    Map<String, String> staticInEffect = Map.of();

    Cluster(String id, String engineVersion, String host, int port, List<String> securityGroups, String subnetGroup,
        String parameterGroup, String replicationSource) {
      super(id);
      this.engineVersion = engineVersion;
      this.host = host;
      this.port = port;
      this.securityGroups = List.copyOf(securityGroups);
      this.subnetGroup = subnetGroup;
      this.parameterGroup = parameterGroup;
      this.replicationSource = replicationSource;
    }
  }

  private record SecurityGroup(String id, String vpcId, List<String> ingressCidrs) {}

  /** A custom DB parameter group (its user-set parameters) or a DB cluster parameter group (those set by Modify). */
  private record ParameterGroup(String name, String family, String description, Map<String, String> parameters) {}

  private record Endpoint(String host, int port) {}

  /** An answer; {@code fromService} false for one that something in front of AWS gives (no x-amzn-RequestId). */
  private record Reply(int status, String contentType, byte[] body, boolean fromService) {
    Reply(int status, String contentType, byte[] body) {
      this(status, contentType, body, true);
    }
  }

  /**
   * How a call can fail other than with the service's own refusal: the shapes a client meets behind proxies and
   * VPC endpoints, and AWS's authentication and rate limits. Each is what the real thing sends, as far as the
   * fake knows.
   */
  public enum Fault {
    /** HTTP 500, an HTML page (as a proxy or load balancer in front answers): no AWS error code, no request id. */
    HTML_500,
    /** HTTP 404, an empty body (a wrong endpoint, a path the proxy does not know): no AWS error code. */
    NOT_FOUND_404,
    /**
     * HTTP 403 with a body that is not the service's error shape: a JSON message, as an authenticating proxy or an
     * endpoint of another protocol answers. No AWS error code; a request id header.
     */
    AUTH_403,
    /** HTTP 400 "Throttling" in the service's own error shape (XML for RDS/EC2, CBOR for CloudWatch). */
    THROTTLED
  }

  private record Faulting(Fault fault, int left) {}

  private static final class AwsError extends Exception {
    final int status;
    final String code;
    AwsError(int status, String code, String message) {
      super(message, null, false, false);
      this.status = status;
      this.code = code;
    }
  }

  private final HttpServer server;
  private final ExecutorService executor;
  private final Map<String, Instance> instances = new LinkedHashMap<>();
  private final Map<String, Cluster> clusters = new LinkedHashMap<>();
  private final Map<String, SecurityGroup> securityGroups = new LinkedHashMap<>();
  private final Map<String, ParameterGroup> parameterGroups = new HashMap<>();
  private final Map<String, ParameterGroup> clusterParameterGroups = new LinkedHashMap<>();
  private final Map<String, Map<String, Boolean>> auroraClusterParameters = new HashMap<>();
  private final Map<String, Map<String, String>> tags = new HashMap<>();
  private final Map<String, Endpoint> newClusterEndpoints = new HashMap<>();
  private final Map<String, Runnable> promoteHooks = new HashMap<>();
  private final Map<String, Runnable> rebootHooks = new HashMap<>();
  private final Map<String, Faulting> faults = new HashMap<>();
  private final Set<String> neverAvailable = new HashSet<>();
  private final Set<String> failPromotion = new HashSet<>();
  private final Map<String, Double> metrics = new HashMap<>(DEFAULT_METRICS);
  private final List<String> calls = new ArrayList<>();
  private int statusSteps = 2;

  private FakeAws() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    executor = Executors.newFixedThreadPool(4, r -> {
      Thread t = new Thread(r, "fake-aws");
      t.setDaemon(true);
      return t;
    });
    server.setExecutor(executor);
    server.createContext("/", this::handle);
  }

  public static FakeAws start() throws IOException {
    FakeAws fake = new FakeAws();
    fake.server.start();
    return fake;
  }

  /** http://127.0.0.1:PORT, for every client's endpointOverride. */
  public URI endpoint() {
    return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
  }

  // ---- setup ----

  /** An RDS for PostgreSQL instance (engine "postgres"), status "available". */
  public synchronized void addInstance(String id, String engineVersion, String host, int port,
      List<String> securityGroupIds, String subnetGroup, String parameterGroup) {
    instances.put(id, new Instance(id, "postgres", engineVersion, "db.r6g.large", host, port, securityGroupIds,
        subnetGroup, parameterGroup, null));
  }

  /** A VPC security group with ingress rules from these CIDRs on port 5432 (tcp). */
  public synchronized void addSecurityGroup(String groupId, String vpcId, List<String> ingressCidrs) {
    securityGroups.put(groupId, new SecurityGroup(groupId, vpcId, List.copyOf(ingressCidrs)));
  }

  /**
   * A custom DB parameter group (family postgresNN) whose user-set parameters are these (name -&gt; value). Instances
   * added with this group name report it in DBParameterGroups; DescribeDBParameters answers these parameters.
   */
  public synchronized void addParameterGroup(String name, String family, Map<String, String> userParameters) {
    parameterGroups.put(name, new ParameterGroup(name, family, "fake DB parameter group",
        new LinkedHashMap<>(userParameters)));
  }

  /**
   * The parameters an Aurora DB cluster parameter group of this family knows, and whether each is modifiable
   * (DescribeEngineDefaultClusterParameters answers them; ModifyDBClusterParameterGroup accepts only the modifiable
   * ones). When not set, any family (e.g. "aurora-postgresql15") knows rds.logical_replication, max_replication_slots,
   * max_wal_senders, rds.force_ssl, timezone (modifiable) and wal_level (not modifiable).
   */
  public synchronized void auroraClusterParameters(String family, Map<String, Boolean> modifiableByName) {
    auroraClusterParameters.put(family, Map.copyOf(modifiableByName));
  }

  /**
   * An existing Aurora PostgreSQL cluster that is a read replica of sourceInstanceId (attach mode), with one writer
   * instance "&lt;clusterId&gt;-1", both "available"; its endpoint is host:port.
   */
  public synchronized void addReplicaCluster(String clusterId, String sourceInstanceId, String host, int port) {
    Instance source = known(instances.get(sourceInstanceId), sourceInstanceId);
    Cluster c = new Cluster(clusterId, source.engineVersion, host, port, source.securityGroups, source.subnetGroup,
        defaultClusterParameterGroup(source.engineVersion), arn("db", sourceInstanceId));
    clusters.put(clusterId, c);
    source.replicaClusters.add(clusterId);
    addMember(c, clusterId + "-1", "db.r6g.large");
  }

  /**
   * As {@link #addReplicaCluster(String, String, String, int)}, with the DB cluster parameter group {@code
   * parameterGroup} (added with {@link #addClusterParameterGroup}), whose parameters the cluster started with.
   */
  public synchronized void addReplicaCluster(String clusterId, String sourceInstanceId, String host, int port,
      String parameterGroup) {
    Instance source = known(instances.get(sourceInstanceId), sourceInstanceId);
    Cluster c = new Cluster(clusterId, source.engineVersion, host, port, source.securityGroups, source.subnetGroup,
        parameterGroup, arn("db", sourceInstanceId));
    c.staticInEffect = staticParameters(parameterGroup);
    clusters.put(clusterId, c);
    source.replicaClusters.add(clusterId);
    addMember(c, clusterId + "-1", "db.r6g.large");
  }

  /** A DB cluster parameter group that exists already (made by the operator), setting {@code parameters}. */
  public synchronized void addClusterParameterGroup(String name, String family, Map<String, String> parameters) {
    clusterParameterGroups.put(name, new ParameterGroup(name, family, "the operator's", new LinkedHashMap<>(parameters)));
  }

  /**
   * What an operator's ModifyDBClusterParameterGroup of one parameter does: set in the group at once; a static one
   * reaches a cluster's instances only when they reboot (DBClusterParameterGroupStatus "pending-reboot" until then).
   */
  public synchronized void setClusterParameter(String group, String name, String value) {
    known(clusterParameterGroups.get(group), group).parameters().put(name, value);
  }

  /** The cluster's writer rebooted by its operator (outside the migration): it takes its group's static parameters. */
  public synchronized void rebootClusterWriter(String clusterId) {
    Cluster c = known(clusters.get(clusterId), clusterId);
    c.staticInEffect = staticParameters(c.parameterGroup);
  }

  /** The static parameters {@code group} sets now (none for a default group). */
  private Map<String, String> staticParameters(String group) {
    ParameterGroup g = clusterParameterGroups.get(group);
    Map<String, String> out = new TreeMap<>();
    if (g != null) {
      g.parameters().forEach((name, value) -> {
        if (STATIC_PARAMETERS.contains(name)) {
          out.put(name, value);
        }
      });
    }
    return out;
  }

  /** "pending-reboot" when the group's static parameters differ from those the cluster's instances started with. */
  private String parameterGroupStatus(Cluster c) {
    return staticParameters(c.parameterGroup).equals(c.staticInEffect) ? "in-sync" : "pending-reboot";
  }

  /**
   * The endpoint a cluster created later by CreateDBCluster with this id will report (a test's real server), whatever
   * Port the call asks for. Otherwise a created cluster reports "ID.cluster-fake.us-east-1.rds.amazonaws.com" and
   * the Port asked for, 5432 when none.
   */
  public synchronized void endpointForNewCluster(String clusterId, String host, int port) {
    newClusterEndpoints.put(clusterId, new Endpoint(host, port));
  }

  /** How many Describe calls a transitional status lasts before the next status. Default 2. */
  public synchronized void statusSteps(int describesPerStatus) {
    statusSteps = describesPerStatus;
  }

  /** Runs when a promotion of this cluster completes. */
  public synchronized void onPromote(String clusterId, Runnable action) {
    promoteHooks.put(clusterId, action);
  }

  /** Runs when a reboot of this instance completes. */
  public synchronized void onReboot(String instanceId, Runnable action) {
    rebootHooks.put(instanceId, action);
  }

  /** The next n calls of action answer HTTP 400 "Throttling" (RDS/EC2: XML error; CloudWatch: CBOR error). */
  public synchronized void throttle(String action, int n) {
    fault(action, n, Fault.THROTTLED);
  }

  /**
   * The next n calls of action (an RDS or EC2 Action, or a CloudWatch operation) fail with this fault; the calls
   * list shows each as "... -&gt; FAULT" ("... -&gt; Throttling" for {@link Fault#THROTTLED}).
   */
  public synchronized void fault(String action, int n, Fault fault) {
    faults.put(action, new Faulting(fault, n));
  }

  /** The cluster (created or existing) never leaves "creating". */
  public synchronized void neverAvailable(String clusterId) {
    neverAvailable.add(clusterId);
  }

  /** PromoteReadReplicaDBCluster on this cluster answers 400 InvalidDBClusterStateFault. */
  public synchronized void failPromotion(String clusterId) {
    failPromotion.add(clusterId);
  }

  /**
   * GetMetricData answers this value for every datapoint of metricName, with any dimensions. Unset metrics answer
   * RDSToAuroraPostgreSQLReplicaLag 0, OldestReplicationSlotLag 0, TransactionLogsGeneration 1200,
   * TransactionLogsDiskUsage 67108864, FreeStorageSpace 107374182400; any other metric answers no datapoints.
   */
  public synchronized void metric(String metricName, double value) {
    metrics.put(metricName, value);
  }

  // ---- assertions ----

  /**
   * Every call received, in order: "Action Param1=v1 Param2=v2", form parameters sorted by name without Action and
   * Version; CloudWatch as "GetMetricData" and the metric names queried. Throttled calls end with " -> Throttling",
   * calls that met another {@link Fault} with its name (" -> HTML_500").
   */
  public synchronized List<String> calls() {
    return List.copyOf(calls);
  }

  public synchronized String instanceStatus(String id) {
    return known(instances.get(id), id).status;
  }

  public synchronized List<String> instanceSecurityGroups(String id) {
    return known(instances.get(id), id).securityGroups;
  }

  public synchronized Map<String, String> tags(String arn) {
    return Map.copyOf(tags.getOrDefault(arn, Map.of()));
  }

  public synchronized String clusterStatus(String clusterId) {
    return status(known(clusters.get(clusterId), clusterId));
  }

  /** The family of a DB cluster parameter group created through the API; empty if there is none. */
  public synchronized Optional<String> clusterParameterGroupFamily(String name) {
    return Optional.ofNullable(clusterParameterGroups.get(name)).map(ParameterGroup::family);
  }

  /** The parameters ModifyDBClusterParameterGroup set in this group (name -&gt; value), in order; empty if none. */
  public synchronized Map<String, String> clusterParameterGroupParameters(String name) {
    ParameterGroup g = clusterParameterGroups.get(name);
    return g == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(g.parameters()));
  }

  /**
   * The DBClusterParameterGroup a cluster was created with: DBClusterParameterGroupName of CreateDBCluster, else
   * "default.aurora-postgresqlNN" (NN the major of its EngineVersion).
   */
  public synchronized String clusterParameterGroup(String clusterId) {
    return known(clusters.get(clusterId), clusterId).parameterGroup;
  }

  /** The source instance ARN while the cluster is a replica. */
  public synchronized Optional<String> clusterReplicationSource(String clusterId) {
    return Optional.ofNullable(known(clusters.get(clusterId), clusterId).replicationSource);
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }

  private static <T> T known(T resource, String id) {
    return Objects.requireNonNull(resource, () -> "the fake has no " + id);
  }

  // ---- HTTP ----

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      byte[] body = exchange.getRequestBody().readAllBytes();
      String path = exchange.getRequestURI().getPath();
      boolean cloudWatch = path.startsWith(CLOUDWATCH_PATH);
      List<Runnable> hooks = new ArrayList<>();
      Reply reply;
      try {
        synchronized (this) {
          reply = cloudWatch ? cloudWatch(path.substring(CLOUDWATCH_PATH.length()), body)
              : query(new String(body, StandardCharsets.UTF_8), hooks);
        }
        hooks.forEach(Runnable::run); // outside the lock: a hook may take long or look at the fake
      } catch (RuntimeException | IOException e) {
        e.printStackTrace();
        reply = xmlError(false, new AwsError(500, "InternalFailure", "fake: " + e));
      }
      exchange.getResponseHeaders().set("Content-Type", reply.contentType());
      if (reply.fromService()) {
        exchange.getResponseHeaders().set("x-amzn-RequestId", UUID.randomUUID().toString());
      }
      if (cloudWatch && reply.fromService()) {
        exchange.getResponseHeaders().set("smithy-protocol", "rpc-v2-cbor");
      }
      exchange.sendResponseHeaders(reply.status(), reply.body().length == 0 ? -1 : reply.body().length);
      exchange.getResponseBody().write(reply.body());
    }
  }

  /** The fault this call of action meets, counting it down; null when it goes through. */
  private Fault faulted(String action) {
    Faulting f = faults.get(action);
    if (f == null || f.left() <= 0) {
      return null;
    }
    faults.put(action, new Faulting(f.fault(), f.left() - 1));
    return f.fault();
  }

  private static String logged(Fault fault) {
    return " -> " + (fault == Fault.THROTTLED ? "Throttling" : fault.name());
  }

  /** The answers of the faults that are not the service's own ({@link Fault#THROTTLED} is). */
  private static Reply foreign(Fault fault) {
    return switch (fault) {
      case HTML_500 -> new Reply(500, "text/html", ("<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n"
          + "<body>\r\n<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
          + "</body>\r\n</html>\r\n").getBytes(StandardCharsets.UTF_8), false);
      case NOT_FOUND_404 -> new Reply(404, "text/plain", new byte[0], false);
      case AUTH_403 -> new Reply(403, "application/json",
          "{\"message\":\"The security token included in the request is invalid.\"}".getBytes(StandardCharsets.UTF_8),
          true);
      case THROTTLED -> throw new IllegalArgumentException("throttling is the service's own answer");
    };
  }

  // ---- RDS and EC2: Query protocol, form-encoded POST, XML answers ----

  private Reply query(String form, List<Runnable> hooks) {
    Map<String, String> p = new TreeMap<>();
    for (String pair : form.split("&")) {
      int eq = pair.indexOf('=');
      if (eq > 0) {
        p.put(URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
            URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
      }
    }
    String action = p.getOrDefault("Action", "");
    boolean ec2 = action.equals("DescribeSecurityGroups") || "2016-11-15".equals(p.get("Version"));
    StringBuilder line = new StringBuilder(action);
    p.forEach((k, v) -> {
      if (!k.equals("Action") && !k.equals("Version")) {
        line.append(' ').append(k).append('=').append(v);
      }
    });
    Fault fault = faulted(action);
    calls.add(fault == null ? line.toString() : line + logged(fault));
    if (fault != null && fault != Fault.THROTTLED) {
      return foreign(fault);
    }
    try {
      check(fault == null, 400, "Throttling", "Rate exceeded");
      return switch (action) {
        case "DescribeDBInstances" -> rds(action, describeInstances(p.get("DBInstanceIdentifier"), hooks));
        case "DescribeDBClusters" -> rds(action, describeClusters(p.get("DBClusterIdentifier"), hooks));
        case "CreateDBCluster" -> rds(action, clusterXml(createCluster(p)));
        case "CreateDBInstance" -> rds(action, instanceXml(createInstance(p)));
        case "ModifyDBInstance" -> rds(action, instanceXml(modifyInstance(p)));
        case "RebootDBInstance" -> rds(action, instanceXml(rebootInstance(p)));
        case "PromoteReadReplicaDBCluster" -> rds(action, clusterXml(promote(p)));
        case "AddTagsToResource" -> rds(action, addTags(p));
        case "RemoveTagsFromResource" -> rds(action, removeTags(p));
        case "ListTagsForResource" -> rds(action, listTags(p));
        case "DescribeDBParameterGroups" -> rds(action, describeParameterGroups(p));
        case "DescribeDBParameters" -> rds(action, describeParameters(p));
        case "DescribeEngineDefaultClusterParameters" -> rds(action, engineDefaultClusterParameters(p));
        case "DescribeDBClusterParameters" -> rds(action, describeClusterParameters(p));
        case "DescribeDBClusterParameterGroups" -> rds(action, describeClusterParameterGroups(p));
        case "CreateDBClusterParameterGroup" -> rds(action, parameterGroupXml(createClusterParameterGroup(p), true));
        case "ModifyDBClusterParameterGroup" -> rds(action, modifyClusterParameterGroup(p));
        case "DescribeSecurityGroups" -> describeSecurityGroups(p);
        default -> throw new AwsError(400, "InvalidAction", "The action " + action + " is not valid for this fake");
      };
    } catch (AwsError e) {
      return xmlError(ec2, e);
    }
  }

  private String describeInstances(String id, List<Runnable> hooks) throws AwsError {
    StringBuilder x = new StringBuilder("<DBInstances>");
    for (Instance i : id == null ? List.copyOf(instances.values()) : List.of(existingInstance(id))) {
      step(i, hooks);
      x.append(instanceXml(i));
    }
    return x.append("</DBInstances>").toString();
  }

  private String describeClusters(String id, List<Runnable> hooks) throws AwsError {
    StringBuilder x = new StringBuilder("<DBClusters>");
    for (Cluster c : id == null ? List.copyOf(clusters.values()) : List.of(existingCluster(id))) {
      step(c, hooks);
      x.append(clusterXml(c));
    }
    return x.append("</DBClusters>").toString();
  }

  private Cluster createCluster(Map<String, String> p) throws AwsError {
    String id = required(p, "DBClusterIdentifier");
    check(!clusters.containsKey(id), 400, "DBClusterAlreadyExistsFault", "DB cluster already exists");
    String sourceId = p.get("ReplicationSourceIdentifier");
    Instance source = sourceId == null ? null : existingInstance(sourceId);
    String engineVersion = p.getOrDefault("EngineVersion", source == null ? "16.4" : source.engineVersion);
    String parameterGroup = p.getOrDefault("DBClusterParameterGroupName", defaultClusterParameterGroup(engineVersion));
    check(clusterParameterGroups.containsKey(parameterGroup) || parameterGroup.startsWith("default."), 404,
        "DBClusterParameterGroupNotFound", "DBClusterParameterGroup not found: " + parameterGroup);
    Endpoint endpoint = newClusterEndpoints.getOrDefault(id, new Endpoint(id + ".cluster-fake." + REGION
        + ".rds.amazonaws.com", Integer.parseInt(p.getOrDefault("Port", "5432"))));
    Cluster c = new Cluster(id, engineVersion, endpoint.host(), endpoint.port(),
        members(p, "VpcSecurityGroupIds.VpcSecurityGroupId"), p.getOrDefault("DBSubnetGroupName", "default"),
        parameterGroup, source == null ? null : arn("db", source.id));
    if (source != null) {
      source.replicaClusters.add(id);
    }
    c.staticInEffect = staticParameters(parameterGroup); // its instances start with the group as it is
    clusters.put(id, c);
    begin(c, "creating", null, null);
    return c;
  }

  private static String defaultClusterParameterGroup(String engineVersion) {
    return "default.aurora-postgresql" + engineVersion.split("\\.")[0];
  }

  // ---- parameter groups ----

  /** DescribeDBParameterGroups: the added groups; a default group ("default.FAMILY") is answered as it is named. */
  private String describeParameterGroups(Map<String, String> p) throws AwsError {
    String name = p.get("DBParameterGroupName");
    StringBuilder x = new StringBuilder("<DBParameterGroups>");
    for (ParameterGroup g : name == null ? List.copyOf(parameterGroups.values())
        : List.of(groupOrDefault(parameterGroups, name))) {
      x.append(parameterGroupXml(g, false));
    }
    return x.append("</DBParameterGroups>").toString();
  }

  /**
   * DescribeDBParameters: the user-set parameters of an added group (Source absent or "user"); a default group knows
   * none. Everything in one page: no Marker.
   */
  private String describeParameters(Map<String, String> p) throws AwsError {
    ParameterGroup g = groupOrDefault(parameterGroups, required(p, "DBParameterGroupName"));
    String source = p.getOrDefault("Source", "user");
    StringBuilder x = new StringBuilder("<Parameters>");
    if (source.equals("user")) {
      g.parameters().forEach((name, value) -> parameterXml(x, name, value, "user", true));
    }
    return x.append("</Parameters>").toString();
  }

  /**
   * The group by name; a default group ("default.FAMILY") that was not added is an empty group of that family;
   * else 404 DBParameterGroupNotFound.
   */
  private static ParameterGroup groupOrDefault(Map<String, ParameterGroup> groups, String name) throws AwsError {
    ParameterGroup g = groups.get(name);
    if (g == null && name.startsWith("default.")) {
      String family = name.substring("default.".length());
      return new ParameterGroup(name, family, "Default parameter group for " + family, Map.of());
    }
    check(g != null, 404, "DBParameterGroupNotFound", "Parameter group " + name + " not found.");
    return g;
  }

  /** DescribeEngineDefaultClusterParameters: what the family knows ({@link #auroraClusterParameters}), by name. */
  private String engineDefaultClusterParameters(Map<String, String> p) throws AwsError {
    String family = required(p, "DBParameterGroupFamily");
    StringBuilder x = el(new StringBuilder("<EngineDefaults>"), "DBParameterGroupFamily", family)
        .append("<Parameters>");
    new TreeMap<>(auroraParameters(family))
        .forEach((name, modifiable) -> parameterXml(x, name, null, "engine-default", modifiable));
    return x.append("</Parameters></EngineDefaults>").toString();
  }

  private Map<String, Boolean> auroraParameters(String family) {
    return auroraClusterParameters.getOrDefault(family, DEFAULT_AURORA_CLUSTER_PARAMETERS);
  }

  /**
   * DescribeDBClusterParameters: the parameters set in a DB cluster parameter group (Source absent or "user"); a
   * default group sets none. Everything in one page: no Marker.
   */
  private String describeClusterParameters(Map<String, String> p) throws AwsError {
    ParameterGroup g = groupOrDefault(clusterParameterGroups, required(p, "DBClusterParameterGroupName"));
    StringBuilder x = new StringBuilder("<Parameters>");
    if (p.getOrDefault("Source", "user").equals("user")) {
      g.parameters().forEach((name, value) -> parameterXml(x, name, value, "user", true));
    }
    return x.append("</Parameters>").toString();
  }

  /** DescribeDBClusterParameterGroups: the created groups; a default group ("default.FAMILY") as it is named. */
  private String describeClusterParameterGroups(Map<String, String> p) throws AwsError {
    String name = p.get("DBClusterParameterGroupName");
    StringBuilder x = new StringBuilder("<DBClusterParameterGroups>");
    for (ParameterGroup g : name == null ? List.copyOf(clusterParameterGroups.values())
        : List.of(groupOrDefault(clusterParameterGroups, name))) {
      x.append(parameterGroupXml(g, true));
    }
    return x.append("</DBClusterParameterGroups>").toString();
  }

  private ParameterGroup createClusterParameterGroup(Map<String, String> p) throws AwsError {
    String name = required(p, "DBClusterParameterGroupName");
    ParameterGroup g = new ParameterGroup(name, required(p, "DBParameterGroupFamily"), required(p, "Description"),
        new LinkedHashMap<>());
    check(!clusterParameterGroups.containsKey(name), 400, "DBParameterGroupAlreadyExists",
        "Parameter group " + name + " already exists");
    clusterParameterGroups.put(name, g);
    return g;
  }

  /**
   * ModifyDBClusterParameterGroup: Parameters.Parameter.N.{ParameterName, ParameterValue, ApplyMethod}, at most 20.
   * A parameter the family does not know or cannot modify, or "immediate" for a static one, refuses the whole call.
   */
  private String modifyClusterParameterGroup(Map<String, String> p) throws AwsError {
    ParameterGroup g = existingClusterParameterGroup(required(p, "DBClusterParameterGroupName"));
    required(p, "Parameters.Parameter.1.ParameterName");
    check(!p.containsKey("Parameters.Parameter." + (MAX_MODIFIED_PARAMETERS + 1) + ".ParameterName"), 400,
        "InvalidParameterValue",
        "A maximum of " + MAX_MODIFIED_PARAMETERS + " parameters can be modified in a single request");
    Map<String, String> changes = new LinkedHashMap<>();
    for (int n = 1; p.containsKey("Parameters.Parameter." + n + ".ParameterName"); n++) {
      String prefix = "Parameters.Parameter." + n + ".";
      String name = p.get(prefix + "ParameterName");
      Boolean modifiable = auroraParameters(g.family()).get(name);
      check(modifiable != null, 400, "InvalidParameterValue", "Could not find parameter with name: " + name);
      check(modifiable, 400, "InvalidParameterValue", "The parameter " + name + " cannot be modified.");
      check(!(STATIC_PARAMETERS.contains(name) && "immediate".equals(p.get(prefix + "ApplyMethod"))), 400,
          "InvalidParameterCombination", "cannot use immediate apply method for static parameter " + name);
      changes.put(name, required(p, prefix + "ParameterValue"));
    }
    g.parameters().putAll(changes);
    return el(new StringBuilder(), "DBClusterParameterGroupName", g.name()).toString();
  }

  /** A DB cluster parameter group created through the API, else 404 DBParameterGroupNotFound (as AWS answers). */
  private ParameterGroup existingClusterParameterGroup(String name) throws AwsError {
    ParameterGroup g = clusterParameterGroups.get(name);
    check(g != null, 404, "DBParameterGroupNotFound", "Parameter group " + name + " not found.");
    return g;
  }

  /** A DBParameterGroup, or (cluster) a DBClusterParameterGroup element. */
  private static String parameterGroupXml(ParameterGroup g, boolean cluster) {
    String type = cluster ? "DBClusterParameterGroup" : "DBParameterGroup";
    return el(new StringBuilder("<" + type + ">"), type + "Name", g.name(), "DBParameterGroupFamily", g.family(),
        "Description", g.description(), type + "Arn", arn(cluster ? "cluster-pg" : "pg", g.name()))
        .append("</").append(type).append('>').toString();
  }

  /** A Parameter element; ApplyType "static" for {@link #STATIC_PARAMETERS}, else "dynamic". */
  private static void parameterXml(StringBuilder x, String name, String value, String source, boolean modifiable) {
    el(x.append("<Parameter>"), "ParameterName", name, "ParameterValue", value, "Source", source,
        "ApplyType", STATIC_PARAMETERS.contains(name) ? "static" : "dynamic", "DataType", "string",
        "IsModifiable", String.valueOf(modifiable)).append("</Parameter>");
  }

  private Instance createInstance(Map<String, String> p) throws AwsError {
    String id = required(p, "DBInstanceIdentifier");
    check(!instances.containsKey(id), 400, "DBInstanceAlreadyExists", "DB instance already exists");
    check(p.containsKey("DBClusterIdentifier"), 400, "InvalidParameterCombination",
        "this fake only creates Aurora cluster instances");
    Cluster c = existingCluster(p.get("DBClusterIdentifier"));
    Instance i = addMember(c, id, p.getOrDefault("DBInstanceClass", "db.r6g.large"));
    begin(i, "creating", null, null);
    return i;
  }

  /** A cluster member: the cluster's endpoint, security groups and subnet group; the first member is the writer. */
  private Instance addMember(Cluster c, String id, String instanceClass) {
    Instance i = new Instance(id, "aurora-postgresql", c.engineVersion, instanceClass, c.host, c.port,
        c.securityGroups, c.subnetGroup, "default.aurora-postgresql" + c.engineVersion.split("\\.")[0], c.id);
    c.members.add(id);
    instances.put(id, i);
    return i;
  }

  private Instance modifyInstance(Map<String, String> p) throws AwsError {
    Instance i = availableInstance(required(p, "DBInstanceIdentifier"));
    List<String> groups = members(p, "VpcSecurityGroupIds.VpcSecurityGroupId");
    begin(i, "modifying", groups.isEmpty() ? null : () -> i.securityGroups = groups, null);
    return i;
  }

  private Instance rebootInstance(Map<String, String> p) throws AwsError {
    Instance i = availableInstance(required(p, "DBInstanceIdentifier"));
    Cluster c = i.cluster == null ? null : clusters.get(i.cluster);
    // A cluster's writer restarting takes its group's static parameters (the fake keeps one status per cluster).
    begin(i, "rebooting", c == null || !c.members.get(0).equals(i.id) ? null
        : () -> c.staticInEffect = staticParameters(c.parameterGroup), rebootHooks);
    return i;
  }

  private Cluster promote(Map<String, String> p) throws AwsError {
    Cluster c = existingCluster(required(p, "DBClusterIdentifier"));
    check(!failPromotion.contains(c.id) && c.replicationSource != null && status(c).equals("available"), 400,
        "InvalidDBClusterStateFault", "DBCluster " + c.id + " is not a read replica in the available state");
    begin(c, "promoting", () -> {
      Instance source = instances.get(c.replicationSource.substring(c.replicationSource.lastIndexOf(':') + 1));
      if (source != null) {
        source.replicaClusters.remove(c.id);
      }
      c.replicationSource = null;
    }, promoteHooks);
    return c;
  }

  private void begin(Resource r, String status, Runnable onComplete, Map<String, Runnable> hooks) {
    r.status = status;
    r.transitioning = true;
    r.describesLeft = statusSteps;
    r.onComplete = onComplete;
    r.hooks = hooks;
  }

  /** One Describe of r: counts its transition down; completing it collects the test's hook to run. */
  private void step(Resource r, List<Runnable> hooks) {
    if (!r.transitioning || neverAvailable.contains(r.id) || r.describesLeft-- > 0) {
      return;
    }
    r.status = "available";
    r.transitioning = false;
    if (r.onComplete != null) {
      r.onComplete.run();
    }
    if (r.hooks != null && r.hooks.containsKey(r.id)) {
      hooks.add(r.hooks.get(r.id));
    }
  }

  private String status(Cluster c) {
    return neverAvailable.contains(c.id) ? "creating" : c.status;
  }

  private String addTags(Map<String, String> p) throws AwsError {
    Map<String, String> t = taggable(required(p, "ResourceName"));
    for (int n = 1; p.containsKey("Tags.Tag." + n + ".Key"); n++) {
      t.put(p.get("Tags.Tag." + n + ".Key"), p.getOrDefault("Tags.Tag." + n + ".Value", ""));
    }
    return null;
  }

  private String removeTags(Map<String, String> p) throws AwsError {
    taggable(required(p, "ResourceName")).keySet().removeAll(members(p, "TagKeys.member"));
    return null;
  }

  private String listTags(Map<String, String> p) throws AwsError {
    StringBuilder x = new StringBuilder("<TagList>");
    taggable(required(p, "ResourceName"))
        .forEach((k, v) -> el(x.append("<Tag>"), "Key", k, "Value", v).append("</Tag>"));
    return x.append("</TagList>").toString();
  }

  private Map<String, String> taggable(String arn) throws AwsError {
    if (arn.contains(":db:")) {
      existingInstance(arn);
    } else if (arn.contains(":cluster:")) {
      existingCluster(arn);
    }
    return tags.computeIfAbsent(arn, a -> new LinkedHashMap<>());
  }

  private Reply describeSecurityGroups(Map<String, String> p) throws AwsError {
    List<String> ids = members(p, "GroupId");
    StringBuilder x = el(new StringBuilder("<DescribeSecurityGroupsResponse xmlns=\"" + EC2_NS + "\">"),
        "requestId", UUID.randomUUID().toString()).append("<securityGroupInfo>");
    for (String id : ids.isEmpty() ? List.copyOf(securityGroups.keySet()) : ids) {
      SecurityGroup g = securityGroups.get(id);
      check(g != null, 400, "InvalidGroup.NotFound", "The security group '" + id + "' does not exist");
      el(x.append("<item>"), "ownerId", ACCOUNT, "groupId", g.id(), "groupName", g.id() + "-name",
          "groupDescription", "fake security group", "vpcId", g.vpcId()).append("<ipPermissions>");
      if (!g.ingressCidrs().isEmpty()) {
        x.append("<item><ipProtocol>tcp</ipProtocol><fromPort>5432</fromPort><toPort>5432</toPort><groups/><ipRanges>");
        g.ingressCidrs().forEach(cidr -> el(x.append("<item>"), "cidrIp", cidr).append("</item>"));
        x.append("</ipRanges><ipv6Ranges/><prefixListIds/></item>");
      }
      x.append("</ipPermissions><ipPermissionsEgress/></item>");
    }
    x.append("</securityGroupInfo></DescribeSecurityGroupsResponse>");
    return new Reply(200, "text/xml", x.toString().getBytes(StandardCharsets.UTF_8));
  }

  private String instanceXml(Instance i) {
    String vpc = i.securityGroups.stream().map(securityGroups::get).filter(Objects::nonNull)
        .map(SecurityGroup::vpcId).findFirst().orElse("vpc-00000000");
    StringBuilder x = el(new StringBuilder("<DBInstance>"), "DBInstanceIdentifier", i.id,
        "DBInstanceArn", arn("db", i.id), "DBInstanceClass", i.instanceClass, "Engine", i.engine,
        "EngineVersion", i.engineVersion, "DBInstanceStatus", i.status, "AllocatedStorage", "100",
        "DBClusterIdentifier", i.cluster);
    el(x.append("<Endpoint>"), "Address", i.host, "Port", String.valueOf(i.port)).append("</Endpoint>");
    securityGroupsXml(x, i.securityGroups);
    el(x.append("<DBSubnetGroup>"), "DBSubnetGroupName", i.subnetGroup, "VpcId", vpc,
        "SubnetGroupStatus", "Complete");
    el(x.append("</DBSubnetGroup><DBParameterGroups><DBParameterGroup>"),
        "DBParameterGroupName", i.parameterGroup, "ParameterApplyStatus", "in-sync");
    x.append("</DBParameterGroup></DBParameterGroups><ReadReplicaDBClusterIdentifiers>");
    i.replicaClusters.forEach(c -> el(x, "ReadReplicaDBClusterIdentifier", c));
    return x.append("</ReadReplicaDBClusterIdentifiers></DBInstance>").toString();
  }

  private String clusterXml(Cluster c) {
    StringBuilder x = el(new StringBuilder("<DBCluster>"), "DBClusterIdentifier", c.id,
        "DBClusterArn", arn("cluster", c.id), "Engine", "aurora-postgresql", "EngineVersion", c.engineVersion,
        "EngineMode", "provisioned", "Status", status(c), "Endpoint", c.host,
        "ReaderEndpoint", c.host.replace(".cluster-", ".cluster-ro-"), "Port", String.valueOf(c.port),
        "DBSubnetGroup", c.subnetGroup, "DBClusterParameterGroup", c.parameterGroup,
        "ReplicationSourceIdentifier", c.replicationSource).append("<DBClusterMembers>");
    for (String member : c.members) {
      el(x.append("<DBClusterMember>"), "DBInstanceIdentifier", member,
          "IsClusterWriter", String.valueOf(member.equals(c.members.get(0))),
          "DBClusterParameterGroupStatus", parameterGroupStatus(c)).append("</DBClusterMember>");
    }
    securityGroupsXml(x.append("</DBClusterMembers>"), c.securityGroups);
    return x.append("</DBCluster>").toString();
  }

  private static void securityGroupsXml(StringBuilder x, List<String> groups) {
    x.append("<VpcSecurityGroups>");
    groups.forEach(g -> el(x.append("<VpcSecurityGroupMembership>"), "VpcSecurityGroupId", g, "Status", "active")
        .append("</VpcSecurityGroupMembership>"));
    x.append("</VpcSecurityGroups>");
  }

  /** An RDS answer: ActionResponse/ActionResult/result (no ActionResult when null) + ResponseMetadata/RequestId. */
  private static Reply rds(String action, String result) {
    StringBuilder x = new StringBuilder("<" + action + "Response xmlns=\"" + RDS_NS + "\">");
    if (result != null) {
      x.append('<').append(action).append("Result>").append(result).append("</").append(action).append("Result>");
    }
    el(x.append("<ResponseMetadata>"), "RequestId", UUID.randomUUID().toString());
    x.append("</ResponseMetadata></").append(action).append("Response>");
    return new Reply(200, "text/xml", x.toString().getBytes(StandardCharsets.UTF_8));
  }

  /** RDS: ErrorResponse/Error/{Type,Code,Message}, RequestId. EC2: Response/Errors/Error/{Code,Message}, RequestID. */
  private static Reply xmlError(boolean ec2, AwsError e) {
    String id = UUID.randomUUID().toString();
    String xml = ec2
        ? el(el(new StringBuilder("<Response><Errors><Error>"), "Code", e.code, "Message", e.getMessage())
            .append("</Error></Errors>"), "RequestID", id).append("</Response>").toString()
        : el(el(new StringBuilder("<ErrorResponse xmlns=\"" + RDS_NS + "\"><Error>"),
            "Type", e.status >= 500 ? "Receiver" : "Sender", "Code", e.code, "Message", e.getMessage())
            .append("</Error>"), "RequestId", id).append("</ErrorResponse>").toString();
    return new Reply(e.status, "text/xml", xml.getBytes(StandardCharsets.UTF_8));
  }

  /** The instance by id or ARN, else 404 DBInstanceNotFound. */
  private Instance existingInstance(String idOrArn) throws AwsError {
    Instance i = instances.get(idOrArn.substring(idOrArn.lastIndexOf(':') + 1));
    check(i != null, 404, "DBInstanceNotFound", "DBInstance " + idOrArn + " not found.");
    return i;
  }

  private Instance availableInstance(String id) throws AwsError {
    Instance i = existingInstance(id);
    check(i.status.equals("available"), 400, "InvalidDBInstanceState", "Instance " + id + " is not available");
    return i;
  }

  /** The cluster by id or ARN, else 404 DBClusterNotFoundFault. */
  private Cluster existingCluster(String idOrArn) throws AwsError {
    Cluster c = clusters.get(idOrArn.substring(idOrArn.lastIndexOf(':') + 1));
    check(c != null, 404, "DBClusterNotFoundFault", "DBCluster " + idOrArn + " not found.");
    return c;
  }

  private static void check(boolean ok, int status, String code, String message) throws AwsError {
    if (!ok) {
      throw new AwsError(status, code, message);
    }
  }

  private static String required(Map<String, String> p, String name) throws AwsError {
    String v = p.get(name);
    check(v != null && !v.isEmpty(), 400, "MissingParameter", "The request must contain the parameter " + name);
    return v;
  }

  /** The values of the Query protocol list prefix.1, prefix.2, ... */
  private static List<String> members(Map<String, String> p, String prefix) {
    List<String> values = new ArrayList<>();
    for (int n = 1; p.containsKey(prefix + "." + n); n++) {
      values.add(p.get(prefix + "." + n));
    }
    return values;
  }

  private static String arn(String type, String id) {
    return "arn:aws:rds:" + REGION + ":" + ACCOUNT + ":" + type + ":" + id;
  }

  /** Appends &lt;name&gt;escaped value&lt;/name&gt; for each name, value pair; skips null values. */
  private static StringBuilder el(StringBuilder x, String... namesAndValues) {
    for (int n = 0; n < namesAndValues.length; n += 2) {
      String name = namesAndValues[n];
      String value = namesAndValues[n + 1];
      if (value != null) {
        x.append('<').append(name).append('>')
            .append(value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
            .append("</").append(name).append('>');
      }
    }
    return x;
  }

  // ---- CloudWatch: Smithy RPC v2 CBOR ----

  private Reply cloudWatch(String operation, byte[] body) throws IOException {
    JsonNode request = body.length == 0 ? CBOR.createObjectNode() : CBOR.readTree(body);
    StringBuilder line = new StringBuilder(operation);
    request.path("MetricDataQueries")
        .forEach(q -> line.append(' ').append(q.path("MetricStat").path("Metric").path("MetricName").asText("-")));
    Fault fault = faulted(operation);
    if (fault != null) {
      calls.add(line + logged(fault));
      return fault == Fault.THROTTLED ? cborError("Throttling", "Rate exceeded") : foreign(fault);
    }
    calls.add(line.toString());
    if (!operation.equals("GetMetricData")) {
      return cborError("InvalidAction", "The action " + operation + " is not valid for this fake");
    }
    // Timestamps are CBOR tag 1 over epoch seconds (the SDK sends a float or double); Jackson's tree keeps the number.
    double start = request.path("StartTime").asDouble();
    double end = request.path("EndTime").asDouble();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (CBORGenerator g = CBOR_FACTORY.createGenerator(out)) {
      g.writeStartObject();
      g.writeArrayFieldStart("MetricDataResults");
      for (JsonNode q : request.path("MetricDataQueries")) {
        String name = q.path("MetricStat").path("Metric").path("MetricName").asText(null);
        Double value = name == null ? null : metrics.get(name);
        // One datapoint per Period from StartTime (rounded down to the minute) to EndTime: the newest 60, newest first.
        int period = Math.max(1, q.path("MetricStat").path("Period").asInt(60));
        long first = (long) Math.floor(start / 60) * 60;
        long count = value == null || end <= first ? 0 : (long) Math.ceil((end - first) / period);
        long points = Math.min(count, MAX_DATAPOINTS);
        g.writeStartObject();
        g.writeStringField("Id", q.path("Id").asText());
        g.writeStringField("Label", q.path("Label").asText(name == null ? q.path("Id").asText() : name));
        g.writeArrayFieldStart("Timestamps");
        for (long n = count - 1; n >= count - points; n--) {
          g.writeTag(1);
          g.writeNumber((double) (first + n * period));
        }
        g.writeEndArray();
        g.writeArrayFieldStart("Values");
        for (long n = 0; n < points; n++) {
          g.writeNumber(value);
        }
        g.writeEndArray();
        g.writeStringField("StatusCode", "Complete");
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeArrayFieldStart("Messages");
      g.writeEndArray();
      g.writeEndObject();
    }
    return new Reply(200, "application/cbor", out.toByteArray());
  }

  /** An RPC v2 CBOR error: HTTP 400 and a map of __type (the error code) and message. */
  private static Reply cborError(String code, String message) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (CBORGenerator g = CBOR_FACTORY.createGenerator(out)) {
      g.writeStartObject();
      g.writeStringField("__type", code);
      g.writeStringField("message", message);
      g.writeEndObject();
    }
    return new Reply(400, "application/cbor", out.toByteArray());
  }
}
