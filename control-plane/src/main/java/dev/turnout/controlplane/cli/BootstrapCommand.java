package dev.turnout.controlplane.cli;

import dev.turnout.envoy.Endpoint;
import dev.turnout.envoy.SidecarBootstrap;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code turnout bootstrap}: prints the Envoy bootstrap a sidecar starts with. */
@Command(name = "bootstrap", mixinStandardHelpOptions = true,
    description = "Print an Envoy v3 bootstrap YAML that subscribes a sidecar to this control plane over ADS.")
final class BootstrapCommand implements Callable<Integer> {

  @Option(names = "--xds", required = true, paramLabel = "HOST:PORT", description = "The control plane's xDS address")
  String xds;

  @Option(names = "--node", required = true, paramLabel = "ID", description = "Envoy node id (unique per sidecar)")
  String node;

  @Option(names = "--cluster", required = true, paramLabel = "SERVICE",
      description = "Envoy node cluster: the service, which decides the databases it may reach")
  String cluster;

  @Option(names = "--delta", description = "Incremental ADS (DELTA_GRPC): one changed assignment per update instead of"
      + " all of the service's; for fleets of thousands of sidecars")
  boolean delta;

  @Option(names = "--admin-port", defaultValue = "9901", description = "Envoy admin port on loopback (default 9901)")
  int adminPort;

  @ArgGroup(exclusive = false)
  Tls tls;

  static final class Tls {
    @Option(names = "--tls-cert", required = true, paramLabel = "PEM") String cert;
    @Option(names = "--tls-key", required = true, paramLabel = "PEM") String key;
    @Option(names = "--tls-ca", required = true, paramLabel = "PEM") String ca;
  }

  @Override
  public Integer call() {
    try {
      SidecarBootstrap bootstrap = new SidecarBootstrap(node, cluster, Endpoint.parse(xds), adminPort,
          Optional.ofNullable(tls).map(t -> new SidecarBootstrap.Tls(t.cert, t.key, t.ca)));
      System.out.print(bootstrap.render(delta));
      return 0;
    } catch (IllegalArgumentException e) {
      System.err.println("turnout bootstrap: " + e.getMessage());
      return 2;
    }
  }
}
