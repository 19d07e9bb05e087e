package dev.turnout.controlplane.cli;

import com.google.protobuf.util.JsonFormat;
import dev.turnout.controlplane.Printable;
import dev.turnout.admin.v1.GetRouteHistoryRequest;
import dev.turnout.admin.v1.GetRoutingSnapshotRequest;
import dev.turnout.admin.v1.ListNodesRequest;
import dev.turnout.admin.v1.Node;
import dev.turnout.admin.v1.RouteChange;
import dev.turnout.admin.v1.RouteHistory;
import dev.turnout.admin.v1.RoutingSnapshot;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code turnout routes} and {@code turnout nodes}: what every sidecar routes to, and what it has ACKed. */
final class RoutesCommand {
  private RoutesCommand() {}

  @Command(name = "routes", mixinStandardHelpOptions = true,
      description = {"Per database: its endpoint and version, and how many sidecars are current, behind, NACKing"
          + " or gone, naming the first few that are not current.",
          "--all, or any of --node/--service/--state, lists every matching sidecar instead.",
          "With --history DATABASE: its route changes, newest first, with who made each by hand, why and when."})
  static final class Routes implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Option(names = "--node", paramLabel = "ID", description = "Only this node") String node;
    @Option(names = "--database", paramLabel = "NAME", description = "Only this database") String database;
    @Option(names = "--service", paramLabel = "NAME", description = "Only sidecars of this service (node.cluster)")
    String service;
    @Option(names = "--state", paramLabel = "STATE", description = "Only sidecars that are behind or nacked")
    String state;
    @Option(names = "--all", description = "List every sidecar, not only the first few that are not current")
    boolean all;
    @Option(names = "--json", description = "The snapshot (or the history) as JSON; with --all, one page per object")
    boolean json;
    @Option(names = "--history", paramLabel = "DATABASE", description = "The database's route changes instead")
    String history;
    @Option(names = "--limit", paramLabel = "N", description = "With --history: at most N changes (default 20, at most 100)")
    int limit;
    @Option(names = "--before", paramLabel = "VERSION", description = "With --history: only changes older than VERSION")
    long before;

    @Override
    public Integer call() throws Exception {
      if (history != null) {
        return admin.call("routes --history", this::history);
      }
      return admin.call("routes", channel -> {
        GetRoutingSnapshotRequest.Builder request = GetRoutingSnapshotRequest.newBuilder()
            .setNode(orEmpty(node)).setDatabase(orEmpty(database)).setService(orEmpty(service))
            .setState(orEmpty(state)).setAllNodes(all);
        boolean listing = all || node != null || service != null || state != null;
        boolean first = true;
        // Page by page, printed as each arrives: tens of thousands of sidecars never make one huge message.
        do {
          RoutingSnapshot snapshot = AdminOptions.stub(channel).getRoutingSnapshot(request.build());
          if (json) {
            System.out.println(JsonFormat.printer().print(snapshot));
          } else {
            print(snapshot, listing, first);
          }
          first = false;
          request.setPageToken(snapshot.getNextPageToken());
        } while (!request.getPageToken().isEmpty());
        return 0;
      });
    }

    private static String orEmpty(String s) {
      return s == null ? "" : s;
    }

    private static void print(RoutingSnapshot snapshot, boolean listing, boolean first) {
      if (first) {
        System.out.println("routing table version " + snapshot.getVersion());
      }
      for (var d : snapshot.getDatabasesList()) {
        var db = d.getDatabase();
        if (!first && d.getNodesCount() == 0) {
          continue; // a later page: only the databases whose sidecars it lists
        }
        if (first) {
          System.out.printf("%s (port %d): %s%s at version %d: %d current, %d behind, %d NACKing, %d gone%n",
              db.getName(), db.getListenPort(), db.getEndpoint().isEmpty() ? "(drained)" : db.getEndpoint(),
              db.getHostname().isEmpty() ? "" : " (" + db.getHostname() + ")", db.getEndpointVersion(),
              d.getNodesCurrent(), d.getNodesBehind(), d.getNodesNacked(), d.getNodesGone());
          if (!db.getUnresolved().isEmpty()) {
            System.out.println("  UNRESOLVED: " + Printable.of(db.getUnresolved()));
          }
        } else {
          System.out.println(db.getName() + " (continued)");
        }
        for (var n : d.getNodesList()) {
          System.out.printf("  %-24s %-14s %-12s sent %-6d acked %-6d %s%s%n", Printable.of(n.getNodeId()),
              Printable.of(n.getCluster()), n.getConnected() ? "connected" : "gone", n.getSentVersion(),
              n.getAckedVersion(), n.getCurrent() ? "current" : "BEHIND",
              n.getNackError().isEmpty() ? "" : "  NACK: " + Printable.of(n.getNackError()));
        }
        int notCurrent = d.getNodesBehind() + d.getNodesNacked();
        if (!listing && notCurrent > d.getNodesCount()) {
          System.out.printf("  ... and %d more not current: turnout routes --database %s --state behind|nacked%n",
              notCurrent - d.getNodesCount(), db.getName());
        }
      }
      if (first && !snapshot.getReplica().isEmpty()) {
        System.out.println("nodes above: those on replica " + snapshot.getReplica() + "; every replica's sidecars:");
        for (var r : snapshot.getReplicaReportsList()) {
          String acked = r.getAckedTotal() == 0 ? "no sidecar" : "acked by " + String.join(", ",
              r.getAckedByList().stream().map(Printable::of).toList())
              + (r.getAckedTotal() > r.getAckedByCount() ? " and " + (r.getAckedTotal() - r.getAckedByCount())
                  + " more" : "");
          System.out.printf("  %-16s %-5s %s at version %d: %s%n", r.getReplica(), r.getLive() ? "live" : "gone",
              r.getDatabase(), r.getVersion(), !r.getFailure().isEmpty() ? "FAILED: " + Printable.of(r.getFailure())
                  : acked);
        }
      }
    }

    private int history(ManagedChannel channel) throws Exception {
      RouteHistory page = AdminOptions.stub(channel).getRouteHistory(GetRouteHistoryRequest.newBuilder()
          .setDatabase(history).setPageSize(limit).setBeforeVersion(before).build());
      if (json) {
        System.out.println(JsonFormat.printer().print(page));
        return 0;
      }
      System.out.println("route history of database '" + page.getDatabase() + "', newest first:");
      System.out.printf("%-8s %-20s %-24s %-7s %-24s %s%n", "VERSION", "WHEN", "ENDPOINT", "CAUSE", "BY", "REASON");
      for (RouteChange c : page.getChangesList()) {
        System.out.printf("%-8d %-20s %-24s %-7s %-24s %s%n", c.getVersion(),
            c.hasAt() ? WHEN.format(java.time.Instant.ofEpochSecond(c.getAt().getSeconds())) : "-",
            (c.getEndpoint().isEmpty() ? "(drained)" : c.getEndpoint())
                + (c.getHostname().isEmpty() ? "" : " (" + c.getHostname() + ")"),
            c.getCause(), c.getBy().isEmpty() ? "turnout" : c.getBy(), c.getReason());
      }
      if (page.getNextBeforeVersion() != 0) {
        System.out.println("older: turnout routes --history " + page.getDatabase() + " --before "
            + page.getNextBeforeVersion());
      }
      return 0;
    }
  }

  private static final java.time.format.DateTimeFormatter WHEN =
      java.time.format.DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss'Z'").withZone(java.time.ZoneOffset.UTC);

  @Command(name = "nodes", mixinStandardHelpOptions = true,
      description = "Every sidecar seen since the start (with several replicas: on every replica, and which).")
  static final class Nodes implements Callable<Integer> {
    @Mixin AdminOptions admin;

    @Override
    public Integer call() throws Exception {
      return admin.call("nodes", channel -> {
        for (Node n : AdminOptions.stub(channel).listNodes(ListNodesRequest.getDefaultInstance()).getNodesList()) {
          StringBuilder types = new StringBuilder();
          n.getTypesList().forEach(t -> types.append(' ').append(t.getType()).append(' ').append(t.getAckedVersion())
              .append('/').append(t.getSentVersion())
              .append(t.getNackError().isEmpty() ? "" : " NACK: " + Printable.of(t.getNackError())));
          System.out.printf("%-24s %-14s %-10s%s%s%n", Printable.of(n.getId()), Printable.of(n.getCluster()),
              n.getConnected() ? "connected" : "gone",
              n.getReplica().isEmpty() ? "" : String.format("%-14s", " on " + n.getReplica()), types);
        }
        return 0;
      });
    }
  }
}
