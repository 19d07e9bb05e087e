package dev.turnout.migrator.campaign;

/** Something the control plane must do for a campaign, as {@link CampaignPolicy#decide} asks. */
public sealed interface Action permits Action.Start, Action.RollBack {

  /**
   * Start the migration of {@code member} under the id {@code migrationId}. Idempotent by that id: the policy asks
   * again while it sees no migration of that id (the control plane may have crashed between saving the campaign
   * and starting it), so a migration that exists already is left alone.
   */
  record Start(String migrationId, Member member) implements Action {}

  /** Roll back the migration {@code migrationId} of {@code server} (an abort, before its promotion). */
  record RollBack(String migrationId, String server) implements Action {}
}
