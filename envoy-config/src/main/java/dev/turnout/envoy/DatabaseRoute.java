package dev.turnout.envoy;

import com.google.common.collect.ImmutableSortedSet;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * One database in the routing table: the port sidecars listen on for it, the one server it lives on
 * (empty while drained), and the services (Envoy {@code node.cluster} values) allowed to reach it.
 *
 * @param services the allowed services; empty means every service may reach the database
 */
public record DatabaseRoute(String name, int listenPort, Optional<Endpoint> endpoint, Set<String> services) {

  /** Envoy resource names are free-form, but the name is also a stat prefix and a CLI argument: keep it plain. */
  private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9_.-]{0,62}");

  public DatabaseRoute {
    String problem = nameProblem(name);
    if (problem != null) {
      throw new IllegalArgumentException(problem);
    }
    if (listenPort < 1 || listenPort > 65535) {
      throw new IllegalArgumentException("listen port " + listenPort + " of database '" + name + "' is out of range 1-65535");
    }
    endpoint = endpoint == null ? Optional.empty() : endpoint;
    services = ImmutableSortedSet.copyOf(services == null ? Set.of() : services);
    for (String service : services) {
      if (service.isBlank()) {
        throw new IllegalArgumentException("database '" + name + "' lists an empty service name");
      }
    }
  }

  /** Returns why {@code name} cannot name a database, or null when it can. */
  public static String nameProblem(String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      return "database name '" + name + "' must be 1-63 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit";
    }
    return null;
  }

  /** Whether a sidecar of {@code service} may reach this database. */
  public boolean allows(String service) {
    return services.isEmpty() || services.contains(service);
  }

  public boolean isDrained() {
    return endpoint.isEmpty();
  }

  public DatabaseRoute withEndpoint(Optional<Endpoint> newEndpoint) {
    return new DatabaseRoute(name, listenPort, newEndpoint, services);
  }
}
