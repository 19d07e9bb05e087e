package dev.turnout.controlplane.console;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.Campaign;
import dev.turnout.admin.v1.CampaignId;
import dev.turnout.admin.v1.CampaignMember;
import dev.turnout.admin.v1.Database;
import dev.turnout.admin.v1.DatabaseRouting;
import dev.turnout.admin.v1.GetMigrationRequest;
import dev.turnout.admin.v1.GetRoutingSnapshotRequest;
import dev.turnout.admin.v1.ListCampaignsRequest;
import dev.turnout.admin.v1.ListCampaignsResponse;
import dev.turnout.admin.v1.ListDatabasesRequest;
import dev.turnout.admin.v1.ListMigrationsRequest;
import dev.turnout.admin.v1.ListMigrationsResponse;
import dev.turnout.admin.v1.ListNodesRequest;
import dev.turnout.admin.v1.Migration;
import dev.turnout.admin.v1.Node;
import dev.turnout.admin.v1.RoutingSnapshot;
import dev.turnout.admin.v1.TypeStatus;
import dev.turnout.migrator.Phase;
import io.grpc.Status;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What each page shows, read from the admin service (the same answers {@code turnout routes}, {@code nodes},
 * {@code migrate status} and {@code campaign status} print) and shaped for one page: these records are also the
 * JSON of {@code /v1/fleet} and {@code /v1/nodes}.
 */
final class Views {
  static final int FLEET_PAGE = 50;
  static final int NODES_PAGE = 100;
  private static final ObjectMapper JSON = new ObjectMapper().disable(SerializationFeature.FAIL_ON_EMPTY_BEANS)
      .registerModule(new com.fasterxml.jackson.datatype.jdk8.Jdk8Module());

  private final AdminGrpc.AdminBlockingStub admin;
  private final Series series;
  private final String replica;
  private final Clock clock;

  Views(AdminGrpc.AdminBlockingStub admin, Series series, String replica, Clock clock) {
    this.admin = admin;
    this.series = series;
    this.replica = replica;
    this.clock = clock;
  }

  static String write(Object o) {
    try {
      return JSON.writeValueAsString(o) + "\n";
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Sidecars of one database by state, and the state of the database as {@code istioctl proxy-status} says it. */
  record Acks(int current, int behind, int nacked, int gone, String status, String firstNackError) {
    static Acks of(DatabaseRouting d) {
      int connected = d.getNodesCurrent() + d.getNodesBehind() + d.getNodesNacked();
      String status = d.getNodesNacked() > 0 ? "NACKED" : d.getNodesBehind() > 0 ? "STALE"
          : connected == 0 ? "NO SIDECARS" : "SYNCED";
      String error = d.getNodesList().stream().map(n -> n.getNackError()).filter(e -> !e.isEmpty()).findFirst()
          .orElse("");
      return new Acks(d.getNodesCurrent(), d.getNodesBehind(), d.getNodesNacked(), d.getNodesGone(), status, error);
    }

    int connected() {
      return current + behind + nacked;
    }
  }

  record MigrationRef(String id, String phase) {}

  record CampaignRef(String id, String name, int wave, String status) {}

  record FleetRow(String name, String endpoint, long version, String unresolved, Acks acks, MigrationRef migration,
      CampaignRef campaign) {}

  record Fleet(String replica, String at, long version, int databases, int matching, int page, int pages,
      String q, String status, List<FleetRow> rows, Map<String, Integer> byStatus) {}

  /**
   * One page of the fleet: the databases whose name or endpoint contains {@code q} (and, when {@code status} is
   * set, in that state), with their sidecars' ACKs, active migration and campaign wave. Only the page's databases
   * are counted against every sidecar unless a status is asked for: 1,000 databases and 5,000 sidecars cost 50
   * summaries a poll, not 1,000.
   */
  Fleet fleet(String q, String status, int page, int pageSize) {
    if (pageSize < 1 || pageSize > 1000) {
      throw Status.INVALID_ARGUMENT.withDescription("page_size " + pageSize + " is not within 1..1000")
          .asRuntimeException();
    }
    String needle = q.toLowerCase(Locale.ROOT).strip();
    String wanted = status.toUpperCase(Locale.ROOT).strip();
    List<Database> all = admin.listDatabases(ListDatabasesRequest.getDefaultInstance()).getDatabasesList();
    List<Database> matching = new ArrayList<>();
    for (Database d : all) {
      if (needle.isEmpty() || d.getName().toLowerCase(Locale.ROOT).contains(needle)
          || d.getEndpoint().contains(needle)) {
        matching.add(d);
      }
    }
    matching.sort((a, b) -> a.getName().compareTo(b.getName()));
    Map<String, MigrationRef> migrations = activeMigrations();
    Map<String, CampaignRef> campaigns = campaignWaves();
    Map<String, Acks> acks = new HashMap<>();
    Map<String, Integer> byStatus = new java.util.TreeMap<>();
    RoutingSnapshot snapshot = null;
    if (!wanted.isEmpty()) {
      // Filtering by state needs every database's count: one summary of them all.
      snapshot = admin.getRoutingSnapshot(GetRoutingSnapshotRequest.newBuilder().setWithoutReplicaReports(true)
          .build());
      for (DatabaseRouting d : snapshot.getDatabasesList()) {
        acks.put(d.getDatabase().getName(), Acks.of(d));
      }
      List<Database> kept = new ArrayList<>();
      for (Database d : matching) {
        Acks a = acks.get(d.getName());
        String s = a == null ? "" : a.status();
        boolean migrating = migrations.containsKey(d.getName());
        if (s.equals(wanted) || (wanted.equals("MIGRATING") && migrating)) {
          kept.add(d);
        }
      }
      matching = kept;
    }
    int pages = Math.max(1, (matching.size() + pageSize - 1) / pageSize);
    int p = Math.min(Math.max(1, page), pages);
    List<FleetRow> rows = new ArrayList<>();
    long routingVersion = snapshot != null ? snapshot.getVersion() : 0;
    for (Database d : matching.subList((p - 1) * pageSize, Math.min(matching.size(), p * pageSize))) {
      Acks a = acks.get(d.getName());
      long version = d.getEndpointVersion();
      if (a == null) {
        RoutingSnapshot one = admin.getRoutingSnapshot(GetRoutingSnapshotRequest.newBuilder()
            .setDatabase(d.getName()).setWithoutReplicaReports(true).build());
        if (one.getDatabasesCount() == 0) {
          continue; // removed meanwhile
        }
        a = Acks.of(one.getDatabases(0));
        routingVersion = Math.max(routingVersion, one.getVersion());
        version = one.getDatabases(0).getDatabase().getEndpointVersion();
      }
      byStatus.merge(a.status(), 1, Integer::sum);
      rows.add(new FleetRow(d.getName(), d.getEndpoint().isEmpty() ? "(drained)" : d.getEndpoint(), version,
          d.getUnresolved(), a, migrations.get(d.getName()), campaigns.get(d.getName())));
    }
    if (routingVersion == 0) {
      routingVersion = all.stream().mapToLong(Database::getEndpointVersion).max().orElse(0);
    }
    return new Fleet(replica, Html.time(clock.instant()), routingVersion, all.size(), matching.size(), p, pages, q,
        wanted, rows, byStatus);
  }

  /** The unsettled migration of each database it moves (co-tenants included). */
  private Map<String, MigrationRef> activeMigrations() {
    Map<String, MigrationRef> active = new HashMap<>();
    for (Migration m : admin.listMigrations(ListMigrationsRequest.getDefaultInstance()).getMigrationsList()) {
      Phase phase = phase(m.getPhase());
      if (phase == null || phase.isTerminal()) {
        continue;
      }
      MigrationRef ref = new MigrationRef(m.getId(), m.getPhase());
      active.put(m.getDatabase(), ref);
      m.getDatabasesList().forEach(d -> active.put(d, ref));
    }
    return active;
  }

  /** The wave of each database in an unfinished campaign. */
  private Map<String, CampaignRef> campaignWaves() {
    Map<String, CampaignRef> waves = new HashMap<>();
    for (Campaign c : admin.listCampaigns(ListCampaignsRequest.getDefaultInstance()).getCampaignsList()) {
      if (c.getStatus().equals("COMPLETED") || c.getStatus().equals("ABORTED")) {
        continue;
      }
      for (CampaignMember m : c.getMembersList()) {
        CampaignRef ref = new CampaignRef(c.getId(), c.getName(), m.getWave(), m.getStatus());
        m.getDatabasesList().forEach(d -> waves.put(d, ref));
      }
    }
    return waves;
  }

  static Phase phase(String name) {
    try {
      return Phase.valueOf(name);
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  record TypeRow(String type, long sent, long acked, String nackError, long nackedVersion) {}

  record NodeRow(String id, String service, String replica, boolean connected, String status, List<TypeRow> types,
      String lastNack) {}

  record Nodes(String replica, String at, int total, int matching, int page, int pages, String q, String state,
      Map<String, Integer> byStatus, List<NodeRow> rows) {}

  /** Every sidecar (of every replica), filtered by id or service and by state, a page at a time. */
  Nodes nodes(String q, String state, int page) {
    String needle = q.toLowerCase(Locale.ROOT).strip();
    String wanted = state.toUpperCase(Locale.ROOT).strip();
    List<Node> all = admin.listNodes(ListNodesRequest.getDefaultInstance()).getNodesList();
    List<NodeRow> matching = new ArrayList<>();
    Map<String, Integer> byStatus = new java.util.TreeMap<>();
    for (Node n : all) {
      NodeRow row = row(n);
      byStatus.merge(row.status(), 1, Integer::sum);
      if ((needle.isEmpty() || n.getId().toLowerCase(Locale.ROOT).contains(needle)
          || n.getCluster().toLowerCase(Locale.ROOT).contains(needle))
          && (wanted.isEmpty() || row.status().equals(wanted))) {
        matching.add(row);
      }
    }
    matching.sort((a, b) -> a.id().compareTo(b.id()));
    int pages = Math.max(1, (matching.size() + NODES_PAGE - 1) / NODES_PAGE);
    int p = Math.min(Math.max(1, page), pages);
    return new Nodes(replica, Html.time(clock.instant()), all.size(), matching.size(), p, pages, q, wanted, byStatus,
        matching.subList((p - 1) * NODES_PAGE, Math.min(matching.size(), p * NODES_PAGE)));
  }

  /** A sidecar's state as {@code istioctl proxy-status} says it: NACKED, STALE, SYNCED, or DISCONNECTED. */
  private static NodeRow row(Node n) {
    String status = "SYNCED";
    String lastNack = "";
    List<TypeRow> types = new ArrayList<>();
    for (TypeStatus t : n.getTypesList()) {
      types.add(new TypeRow(t.getType(), t.getSentVersion(), t.getAckedVersion(), t.getNackError(),
          t.getNackedVersion()));
      if (!t.getNackError().isEmpty()) {
        lastNack = t.getType() + ": " + t.getNackError();
      }
      boolean nacked = !t.getNackError().isEmpty() && t.getNackedVersion() > t.getAckedVersion();
      if (nacked) {
        status = "NACKED";
      } else if (t.getAckedVersion() < t.getSentVersion() && !status.equals("NACKED")) {
        status = "STALE";
      }
    }
    if (!n.getConnected()) {
      status = "DISCONNECTED";
    }
    return new NodeRow(n.getId(), n.getCluster(), n.getReplica().isEmpty() ? "" : n.getReplica(), n.getConnected(),
        status, types, lastNack);
  }

  ListMigrationsResponse listMigrations() {
    return admin.listMigrations(ListMigrationsRequest.getDefaultInstance());
  }

  List<Migration> migrations(String q) {
    String needle = q.toLowerCase(Locale.ROOT).strip();
    List<Migration> list = new ArrayList<>();
    for (Migration m : listMigrations().getMigrationsList()) {
      if (needle.isEmpty() || m.getId().contains(needle) || m.getDatabasesList().stream()
          .anyMatch(d -> d.toLowerCase(Locale.ROOT).contains(needle))) {
        list.add(m);
      }
    }
    java.util.Collections.reverse(list); // newest first
    return list;
  }

  Migration getMigration(String id) {
    return admin.getMigration(GetMigrationRequest.newBuilder().setId(id).build());
  }

  record MigrationPage(Migration migration, List<Series.Point> points, Instant now) {}

  MigrationPage migration(String id) {
    return new MigrationPage(getMigration(id), series.of(id), clock.instant());
  }

  ListCampaignsResponse listCampaigns() {
    return admin.listCampaigns(ListCampaignsRequest.getDefaultInstance());
  }

  List<Campaign> campaigns() {
    return listCampaigns().getCampaignsList();
  }

  Campaign getCampaign(String id) {
    return admin.getCampaign(CampaignId.newBuilder().setId(id).build());
  }

  Campaign campaign(String id) {
    return getCampaign(id);
  }

  String replica() {
    return replica;
  }
}
