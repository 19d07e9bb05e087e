package dev.turnout.migrator.check;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableSet;
import java.time.Instant;
import java.util.Optional;

/**
 * The one place preflight facts are judged: what blocks a migration, what only warns, and what preflight should
 * change once nothing blocks (drop the stale slots the operator allowed dropping; install pg_walinspect). Pure:
 * the same facts always give the same verdict, and nothing here reads a server.
 */
public final class Preflight {
  private Preflight() {}

  /**
   * What preflight found, and what it calls for.
   *
   * @param slotsToDrop inactive logical slots to drop on the source, as the operator allowed
   * @param installWalProof whether to install pg_walinspect on the source (it is available, not installed)
   */
  public record Verdict(ImmutableList<Check> checks, ImmutableList<String> slotsToDrop, boolean installWalProof) {

    /** The findings that stop the migration. */
    public ImmutableList<Check> blocking() {
      return checks.stream().filter(Check::blocks).collect(ImmutableList.toImmutableList());
    }

    static final class Builder {
      private final ImmutableList.Builder<Check> checks = ImmutableList.builder();
      private final ImmutableList.Builder<String> drop = ImmutableList.builder();
      private boolean install;

      void add(Check check) {
        checks.add(check);
      }

      void dropSlot(String name) {
        drop.add(name);
      }

      void installWalProof() {
        install = true;
      }

      Verdict build() {
        return new Verdict(checks.build(), drop.build(), install);
      }
    }
  }

  /**
   * The databases the migration moves (those routed to the source when it was planned), against which the source's
   * own list of databases is judged: one no route points to has clients that reach the server directly, and they
   * lose their writes at the fence.
   *
   * @param allowUnrouted whether the operator accepted that (the finding then only warns)
   */
  public record Routed(ImmutableSet<String> databases, boolean allowUnrouted) {
    /**
     * Databases never counted as unrouted: the maintenance database every server has (the migrator's own) and
     * RDS's private one. Templates are not listed at all.
     */
    public static final ImmutableSet<String> MAINTENANCE = ImmutableSet.of("postgres", "rdsadmin");
  }

  /** As {@link #judge(PreflightFacts, boolean, Optional, Instant)}, without judging the source's databases. */
  public static Verdict judge(PreflightFacts facts, boolean allowDroppingStaleSlots, Instant now) {
    return judge(facts, allowDroppingStaleSlots, Optional.empty(), now);
  }

  /**
   * Judges {@code facts}: the AWS checks first (when the platform is AWS's), then the servers'.
   *
   * @param routed the databases the migration moves, when the source's databases are to be judged against them
   * @param now the migrator's clock, for the age of prepared transactions
   */
  public static Verdict judge(PreflightFacts facts, boolean allowDroppingStaleSlots, Optional<Routed> routed,
      Instant now) {
    return judge(facts, allowDroppingStaleSlots, routed, WayBack.NOT_ASKED, now);
  }

  /**
   * Whether the migration will replicate the promoted target back to the source, which preflight then checks first
   * (the way back before the way forward).
   *
   * @param reverse the platform makes a reverse path and the operator did not start without one
   * @param declined the operator started with {@code --without-reverse-replication}
   */
  public record WayBack(boolean reverse, boolean declined) {
    /** Judges nothing about the way back (platforms without one, callers that do not ask). */
    public static final WayBack NOT_ASKED = new WayBack(false, false);
  }

  /** As {@link #judge(PreflightFacts, boolean, Optional, Instant)}, judging the way back as {@code wayBack} says. */
  public static Verdict judge(PreflightFacts facts, boolean allowDroppingStaleSlots, Optional<Routed> routed,
      WayBack wayBack, Instant now) {
    Verdict.Builder out = new Verdict.Builder();
    boolean resources = facts.aws().map(aws -> AwsChecks.judge(aws, out)).orElse(true);
    if (resources) {
      facts.servers().ifPresentOrElse(s -> {
        facts.aws().ifPresent(aws -> AwsChecks.wayBack(aws, wayBack, out));
        ServerChecks.wayBack(s, wayBack, out);
        ServerChecks.judge(s, allowDroppingStaleSlots, routed, now, out);
      }, () -> out.add(Check.of("servers", false, "nothing was read from the source and target")));
    }
    return out.build();
  }
}
