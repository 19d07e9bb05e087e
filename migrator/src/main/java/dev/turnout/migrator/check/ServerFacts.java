package dev.turnout.migrator.check;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * What a platform reads over SQL from a migration's PostgreSQL source and its standby target before the migration
 * starts, judged by {@link Preflight}. Addresses and LSNs are kept as PostgreSQL and the route write them.
 *
 * @param target empty in a dry run whose target the run itself would create: it cannot be read before it exists
 */
public record ServerFacts(Source source, Optional<Target> target, ImmutableList<Slot> logicalSlots, Fence fence,
    Optional<WayBack> wayBack) {
  public ServerFacts {
    wayBack = wayBack == null ? Optional.empty() : wayBack;
  }

  public ServerFacts(Source source, Optional<Target> target, ImmutableList<Slot> logicalSlots, Fence fence) {
    this(source, target, logicalSlots, fence, Optional.empty());
  }

  /**
   * What reverse replication from the promoted target back to the source would meet, read on the source.
   *
   * @param withoutIdentity tables (database.schema.table) with neither a primary key nor a replica identity: their
   *     updates and deletes cannot be replicated
   * @param largeObjects large objects in use, by database: logical replication does not carry them
   * @param migratorSuperuser whether the migrator's role is a superuser, or on RDS a member of rds_superuser (it owns
   *     the subscriptions and logs in to the target for them)
   * @param reach whether the source itself reached the target for the subscriptions; empty when not looked at (no
   *     reverse replication wanted, a target not there to reach, or a role that may not make subscriptions)
   */
  public record WayBack(ImmutableList<String> withoutIdentity, ImmutableMap<String, Long> largeObjects,
      boolean migratorSuperuser, Optional<Reach> reach) {
    public WayBack {
      reach = reach == null ? Optional.empty() : reach;
    }

    public WayBack(ImmutableList<String> withoutIdentity, ImmutableMap<String, Long> largeObjects,
        boolean migratorSuperuser) {
      this(withoutIdentity, largeObjects, migratorSuperuser, Optional.empty());
    }

    public WayBack withReach(Reach reach) {
      return new WayBack(withoutIdentity, largeObjects, migratorSuperuser, Optional.of(reach));
    }
  }

  /**
   * Whether the source connected to the target as the reverse path's subscriptions will: the same connection string
   * (the publisher's address, the database, the migrator's role and password), from the source server itself, through
   * its network and the target's pg_hba. Read by making and at once dropping a disabled subscription without a slot
   * in each database the path covers.
   *
   * @param publisher the address the subscriptions connect to ({@code host:port})
   * @param role the role they log in as (empty when not tried)
   * @param databases how many databases were probed (0 when not tried)
   * @param refused each database whose probe did not connect, with what PostgreSQL said; empty when every one did
   * @param tried false in a dry run, which makes no probe
   */
  public record Reach(String publisher, String role, int databases, ImmutableList<Refusal> refused, boolean tried) {
    /** What a dry run knows: where the subscriptions would connect to, not whether they could. */
    public static Reach notTried(String publisher) {
      return new Reach(publisher, "", 0, ImmutableList.of(), false);
    }
  }

  /** A probe that did not connect: the database, and PostgreSQL's message ("could not connect to the publisher: ..."). */
  public record Refusal(String database, String message) {}

  /** A server's address, and what says whether it is a primary and of which cluster. */
  public record Identity(String host, int port, boolean inRecovery, String systemIdentifier) {
    /** {@code host:port}, as routes write it. */
    public String address() {
      return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
  }

  /**
   * The source.
   *
   * @param timeline the timeline it writes on
   * @param settings {@code pg_settings} by name
   * @param extensions the extensions installed in the migrator's database
   * @param unloggedTables tables whose changes physical replication does not carry (empty on a promoted replica)
   * @param databases every database on the server but the templates ({@code pg_database}), in name order
   */
  public record Source(Identity identity, long timeline, ImmutableMap<String, String> settings,
      ImmutableSet<String> extensions, ImmutableList<String> unloggedTables, ImmutableList<String> databases) {
    public Source {
      databases = databases == null ? ImmutableList.of() : databases;
    }

    public Source(Identity identity, long timeline, ImmutableMap<String, String> settings,
        ImmutableSet<String> extensions, ImmutableList<String> unloggedTables) {
      this(identity, timeline, settings, extensions, unloggedTables, ImmutableList.of());
    }
  }

  /**
   * The target.
   *
   * @param availableExtensions the extensions its binaries can install
   * @param receiver its WAL receiver, when it has one
   */
  public record Target(Identity identity, ImmutableMap<String, String> settings, ImmutableSet<String> availableExtensions,
      Optional<Receiver> receiver) {}

  /** {@code pg_stat_wal_receiver}: where the standby streams from, and on which timeline. */
  public record Receiver(String status, String senderHost, int senderPort, long timeline) {}

  /** A logical slot on the source and the WAL it holds back. */
  public record Slot(String name, String plugin, boolean active, String confirmedLsn, long retainedBytes) {}

  /** What the fence will need and meet on the source. */
  public record Fence(WalProof walProof, HoldSlot holdSlot, ImmutableList<Prepared> prepared, StandbyRoles standby) {}

  /**
   * pg_walinspect, which proves nothing committed after the final LSN.
   *
   * @param database the migrator's database, where it is (or would be) installed
   */
  public record WalProof(boolean available, boolean installed, String database) {}

  /** The physical slot that keeps the source's WAL after the final LSN, and room for it. */
  public record HoldSlot(String name, boolean exists, long slotsUsed, long maxSlots) {}

  /** A transaction prepared for two-phase commit on the source. */
  public record Prepared(String gid, Instant prepared, String owner, String database) {
    String describe(Instant now) {
      long seconds = Math.max(0, Duration.between(prepared, now).toSeconds());
      return "'" + gid + "' (owner " + owner + ", database " + database + ", prepared " + seconds + " s ago)";
    }
  }

  /**
   * The roles a physical standby of the source streams as (the migrator's own left out).
   *
   * @param superusers those of {@code roles} that are superusers
   */
  public record StandbyRoles(ImmutableList<String> roles, ImmutableList<String> superusers) {}
}
