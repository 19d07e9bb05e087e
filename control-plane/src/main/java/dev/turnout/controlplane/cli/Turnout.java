package dev.turnout.controlplane.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code turnout} command line: one jar for the server and the operators' tools. */
@Command(name = "turnout", mixinStandardHelpOptions = true, version = "turnout 0.1.0",
    description = "Owns how applications reach their PostgreSQL databases.",
    subcommands = {ServerCommand.class, DemoCommand.class, SidecarCommand.class, MigrateCommand.class, RouteCommand.class, RoutesCommand.Routes.class,
        RoutesCommand.Nodes.class, AuditCommand.class, BootstrapCommand.class})
public final class Turnout {

  public static void main(String[] args) {
    if (args.length > 0 && args[0].equals("demo")) {
      // The demo's live view is the story; the components' INFO lines would bury it.
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    }
    System.exit(run(args));
  }

  /** Runs a command line and returns its exit code (2 for bad usage or configuration). */
  public static int run(String... args) {
    CommandLine cli = new CommandLine(new Turnout());
    cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
      cmd.getErr().println("turnout: " + e.getMessage());
      return 1;
    });
    return cli.execute(args);
  }
}
