package dev.turnout.migrator.campaign;

import dev.turnout.migrator.Phase;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A campaign as the control plane would host it, with a fake clock and the members' migrations as the test
 * moves them: {@link #tick} decides, keeps the new value and starts what it was asked to start (at PLANNED).
 */
final class Fleet {
  static final Instant T0 = Instant.parse("2026-12-02T10:00:00Z");

  Instant now = T0;
  Campaign campaign;
  final Map<String, MemberView> views = new HashMap<>();
  Decision last;

  Fleet(CampaignSpec spec) {
    campaign = Campaign.create("c1", spec, now);
  }

  /** A fleet of {@code n} servers {@code db1:5432}.. on hosts of their own, each with a given target. */
  static List<Member> servers(int n) {
    List<Member> members = new ArrayList<>();
    for (int i = 1; i <= n; i++) {
      members.add(Member.of("db" + i + ":5432", Target.given("db" + i + "-new:5432")));
    }
    return members;
  }

  static CampaignSpec spec(List<Member> members, Policy policy) {
    return CampaignSpec.of("fleet", members, policy);
  }

  Decision tick() {
    last = CampaignPolicy.decide(campaign, views, now);
    last.campaign().ifPresent(c -> campaign = c);
    for (Action a : last.actions()) {
      if (a instanceof Action.Start s) {
        views.putIfAbsent(s.migrationId(), MemberView.of(Phase.PLANNED));
      } else if (a instanceof Action.RollBack r) {
        MemberView v = views.get(r.migrationId());
        views.put(r.migrationId(), new MemberView(Phase.ROLLING_BACK, v.error(), v.pastPromotion()));
      }
    }
    return last;
  }

  void advance(Duration d) {
    now = now.plus(d);
  }

  String id(String server) {
    return campaign.member(server).orElseThrow().migrationId().orElseThrow(
        () -> new AssertionError(server + " has not started"));
  }

  MemberStatus status(String server) {
    return campaign.member(server).orElseThrow().status();
  }

  void phase(String server, Phase phase) {
    views.put(id(server), MemberView.of(phase));
  }

  void complete(String... servers) {
    for (String s : servers) {
      phase(s, Phase.COMPLETED);
    }
  }

  void rollBack(String server, String error) {
    views.put(id(server), new MemberView(Phase.ROLLED_BACK, Optional.of(error), false));
  }

  void halt(String server, String error, boolean promoted) {
    views.put(id(server), new MemberView(Phase.HALTED, Optional.of(error), promoted));
  }

  /** The servers the last decision asked to start, in order. */
  List<String> started() {
    List<String> servers = new ArrayList<>();
    for (Action a : last.actions()) {
      if (a instanceof Action.Start s) {
        servers.add(s.member().server());
      }
    }
    return servers;
  }

  /** The servers the last decision asked to roll back. */
  List<String> rolledBack() {
    List<String> servers = new ArrayList<>();
    for (Action a : last.actions()) {
      if (a instanceof Action.RollBack r) {
        servers.add(r.server());
      }
    }
    return servers;
  }

  CampaignStatus status() {
    return campaign.state().status();
  }

  List<String> history() {
    return campaign.history().stream().map(Campaign.Event::text).toList();
  }
}
