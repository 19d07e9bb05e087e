package dev.turnout.controlplane.cli;

import com.google.protobuf.util.JsonFormat;
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
      description = {"Per database: its endpoint and version, and per node what it was sent and has ACKed.",
          "With --history DATABASE: its route changes, newest first, with who made each by hand, why and when."})
  static final class Routes implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Option(names = "--node", paramLabel = "ID", description = "Only this node") String node;
    @Option(names = "--json", description = "The snapshot (or the history) as JSON") boolean json;
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
        RoutingSnapshot snapshot = AdminOptions.stub(channel).getRoutingSnapshot(GetRoutingSnapshotRequest.newBuilder()
            .setNode(node == null ? "" : node).build());
        if (json) {
          System.out.println(JsonFormat.printer().print(snapshot));
          return 0;
        }
        System.out.println("routing table version " + snapshot.getVersion());
        for (var d : snapshot.getDatabasesList()) {
          var db = d.getDatabase();
          System.out.printf("%s (port %d): %s%s at version %d%n", db.getName(), db.getListenPort(),
              db.getEndpoint().isEmpty() ? "(drained)" : db.getEndpoint(),
              db.getHostname().isEmpty() ? "" : " (" + db.getHostname() + ")", db.getEndpointVersion());
          if (!db.getUnresolved().isEmpty()) {
            System.out.println("  UNRESOLVED: " + db.getUnresolved());
          }
          for (var n : d.getNodesList()) {
            System.out.printf("  %-24s %-14s %-12s sent %-6d acked %-6d %s%s%n", n.getNodeId(), n.getCluster(),
                n.getConnected() ? "connected" : "gone", n.getSentVersion(), n.getAckedVersion(),
                n.getCurrent() ? "current" : "BEHIND", n.getNackError().isEmpty() ? "" : "  NACK: " + n.getNackError());
          }
        }
        if (!snapshot.getReplica().isEmpty()) {
          System.out.println("nodes above: those on replica " + snapshot.getReplica() + "; every replica's sidecars:");
          for (var r : snapshot.getReplicaReportsList()) {
            System.out.printf("  %-16s %-5s %s at version %d: %s%n", r.getReplica(), r.getLive() ? "live" : "gone",
                r.getDatabase(), r.getVersion(), !r.getFailure().isEmpty() ? "FAILED: " + r.getFailure()
                    : r.getAckedByCount() == 0 ? "no sidecar" : "acked by " + String.join(", ", r.getAckedByList()));
          }
        }
        return 0;
      });
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
              .append('/').append(t.getSentVersion()).append(t.getNackError().isEmpty() ? "" : " NACK: " + t.getNackError()));
          System.out.printf("%-24s %-14s %-10s%s%s%n", n.getId(), n.getCluster(), n.getConnected() ? "connected" : "gone",
              n.getReplica().isEmpty() ? "" : String.format("%-14s", " on " + n.getReplica()), types);
        }
        return 0;
      });
    }
  }
}
