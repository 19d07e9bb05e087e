package dev.turnout.controlplane.cli;

import io.grpc.ManagedChannel;
import java.io.PrintStream;
import java.util.List;
import java.util.ServiceLoader;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Unmatched;

/**
 * The {@code turnout} command line: one jar for the server and the operators' tools. Commands that come in a jar of
 * their own (the demo, in turnout-demo.jar) are found with {@link ServiceLoader} as {@link Extension}s.
 */
@Command(name = "turnout", mixinStandardHelpOptions = true, version = "turnout 0.1.0",
    description = "Owns how applications reach their PostgreSQL databases.",
    subcommands = {ServerCommand.class, SidecarCommand.class, MigrateCommand.class, CampaignCommand.class,
        RouteCommand.class, RoutesCommand.Routes.class,
        RoutesCommand.Nodes.class, AuditCommand.class, BootstrapCommand.class})
public final class Turnout {

  /**
   * A picocli command in a jar of its own, added under its {@code @Command} name when its jar is on the class path
   * (listed in its {@code META-INF/services}; public, with a public constructor taking nothing).
   */
  public interface Extension extends Callable<Integer> {}

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
    ServiceLoader.load(Extension.class, Turnout.class.getClassLoader()).forEach(cli::addSubcommand);
    if (!cli.getSubcommands().containsKey("demo")) {
      cli.addSubcommand(new DemoNotInstalled());
    }
    cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
      cmd.getErr().println("turnout: " + e.getMessage());
      return 1;
    });
    return cli.execute(args);
  }

  /**
   * What {@code turnout migrate watch} prints, for an extension that follows a migration (the demo): the history
   * as it grows, a live line on a terminal. Exit code: 0 when COMPLETED or FINALIZED, 3 when ROLLED_BACK or HALTED.
   */
  public static int watch(ManagedChannel admin, String migrationId, PrintStream out) {
    return MigrateCommand.Watch.follow(admin, migrationId, out);
  }

  /** {@code turnout demo} where turnout-demo.jar is not installed: says where the demo is, whatever it was given. */
  @Command(name = "demo", description = "Run a live migration on this machine (not installed: needs turnout-demo.jar).")
  static final class DemoNotInstalled implements Callable<Integer> {
    @Unmatched List<String> ignored;

    @Override
    public Integer call() {
      System.err.println("turnout: the demo is not installed: put turnout-demo.jar (module demo) beside turnout.jar,"
          + " whose manifest names it; or run ./turnout demo in the source tree");
      return 1;
    }
  }
}
