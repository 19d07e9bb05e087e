package dev.turnout.migrator.campaign;

/** Where a member of a campaign is, as the campaign sees its migration. */
public enum MemberStatus {
  /** Not started: waiting for its wave, a free slot, or its host's. */
  PENDING,
  /** Its migration runs (replicating, waiting VALIDATED for a window, cutting over, or rolling back by its own rules). */
  STARTED,
  /**
   * Its migration halted for an operator: a failure, and it stops the campaign. It goes back to STARTED if the
   * operator resumes the migration.
   */
  HALTED,
  /** The campaign was aborted before this member's promotion: its migration was asked to roll back. */
  ROLLING_BACK,
  /** Its migration completed (or was finalized). */
  SUCCEEDED,
  /** Its migration rolled back by its own rules: a failure. */
  FAILED,
  /** Rolled back because the campaign was aborted (not a failure). */
  ROLLED_BACK,
  /** Never started: the campaign was aborted first. */
  SKIPPED;

  /** Whether it occupies a slot: started and not finished. */
  public boolean running() {
    return this == STARTED || this == HALTED || this == ROLLING_BACK;
  }

  /** Whether the campaign has nothing more to do for it. */
  public boolean settled() {
    return this == SUCCEEDED || this == FAILED || this == ROLLED_BACK || this == SKIPPED;
  }

  /** Whether it counts toward the campaign's failure limit. */
  public boolean failure() {
    return this == FAILED || this == HALTED;
  }
}
