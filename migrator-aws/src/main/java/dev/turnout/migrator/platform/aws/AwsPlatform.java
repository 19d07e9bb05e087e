package dev.turnout.migrator.platform.aws;

import com.google.common.base.Splitter;
import com.google.common.collect.ImmutableList;
import dev.turnout.migrator.DryRun;
import dev.turnout.migrator.Lsn;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.Platform;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.Sleeper;
import dev.turnout.migrator.SlotPosition;
import dev.turnout.migrator.check.AwsFacts;
import dev.turnout.migrator.check.PreflightFacts;
import dev.turnout.migrator.platform.postgres.DryRunPostgresSql;
import dev.turnout.migrator.platform.postgres.PostgresPlatform;
import dev.turnout.migrator.platform.postgres.PostgresSql;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.services.rds.model.DBCluster;
import software.amazon.awssdk.services.rds.model.DBInstance;
import software.amazon.awssdk.services.rds.model.VpcSecurityGroupMembership;

/**
 * Amazon RDS for PostgreSQL to an Aurora PostgreSQL cluster that is its read replica: the AWS side through the
 * SDK (RDS, EC2, CloudWatch), the database side through {@link PostgresSql}, the SQL both platforms run. It gathers
 * facts for preflight; {@link dev.turnout.migrator.check.Preflight} judges them.
 *
 * <p>What differs from two plain PostgreSQL servers, and why:
 * <ul>
 *   <li>RDS forbids {@code ALTER SYSTEM}, so the fence is the network and the roles: the source's security groups
 *       are swapped for the fence group (the originals recorded first, in a tag on the instance, so a rollback
 *       after a crash still finds them), other login roles are set NOLOGIN, and a reboot ends every session.
 *       Swapping the instance's groups rather than revoking rules in them leaves other instances that share a
 *       group untouched.
 *   <li>Aurora cannot be armed read-only before promotion either: until SHIFTING no sidecar routes to the
 *       cluster, and the slots are recreated right after promotion, before the route names it.
 *   <li>Promotion is {@code PromoteReadReplicaDBCluster}; the cluster counts as promoted from the moment AWS
 *       reports it promoting, so a failure then halts rather than rolls back.
 *   <li>The way back (reverse replication) is the shared SQL's, as on any PostgreSQL, with two AWS conditions:
 *       Aurora decodes its WAL logically only with {@code rds.logical_replication = 1} in the cluster parameter
 *       group, a static parameter, so it is set when the group is made, before the cluster exists, and never by a
 *       reboot at the cutover; and the subscriptions on RDS connect to the cluster's writer endpoint as AWS
 *       describes it, not to the route's address. RDS has no superuser: CREATE SUBSCRIPTION there needs a member
 *       of rds_superuser (the master user), which on Aurora also holds rds_replication for the walsender. A fenced
 *       source still reaches the cluster: security groups filter what comes in, and the subscription connects out
 *       (the fence group's outbound rules must let it reach the cluster's port).
 * </ul>
 */
public final class AwsPlatform implements Platform {
  private static final Logger log = LoggerFactory.getLogger(AwsPlatform.class);
  /** Tag on the source instance holding its security groups while it is fenced. */
  static final String FENCE_TAG = "turnout:fenced-security-groups";
  static final String REPLICA_LAG = "RDSToAuroraPostgreSQLReplicaLag";
  /** The Aurora cluster parameter that gives the writer {@code wal_level = logical}; static (takes a reboot). */
  static final String LOGICAL_REPLICATION = "rds.logical_replication";
  static final List<String> SOURCE_METRICS = List.of("FreeStorageSpace", "TransactionLogsDiskUsage",
      "TransactionLogsGeneration", "OldestReplicationSlotLag");
  private static final Duration METRICS_WINDOW = Duration.ofMinutes(10);
  private static final Duration METRICS_REFRESH = Duration.ofMinutes(1);
  private static final Duration MAX_POLL = Duration.ofSeconds(60);

  private final Migration.Spec spec;
  private final Migration.Aurora aurora;
  private final AwsSettings settings;
  private final PostgresSql sql;
  private final Clock clock;
  private final Sleeper sleeper;
  private final AwsApi.Opener opener;
  private AwsApi api; // opened on first use; only the migration's runner thread touches this platform
  private Instant lagFetchedAt = Instant.MIN;
  private double lagSeconds;

  /** How it reaches the servers and AWS, and the time it waits on. */
  record Means(PostgresSql sql, AwsApi.Opener api, Clock clock, Sleeper sleeper) {}

  AwsPlatform(Migration.Spec spec, AwsSettings settings, Means means) {
    this.spec = spec;
    this.aurora = spec.aurora().orElseThrow(() -> new IllegalArgumentException(spec.database() + " is not an Aurora migration"));
    this.sql = means.sql();
    this.settings = settings;
    this.clock = means.clock();
    this.sleeper = means.sleeper();
    this.opener = means.api();
  }

  /**
   * A factory for Aurora migrations; every other spec is refused (the control plane picks the platform). Its
   * default target is the Aurora cluster's writer endpoint: {@link #writerEndpoint}.
   */
  public static Platform.Factory factory(PostgresPlatform.Credentials credentials, AwsSettings settings, Clock clock,
      Sleeper sleeper) {
    return new Platform.Factory() {
      @Override
      public Platform open(Migration.Spec spec) {
        return new AwsPlatform(spec, settings, new Means(PostgresSql.connect(spec, credentials, clock, sleeper),
            () -> AwsApi.connect(settings), clock, sleeper));
      }

      /** The same platform on a dry-run SQL side and API, which tell each other what the run would create. */
      @Override
      public Platform openDryRun(Migration.Spec spec, DryRun dryRun) {
        DryRunPostgresSql sql = PostgresSql.dryRun(PostgresSql.connect(spec, credentials, clock, sleeper), spec, dryRun);
        return new AwsPlatform(spec, settings, new Means(sql, () -> {
          try {
            return new DryRunAwsApi(AwsApi.connect(settings), dryRun, sql, spec.target());
          } catch (MigrationException e) {
            dryRun.readFailed(e);
            throw e;
          }
        }, dryRun.clock(), dryRun.sleeper()));
      }

      @Override
      public Optional<ServerAddress> defaultTarget(String database, Optional<Migration.Aurora> aurora)
          throws MigrationException {
        if (aurora.isEmpty()) {
          return Optional.empty();
        }
        try (AwsApi api = AwsApi.connect(settings)) {
          return Optional.of(writerEndpoint(api, database, aurora.get()));
        }
      }
    };
  }

  private static final java.util.regex.Pattern RDS_HOST =
      java.util.regex.Pattern.compile("[^.]+\\.([a-z0-9]+)\\.([a-z0-9-]+)\\.rds\\.amazonaws\\.com(\\.cn)?");

  /**
   * Where the Aurora cluster's writer listens, from AWS's own descriptions, never from the route (which holds the
   * address the instance's name resolved to): an existing cluster's Endpoint and Port; else the instance's
   * endpoint name with the cluster's identifier in the {@code <cluster>.cluster-<suffix>.<region>} form AWS names
   * cluster endpoints in, and the instance's port (the cluster is created on it).
   */
  static ServerAddress writerEndpoint(AwsApi api, String database, Migration.Aurora aurora) throws MigrationException {
    Optional<ServerAddress> described = api.cluster(aurora.targetCluster()).flatMap(AwsPlatform::writerEndpoint);
    if (described.isPresent()) {
      return described.get();
    }
    DBInstance instance = api.instance(aurora.sourceInstance()).orElseThrow(() -> refused("database '" + database
        + "': RDS instance '" + aurora.sourceInstance() + "' does not exist (in this account and region)"));
    if (instance.endpoint() == null || instance.endpoint().address() == null || instance.endpoint().port() == null) {
      throw refused("database '" + database + "': RDS instance '" + aurora.sourceInstance() + "' has no endpoint yet ("
          + instance.dbInstanceStatus() + "); give the target as host:port");
    }
    return new ServerAddress(clusterEndpoint(database, instance.endpoint().address(), aurora.targetCluster()),
        instance.endpoint().port());
  }

  /** A described cluster's Endpoint and Port, when it has them yet. */
  private static Optional<ServerAddress> writerEndpoint(DBCluster cluster) {
    return cluster.endpoint() == null || cluster.port() == null ? Optional.empty()
        : Optional.of(new ServerAddress(cluster.endpoint(), cluster.port()));
  }

  /** An Aurora cluster's writer endpoint shares the account-and-region suffix of the instance endpoints. */
  static String clusterEndpoint(String database, String instanceHost, String cluster) throws MigrationException {
    java.util.regex.Matcher m = RDS_HOST.matcher(instanceHost.toLowerCase(java.util.Locale.ROOT));
    if (!m.matches()) {
      throw refused("database '" + database + "': cannot derive the Aurora cluster endpoint from the RDS instance's"
          + " endpoint '" + instanceHost + "' (not an RDS endpoint name); give the target as host:port");
    }
    return cluster + ".cluster-" + m.group(1) + "." + m.group(2) + ".rds.amazonaws.com"
        + (m.group(3) == null ? "" : m.group(3));
  }

  private static MigrationConflictException refused(String message) {
    return new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION, message);
  }

  /** The port the source instance listens on, which the cluster is created with. */
  private int port(DBInstance src) throws MigrationException {
    if (src.endpoint() == null || src.endpoint().port() == null) {
      throw new MigrationException(db() + ": RDS instance '" + aurora.sourceInstance() + "' has no endpoint ("
          + src.dbInstanceStatus() + ")");
    }
    return src.endpoint().port();
  }

  private AwsApi api() throws MigrationException {
    if (api == null) {
      api = opener.open();
    }
    return api;
  }

  private String db() {
    return "database '" + spec.database() + "'";
  }

  private DBInstance source() throws MigrationException {
    return api().instance(aurora.sourceInstance()).orElseThrow(() -> new MigrationException(db() + ": RDS instance '"
        + aurora.sourceInstance() + "' does not exist (in this account and region)"));
  }

  private Optional<DBCluster> cluster() throws MigrationException {
    return api().cluster(aurora.targetCluster());
  }

  private static List<String> groups(DBInstance i) {
    return i.vpcSecurityGroups().stream().map(VpcSecurityGroupMembership::vpcSecurityGroupId).toList();
  }

  @Override
  public Optional<String> ensureTarget() throws MigrationException {
    DBInstance src = source();
    List<String> changes = new ArrayList<>();
    if (cluster().isEmpty()) {
      if (aurora.createInstanceClass().isEmpty()) {
        throw new MigrationException(db() + ": Aurora cluster '" + aurora.targetCluster() + "' does not exist;"
            + " give an instance class to have the migrator create it as a replica of " + aurora.sourceInstance());
      }
      Optional<ParameterMapping> mapping = parameterMapping(src);
      Optional<String> parameterGroup = applyParameterMapping(mapping, changes);
      api().createCluster(aurora.targetCluster(), src.engineVersion(), src.dbInstanceArn(),
          src.dbSubnetGroup().dbSubnetGroupName(), groups(src), port(src), parameterGroup);
      changes.add("created cluster " + aurora.targetCluster());
    }
    changes.addAll(await("Aurora cluster " + aurora.targetCluster() + " to be available", settings.replicaDeadline(),
        () -> cluster().map(DBCluster::status).orElse("missing"), "available"::equals));
    if (aurora.createInstanceClass().isPresent()) {
      if (api().instance(aurora.writerInstance()).isEmpty()) {
        api().createInstance(aurora.writerInstance(), aurora.targetCluster(), aurora.createInstanceClass().get());
        changes.add("created writer " + aurora.writerInstance());
      }
      changes.addAll(await("writer instance " + aurora.writerInstance() + " to be available", settings.replicaDeadline(),
          () -> api().instance(aurora.writerInstance()).map(DBInstance::dbInstanceStatus).orElse("missing"),
          "available"::equals));
    }
    return Optional.of("Aurora cluster " + aurora.targetCluster() + ": " + String.join(", ", changes));
  }

  /**
   * The source's own DB parameter group mapped onto an Aurora cluster parameter group: the parameters it sets
   * that an Aurora cluster parameter group of the same major version knows and lets change are carried over;
   * the others (instance-level in Aurora, or fixed there) are named, and the SQL preflight compares the ones
   * replication needs. A source on its engine's default group gets the cluster engine's default group too.
   */
  record ParameterMapping(Optional<String> sourceGroup, String clusterGroup, String family, Map<String, String> carried,
      List<String> notCarried) {
    /** The carried parameters in calls of at most 20, as ModifyDBClusterParameterGroup allows. */
    List<Map<String, String>> modifications() {
      List<Map<String, String>> parts = new ArrayList<>();
      for (List<String> chunk : com.google.common.collect.Iterables.partition(carried.keySet(), 20)) {
        Map<String, String> part = new java.util.LinkedHashMap<>();
        chunk.forEach(name -> part.put(name, carried.get(name)));
        parts.add(part);
      }
      return parts;
    }
  }

  /**
   * With reverse replication the group also sets {@code rds.logical_replication = 1} (whatever the source's group
   * says), so the writer starts with {@code wal_level = logical}: it is static, and setting it later would take a
   * reboot of the writer. A source on its engine's default group then gets a group of that one parameter.
   */
  private Optional<ParameterMapping> parameterMapping(DBInstance src) throws MigrationException {
    String sourceGroup = src.dbParameterGroups().isEmpty() ? null : src.dbParameterGroups().get(0).dbParameterGroupName();
    String family = AwsApi.ENGINE + majorVersion(src.engineVersion());
    boolean reverse = !spec.options().withoutReverseReplication();
    if (sourceGroup == null || sourceGroup.startsWith("default.")) {
      return reverse ? Optional.of(new ParameterMapping(Optional.empty(), aurora.targetCluster() + "-params", family,
          Map.of(LOGICAL_REPLICATION, "1"), List.of())) : Optional.empty();
    }
    Map<String, String> user;
    Map<String, Boolean> known;
    try {
      user = api().userParameters(sourceGroup);
      known = api().clusterParameters(family);
    } catch (AwsApi.AwsCallException e) {
      throw new MigrationException(db() + ": cannot map the parameters of " + aurora.sourceInstance() + "'s DB"
          + " parameter group " + sourceGroup + " onto an Aurora cluster parameter group (" + family + "): "
          + e.getMessage(), e);
    }
    Map<String, String> carried = new java.util.TreeMap<>();
    List<String> notCarried = new ArrayList<>();
    user.forEach((name, value) -> {
      if (Boolean.TRUE.equals(known.get(name))) {
        carried.put(name, value);
      } else {
        notCarried.add(name);
      }
    });
    java.util.Collections.sort(notCarried);
    if (reverse) {
      carried.put(LOGICAL_REPLICATION, "1");
    }
    return Optional.of(new ParameterMapping(Optional.of(sourceGroup), aurora.targetCluster() + "-params", family, carried,
        notCarried));
  }

  /** Creates the cluster parameter group unless it exists, then sets its parameters (again, harmlessly, after a crash). */
  private Optional<String> applyParameterMapping(Optional<ParameterMapping> mapping, List<String> changes)
      throws MigrationException {
    if (mapping.isEmpty()) {
      return Optional.empty();
    }
    ParameterMapping m = mapping.get();
    if (!api().clusterParameterGroupExists(m.clusterGroup())) {
      api().createClusterParameterGroup(m.clusterGroup(), m.family(), description(m));
    }
    for (Map<String, String> part : m.modifications()) {
      api().modifyClusterParameterGroup(m.clusterGroup(), part);
    }
    changes.add("cluster parameter group " + m.clusterGroup() + " (" + m.family() + ") " + m.sourceGroup()
        .map(g -> "carries " + (m.carried().isEmpty() ? "nothing" : m.carried().keySet()) + " from " + g)
        .orElse("sets " + m.carried().keySet() + " (the source is on its engine's default group)")
        + (m.carried().containsKey(LOGICAL_REPLICATION) ? "; " + LOGICAL_REPLICATION + " = 1 for the reverse path,"
            + " in effect from the writer's first start" : "")
        + (m.notCarried().isEmpty() ? "" : "; not Aurora cluster parameters, not carried: " + m.notCarried()));
    return Optional.of(m.clusterGroup());
  }

  private String description(ParameterMapping m) {
    return m.sourceGroup().map(g -> "Turnout: " + g + " of " + aurora.sourceInstance() + " mapped for "
        + aurora.targetCluster()).orElse("Turnout: logical replication for " + aurora.targetCluster()
            + "'s reverse path");
  }

  private interface Probe {
    String status() throws MigrationException;
  }

  /**
   * Polls with doubling pauses until {@code done} holds or {@code deadline} passes; logs and returns every
   * status seen, so the migration's history shows how a slow AWS operation went.
   */
  private List<String> await(String what, Duration deadline, Probe probe, Predicate<String> done)
      throws MigrationException {
    Instant start = clock.instant();
    Duration pause = settings.pollInterval();
    List<String> seen = new ArrayList<>();
    while (true) {
      String status = probe.status();
      if (seen.isEmpty() || !seen.get(seen.size() - 1).equals(status)) {
        log.info("{}: waiting for {}: {} after {} s", db(), what, status,
            Duration.between(start, clock.instant()).toSeconds());
        seen.add(status);
      }
      if (done.test(status)) {
        return List.of(what.replaceFirst(" to be .*", "") + " " + String.join(" -> ", seen) + " in "
            + Duration.between(start, clock.instant()).toSeconds() + " s");
      }
      if (clock.instant().isAfter(start.plus(deadline))) {
        throw new MigrationException(db() + ": deadline of " + deadline + " passed waiting for " + what
            + "; statuses seen: " + String.join(" -> ", seen));
      }
      try {
        sleeper.sleep(pause);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new MigrationException(db() + ": interrupted waiting for " + what);
      }
      pause = pause.multipliedBy(2).compareTo(MAX_POLL) > 0 ? MAX_POLL : pause.multipliedBy(2);
    }
  }

  /**
   * What RDS, EC2 and CloudWatch say about the instance, the cluster, the fence group and the last ten minutes, and
   * what SQL reads from the two servers; when the instance or the cluster is missing, nothing more.
   */
  @Override
  public PreflightFacts preflightFacts() throws MigrationException {
    AwsFacts.Names names = new AwsFacts.Names(aurora.sourceInstance(), aurora.targetCluster(), aurora.writerInstance(),
        spec.source().toString(), spec.target().toString());
    Optional<DBInstance> src = api().instance(aurora.sourceInstance());
    Optional<DBCluster> cluster = cluster();
    if (src.isEmpty() || cluster.isEmpty()) {
      return new PreflightFacts(Optional.empty(), Optional.of(new AwsFacts(names, src.map(this::instanceFacts),
          cluster.map(this::clusterFacts), Optional.empty(), Optional.empty())));
    }
    AwsFacts aws = new AwsFacts(names, src.map(this::instanceFacts), cluster.map(this::clusterFacts),
        Optional.of(fenceGroupFacts(src.get())), Optional.of(metricFacts()), spec.options().withoutReverseReplication()
            ? Optional.empty() : Optional.of(logicalReplication(cluster.get())));
    // The source is probed for reaching the writer endpoint, where subscribeReverse connects it to: the
    // cluster just described says where, unless it has no endpoint yet.
    Optional<ServerAddress> publisher = Optional.empty();
    if (!spec.options().withoutReverseReplication()) {
      Optional<ServerAddress> described = writerEndpoint(cluster.get());
      publisher = Optional.of(described.isPresent() ? described.get() : writerEndpoint(api(), spec.database(), aurora));
    }
    return new PreflightFacts(Optional.of(sql.facts(true, publisher)), Optional.of(aws));
  }

  private AwsFacts.Instance instanceFacts(DBInstance i) {
    Optional<AwsFacts.Endpoint> endpoint = i.endpoint() == null || i.endpoint().address() == null
        ? Optional.empty() : Optional.of(new AwsFacts.Endpoint(i.endpoint().address(), i.endpoint().port(),
            sameServer(i.endpoint().address(), i.endpoint().port(), spec.source())));
    return new AwsFacts.Instance(i.dbInstanceArn(), new AwsFacts.Engine(i.engine(), i.engineVersion()),
        i.dbInstanceStatus(), endpoint, ImmutableList.copyOf(i.readReplicaDBClusterIdentifiers()));
  }

  private AwsFacts.Cluster clusterFacts(DBCluster c) {
    Optional<AwsFacts.Endpoint> endpoint = c.endpoint() == null || c.port() == null ? Optional.empty()
        : Optional.of(new AwsFacts.Endpoint(c.endpoint(), c.port(), sameServer(c.endpoint(), c.port(), spec.target())));
    return new AwsFacts.Cluster(c.dbClusterArn(), new AwsFacts.Engine(c.engine(), c.engineVersion()), c.status(),
        Optional.ofNullable(c.replicationSourceIdentifier()).filter(x -> !x.isEmpty()), endpoint);
  }

  /**
   * {@code rds.logical_replication} in the cluster's parameter group and whether the writer runs with it. A default
   * group sets nothing of its own (its value is the engine's default, 0), so it is not read.
   */
  private AwsFacts.LogicalReplication logicalReplication(DBCluster c) throws MigrationException {
    String group = c.dbClusterParameterGroup();
    String value = group == null || group.startsWith("default.") ? "0"
        : api().clusterUserParameters(group).getOrDefault(LOGICAL_REPLICATION, "0");
    Optional<String> writer = c.dbClusterMembers().stream().filter(x -> Boolean.TRUE.equals(x.isClusterWriter()))
        .map(x -> x.dbClusterParameterGroupStatus()).filter(java.util.Objects::nonNull).findFirst();
    return new AwsFacts.LogicalReplication(group == null ? "(none)" : group, value, writer);
  }

  private AwsFacts.FenceGroup fenceGroupFacts(DBInstance src) throws MigrationException {
    String fence = settings.fenceSecurityGroup();
    Optional<String> sourceVpc = Optional.ofNullable(src.dbSubnetGroup()).map(g -> g.vpcId());
    List<SecurityGroup> found;
    try {
      found = api().securityGroups(List.of(fence));
    } catch (AwsApi.AwsCallException e) {
      return new AwsFacts.FenceGroup(fence, Optional.of(e.getMessage()), Optional.empty(), ImmutableList.of(), sourceVpc);
    }
    if (found.isEmpty()) {
      return new AwsFacts.FenceGroup(fence, Optional.empty(), Optional.empty(), ImmutableList.of(), sourceVpc);
    }
    SecurityGroup group = found.get(0);
    return new AwsFacts.FenceGroup(fence, Optional.empty(), Optional.ofNullable(group.vpcId()), group.ipPermissions()
        .stream().flatMap(p -> p.ipRanges().stream()).map(r -> r.cidrIp()).collect(ImmutableList.toImmutableList()),
        sourceVpc);
  }

  /** CloudWatch over the last ten minutes: the source's storage, WAL and slot figures, and the writer's replica lag. */
  private AwsFacts.Metrics metricFacts() throws MigrationException {
    Instant now = clock.instant();
    Map<String, List<Double>> source = api().metrics(aurora.sourceInstance(), SOURCE_METRICS, METRICS_WINDOW, now);
    Map<String, List<Double>> lag = api().metrics(aurora.writerInstance(), List.of(REPLICA_LAG), METRICS_WINDOW, now);
    com.google.common.collect.ImmutableMap.Builder<String, ImmutableList<Double>> figures =
        com.google.common.collect.ImmutableMap.builder();
    source.forEach((name, values) -> figures.put(name, ImmutableList.copyOf(values)));
    return new AwsFacts.Metrics(METRICS_WINDOW, figures.buildKeepingLast(),
        ImmutableList.copyOf(lag.getOrDefault(REPLICA_LAG, List.of())));
  }

  @Override
  public void dropSlot(String name) throws MigrationException {
    sql.dropSlot(name);
  }

  @Override
  public void installWalProof() throws MigrationException {
    sql.installWalProof();
  }

  /** {@code 15} of {@code 15.4}: parameter group families are named by it ({@code aurora-postgresql15}). */
  private static String majorVersion(String v) {
    return (v == null ? "" : v).replaceFirst("[^0-9].*", "");
  }

  /** The same host name, or names that resolve to a common address; and the same port. */
  private static boolean sameServer(String host, Integer port, ServerAddress address) {
    if (port == null || port != address.port()) {
      return false;
    }
    if (host.equalsIgnoreCase(address.host())) {
      return true;
    }
    try {
      Set<InetAddress> a = new HashSet<>(Arrays.asList(InetAddress.getAllByName(host)));
      return Arrays.stream(InetAddress.getAllByName(address.host())).anyMatch(a::contains);
    } catch (UnknownHostException e) {
      return false;
    }
  }

  /** SQL figures, with Aurora's own replica lag (CloudWatch, refreshed at most once a minute) as the delay. */
  @Override
  public Sample sample() throws MigrationException {
    Sample s = sql.sample();
    Instant now = clock.instant();
    if (Duration.between(lagFetchedAt, now).compareTo(METRICS_REFRESH) >= 0) {
      lagFetchedAt = now;
      lagSeconds = api().metrics(aurora.writerInstance(), List.of(REPLICA_LAG), Duration.ofMinutes(2), now)
          .getOrDefault(REPLICA_LAG, List.of()).stream().max(Double::compare).orElse(0.0);
    }
    return new Sample(s.atNanos(), s.sourceLsn(), s.replayLsn(), Math.max(s.replayDelaySeconds(), lagSeconds));
  }

  /** The same SQL as any PostgreSQL: pg_stat_database and pg_stat_statements read alike on RDS and Aurora. */
  @Override
  public dev.turnout.migrator.bake.Workload sourceWorkload() throws MigrationException {
    return sql.workload(PostgresSql.Server.SOURCE);
  }

  @Override
  public dev.turnout.migrator.bake.Workload targetWorkload() throws MigrationException {
    return sql.workload(PostgresSql.Server.TARGET);
  }

  /** RDS's own roles (rdsadmin, rdsrepladmin, rdstopmgr, rds_*): no customer role may alter them. */
  private static final java.util.regex.Pattern RDS_ROLE = java.util.regex.Pattern.compile("rds.*");

  @Override
  public ImmutableList<String> loginRolesToFence(boolean keepStandby) throws MigrationException {
    return sql.loginRolesToFence(keepStandby).stream().filter(r -> !RDS_ROLE.matcher(r).matches())
        .collect(ImmutableList.toImmutableList());
  }

  @Override
  public ImmutableList<Session> applicationSessions() throws MigrationException {
    return sql.applicationSessions();
  }

  @Override
  public void endApplicationSessions(List<Session> sessions) throws MigrationException {
    sql.endApplicationSessions(sessions);
  }

  /** Prepared transactions survive the fence's reboot: the shared SQL handles them as on any PostgreSQL. */
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

  /**
   * Records the source's security groups in a tag (before touching them, so a crash cannot lose them), swaps
   * them for the fence group, refuses the roles' logins and reboots the instance to end every session. Each
   * step checks first, so a re-run after a crash redoes only what is missing. A physical slot keeps the WAL
   * after the final LSN for the proof that nothing committed there.
   */
  @Override
  public ImmutableList<Session> fence(List<String> roles) throws MigrationException {
    DBInstance src = source();
    String fenceGroup = settings.fenceSecurityGroup();
    Map<String, String> tags = api().tags(src.dbInstanceArn());
    if (!tags.containsKey(FENCE_TAG)) {
      api().addTag(src.dbInstanceArn(), FENCE_TAG, String.join(",", groups(src)));
    }
    if (!groups(src).equals(List.of(fenceGroup))) {
      api().modifySecurityGroups(aurora.sourceInstance(), List.of(fenceGroup));
      awaitSourceGroups(List.of(fenceGroup));
    }
    sql.holdWal();
    sql.refuseLogins(roles);
    ImmutableList<Session> before = sql.applicationSessions(); // what the reboot is about to end
    api().reboot(aurora.sourceInstance());
    await("RDS instance " + aurora.sourceInstance() + " to be available after its reboot", settings.operationDeadline(),
        () -> source().dbInstanceStatus(), "available"::equals);
    sql.close(); // the reboot ended the migrator's own sessions too: the next call connects afresh
    // Sessions of roles the fence cannot refuse (rds_superuser ones) reconnecting after it, of any backend type.
    sql.endSessions(false);
    return before;
  }

  @Override
  public ImmutableList<Session> endSessions(boolean slotStreamsToo) throws MigrationException {
    return sql.endSessions(slotStreamsToo);
  }

  @Override
  public void refuseLogins(List<String> roles) throws MigrationException {
    sql.refuseLogins(roles);
  }

  private void awaitSourceGroups(List<String> wanted) throws MigrationException {
    await("RDS instance " + aurora.sourceInstance() + " to be available with security groups " + wanted,
        settings.operationDeadline(), () -> {
          DBInstance i = source();
          return i.dbInstanceStatus() + " " + groups(i);
        }, status -> status.equals("available " + wanted));
  }

  @Override
  public void verifyFence(List<String> roles) throws MigrationException {
    List<String> now = groups(source());
    if (!now.equals(List.of(settings.fenceSecurityGroup()))) {
      throw new MigrationException("fence of " + aurora.sourceInstance() + " not holding: its security groups are "
          + now + ", not only the fence group " + settings.fenceSecurityGroup());
    }
    sql.verifySessionsEndedAndLoginsRefused(roles);
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

  /** Logins back, then the recorded security groups back, then the record removed; every failure reported. */
  @Override
  public void unfence(List<String> roles) throws MigrationException {
    List<String> failures = new ArrayList<>();
    try {
      sql.restoreLogins(roles);
    } catch (MigrationException e) {
      failures.add(e.getMessage());
    }
    try {
      sql.releaseFenceHold();
    } catch (MigrationException e) {
      failures.add(e.getMessage());
    }
    try {
      DBInstance src = source();
      String recorded = api().tags(src.dbInstanceArn()).get(FENCE_TAG);
      if (recorded != null) {
        List<String> original = Splitter.on(',').omitEmptyStrings().splitToList(recorded);
        if (!groups(src).equals(original)) {
          api().modifySecurityGroups(aurora.sourceInstance(), original);
          awaitSourceGroups(original);
        }
        api().removeTag(src.dbInstanceArn(), FENCE_TAG);
      }
    } catch (MigrationException e) {
      failures.add(e.getMessage());
    }
    if (!failures.isEmpty()) {
      throw new MigrationException(db() + ": unfencing " + aurora.sourceInstance() + " incomplete: "
          + String.join("; ", failures));
    }
  }

  @Override
  public ImmutableList<Slot> sourceSlots() throws MigrationException {
    return sql.sourceSlots();
  }

  @Override
  public Lsn targetReplayLsn() throws MigrationException {
    return sql.targetReplayLsn();
  }

  /** Aurora has no ALTER SYSTEM: the route, which names the cluster only after the slots exist, is the arming. */
  @Override
  public void armTargetReadOnly() {
  }

  @Override
  public void promoteTarget() throws MigrationException {
    DBCluster c = cluster().orElseThrow(() -> new MigrationException(db() + ": Aurora cluster '"
        + aurora.targetCluster() + "' does not exist"));
    if (c.replicationSourceIdentifier() != null && !c.replicationSourceIdentifier().isEmpty()
        && !"promoting".equals(c.status())) {
      api().promote(aurora.targetCluster());
    }
    await("Aurora cluster " + aurora.targetCluster() + " to be available and promoted", settings.operationDeadline(),
        () -> cluster().map(x -> x.status() + (x.replicationSourceIdentifier() == null
            || x.replicationSourceIdentifier().isEmpty() ? "" : " (replica)")).orElse("missing"), "available"::equals);
    await("Aurora cluster " + aurora.targetCluster() + " to be writable", settings.operationDeadline(),
        () -> sql.targetInRecovery() ? "in recovery" : "writable", "writable"::equals);
  }

  /** Promoted, or being promoted: once AWS has accepted the promotion it cannot be taken back. */
  @Override
  public boolean targetPromoted() throws MigrationException {
    Optional<DBCluster> c = cluster();
    if (c.isEmpty()) {
      return false;
    }
    return "promoting".equals(c.get().status()) || c.get().replicationSourceIdentifier() == null
        || c.get().replicationSourceIdentifier().isEmpty();
  }

  /** Aurora's replica of RDS carries no failover slots: the slots are recreated after promotion. */
  @Override
  public void syncFailoverSlots() {
  }

  @Override
  public ImmutableList<String> createSlotsOnTarget(List<SlotPosition> slots) throws MigrationException {
    return sql.createSlotsOnTarget(slots);
  }

  @Override
  public void restoreLoginsOnTarget(List<String> roles) throws MigrationException {
    sql.restoreLoginsOnTarget(roles);
  }

  /** Nothing was armed (see {@link #armTargetReadOnly}). */
  @Override
  public void admitWritesOnTarget() {
  }

  @Override
  public void disarmTarget() {
  }

  @Override
  public void writeProbeTarget() throws MigrationException {
    sql.writeProbeTarget();
  }

  // The way back: the shared SQL, with the cluster's writer endpoint as AWS describes it.

  @Override
  public boolean supportsReverseReplication() {
    return true;
  }

  /**
   * The subscriptions on RDS connect to the cluster's writer endpoint (DescribeDBClusters' Endpoint and Port): the
   * name AWS keeps pointing at the writer, where the route holds the address it resolved to when the migration began.
   */
  @Override
  public String startReverseReplication() throws MigrationException {
    return sql.startReverseReplication();
  }

  @Override
  public void subscribeReverse() throws MigrationException {
    sql.subscribeReverse(writerEndpoint(api(), spec.database(), aurora));
  }

  @Override
  public ReverseHealth reverseHealth(dev.turnout.migrator.ReversePath path) throws MigrationException {
    return sql.reverseHealth(path.fingerprint(), !path.awaitingSubscription());
  }

  /**
   * Aurora has no ALTER SYSTEM, so no read-only default as on PostgreSQL: as the source's fence on RDS, the roles are
   * refused at login and every session is ended but the migrator's and the walsenders the path and CDC stream from.
   * The route is drained first, so no application reaches the cluster meanwhile.
   */
  @Override
  public void fenceTarget(List<String> roles) throws MigrationException {
    sql.refuseLoginsOnTarget(roles);
    sql.endTargetSessions(false);
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
  }

  /** As on any PostgreSQL: only the source's subscriptions before it is writable, the target's slots after. */
  @Override
  public void stopReverseApply() throws MigrationException {
    sql.stopReverseSubscriptions();
  }

  @Override
  public void close() {
    sql.close();
    if (api != null) {
      api.close();
    }
  }
}
