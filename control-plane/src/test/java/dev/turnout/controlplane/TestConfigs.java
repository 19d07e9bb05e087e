package dev.turnout.controlplane;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/** Configurations for tests: loopback, free ports, a store in a temporary directory. */
public final class TestConfigs {
  private TestConfigs() {}

  public static DatabaseRoute database(String name, int port, String endpoint, String... services) {
    return new DatabaseRoute(name, port, Optional.of(Endpoint.parse(endpoint)), Set.of(services));
  }

  public static TurnoutConfig config(Path store, Duration ackTimeout, List<DatabaseRoute> databases) {
    return new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0), store, ackTimeout,
        ImmutableList.copyOf(databases), TurnoutConfig.MigratorSettings.DEFAULT);
  }
}
