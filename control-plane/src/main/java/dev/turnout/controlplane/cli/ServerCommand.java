package dev.turnout.controlplane.cli;

import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.ConfigException;
import dev.turnout.controlplane.config.ConfigLoader;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.store.StoreException;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code turnout server}: runs the control plane until interrupted. */
@Command(name = "server", mixinStandardHelpOptions = true,
    description = "Run the control plane: the xDS server sidecars subscribe to, with its durable routing table.")
final class ServerCommand implements Callable<Integer> {

  static final String EMBEDDED_DEFAULT = "turnout-default.yaml";

  @Option(names = {"-c", "--config"}, paramLabel = "FILE",
      description = "turnout.yaml to run with (default: the embedded default, see turnout.example.yaml)")
  Path config;

  @Option(names = "--data-dir", paramLabel = "DIR", description = "Store directory, overriding store.directory")
  Path dataDir;

  @Override
  public Integer call() throws Exception {
    TurnoutConfig cfg;
    try {
      cfg = load(config);
    } catch (ConfigException e) {
      System.err.println("turnout: " + e.getMessage());
      return 2;
    }
    if (dataDir != null) {
      cfg = cfg.withStoreDirectory(dataDir.toAbsolutePath());
    }
    Migrator.Failpoint failpoint;
    try {
      failpoint = testFailpoint(System.getenv(TEST_FAILPOINT));
    } catch (IllegalArgumentException e) {
      System.err.println("turnout: " + e.getMessage());
      return 2;
    }
    ControlPlane plane;
    try {
      plane = ControlPlane.start(cfg, RoutingService.Resolver.SYSTEM, failpoint);
    } catch (StoreException | IOException | IllegalArgumentException e) {
      System.err.println("turnout: cannot start: " + e.getMessage());
      return 1;
    }
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        plane.close();
      } catch (StoreException e) {
        System.err.println("turnout: " + e.getMessage());
      }
      stopped.countDown();
    }, "turnout-shutdown"));
    stopped.await();
    return 0;
  }

  /** A test hook, never set in production: kill tests stop a real server process at an exact step. */
  static final String TEST_FAILPOINT = "TURNOUT_TEST_FAILPOINT";

  /**
   * {@code PHASE:BEFORE_SAVE} or {@code PHASE:AFTER_SAVE}: the migration thread says so on stdout when it gets
   * there and then waits forever, for the test to {@code kill -9} the process at that point.
   */
  static Migrator.Failpoint testFailpoint(String spec) {
    if (spec == null || spec.isBlank()) {
      return Migrator.Failpoint.NONE;
    }
    String[] parts = spec.split(":");
    Phase phase;
    Migrator.Failpoint.Point point;
    try {
      phase = Phase.valueOf(parts[0]);
      point = parts.length > 1 ? Migrator.Failpoint.Point.valueOf(parts[1]) : Migrator.Failpoint.Point.AFTER_SAVE;
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(TEST_FAILPOINT + "='" + spec + "' is not PHASE[:BEFORE_SAVE|AFTER_SAVE]");
    }
    return (next, at) -> {
      if (next.phase() == phase && at == point) {
        System.out.println("turnout: test failpoint " + phase + " " + point + " reached by migration " + next.id());
        System.out.flush();
        new CountDownLatch(1).await();
      }
    };
  }

  static TurnoutConfig load(Path file) throws ConfigException, IOException {
    if (file != null) {
      return ConfigLoader.load(file);
    }
    try (InputStream in = ServerCommand.class.getResourceAsStream("/" + EMBEDDED_DEFAULT)) {
      String yaml = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      return ConfigLoader.parse(yaml, "embedded " + EMBEDDED_DEFAULT, Path.of("").toAbsolutePath());
    }
  }
}
