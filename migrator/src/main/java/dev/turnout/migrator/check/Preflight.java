package dev.turnout.migrator.check;

import com.google.common.collect.ImmutableList;
import java.time.Instant;

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
   * Judges {@code facts}: the AWS checks first (when the platform is AWS's), then the servers'.
   *
   * @param now the migrator's clock, for the age of prepared transactions
   */
  public static Verdict judge(PreflightFacts facts, boolean allowDroppingStaleSlots, Instant now) {
    Verdict.Builder out = new Verdict.Builder();
    boolean resources = facts.aws().map(aws -> AwsChecks.judge(aws, out)).orElse(true);
    if (resources) {
      facts.servers().ifPresentOrElse(s -> ServerChecks.judge(s, allowDroppingStaleSlots, now, out),
          () -> out.add(Check.of("servers", false, "nothing was read from the source and target")));
    }
    return out.build();
  }
}
