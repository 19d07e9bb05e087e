package dev.turnout.migrator.campaign;

import com.google.common.collect.ImmutableList;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Puts a campaign's members in the order they run and into waves: wave 0 is the canary when there is one, then
 * waves of {@link Policy.Waves#size}. Wave numbers are contiguous from 0 either way.
 */
public final class Planner {
  private Planner() {}

  public static Plan plan(CampaignSpec spec) {
    Policy policy = spec.policy();
    List<Member> ordered = new ArrayList<>(spec.members());
    if (policy.order() == Policy.Order.SMALLEST_FIRST) {
      // A stable sort: equal sizes, and the members of unknown size at the end, keep the order given.
      ordered.sort(Comparator.comparingLong(m -> m.sizeBytes().orElse(Long.MAX_VALUE)));
    }
    int canary = policy.canary().count();
    int size = policy.waves().size();
    ImmutableList.Builder<Plan.Entry> entries = ImmutableList.builderWithExpectedSize(ordered.size());
    int waves = 0;
    for (int i = 0; i < ordered.size(); i++) {
      int wave = i < canary ? 0 : (canary > 0 ? 1 : 0) + (i - canary) / size;
      entries.add(new Plan.Entry(wave, ordered.get(i)));
      waves = wave + 1;
    }
    return new Plan(spec.withMembers(ordered), entries.build(), waves);
  }
}
