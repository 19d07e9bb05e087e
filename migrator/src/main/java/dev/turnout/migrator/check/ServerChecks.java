package dev.turnout.migrator.check;

import com.google.common.collect.ImmutableList;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/** Judges what SQL read from a source and its standby: whether the target can take over, and what the fence meets. */
final class ServerChecks {
  /** Settings a hot standby needs at least as high as its primary, and the ones logical slots need. */
  private static final List<String> AT_LEAST = List.of("max_connections", "max_worker_processes",
      "max_wal_senders", "max_prepared_transactions", "max_locks_per_transaction", "max_replication_slots");

  private ServerChecks() {}

  static void judge(ServerFacts facts, boolean allowDroppingStaleSlots, java.util.Optional<Preflight.Routed> routed,
      Instant now, Preflight.Verdict.Builder out) {
    ServerFacts.Source source = facts.source();
    ServerFacts.Identity src = source.identity();
    out.add(Check.of("source is a primary", !src.inRecovery(),
        src.address() + (src.inRecovery() ? " is in recovery" : " accepts writes")));
    if (facts.target().isPresent()) {
      standby(facts, out);
    } else {
      out.add(Check.advice("target", false, "not there yet: this run creates it, then checks that it is a streaming"
          + " standby of the source (system identifier, timeline) with the parameters and extensions it needs"));
    }
    routed.ifPresent(r -> out.add(databases(source, r)));
    out.add(unloggedTables(source));
    slots(facts, allowDroppingStaleSlots, out);
    fence(facts.fence(), now, out);
  }

  /**
   * The way back, checked before the way forward: reverse replication needs every table to have a primary key or a
   * replica identity (updates and deletes are matched by it), no large objects (not replicated), {@code wal_level =
   * logical} on the target (the slot there), a superuser migrator role (it owns the subscriptions and logs in to
   * the target for them), and a source that reaches the target as the subscriptions will. Each blocks, naming what,
   * unless the operator started without reverse replication.
   */
  static void wayBack(ServerFacts facts, Preflight.WayBack wayBack, Preflight.Verdict.Builder out) {
    if (wayBack.declined()) {
      out.add(Check.advice("way back", false, "no reverse replication (--without-reverse-replication): a rollback"
          + " after promotion needs consent and loses the target's writes"));
      return;
    }
    if (!wayBack.reverse() || facts.wayBack().isEmpty()) {
      return;
    }
    ServerFacts.WayBack w = facts.wayBack().get();
    String without = "; start with --without-reverse-replication to migrate without a lossless way back";
    out.add(Check.of("way back: replica identity", w.withoutIdentity().isEmpty(), w.withoutIdentity().isEmpty()
        ? "every table has a primary key or a replica identity" : w.withoutIdentity().size() + " table(s) with"
            + " neither a primary key nor a replica identity, whose updates and deletes reverse replication cannot"
            + " carry back: " + String.join(", ", w.withoutIdentity().subList(0, Math.min(20, w.withoutIdentity().size())))
            + (w.withoutIdentity().size() > 20 ? ", ..." : "") + ". Add a primary key or ALTER TABLE ... REPLICA"
            + " IDENTITY FULL" + without));
    long lobs = w.largeObjects().values().stream().mapToLong(Long::longValue).sum();
    out.add(Check.of("way back: large objects", lobs == 0, lobs == 0 ? "none in use"
        : lobs + " large object(s) in use " + w.largeObjects() + ", which logical replication does not carry" + without));
    facts.target().ifPresent(t -> {
      String wal = t.settings().getOrDefault("wal_level", "");
      out.add(Check.of("way back: target wal_level", "logical".equals(wal), "target " + wal
          + ("logical".equals(wal) ? "" : ": the reverse path's slots on the promoted target need logical" + without)));
      long slots = number(t.settings(), "max_replication_slots");
      long needed = facts.logicalSlots().size() + facts.source().databases().size();
      out.add(Check.of("way back: target max_replication_slots", slots >= needed, "target " + slots + ", needs "
          + needed + " (the source's logical slots, and one per database for the reverse path)"));
    });
    long workers = number(facts.source().settings(), "max_logical_replication_workers");
    long databases = facts.source().databases().size();
    out.add(Check.of("way back: source max_logical_replication_workers", workers >= databases, "source " + workers
        + ", needs " + databases + " (one subscription per database)"));
    out.add(Check.of("way back: subscription role", w.migratorSuperuser(), w.migratorSuperuser()
        ? "the migrator's role is a superuser (on RDS: a member of rds_superuser): it makes the subscriptions and logs"
            + " in to the target for them"
        : "the migrator's role is not a superuser (on RDS: not a member of rds_superuser): it cannot make"
            + " subscriptions" + without));
    w.reach().ifPresent(r -> out.add(reach(r, without)));
  }

  /**
   * The source's own connection to the target, as the subscriptions will make it at promotion: found then, the source
   * is already fenced. A dry run makes no probe, so it does not block there.
   */
  private static Check reach(ServerFacts.Reach r, String without) {
    String name = "way back: connection from the source";
    if (!r.tried()) {
      return Check.advice(name, false, "not tried in a dry run: the run makes and drops a disabled subscription"
          + " without a slot on the source, connecting to " + r.publisher() + " in every database");
    }
    if (r.refused().isEmpty()) {
      return Check.of(name, true, "the source connected to " + r.publisher() + " as " + r.role() + " in "
          + r.databases() + " database(s), as the reverse path's subscriptions will");
    }
    return Check.of(name, false, "the source could not connect to " + r.publisher() + " as " + r.role() + " in "
        + r.refused().size() + " of " + r.databases() + " database(s): " + r.refused().stream()
            .map(f -> f.database() + ": " + f.message().replaceAll("\\.+$", "")).collect(Collectors.joining("; "))
        + ". The subscriptions would fail at promotion, after the fence: let the source reach the target (its"
        + " network, the target's pg_hba.conf for the role and databases, the role's password)" + without);
  }

  private static void standby(ServerFacts facts, Preflight.Verdict.Builder out) {
    ServerFacts.Source source = facts.source();
    ServerFacts.Identity src = source.identity();
    ServerFacts.Target target = facts.target().orElseThrow();
    ServerFacts.Identity tgt = target.identity();
    out.add(Check.of("target is a standby", tgt.inRecovery(), tgt.address()
        + (tgt.inRecovery() ? " is in recovery" : " is not in recovery (already promoted?)")));
    out.add(Check.of("same system identifier", src.systemIdentifier().equals(tgt.systemIdentifier()),
        "source " + src.systemIdentifier() + ", target " + tgt.systemIdentifier()));
    if (tgt.inRecovery()) {
      out.add(target.receiver().map(r -> Check.of("target streams from source",
              "streaming".equals(r.status()) && r.senderPort() == src.port(), "WAL receiver " + r.status() + " from "
                  + r.senderHost() + ":" + r.senderPort() + " (source is " + src.address() + ")"))
          .orElse(Check.of("target streams from source", false, "the target has no WAL receiver")));
      long received = target.receiver().map(ServerFacts.Receiver::timeline).orElse(0L);
      out.add(Check.of("same timeline", source.timeline() == received,
          "source timeline " + source.timeline() + ", target receives timeline " + received));
    }
    Map<String, String> s = source.settings();
    Map<String, String> t = target.settings();
    for (String name : AT_LEAST) {
      long sv = number(s, name);
      long tv = number(t, name);
      out.add(Check.of("parameter " + name, tv >= sv, "target " + tv + ", source " + sv
          + (tv >= sv ? "" : ": the target needs at least the source's value")));
    }
    boolean sourceHasSlots = !facts.logicalSlots().isEmpty();
    String wal = t.getOrDefault("wal_level", "");
    out.add(Check.of("parameter wal_level", !sourceHasSlots || "logical".equals(wal),
        "target " + wal + (sourceHasSlots ? "; the source has logical slots to recreate, which needs logical" : "")));
    String sourceVersion = s.getOrDefault("server_version_num", "");
    String targetVersion = t.getOrDefault("server_version_num", "");
    out.add(Check.of("parameter server_version_num", major(targetVersion).equals(major(sourceVersion)),
        "target " + targetVersion + ", source " + sourceVersion));
    Set<String> missing = new TreeSet<>(source.extensions());
    missing.removeAll(target.availableExtensions());
    out.add(Check.of("extensions available on target", missing.isEmpty(), missing.isEmpty()
        ? "every extension installed on the source is available on the target" : "missing on the target: " + missing));
  }

  private static long number(Map<String, String> settings, String name) {
    try {
      return Long.parseLong(settings.getOrDefault(name, "0"));
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /** {@code server_version_num} is MMmmpp: the major version is its first two digits. */
  private static String major(String versionNum) {
    return versionNum.length() < 2 ? versionNum : versionNum.substring(0, 2);
  }

  /**
   * The fence and the promotion act on the whole server: every database on it moves. Those no route points to are
   * reached directly by their clients, which the drain cannot hold and the fence cuts off.
   */
  private static Check databases(ServerFacts.Source source, Preflight.Routed routed) {
    List<String> unrouted = source.databases().stream()
        .filter(d -> !routed.databases().contains(d) && !Preflight.Routed.MAINTENANCE.contains(d)).toList();
    List<String> maintenance = source.databases().stream().filter(Preflight.Routed.MAINTENANCE::contains).toList();
    String moving = "moving " + String.join(", ", new TreeSet<>(routed.databases()))
        + (maintenance.isEmpty() ? "" : "; not counted: " + String.join(", ", maintenance) + " (maintenance)");
    if (unrouted.isEmpty()) {
      return Check.of("every database on the source is routed", true, moving);
    }
    String detail = moving + "; no route points to " + unrouted + ": clients reaching them directly lose their"
        + " writes at the fence (their data moves with the server)";
    return routed.allowUnrouted()
        ? Check.advice("every database on the source is routed", false, detail + "; allowed by the operator")
        : Check.of("every database on the source is routed", false, detail + "; route them through Turnout, or allow"
            + " unrouted databases (--allow-unrouted-databases)");
  }

  private static Check unloggedTables(ServerFacts.Source source) {
    ImmutableList<String> unlogged = source.unloggedTables();
    return Check.advice("unlogged tables", unlogged.isEmpty(), unlogged.isEmpty()
        ? "none" : "not replicated, empty on the target after cutover: " + String.join(", ", unlogged));
  }

  /** An inactive slot's consumer is not running, so it cannot reach the cutover position: it blocks unless dropped. */
  private static void slots(ServerFacts facts, boolean allowDropping, Preflight.Verdict.Builder out) {
    for (ServerFacts.Slot slot : facts.logicalSlots()) {
      String name = "logical slot " + slot.name();
      if (slot.active()) {
        out.add(Check.advice(name, true, slot.plugin() + ", active, confirmed " + slot.confirmedLsn() + ", retains "
            + mib(slot.retainedBytes())));
      } else if (allowDropping) {
        out.add(Check.advice(name, true, "inactive, retains " + mib(slot.retainedBytes())
            + "; dropped once preflight passes, as the operator allowed"));
        out.dropSlot(slot.name());
      } else {
        out.add(Check.of(name, false, "inactive slot retaining " + mib(slot.retainedBytes()) + " of WAL ("
            + slot.retainedBytes() + " bytes): its consumer is not running, so it cannot reach the cutover position;"
            + " start the consumer or allow dropping stale slots"));
      }
    }
  }

  /**
   * What the fence will need and meet: pg_walinspect to prove nothing committed after the final LSN (installed in
   * the migrator's database once preflight passes, if the server has it), a free replication slot to keep that WAL
   * until finalized, the prepared transactions it would have to wait for, and the role the standby streams as.
   */
  private static void fence(ServerFacts.Fence fence, Instant now, Preflight.Verdict.Builder out) {
    ServerFacts.WalProof proof = fence.walProof();
    out.add(Check.of("WAL proof (pg_walinspect)", proof.available(), !proof.available()
        ? "the source has no pg_walinspect (PostgreSQL 15 or later, contrib): nothing could prove that no"
            + " transaction commits on it after the final LSN"
        : proof.installed() ? "installed" : "installed once preflight passes, in database " + proof.database()));
    if (proof.available() && !proof.installed()) {
      out.installWalProof();
    }
    ServerFacts.HoldSlot hold = fence.holdSlot();
    out.add(Check.of("replication slot for the fence", hold.exists() || hold.slotsUsed() < hold.maxSlots(),
        hold.exists() ? hold.name() + " exists" : hold.slotsUsed() + " of " + hold.maxSlots() + " slots used; the"
            + " fence takes one (" + hold.name() + ") to keep the WAL after the final LSN until the migration is"
            + " finalized"));
    ImmutableList<ServerFacts.Prepared> prepared = fence.prepared();
    out.add(Check.advice("prepared transactions", prepared.isEmpty(), prepared.isEmpty() ? "none"
        : prepared.size() + " on the source: " + prepared.stream().map(p -> p.describe(now))
            .collect(Collectors.joining(", ")) + "; at cutover the migration waits the quiesce grace for them, then"
            + " stops unless told to roll them back"));
    ServerFacts.StandbyRoles standby = fence.standby();
    out.add(Check.advice("standby's role", standby.superusers().isEmpty(), standby.roles().isEmpty()
        ? "the standby streams as the migrator's role" : "the standby streams as " + standby.roles() + ", which keeps"
            + " its login until the target is promoted (so the standby can reconnect)"
            + (standby.superusers().isEmpty() ? "" : "; " + standby.superusers() + " is a superuser: until promotion"
                + " a login as it could write (the WAL proof would stop the migration); prefer the migrator's role or"
                + " a non-superuser replication role in primary_conninfo")));
  }

  static String mib(long bytes) {
    return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
  }
}
