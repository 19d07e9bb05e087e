package dev.turnout.migrator.campaign;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableSet;
import java.time.Instant;
import java.util.Optional;

/**
 * What {@link CampaignPolicy#decide} concluded at one instant.
 *
 * @param campaign the new campaign value, present only when something changed: save it (compare-and-set on its
 *     revision) before taking the actions
 * @param actions the migrations to start and to roll back, in order
 * @param mayCutOver the ids of the running migrations that may cut over now (their window is open); the migrator
 *     holds every other member's migration at VALIDATED
 * @param nextWakeUp when to decide again at the latest (a window opening or closing, a bake ending), besides
 *     whenever a member's migration changes phase
 */
public record Decision(Optional<Campaign> campaign, ImmutableList<Action> actions, ImmutableSet<String> mayCutOver,
    Optional<Instant> nextWakeUp) {

  /** The campaign after this decision: the new value, or {@code before} when nothing changed. */
  public Campaign campaignOr(Campaign before) {
    return campaign.orElse(before);
  }
}
