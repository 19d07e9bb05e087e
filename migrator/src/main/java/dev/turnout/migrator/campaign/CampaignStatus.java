package dev.turnout.migrator.campaign;

/** Where a campaign is. Only the policy's {@code decide} and the operator's commands move it. */
public enum CampaignStatus {
  /** Members of the current wave start as the limits allow. */
  RUNNING,
  /** The canary finished: nothing more starts until an operator approves. */
  WAITING_APPROVAL,
  /** A wave (or the canary) finished: the next starts at {@code until}, unless something stops the campaign first. */
  BAKING,
  /** Paused by an operator: nothing new starts; running members go on, cutting over in their windows. */
  PAUSED,
  /**
   * A member halted, or the failures reached the limit ({@code reason} says which): nothing new starts until an
   * operator resumes the campaign or aborts it; running members go on by their own rules.
   */
  HALTED,
  /** Aborted by an operator: running members not yet promoted roll back, promoted ones finish, the rest never start. */
  ABORTING,
  /** Aborted, and nothing runs any more. */
  ABORTED,
  /** Every member finished. */
  COMPLETED;

  public boolean isTerminal() {
    return this == ABORTED || this == COMPLETED;
  }
}
