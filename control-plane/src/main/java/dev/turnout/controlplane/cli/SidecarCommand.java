package dev.turnout.controlplane.cli;

import dev.turnout.controlplane.config.Durations;
import dev.turnout.envoy.Endpoint;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import dev.turnout.sidecar.XdsAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code turnout sidecar}: the built-in xDS-driven PostgreSQL proxy, for machines without Envoy. */
@Command(name = "sidecar", mixinStandardHelpOptions = true,
    description = "Run the built-in sidecar: subscribes to the control plane over ADS like Envoy, listens where the"
        + " Listeners say, proxies to the endpoint EDS names, holds new connections while a database is drained.")
final class SidecarCommand implements Callable<Integer> {

  @Option(names = "--xds", required = true, paramLabel = "HOST:PORT[,HOST:PORT...]",
      description = "The control plane's xDS address; with several replicas, a DNS name resolving to them all or a"
          + " list, tried in order: the sidecar stays on the first that answers and moves on when it dies")
  String xds;

  @Option(names = "--node", required = true, paramLabel = "ID", description = "Node id (unique per sidecar)")
  String node;

  @Option(names = "--cluster", required = true, paramLabel = "SERVICE",
      description = "Node cluster: the service, which decides the databases it may reach")
  String cluster;

  @Option(names = "--hold-timeout", defaultValue = "30s", paramLabel = "DURATION",
      description = "How long a new connection to a drained database waits for an endpoint (default 30s)")
  String holdTimeout;

  @Option(names = "--stale-grace", defaultValue = "5s", paramLabel = "DURATION",
      description = "How long connections to an endpoint no longer assigned live on (default 5s)")
  String staleGrace;

  @Option(names = "--stats-flush-interval", defaultValue = "5s", paramLabel = "DURATION",
      description = "Stream the counters (connect failures, hold timeouts) to the control plane this often, as Envoy's"
          + " metrics service stats sink does; 0 disables (default: ${DEFAULT-VALUE})")
  String statsFlushInterval;

  @Option(names = "--metrics-port", paramLabel = "PORT",
      description = "Serve Prometheus counters on http://127.0.0.1:PORT/metrics")
  Integer metricsPort;

  @ArgGroup(exclusive = false)
  Tls tls;

  static final class Tls {
    @Option(names = "--tls-cert", required = true, paramLabel = "PEM") Path cert;
    @Option(names = "--tls-key", required = true, paramLabel = "PEM") Path key;
    @Option(names = "--tls-ca", required = true, paramLabel = "PEM") Path ca;
  }

  @Override
  public Integer call() throws Exception {
    SidecarConfig config;
    try {
      List<XdsAddress> controlPlane = new ArrayList<>();
      for (String replica : xds.split(",")) {
        Endpoint address;
        try {
          address = Endpoint.parse(replica);
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException("--xds: " + e.getMessage().replace("endpoint", "address")
              .replace("db1.internal", "turnout.internal").replace(":5432", ":18000"), e);
        }
        controlPlane.add(new XdsAddress(address.host(), address.port()));
      }
      config = new SidecarConfig(controlPlane, node, cluster,
          Durations.parse("--hold-timeout", holdTimeout), Durations.parse("--stale-grace", staleGrace),
          Optional.ofNullable(metricsPort),
          Optional.ofNullable(tls).map(t -> new SidecarConfig.Tls(t.cert, t.key, t.ca)),
          Durations.parse("--stats-flush-interval", statsFlushInterval));
    } catch (IllegalArgumentException e) {
      System.err.println("turnout sidecar: " + e.getMessage());
      return 2;
    }
    Sidecar sidecar = Sidecar.start(config);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      sidecar.close();
      stopped.countDown();
    }, "sidecar-shutdown"));
    stopped.await();
    return 0;
  }
}
