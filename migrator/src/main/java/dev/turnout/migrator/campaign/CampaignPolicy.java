package dev.turnout.migrator.campaign;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableSet;
import com.google.common.collect.Sets;
import dev.turnout.migrator.Phase;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The rules of a campaign, as pure functions of its value, its members' migrations and the time: which members
 * start, which roll back, which may cut over now, and when to look again. The control plane's leader calls
 * {@link #decide} on every tick and whenever a member's migration changes phase, saves the new value, then acts.
 *
 * <p>The rules:
 * <ul>
 *   <li>A member whose migration COMPLETED (or was finalized) succeeded; one that ROLLED_BACK by its own rules
 *       failed; one that HALTED failed and halts the campaign until an operator resolves the migration and
 *       resumes the campaign. Failures reaching the limit halt it too. A halted or paused campaign starts
 *       nothing; its running members go on by their own rules, cutting over in their windows.
 *   <li>Members of the current wave start in plan order while fewer than {@code maxConcurrent} run, skipping one
 *       whose host already runs {@code maxConcurrentPerHost}. A member runs from its start until it succeeds or
 *       fails (a halted one still holds its slot).
 *   <li>A wave is finished when all its members are; the next starts once the bake between waves has passed
 *       since, or, after the canary, once an operator approves (or the canary's bake passes).
 *   <li>A running member before QUIESCING may cut over only while one of its windows is open (its own, or else
 *       the campaign's; none means at any time).
 *   <li>While aborting, a running member not yet promoted is asked to roll back; promoted ones finish; a halted
 *       one is left to its operator (the migrator halted it because acting alone was unsafe). ABORTED when no
 *       member runs.
 * </ul>
 *
 * <p>One pass over the members, O(members), allocating only for what changed: a tick over 2,000 members that
 * changes nothing allocates a few objects.
 */
public final class CampaignPolicy {
  /** The phases a migration may be held in until its window opens: the gate is the step VALIDATED to QUIESCING. */
  private static final Set<Phase> BEFORE_CUTOVER = Sets.immutableEnumSet(Phase.PLANNED, Phase.PREFLIGHT,
      Phase.REPLICATING, Phase.VALIDATED);
  /** How many failed members a halt's reason names. */
  private static final int NAMED = 3;

  private CampaignPolicy() {}

  /**
   * What to do now.
   *
   * @param views the migrations of the members the campaign started, by migration id; only those of running
   *     members (STARTED, HALTED, ROLLING_BACK) are read. One running and lacking here is taken as not started
   *     yet (it is asked for again)
   */
  public static Decision decide(Campaign c, Map<String, MemberView> views, Instant now) {
    return new Tick(c, views, now).run();
  }

  /**
   * An estimate of the time left: the members not finished, times the mean time a finished member took, divided
   * by how many run at once (the fleet-wide limit, or the wave size if smaller), plus the bakes between the
   * waves left. Empty until a member has finished; zero once the campaign is over.
   */
  public static Optional<Duration> eta(Campaign c) {
    if (c.state().status().isTerminal()) {
      return Optional.of(Duration.ZERO);
    }
    long tookMillis = 0;
    int finished = 0;
    int remaining = 0;
    for (MemberState m : c.members()) {
      if (!m.status().settled()) {
        remaining++;
      } else if (m.status() == MemberStatus.SUCCEEDED || m.status() == MemberStatus.FAILED) {
        Optional<Duration> took = m.run().flatMap(MemberState.Run::took);
        if (took.isPresent()) {
          tookMillis += took.get().toMillis();
          finished++;
        }
      }
    }
    if (remaining == 0) {
      return Optional.of(Duration.ZERO);
    }
    if (finished == 0) {
      return Optional.empty();
    }
    Policy p = c.spec().policy();
    int concurrency = Math.max(1, Math.min(remaining, Math.min(p.limits().maxConcurrent(), p.waves().size())));
    Duration members = Duration.ofMillis(tookMillis / finished).multipliedBy(remaining).dividedBy(concurrency);
    int gatesLeft = c.waveCount() - 1 - c.state().wave();
    return Optional.of(members.plus(p.waves().bake().multipliedBy(Math.max(0, gatesLeft))));
  }

  /** Whether a member's windows are open, and when that changes next (null: never within the horizon). */
  private record Gate(boolean open, Instant edge) {}

  /** One decision: the pass over the members, then the campaign's status, then the starts. */
  private static final class Tick {
    private final Campaign c;
    private final Map<String, MemberView> views;
    private final Instant now;
    private final Policy policy;
    private final ImmutableList<Member> specs;
    private final boolean aborting;

    /** The members' new states, copied on the first change. */
    private MemberState[] next;
    private List<Action> actions;
    private ImmutableSet.Builder<String> cutOver;
    private List<Campaign.Event> events;
    private Instant wake;
    /** The windows' state this tick, by list of windows (and the last one asked, which is most often asked again). */
    private Map<List<MaintenanceWindow>, Gate> gates;
    private List<MaintenanceWindow> lastWindows;
    private Gate lastGate;
    /** Running members by host, made on the first. */
    private Map<String, int[]> perHost;

    private int running;
    private int failures;
    private int succeeded;
    private int unsettled;
    private int firstPending = -1;
    private MemberState halted;
    private final List<MemberState> failed = new ArrayList<>(0);
    private int waveUnsettled;
    private int waveSucceeded;
    private int waveFailed;
    private Instant waveEnd;

    Tick(Campaign c, Map<String, MemberView> views, Instant now) {
      this.c = c;
      this.views = views;
      this.now = now;
      this.policy = c.spec().policy();
      this.specs = c.spec().members();
      this.aborting = c.state().status() == CampaignStatus.ABORTING;
    }

    Decision run() {
      if (c.state().status().isTerminal()) {
        return new Decision(Optional.empty(), ImmutableList.of(), ImmutableSet.of(), Optional.empty());
      }
      int wave = c.state().wave();
      for (int i = 0; i < specs.size(); i++) {
        MemberState m = c.members().get(i);
        if (m.status().running()) {
          m = observe(i, m);
        }
        count(i, m, wave);
      }
      Campaign.State state = aborting ? concludeAbort() : advance(c.state());
      if (state.status() == CampaignStatus.RUNNING) {
        start(state.wave());
      }
      Optional<Campaign> changed = Optional.empty();
      if (next != null || events != null || !state.equals(c.state())) {
        ImmutableList<MemberState> members = next == null ? c.members() : ImmutableList.copyOf(next);
        changed = Optional.of(c.with(state, members, events == null ? List.of() : events));
      }
      return new Decision(changed, actions == null ? ImmutableList.of() : ImmutableList.copyOf(actions),
          cutOver == null ? ImmutableSet.of() : cutOver.build(), Optional.ofNullable(wake));
    }

    /** A running member as its migration now stands; asks for the starts and rollbacks it needs. */
    private MemberState observe(int i, MemberState m) {
      String id = m.run().orElseThrow().migrationId();
      MemberView v = views.get(id);
      MemberState o;
      if (v == null) {
        // Saved as started, but its migration is not there: the start was lost (a crash between the save and
        // the start), or has not shown yet. Ask again; while aborting, it never started.
        if (aborting && m.status() != MemberStatus.HALTED) {
          o = m.to(MemberStatus.SKIPPED, now, Optional.of("the campaign was aborted before its migration started"));
        } else {
          if (m.status() == MemberStatus.STARTED) {
            act(new Action.Start(id, specs.get(i)));
          }
          o = m;
        }
      } else if (m.status() == MemberStatus.ROLLING_BACK) {
        o = observeRollingBack(m, v);
      } else {
        o = observeOwnRules(m, v);
        if (aborting && o.status() == MemberStatus.STARTED && !v.pastPromotion() && v.phase() != Phase.ROLLING_BACK) {
          o = o.to(MemberStatus.ROLLING_BACK, now, Optional.of("the campaign was aborted before its promotion"));
          act(new Action.RollBack(id, m.server()));
        }
      }
      if (o != m) {
        change(i, o);
      }
      if (!aborting && o.status() == MemberStatus.STARTED && v != null && BEFORE_CUTOVER.contains(v.phase())) {
        gateCutover(i, id);
      }
      return o;
    }

    /** A member running by its own rules: COMPLETED succeeded, ROLLED_BACK failed, HALTED halted, else running. */
    private MemberState observeOwnRules(MemberState m, MemberView v) {
      switch (v.phase()) {
        case COMPLETED:
        case FINALIZED:
          return m.to(MemberStatus.SUCCEEDED, now, Optional.empty());
        case ROLLED_BACK:
          String why = v.error().orElse("rolled back");
          note(m + " failed: " + why);
          return m.to(MemberStatus.FAILED, now, Optional.of(why));
        case HALTED:
          if (m.status() == MemberStatus.HALTED) {
            return m;
          }
          String error = v.error().orElse("halted");
          note(m + " halted: " + error);
          return m.to(MemberStatus.HALTED, now, Optional.of(error));
        default:
          if (m.status() == MemberStatus.STARTED) {
            return m;
          }
          note(m + " runs again (" + v.phase() + ")");
          return m.to(MemberStatus.STARTED, now, Optional.empty());
      }
    }

    /** A member the abort asked to roll back. */
    private MemberState observeRollingBack(MemberState m, MemberView v) {
      switch (v.phase()) {
        case ROLLED_BACK:
          return m.to(MemberStatus.ROLLED_BACK, now, m.reason());
        case COMPLETED:
        case FINALIZED:
          return m.to(MemberStatus.SUCCEEDED, now, Optional.empty());
        case HALTED:
          String error = v.error().orElse("halted");
          note(m + " halted while rolling back: " + error);
          return m.to(MemberStatus.HALTED, now, Optional.of(error));
        case ROLLING_BACK:
          return m;
        default:
          if (v.pastPromotion()) { // promoted before the rollback took: it finishes
            return m.to(MemberStatus.STARTED, now, Optional.empty());
          }
          act(new Action.RollBack(m.run().orElseThrow().migrationId(), m.server())); // the request was lost
          return m;
      }
    }

    /** Lets the member cut over while a window is open; wakes up when one opens or closes. */
    private void gateCutover(int i, String id) {
      Member member = specs.get(i);
      List<MaintenanceWindow> windows = member.windows().isEmpty() ? policy.windows() : member.windows();
      if (windows.isEmpty() || gate(windows).open()) {
        if (cutOver == null) {
          cutOver = ImmutableSet.builder();
        }
        cutOver.add(id);
      }
    }

    /**
     * Whether any of {@code windows} is open now, and when that next changes: worked out once a tick for each
     * distinct list, since most members share the campaign's windows (or equal ones of their own).
     */
    private Gate gate(List<MaintenanceWindow> windows) {
      if (windows == lastWindows) {
        return lastGate;
      }
      Gate g = gates == null ? null : gates.get(windows);
      if (g == null) {
        boolean open = false;
        Instant edge = null;
        for (int w = 0; w < windows.size(); w++) {
          MaintenanceWindow window = windows.get(w);
          Instant opened = window.opening(now);
          Instant change = opened != null ? opened.plus(window.duration()) : window.nextFiringAfter(now);
          open |= opened != null;
          edge = change != null && (edge == null || change.isBefore(edge)) ? change : edge;
        }
        g = new Gate(open, edge);
        if (gates == null) {
          gates = new HashMap<>();
        }
        gates.put(windows, g);
        wakeAt(edge);
      }
      lastWindows = windows;
      lastGate = g;
      return g;
    }

    private void count(int i, MemberState m, int wave) {
      MemberStatus s = m.status();
      if (s.running()) {
        running++;
        if (perHost == null) {
          perHost = new HashMap<>();
        }
        perHost.computeIfAbsent(specs.get(i).host(), h -> new int[1])[0]++;
      }
      if (s.failure()) {
        failures++;
        if (failed.size() < NAMED) {
          failed.add(m);
        }
      }
      if (s == MemberStatus.SUCCEEDED) {
        succeeded++;
      }
      if (s == MemberStatus.HALTED && halted == null) {
        halted = m;
      }
      if (!s.settled()) {
        unsettled++;
        if (s == MemberStatus.PENDING && firstPending < 0) {
          firstPending = i;
        }
      }
      if (m.wave() == wave) {
        if (!s.settled()) {
          waveUnsettled++;
        } else {
          waveSucceeded += s == MemberStatus.SUCCEEDED ? 1 : 0;
          waveFailed += s.failure() ? 1 : 0;
          Optional<Instant> end = m.run().flatMap(MemberState.Run::finished);
          if (end.isPresent() && (waveEnd == null || end.get().isAfter(waveEnd))) {
            waveEnd = end.get();
          }
        }
      }
    }

    /** ABORTED once no member runs (a halted one waits for its operator, not for the campaign). */
    private Campaign.State concludeAbort() {
      Campaign.State state = c.state();
      int stillRunning = 0;
      int rolledBack = 0;
      int skipped = 0;
      int haltedMembers = 0;
      for (int i = 0; i < specs.size(); i++) {
        MemberStatus s = member(i).status();
        stillRunning += s == MemberStatus.STARTED || s == MemberStatus.ROLLING_BACK ? 1 : 0;
        rolledBack += s == MemberStatus.ROLLED_BACK ? 1 : 0;
        skipped += s == MemberStatus.SKIPPED ? 1 : 0;
        haltedMembers += s == MemberStatus.HALTED ? 1 : 0;
      }
      if (stillRunning > 0) {
        return state;
      }
      note("aborted: " + rolledBack + " rolled back, " + succeeded + " succeeded, " + skipped + " never started"
          + (haltedMembers > 0 ? ", " + haltedMembers + " halted, waiting for an operator" : ""));
      return state.with(CampaignStatus.ABORTED, Optional.empty(), Optional.empty());
    }

    /** Halts, completes, records a finished wave and opens the next when its gate allows. */
    private Campaign.State advance(Campaign.State state) {
      CampaignStatus status = state.status();
      int threshold = policy.limits().maxFailures().threshold(specs.size());
      if (unsettled == 0) {
        if (state.wavesFinished().size() == state.wave()) {
          state = state.waveFinished(waveEnd == null ? now : waveEnd);
        }
        note("completed: " + succeeded + " succeeded, " + failures + " failed");
        return state.with(CampaignStatus.COMPLETED, Optional.empty(), Optional.empty());
      }
      if (halted != null && status != CampaignStatus.HALTED) {
        status = CampaignStatus.HALTED;
        state = halt(state, "member " + halted + " halted: " + halted.reason().orElse("")
            + "; resume or roll back its migration, then resume the campaign");
      } else if (failures - state.acceptedFailures() >= threshold && status != CampaignStatus.HALTED) {
        StringBuilder names = new StringBuilder();
        for (MemberState f : failed) {
          names.append(names.length() == 0 ? "" : "; ").append(f).append(": ").append(f.reason().orElse(""));
        }
        status = CampaignStatus.HALTED;
        state = halt(state, failures + (failures == 1 ? " member" : " members") + " failed, the limit is "
            + policy.limits().maxFailures() + (state.acceptedFailures() > 0 ? " beyond the " + state.acceptedFailures()
                + " accepted" : "") + " (" + names + (failures > failed.size() ? "; ..." : "")
            + "); resume to accept them, or abort");
      }

      CampaignStatus gate = CampaignStatus.RUNNING;
      Optional<Instant> until = Optional.empty();
      if (waveUnsettled == 0) {
        int wave = state.wave();
        if (state.wavesFinished().size() == wave) {
          state = state.waveFinished(waveEnd == null ? now : waveEnd);
          note("wave " + wave + (wave == 0 && policy.canary().count() > 0 ? " (canary)" : "") + " finished: "
              + waveSucceeded + " succeeded, " + waveFailed + " failed");
        }
        boolean canary = wave == 0 && policy.canary().count() > 0;
        Optional<Duration> bake = canary ? policy.canary().bake() : Optional.of(policy.waves().bake());
        if (bake.isEmpty()) {
          gate = CampaignStatus.WAITING_APPROVAL;
        } else {
          Instant end = state.wavesFinished().get(wave).plus(bake.get());
          if (!now.isBefore(end)) {
            state = state.atWave(wave + 1);
            note("wave " + (wave + 1) + " may start" + (bake.get().isZero() ? ""
                : ": " + Durations.format(bake.get()) + " passed since wave " + wave + " finished"));
          } else {
            gate = CampaignStatus.BAKING;
            until = Optional.of(end);
            wakeAt(end);
          }
        }
      }
      if (status == CampaignStatus.PAUSED || status == CampaignStatus.HALTED) {
        return state;
      }
      return state.with(gate, until, Optional.empty());
    }

    private Campaign.State halt(Campaign.State state, String reason) {
      note("halted: " + reason);
      return state.with(CampaignStatus.HALTED, Optional.empty(), Optional.of(reason));
    }

    /** Starts the current wave's pending members, in order, as the limits allow. */
    private void start(int wave) {
      if (firstPending < 0) {
        return;
      }
      int max = policy.limits().maxConcurrent();
      int perHostMax = policy.limits().maxConcurrentPerHost();
      for (int i = firstPending; i < specs.size() && running < max; i++) {
        MemberState m = member(i);
        if (m.wave() > wave) {
          break;
        }
        if (m.status() != MemberStatus.PENDING) {
          continue;
        }
        Member member = specs.get(i);
        if (perHost == null) {
          perHost = new HashMap<>();
        }
        int[] onHost = perHost.computeIfAbsent(member.host(), h -> new int[1]);
        if (onHost[0] >= perHostMax) {
          continue;
        }
        String id = c.migrationIdOf(i);
        change(i, m.started(id, now));
        act(new Action.Start(id, member));
        onHost[0]++;
        running++;
      }
    }

    private MemberState member(int i) {
      return next != null && next[i] != null ? next[i] : c.members().get(i);
    }

    private void change(int i, MemberState m) {
      if (next == null) {
        next = c.members().toArray(new MemberState[0]);
      }
      next[i] = m;
    }

    private void act(Action a) {
      if (actions == null) {
        actions = new ArrayList<>();
      }
      actions.add(a);
    }

    private void note(String text) {
      if (events == null) {
        events = new ArrayList<>();
      }
      events.add(new Campaign.Event(now, text));
    }

    private void wakeAt(Instant t) {
      if (t != null && (wake == null || t.isBefore(wake))) {
        wake = t;
      }
    }
  }
}
