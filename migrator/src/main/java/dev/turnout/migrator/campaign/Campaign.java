package dev.turnout.migrator.campaign;

import com.google.common.collect.ImmutableList;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * One campaign: what was asked, where it is, what each member is doing and what happened so far. Immutable;
 * {@link CampaignPolicy#decide} and the operator's commands ({@link #pause}, {@link #resume}, {@link #approve},
 * {@link #abort}) return new values, which the control plane saves before acting on them.
 *
 * @param spec the spec with its members in the order they run (see {@link Planner}): {@code members.get(i)} is
 *     the state of {@code spec.members().get(i)}
 * @param members one per member, in the order they run; waves never decrease along it
 * @param revision how many times the store has saved this campaign, carried as {@code Migration} carries it: a
 *     value derived from another keeps the revision it was read at, and the store saves it only if it still holds
 *     that revision
 */
public record Campaign(String id, CampaignSpec spec, State state, ImmutableList<MemberState> members,
    ImmutableList<Event> history, long revision) {
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{1,48}");

  /**
   * Where the campaign is.
   *
   * @param wave the wave whose members may start: every wave before it has finished
   * @param until when the bake under way ends (status {@link CampaignStatus#BAKING})
   * @param reason why the campaign halted
   * @param wavesFinished when each finished wave finished, by wave number
   * @param acceptedFailures failures an operator accepted by resuming a halted campaign: the failure limit counts
   *     the failures beyond them
   */
  public record State(CampaignStatus status, int wave, Optional<Instant> until, Optional<String> reason,
      ImmutableList<Instant> wavesFinished, int acceptedFailures) {
    public State {
      until = until == null ? Optional.empty() : until;
      reason = reason == null ? Optional.empty() : reason;
      wavesFinished = wavesFinished == null ? ImmutableList.of() : wavesFinished;
    }

    State with(CampaignStatus s, Optional<Instant> u, Optional<String> r) {
      return new State(s, wave, u, r, wavesFinished, acceptedFailures);
    }

    State atWave(int w) {
      return new State(status, w, until, reason, wavesFinished, acceptedFailures);
    }

    State waveFinished(Instant at) {
      return new State(status, wave, until, reason,
          ImmutableList.<Instant>builder().addAll(wavesFinished).add(at).build(), acceptedFailures);
    }

    State accepting(int failures) {
      return new State(status, wave, until, reason, wavesFinished, failures);
    }
  }

  /** One line of the campaign's history; each member's migration keeps its own. */
  public record Event(Instant at, String text) {}

  public Campaign {
    if (id == null || !ID.matcher(id).matches()) {
      throw new InvalidSpecException("id", id, "is not a campaign id (1 to 48 letters, digits, - or _: its"
          + " members' migrations are named <id>-<n>)");
    }
    if (members.size() != spec.members().size()) {
      throw new IllegalArgumentException(this + " has " + members.size() + " member states for "
          + spec.members().size() + " members");
    }
  }

  /** A new campaign of {@code spec}, planned, at wave 0, nothing started. */
  public static Campaign create(String id, CampaignSpec spec, Instant now) {
    Plan plan = Planner.plan(spec);
    ImmutableList.Builder<MemberState> members = ImmutableList.builderWithExpectedSize(plan.entries().size());
    for (Plan.Entry e : plan.entries()) {
      members.add(MemberState.pending(e.member().server(), e.wave()));
    }
    State state = new State(CampaignStatus.RUNNING, 0, Optional.empty(), Optional.empty(), ImmutableList.of(), 0);
    return new Campaign(id, plan.spec(), state, members.build(), ImmutableList.of(new Event(now,
        "created: " + plan.entries().size() + " servers in " + plan.waves() + " waves; " + spec.policy().describe())),
        0);
  }

  /** The id the campaign gives the migration of its {@code index}th member (in run order, from 0). */
  public String migrationIdOf(int index) {
    return id + "-" + (index + 1);
  }

  /** The state of the member of {@code server}. */
  public Optional<MemberState> member(String server) {
    for (MemberState m : members) {
      if (m.server().equals(server)) {
        return Optional.of(m);
      }
    }
    return Optional.empty();
  }

  /** How many waves the plan has. */
  public int waveCount() {
    return members.get(members.size() - 1).wave() + 1;
  }

  /** How many members are in {@code status}. */
  public int count(MemberStatus status) {
    int n = 0;
    for (MemberState m : members) {
      if (m.status() == status) {
        n++;
      }
    }
    return n;
  }

  /** This value as the store holds it at {@code saved} (stores call it; a campaign read back carries it). */
  public Campaign atRevision(long saved) {
    return new Campaign(id, spec, state, members, history, saved);
  }

  Campaign with(State s, ImmutableList<MemberState> m, List<Event> events) {
    ImmutableList<Event> h = events.isEmpty() ? history
        : ImmutableList.<Event>builderWithExpectedSize(history.size() + events.size()).addAll(history).addAll(events)
            .build();
    return new Campaign(id, spec, s, m, h, revision);
  }

  /** Nothing new starts; running members go on, cutting over in their windows. */
  public Campaign pause(Instant now) {
    CampaignStatus s = state.status();
    if (s != CampaignStatus.RUNNING && s != CampaignStatus.WAITING_APPROVAL && s != CampaignStatus.BAKING) {
      throw new IllegalStateException(cannot("pause") + (s == CampaignStatus.HALTED
          ? ": nothing starts while it is halted already" : ""));
    }
    return with(state.with(CampaignStatus.PAUSED, Optional.empty(), Optional.empty()), members,
        List.of(new Event(now, "paused (was " + s + "); running members go on")));
  }

  /**
   * Goes on after a pause, or after a halt: then the failures so far are accepted (the limit counts new ones),
   * and no member may still be halted (its migration resumed or rolled back first).
   */
  public Campaign resume(Instant now) {
    CampaignStatus s = state.status();
    if (s == CampaignStatus.PAUSED) {
      return with(state.with(CampaignStatus.RUNNING, Optional.empty(), Optional.empty()), members,
          List.of(new Event(now, "resumed")));
    }
    if (s != CampaignStatus.HALTED) {
      throw new IllegalStateException(cannot("resume") + ": only a paused or halted campaign resumes");
    }
    List<String> halted = new ArrayList<>();
    int failures = 0;
    for (MemberState m : members) {
      if (m.status() == MemberStatus.HALTED) {
        halted.add(m.toString());
      }
      if (m.status().failure()) {
        failures++;
      }
    }
    if (!halted.isEmpty()) {
      throw new IllegalStateException(cannot("resume") + ": member " + String.join(", ", halted)
          + (halted.size() == 1 ? " is" : " are") + " still halted; resume or roll back its migration first");
    }
    String accepted = failures == state.acceptedFailures() ? ""
        : "; " + failures + " failure" + (failures == 1 ? "" : "s") + " accepted, the limit of "
            + spec.policy().limits().maxFailures() + " counts new ones";
    return with(state.with(CampaignStatus.RUNNING, Optional.empty(), Optional.empty()).accepting(failures), members,
        List.of(new Event(now, "resumed after the halt (" + state.reason().orElse("") + ")" + accepted)));
  }

  /** Lets the waves after the canary start: once the canary finished, while waiting for approval or baking. */
  public Campaign approve(Instant now) {
    CampaignStatus s = state.status();
    if (spec.policy().canary().count() == 0) {
      throw new IllegalStateException(cannot("approve") + ": it has no canary to approve");
    }
    if (state.wave() > 0) {
      throw new IllegalStateException(cannot("approve") + ": the canary was approved already (wave "
          + state.wave() + " may run)");
    }
    if (s != CampaignStatus.WAITING_APPROVAL && s != CampaignStatus.BAKING && s != CampaignStatus.PAUSED) {
      throw new IllegalStateException(cannot("approve") + (s == CampaignStatus.RUNNING ? ": its canary has not"
          + " finished" : s == CampaignStatus.HALTED ? ": " + state.reason().orElse("") + "; resume it first" : ""));
    }
    int unfinished = 0;
    for (MemberState m : members) {
      if (m.wave() == 0 && !m.status().settled()) {
        unfinished++;
      }
    }
    if (unfinished > 0 || members.size() <= spec.policy().canary().count()) {
      throw new IllegalStateException(cannot("approve") + (unfinished > 0 ? ": " + unfinished + " member"
          + (unfinished == 1 ? " of its canary has" : "s of its canary have") + " not finished"
          : ": its canary is every member"));
    }
    CampaignStatus next = s == CampaignStatus.PAUSED ? s : CampaignStatus.RUNNING;
    return with(state.with(next, Optional.empty(), Optional.empty()).atWave(1), members,
        List.of(new Event(now, "canary approved: wave 1 may start")));
  }

  /**
   * Stops the campaign for good: members not started never will; running members not yet promoted are rolled
   * back by the next {@link CampaignPolicy#decide}, promoted ones finish. ABORTED once nothing runs.
   */
  public Campaign abort(Instant now) {
    CampaignStatus s = state.status();
    if (s == CampaignStatus.ABORTING || s.isTerminal()) {
      throw new IllegalStateException(cannot("abort"));
    }
    ImmutableList.Builder<MemberState> next = ImmutableList.builderWithExpectedSize(members.size());
    int skipped = 0;
    int running = 0;
    for (MemberState m : members) {
      if (m.status() == MemberStatus.PENDING) {
        next.add(m.to(MemberStatus.SKIPPED, now, Optional.of("the campaign was aborted before it started")));
        skipped++;
      } else {
        next.add(m);
        running += m.status().running() ? 1 : 0;
      }
    }
    CampaignStatus to = running == 0 ? CampaignStatus.ABORTED : CampaignStatus.ABORTING;
    return with(state.with(to, Optional.empty(), Optional.empty()), next.build(), List.of(new Event(now,
        "aborted (was " + s + "): " + skipped + " not started will not start" + (running == 0 ? ", nothing runs"
            : ", " + running + " running roll back unless promoted"))));
  }

  private String cannot(String command) {
    return "Cannot " + command + " campaign " + id + " when it is " + state.status();
  }

  @Override
  public String toString() {
    return "campaign " + id + " ('" + spec.name() + "')";
  }
}
