package dev.turnout.migrator.campaign;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * What a campaign knows of one member: its wave, its status and, once started, its migration.
 *
 * @param server the member's server key, as in the spec
 * @param run present once the campaign started the member's migration
 * @param reason why it failed, halted, rolled back or was skipped
 */
public record MemberState(String server, int wave, MemberStatus status, Optional<Run> run, Optional<String> reason) {

  /**
   * The member's migration: its id, when the campaign started it and when the campaign saw it finish.
   */
  public record Run(String migrationId, Instant started, Optional<Instant> finished) {
    public Run {
      finished = finished == null ? Optional.empty() : finished;
    }

    /** How long it ran, once finished. */
    public Optional<Duration> took() {
      return finished.map(f -> Duration.between(started, f));
    }
  }

  public MemberState {
    run = run == null ? Optional.empty() : run;
    reason = reason == null ? Optional.empty() : reason;
  }

  static MemberState pending(String server, int wave) {
    return new MemberState(server, wave, MemberStatus.PENDING, Optional.empty(), Optional.empty());
  }

  /** The id of its migration, once started. */
  public Optional<String> migrationId() {
    return run.map(Run::migrationId);
  }

  MemberState started(String migrationId, Instant now) {
    return new MemberState(server, wave, MemberStatus.STARTED,
        Optional.of(new Run(migrationId, now, Optional.empty())), Optional.empty());
  }

  /** A copy in {@code to}; a settled status records when its run finished. */
  MemberState to(MemberStatus to, Instant now, Optional<String> why) {
    Optional<Run> r = run;
    if (to.settled() && r.isPresent() && r.get().finished().isEmpty()) {
      r = Optional.of(new Run(r.get().migrationId(), r.get().started(), Optional.of(now)));
    }
    return new MemberState(server, wave, to, r, why);
  }

  @Override
  public String toString() {
    return server + run.map(r -> " (migration " + r.migrationId() + ")").orElse("");
  }
}
