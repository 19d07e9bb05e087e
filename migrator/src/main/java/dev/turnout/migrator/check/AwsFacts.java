package dev.turnout.migrator.check;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import java.time.Duration;
import java.util.Optional;

/**
 * What the AWS platform reads from RDS, EC2 and CloudWatch about an RDS instance moving to an Aurora cluster,
 * judged by {@link Preflight}. Pure values: no AWS SDK type crosses into the domain.
 *
 * @param source empty when the instance does not exist
 * @param cluster empty when the cluster does not exist
 * @param fenceGroup read only when both exist
 * @param metrics read only when both exist
 * @param logicalReplication read only when both exist
 */
public record AwsFacts(Names names, Optional<Instance> source, Optional<Cluster> cluster, Optional<FenceGroup> fenceGroup,
    Optional<Metrics> metrics, Optional<LogicalReplication> logicalReplication) {
  public AwsFacts {
    logicalReplication = logicalReplication == null ? Optional.empty() : logicalReplication;
  }

  public AwsFacts(Names names, Optional<Instance> source, Optional<Cluster> cluster, Optional<FenceGroup> fenceGroup,
      Optional<Metrics> metrics) {
    this(names, source, cluster, fenceGroup, metrics, Optional.empty());
  }

  /**
   * What the migration calls things.
   *
   * @param route the database's current endpoint, which the source instance must be
   * @param target the migration's target, which the cluster's writer endpoint must be
   */
  public record Names(String sourceInstance, String targetCluster, String writerInstance, String route, String target) {}

  /** An engine and its version, as RDS names them ({@code postgres 15.4}, {@code aurora-postgresql 15.4}). */
  public record Engine(String name, String version) {}

  /**
   * Where a resource listens.
   *
   * @param expected whether it is the server the migration expects (the platform resolves names to tell)
   */
  public record Endpoint(String address, int port, boolean expected) {}

  /** The source RDS instance; {@code auroraReplicas} are the Aurora clusters replicating from it. */
  public record Instance(String arn, Engine engine, String status, Optional<Endpoint> endpoint,
      ImmutableList<String> auroraReplicas) {}

  /** The target Aurora cluster; {@code replicationSource} is the ARN it replicates from, if any. */
  public record Cluster(String arn, Engine engine, String status, Optional<String> replicationSource,
      Optional<Endpoint> endpoint) {}

  /**
   * The security group the fence puts on the source.
   *
   * @param lookupError why it could not be described, if it could not
   * @param vpc its VPC, when it exists
   * @param admits the CIDR ranges it admits
   * @param sourceVpc the source instance's VPC
   */
  public record FenceGroup(String id, Optional<String> lookupError, Optional<String> vpc, ImmutableList<String> admits,
      Optional<String> sourceVpc) {}

  /**
   * CloudWatch datapoints over {@code window}: the source's by metric name, and the Aurora writer's replica lag.
   */
  public record Metrics(Duration window, ImmutableMap<String, ImmutableList<Double>> source,
      ImmutableList<Double> replicaLag) {}

  /**
   * Whether the Aurora writer can decode its WAL logically, which the reverse path's slots need: Aurora takes
   * {@code wal_level = logical} from {@code rds.logical_replication = 1} in the cluster's DB cluster parameter group.
   * The parameter is static: a change reaches the writer only when it reboots.
   *
   * @param parameterGroup the cluster's DB cluster parameter group
   * @param value {@code rds.logical_replication} in it ({@code 0}, the engine's default, when the group does not set it)
   * @param writerStatus the writer's DBClusterParameterGroupStatus ({@code in-sync}, {@code pending-reboot}, ...);
   *     empty when the cluster has no writer yet (it starts with the group as it is then)
   */
  public record LogicalReplication(String parameterGroup, String value, Optional<String> writerStatus) {}
}
