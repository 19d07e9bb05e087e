package dev.turnout.controlplane.store;

import dev.turnout.migrator.campaign.Campaign;
import java.util.List;

/**
 * The campaigns, durable: every change of a campaign is saved before the leader acts on it. Saves are
 * compare-and-set on {@link Campaign#revision}, as the migrations' are.
 */
public interface CampaignStore {

  /**
   * Saves {@code campaign} if the store still holds the revision it was read at (0: not saved yet), and returns it
   * at its new revision. {@link StaleCampaignException} when another writer saved it since; a replica that no
   * longer leads cannot save.
   */
  Campaign save(Campaign campaign) throws StoreException;

  List<Campaign> loadAll() throws StoreException;

  /** Another writer saved the campaign since it was read: nothing was written. */
  final class StaleCampaignException extends StoreException {
    private static final long serialVersionUID = 1L;

    public StaleCampaignException(Campaign campaign, long held) {
      super("campaign " + campaign.id() + " was saved by another writer since it was read (revision " + held
          + ", read at " + campaign.revision() + "): nothing written; read it again");
    }
  }
}
