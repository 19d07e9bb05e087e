package dev.turnout.controlplane.store;

import dev.turnout.migrator.campaign.Campaign;
import java.io.IOException;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * The campaigns in the shared store, one row of {@code turnout.campaigns} each: written only by the leader (its
 * epoch checked in the writing transaction, as the migrations' are), compare-and-set on the revision.
 */
public final class PostgresCampaignStore implements CampaignStore {
  private final StoreConnection db;

  PostgresCampaignStore(StoreConnection db) {
    this.db = db;
  }

  @Override
  public Campaign save(Campaign campaign) throws StoreException {
    Campaign saved = campaign.atRevision(campaign.revision() + 1);
    String body;
    try {
      body = FileMigrationStore.JSON.writeValueAsString(saved);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
    db.inTransaction("save campaign " + campaign.id(), c -> {
      db.requireLeadership(c);
      try (PreparedStatement ps = c.prepareStatement(campaign.revision() == 0
          ? "insert into turnout.campaigns (name, status, epoch, revision, body, id) values (?, ?, ?, ?, ?::jsonb, ?)"
              + " on conflict (id) do nothing"
          : "update turnout.campaigns set name = ?, status = ?, epoch = ?, revision = ?, body = ?::jsonb,"
              + " updated_at = now() where id = ? and revision = ?")) {
        ps.setString(1, saved.spec().name());
        ps.setString(2, saved.state().status().name());
        ps.setLong(3, db.epoch());
        ps.setLong(4, saved.revision());
        ps.setString(5, body);
        ps.setString(6, saved.id());
        if (campaign.revision() != 0) {
          ps.setLong(7, campaign.revision());
        }
        if (ps.executeUpdate() == 1) {
          return null;
        }
      }
      try (PreparedStatement ps = c.prepareStatement("select revision from turnout.campaigns where id = ?")) {
        ps.setString(1, campaign.id());
        try (ResultSet rs = ps.executeQuery()) {
          throw new StaleCampaignException(campaign, rs.next() ? rs.getLong(1) : 0);
        }
      }
    });
    return saved;
  }

  @Override
  public List<Campaign> loadAll() throws StoreException {
    return db.inTransaction("read the campaigns", c -> {
      List<Campaign> result = new ArrayList<>();
      try (Statement s = c.createStatement();
           ResultSet rs = s.executeQuery("select body::text, revision from turnout.campaigns order by id")) {
        while (rs.next()) {
          result.add(FileMigrationStore.JSON.readValue(rs.getString(1), Campaign.class).atRevision(rs.getLong(2)));
        }
      } catch (IOException e) {
        throw new StoreException("a campaign in the store is not readable: " + e.getMessage(), e);
      }
      return result;
    });
  }
}
