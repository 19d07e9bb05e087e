package dev.turnout.migrator;

import java.util.Optional;

/**
 * The way back after promotion (issue 19, part 2): from the promotion point on, every commit on the target is
 * replicated to the old source (a publication and a logical slot per database on the target, a subscription on the
 * source), so a rollback after promotion loses nothing while the path is healthy.
 *
 * @param fingerprint the target's schema (tables, columns, types, replica identities) when the path was made: a
 *     different one later means DDL ran on the target, which logical replication does not carry, so the path is
 *     broken
 * @param broken why the path cannot be relied on any more, once seen: a rollback then needs consent again
 * @param caughtUp during a rollback, the target's last position the source was seen to have applied (saved before
 *     the subscriptions are dropped, so a rollback resumed after a crash does not wait for them again)
 * @param awaitingSubscription the slots are made (at the promotion, before any write) and the source's
 *     subscriptions not yet: they are made once the route is on the target, outside the write gap; the slots keep
 *     every commit until then. False in a path saved before this existed (it subscribed at the promotion).
 */
public record ReversePath(String fingerprint, Optional<String> broken, Optional<Lsn> caughtUp,
    boolean awaitingSubscription) {
  public ReversePath {
    broken = broken == null ? Optional.empty() : broken;
    caughtUp = caughtUp == null ? Optional.empty() : caughtUp;
  }

  /** Slots made at the promotion point; the source subscribes later ({@link #subscribed}). */
  public static ReversePath made(String fingerprint) {
    return new ReversePath(fingerprint, Optional.empty(), Optional.empty(), true);
  }

  public boolean healthy() {
    return broken.isEmpty();
  }

  public ReversePath withBroken(String why) {
    return new ReversePath(fingerprint, Optional.of(why), caughtUp, awaitingSubscription);
  }

  public ReversePath withCaughtUp(Lsn lsn) {
    return new ReversePath(fingerprint, broken, Optional.of(lsn), awaitingSubscription);
  }

  public ReversePath subscribed() {
    return new ReversePath(fingerprint, broken, caughtUp, false);
  }
}
