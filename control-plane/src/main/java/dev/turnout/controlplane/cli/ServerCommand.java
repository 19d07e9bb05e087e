package dev.turnout.controlplane.cli;

import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.ConfigException;
import dev.turnout.controlplane.config.ConfigLoader;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.store.StoreException;
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
    ControlPlane plane;
    try {
      plane = ControlPlane.start(cfg);
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
