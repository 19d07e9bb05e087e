package dev.turnout.migrator.check;

import com.google.common.base.Splitter;
import com.google.common.collect.ImmutableList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/** Judges what AWS says about an RDS instance and the Aurora cluster that is to take over from it. */
final class AwsChecks {
  static final String AURORA_ENGINE = "aurora-postgresql";
  static final String REPLICA_LAG = "RDSToAuroraPostgreSQLReplicaLag";
  /** CloudWatch's OldestReplicationSlotLag moves in whole WAL segments of 64 MB on RDS. */
  private static final long SEGMENT = 64L << 20;

  private AwsChecks() {}

  /** Returns whether both resources exist (else there is nothing more to judge). */
  static boolean judge(AwsFacts facts, Preflight.Verdict.Builder out) {
    AwsFacts.Names n = facts.names();
    if (facts.source().isEmpty() || facts.cluster().isEmpty()) {
      out.add(Check.of("aws resources", false, facts.source().isEmpty()
          ? "RDS instance '" + n.sourceInstance() + "' does not exist"
          : "Aurora cluster '" + n.targetCluster() + "' does not exist"));
      return false;
    }
    AwsFacts.Instance src = facts.source().get();
    AwsFacts.Cluster cluster = facts.cluster().get();
    out.add(source(n, src));
    out.add(replica(n, src, cluster));
    out.add(oneReplica(n, src));
    out.add(sameAccount(src, cluster));
    out.add(engineVersion(src, cluster));
    facts.fenceGroup().ifPresent(g -> out.add(fenceGroup(g)));
    facts.metrics().ifPresent(m -> metrics(n, m, out));
    return true;
  }

  /**
   * The way back on AWS, beside the SQL's checks (which read the writer's wal_level as it is now): the cluster's
   * parameter group must set {@code rds.logical_replication = 1} and the writer must run with it. The parameter is
   * static, so one set but pending a reboot is not in effect, and the migrator does not reboot the writer of its own
   * accord: the operator reboots it (or starts without reverse replication).
   */
  static void wayBack(AwsFacts facts, Preflight.WayBack wayBack, Preflight.Verdict.Builder out) {
    if (!wayBack.reverse() || facts.logicalReplication().isEmpty()) {
      return;
    }
    AwsFacts.LogicalReplication l = facts.logicalReplication().get();
    String writer = facts.names().writerInstance();
    String without = "; start with --without-reverse-replication to migrate without a lossless way back";
    if (!"1".equals(l.value())) {
      out.add(Check.of("way back: rds.logical_replication", false, "rds.logical_replication = " + l.value() + " in "
          + l.parameterGroup() + ", the cluster parameter group of " + facts.names().targetCluster() + ": the reverse"
          + " path's slots on the promoted writer need 1 (wal_level = logical). Set it in a custom cluster parameter"
          + " group and reboot " + writer + " (a static parameter)" + without));
      return;
    }
    boolean inEffect = l.writerStatus().map("in-sync"::equals).orElse(true);
    out.add(Check.of("way back: rds.logical_replication", inEffect, "rds.logical_replication = 1 in "
        + l.parameterGroup() + l.writerStatus().map(status -> inEffect ? ", in effect on " + writer
            : ", not in effect on " + writer + " (" + status + "): a static parameter takes effect when the writer"
                + " reboots; reboot " + writer + " before the migration (the migrator does not)" + without)
            .orElse(", which the writer starts with")));
  }

  private static Check source(AwsFacts.Names n, AwsFacts.Instance src) {
    boolean engine = "postgres".equals(src.engine().name());
    boolean available = "available".equals(src.status());
    boolean routed = src.endpoint().map(AwsFacts.Endpoint::expected).orElse(false);
    return Check.of("aws source", engine && available && routed, "RDS instance " + n.sourceInstance() + " engine "
        + src.engine().name() + " " + src.engine().version() + ", " + src.status()
        + (routed ? ", the database's current endpoint" : ", endpoint " + src.endpoint().map(e -> e.address() + ":"
            + e.port()).orElse("none") + " is not the database's route " + n.route())
        + (available ? "" : " (must be available)") + (engine ? "" : " (must be postgres)"));
  }

  private static Check replica(AwsFacts.Names n, AwsFacts.Instance src, AwsFacts.Cluster cluster) {
    boolean replica = cluster.replicationSource().map(src.arn()::equals).orElse(false);
    boolean engine = AURORA_ENGINE.equals(cluster.engine().name());
    boolean available = "available".equals(cluster.status());
    boolean target = cluster.endpoint().map(AwsFacts.Endpoint::expected).orElse(false);
    return Check.of("aws replica", replica && engine && available && target, "Aurora cluster " + n.targetCluster()
        + " " + cluster.engine().name() + " " + cluster.engine().version() + ", " + cluster.status()
        + (replica ? ", a read replica of " + n.sourceInstance()
            : ", replicating from " + cluster.replicationSource().orElse("nothing") + " instead of " + src.arn())
        + (target ? ", writer endpoint " + n.target() : ", writer endpoint " + cluster.endpoint()
            .map(e -> e.address() + ":" + e.port()).orElse("none") + " is not the migration's target " + n.target()));
  }

  /** RDS allows one Aurora read replica cluster per instance. */
  private static Check oneReplica(AwsFacts.Names n, AwsFacts.Instance src) {
    List<String> others = src.auroraReplicas().stream()
        .filter(id -> !id.equals(n.targetCluster()) && !id.endsWith(":cluster:" + n.targetCluster()))
        .toList();
    return Check.of("aws one aurora replica", others.isEmpty(), others.isEmpty()
        ? n.sourceInstance() + " has no other Aurora replica"
        : n.sourceInstance() + " already replicates to " + others + "; RDS allows one Aurora replica per instance");
  }

  /** {@code arn:aws:rds:REGION:ACCOUNT:...}: an Aurora replica of an RDS instance lives in its region and account. */
  private static Check sameAccount(AwsFacts.Instance src, AwsFacts.Cluster cluster) {
    List<String> s = Splitter.on(':').splitToList(src.arn());
    List<String> t = Splitter.on(':').splitToList(cluster.arn());
    boolean same = s.size() > 4 && t.size() > 4 && s.get(3).equals(t.get(3)) && s.get(4).equals(t.get(4));
    return Check.of("aws region and account", same, same
        ? "both in " + s.get(3) + ", account " + s.get(4)
        : src.arn() + " and " + cluster.arn() + " must share region and account");
  }

  private static Check engineVersion(AwsFacts.Instance src, AwsFacts.Cluster cluster) {
    int[] from = version(src.engine().version());
    int[] to = version(cluster.engine().version());
    boolean ok = from[0] == to[0] && to[1] >= from[1];
    return Check.of("aws engine version", ok, "source " + src.engine().version() + ", Aurora "
        + cluster.engine().version() + (ok ? "" : ": the replica needs the same major version and the same or a later"
            + " minor"));
  }

  /** Major and minor of {@code 15.4} (or {@code 15.4.R2}); 0 where a part is missing or not a number. */
  static int[] version(String v) {
    int[] out = new int[2];
    String[] parts = (v == null ? "0" : v).split("\\.");
    for (int i = 0; i < 2 && i < parts.length; i++) {
      try {
        out[i] = Integer.parseInt(parts[i].replaceAll("[^0-9].*", ""));
      } catch (NumberFormatException e) {
        out[i] = 0;
      }
    }
    return out;
  }

  private static Check fenceGroup(AwsFacts.FenceGroup g) {
    if (g.lookupError().isPresent()) {
      return Check.of("aws fence group", false, g.id() + ": " + g.lookupError().get());
    }
    if (g.vpc().isEmpty()) {
      return Check.of("aws fence group", false, g.id() + " does not exist");
    }
    boolean sameVpc = g.vpc().equals(g.sourceVpc());
    String admits = String.join(", ", g.admits());
    return Check.of("aws fence group", sameVpc, g.id() + (sameVpc ? " in " + g.vpc().get() : " is in " + g.vpc().get()
        + ", the source in " + g.sourceVpc().orElse(null)) + "; admits " + (admits.isEmpty() ? "nothing" : admits)
        + " (it must admit the control plane and no application)");
  }

  /**
   * CloudWatch quirks: OldestReplicationSlotLag moves in whole 64 MB segments, so one segment means "nothing
   * measurable"; an idle instance still writes heartbeat WAL, so generation never reads zero;
   * RDSToAuroraPostgreSQLReplicaLag is measured on the Aurora writer, in seconds.
   */
  private static void metrics(AwsFacts.Names n, AwsFacts.Metrics m, Preflight.Verdict.Builder out) {
    long minutes = m.window().toMinutes();
    Optional<Double> free = min(m.source().get("FreeStorageSpace"));
    Optional<Double> walDisk = max(m.source().get("TransactionLogsDiskUsage"));
    if (free.isEmpty() || walDisk.isEmpty()) {
      out.add(Check.advice("storage", false, "no FreeStorageSpace/TransactionLogsDiskUsage datapoints in " + minutes
          + " min"));
    } else {
      double needed = Math.max(2 * walDisk.get(), 1L << 30);
      out.add(Check.of("storage", free.get() >= needed, String.format(Locale.ROOT,
          "free %.1f GiB, WAL on disk %.0f MiB (at least %.1f GiB free needed while the source keeps WAL for the"
              + " replica and slots)", free.get() / (1L << 30), walDisk.get() / (1L << 20), needed / (1L << 30))));
    }
    Optional<Double> generation = avg(m.source().get("TransactionLogsGeneration"));
    out.add(Check.advice("wal generation", true, generation.map(g -> String.format(Locale.ROOT,
        "%.0f B/s on average%s", g, g < 4096 ? " (about the heartbeat an idle RDS instance writes)" : ""))
        .orElse("no datapoints")));
    Optional<Double> slotLag = max(m.source().get("OldestReplicationSlotLag"));
    long segments = slotLag.map(v -> (long) Math.ceil(v / SEGMENT)).orElse(0L);
    out.add(Check.advice("oldest slot lag", segments <= 1, slotLag.isEmpty() ? "no datapoints"
        : segments <= 1 ? "within one 64 MB WAL segment (the metric's step)"
            : segments + " WAL segments (" + segments * 64 + " MB) held back by the oldest slot; see the slot checks"));
    Optional<Double> maxLag = max(m.replicaLag());
    out.add(Check.advice("aurora replica lag", maxLag.map(v -> v <= 30).orElse(false), maxLag
        .map(v -> String.format(Locale.ROOT, "at most %.0f s over %d min", v, minutes))
        .orElse("no datapoints for " + n.writerInstance())));
  }

  private static Optional<Double> min(List<Double> v) {
    return v == null ? Optional.empty() : v.stream().min(Double::compare);
  }

  private static Optional<Double> max(List<Double> v) {
    return v == null ? Optional.empty() : v.stream().max(Double::compare);
  }

  private static Optional<Double> avg(List<Double> v) {
    return v == null || v.isEmpty() ? Optional.empty()
        : Optional.of(v.stream().collect(Collectors.averagingDouble(d -> d)));
  }
}
