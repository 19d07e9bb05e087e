package dev.turnout.controlplane.admin;

import com.google.protobuf.Timestamp;
import dev.turnout.admin.v1.CampaignEvent;
import dev.turnout.admin.v1.CampaignMember;
import dev.turnout.admin.v1.CampaignPlan;
import dev.turnout.admin.v1.PlannedMember;
import dev.turnout.controlplane.campaign.Campaigns;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.campaign.Campaign;
import dev.turnout.migrator.campaign.CampaignPolicy;
import dev.turnout.migrator.campaign.MaintenanceWindow;
import dev.turnout.migrator.campaign.Member;
import dev.turnout.migrator.campaign.MemberState;
import dev.turnout.migrator.campaign.MemberStatus;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Collectors;

/** Campaigns and their plans as the admin API answers them. */
final class CampaignProtos {
  private CampaignProtos() {}

  static Timestamp timestamp(Instant at) {
    return Timestamp.newBuilder().setSeconds(at.getEpochSecond()).setNanos(at.getNano()).build();
  }

  static String windows(List<MaintenanceWindow> windows) {
    return windows.stream().map(w -> "'" + w.cron() + "' for " + w.duration().toString().substring(2).toLowerCase()
        + " (" + w.zone() + ")").collect(Collectors.joining(", "));
  }

  static CampaignPlan plan(Campaigns.Planned planned) {
    CampaignPlan.Builder b = CampaignPlan.newBuilder().setName(planned.plan().spec().name())
        .setPolicy(planned.plan().spec().policy().describe()).addAllBlocking(planned.blocking());
    for (Campaigns.MemberPlan m : planned.members()) {
      PlannedMember.Builder p = PlannedMember.newBuilder().setServer(m.member().server())
          .addAllDatabases(m.databases()).setTarget(m.target()).setWave(m.wave())
          .setWindows(windows(Campaigns.windowsOf(planned.plan().spec(), m.member()))).addAllBlocking(m.blocking());
      m.nextWindow().ifPresent(n -> p.setNextWindow(timestamp(n)));
      b.addMembers(p);
    }
    return b.build();
  }

  /**
   * @param migrations the member migrations by id as the answering replica sees them
   * @param figures the latest replication figures of a migration, on the leader
   */
  static dev.turnout.admin.v1.Campaign campaign(Campaign c, Function<String, Optional<Migration>> migrations,
      Function<String, Optional<Migrator.Figures>> figures, Campaigns campaigns) {
    dev.turnout.admin.v1.Campaign.Builder b = dev.turnout.admin.v1.Campaign.newBuilder().setId(c.id())
        .setName(c.spec().name()).setStatus(c.state().status().name()).setReason(c.state().reason().orElse(""))
        .setWave(c.state().wave()).setWaves(c.waveCount()).setPolicy(c.spec().policy().describe())
        .setMaxFailures(c.spec().policy().limits().maxFailures().threshold(c.members().size()));
    int failures = 0;
    Map<String, Integer> byPhase = new TreeMap<>();
    Instant now = Instant.now();
    Optional<Instant> nextWindow = Optional.empty();
    for (int i = 0; i < c.members().size(); i++) {
      MemberState s = c.members().get(i);
      Member member = c.spec().members().get(i);
      CampaignMember.Builder m = CampaignMember.newBuilder().setServer(s.server()).setWave(s.wave())
          .setStatus(s.status().name()).setTarget(member.target().describe(member.server()))
          .addAllDatabases(member.databases()).setError(s.reason().orElse(""));
      if (s.status() == MemberStatus.FAILED || s.status() == MemberStatus.ROLLED_BACK
          || s.status() == MemberStatus.HALTED) {
        failures++;
      }
      String phase = "PENDING";
      if (s.migrationId().isPresent()) {
        String id = s.migrationId().get();
        m.setMigrationId(id);
        Optional<Migration> mig = migrations.apply(id);
        if (mig.isPresent()) {
          phase = mig.get().phase().name();
          m.clearDatabases().addAllDatabases(mig.get().spec().databases()).setTarget(mig.get().spec().target().toString());
          writeGap(mig.get()).ifPresent(g -> m.setWriteGapMs(g.toMillis()));
          mig.get().progress().error().filter(e -> m.getError().isEmpty()).ifPresent(m::setError);
        } else {
          phase = "STARTING";
          campaigns.startError(id).ifPresent(m::setError);
        }
        figures.apply(id).ifPresent(f -> m.setLagBytes(f.lagBytes()));
        campaigns.held(id).ifPresent(m::setHeld);
        if (m.getHeld().isEmpty() && mig.map(x -> x.phase() == Phase.VALIDATED).orElse(false)) {
          // Not the leader (or it has not decided yet): what the windows alone say, from the store, on any replica.
          List<MaintenanceWindow> windows = Campaigns.windowsOf(c.spec(), member);
          if (!windows.isEmpty() && windows.stream().noneMatch(w -> w.isOpen(now))) {
            m.setHeld("campaign " + c.id() + ": outside the member's maintenance windows"
                + opens(windows, now).map(t -> "; the next opens at " + t).orElse(""));
          }
        }
      }
      m.setPhase(phase);
      byPhase.merge(phase, 1, Integer::sum);
      if (s.status() == MemberStatus.PENDING || s.status() == MemberStatus.STARTED && !cutOver(phase)) {
        Optional<Instant> opens = opens(Campaigns.windowsOf(c.spec(), member), now);
        if (opens.isPresent() && (nextWindow.isEmpty() || opens.get().isBefore(nextWindow.get()))) {
          nextWindow = opens;
        }
      }
      b.addMembers(m);
    }
    b.setFailures(failures).putAllMembersByPhase(byPhase);
    nextWindow.ifPresent(t -> b.setNextWindow(timestamp(t)));
    CampaignPolicy.eta(c).ifPresent(eta -> b.setEtaSeconds(eta.toMillis() / 1000.0));
    c.history().forEach(e -> b.addHistory(CampaignEvent.newBuilder().setAt(timestamp(e.at())).setText(e.text())));
    return b.build();
  }

  /** From the drain to the route's ACK on the target: QUIESCING entered to VERIFYING entered. */
  /** Whether a member's migration in {@code phase} has begun its cutover (or is past it): windows no longer matter. */
  private static boolean cutOver(String phase) {
    return !List.of("PENDING", "STARTING", "PLANNED", "PREFLIGHT", "REPLICATING", "VALIDATED").contains(phase);
  }

  /** When one of {@code windows} is open from {@code now} on: {@code now} if one is open; empty without windows. */
  static Optional<Instant> opens(List<MaintenanceWindow> windows, Instant now) {
    if (windows.stream().anyMatch(w -> w.isOpen(now))) {
      return Optional.of(now);
    }
    return windows.stream().map(w -> w.nextOpening(now)).flatMap(Optional::stream).min(Instant::compareTo);
  }

  static Optional<Duration> writeGap(Migration m) {
    Optional<Instant> from = m.history().stream().filter(e -> e.phase() == Phase.QUIESCING).findFirst()
        .map(Migration.Event::at);
    Optional<Instant> to = m.history().stream().filter(e -> e.phase() == Phase.VERIFYING).findFirst()
        .map(Migration.Event::at);
    return from.isPresent() && to.isPresent() ? Optional.of(Duration.between(from.get(), to.get())) : Optional.empty();
  }
}
