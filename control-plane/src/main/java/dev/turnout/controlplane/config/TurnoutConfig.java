package dev.turnout.controlplane.config;

import com.google.common.collect.ImmutableList;
import dev.turnout.envoy.DatabaseRoute;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The validated contents of {@code turnout.yaml}.
 *
 * @param ackTimeout how long a route change waits for every subscribed sidecar to ACK before naming stragglers
 * @param databases the databases to seed: they only create entries the store does not have yet
 */
public record TurnoutConfig(Servers servers, Path storeDirectory, Duration ackTimeout,
    ImmutableList<DatabaseRoute> databases) {

  /** Listening ports of the control plane; 0 picks a free port (tests). */
  public record Servers(String bindAddress, int xdsPort, int adminPort, int httpPort) {}

  public static final int DEFAULT_XDS_PORT = 18000;
  public static final int DEFAULT_ADMIN_PORT = 18001;
  public static final int DEFAULT_HTTP_PORT = 18080;
  public static final Duration DEFAULT_ACK_TIMEOUT = Duration.ofSeconds(30);

  public TurnoutConfig withStoreDirectory(Path directory) {
    return new TurnoutConfig(servers, directory, ackTimeout, databases);
  }

  public TurnoutConfig withServers(Servers newServers) {
    return new TurnoutConfig(newServers, storeDirectory, ackTimeout, databases);
  }
}
