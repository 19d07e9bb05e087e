package dev.turnout.controlplane.cli;

import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.Drain;
import dev.turnout.admin.v1.SetRouteRequest;
import dev.turnout.admin.v1.SetRouteResponse;
import io.grpc.ManagedChannel;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code turnout route set|drain}: an operator moves a database's route by hand, for an emergency a migration does
 * not cover (a failover made outside Turnout, a replaced host). Exit 0 when every sidecar ACKed, 3 when the change
 * was made but some did not, 2 when it was refused (nothing changed), 1 otherwise.
 */
@Command(name = "route", mixinStandardHelpOptions = true,
    description = "Move a database's route by hand (refused while a migration of it is unfinished).",
    subcommands = {RouteCommand.Set.class, RouteCommand.DrainCmd.class})
final class RouteCommand {

  /** What both subcommands take besides the database. */
  static final class Change {
    @Option(names = "--reason", required = true, paramLabel = "TEXT",
        description = "Why (required): recorded with the change, with who made it and when") String reason;
    @Option(names = "--expect-current", paramLabel = "HOST:PORT",
        description = "Change only if the database is routed here now (nothing changes otherwise)") String expected;
  }

  @Command(name = "set", mixinStandardHelpOptions = true,
      description = "Route DATABASE to HOST:PORT and wait for every sidecar's ACK.")
  static final class Set implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Mixin Change change;
    @Parameters(index = "0", paramLabel = "DATABASE") String database;
    @Parameters(index = "1", paramLabel = "HOST:PORT") String endpoint;

    @Override
    public Integer call() throws Exception {
      return send(admin, "route set", request(database, change).setEndpoint(endpoint).build());
    }
  }

  @Command(name = "drain", mixinStandardHelpOptions = true,
      description = "Drain DATABASE: sidecars open no new connections (the built-in one holds them) until a route is set.")
  static final class DrainCmd implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Mixin Change change;
    @Parameters(index = "0", paramLabel = "DATABASE") String database;

    @Override
    public Integer call() throws Exception {
      return send(admin, "route drain", request(database, change).setDrain(Drain.getDefaultInstance()).build());
    }
  }

  private static SetRouteRequest.Builder request(String database, Change change) {
    return SetRouteRequest.newBuilder().setDatabase(database).setReason(change.reason)
        .setExpectedCurrent(change.expected == null ? "" : change.expected);
  }

  private static int send(AdminOptions admin, String command, SetRouteRequest request) throws Exception {
    return admin.call(command, channel -> print(stub(channel).setRoute(request)));
  }

  /** The answer waits for the sidecars' ACKs, which may take the control plane's whole ACK timeout and more. */
  private static AdminGrpc.AdminBlockingStub stub(ManagedChannel channel) {
    return AdminGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.MINUTES);
  }

  private static String describe(String endpoint) {
    return endpoint.isEmpty() ? "(drained)" : endpoint;
  }

  private static int print(SetRouteResponse r) {
    if (r.getChanged()) {
      System.out.println("database '" + r.getDatabase() + "': " + describe(r.getPrevious()) + " -> "
          + describe(r.getCurrent()) + " at version " + r.getVersion() + ", recorded as made by " + r.getBy());
    } else {
      System.out.println("database '" + r.getDatabase() + "' is " + (r.getCurrent().isEmpty() ? "drained"
          : "routed to " + r.getCurrent()) + " already (version " + r.getVersion() + "): nothing recorded");
    }
    System.out.println((r.getAcknowledged() ? "acknowledged by every subscribed sidecar: " : "ACKed by: ")
        + (r.getAckedByCount() == 0 ? "(none)" : String.join(", ", r.getAckedByList())));
    if (r.getAcknowledged()) {
      return 0;
    }
    System.out.println("NOT acknowledged by every subscribed sidecar: " + r.getFailure());
    for (var s : r.getStragglersList()) {
      System.out.printf("  straggler %-24s %-14s at version %-6d %s%n", s.getNodeId(), s.getCluster(),
          s.getAckedVersion(), s.getNackError().isEmpty() ? "no ACK" : "NACK: " + s.getNackError());
    }
    return 3;
  }
}
