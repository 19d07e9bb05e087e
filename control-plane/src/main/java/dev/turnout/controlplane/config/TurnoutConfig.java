package dev.turnout.controlplane.config;

import com.google.common.collect.ImmutableList;
import dev.turnout.envoy.DatabaseRoute;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The validated contents of {@code turnout.yaml}.
 *
 * @param xds how route changes wait for sidecars
 * @param databases the databases to seed: they only create entries the store does not have yet
 */
public record TurnoutConfig(Servers servers, Store store, Xds xds,
    ImmutableList<DatabaseRoute> databases, MigratorSettings migrator) {

  /**
   * Where the routing table and the migrations live: the embedded file store in {@code directory} (one replica),
   * or a PostgreSQL database several replicas share.
   */
  public record Store(Path directory, java.util.Optional<SharedStore> postgres) {}

  /**
   * The {@code store.postgres} section: several replicas share the state in one PostgreSQL database.
   *
   * @param url a {@code jdbc:postgresql://} URL of the metadata database
   * @param passwordEnv the environment variable holding the password (never this file)
   * @param replicaId this replica's name in the store (default: host name and process id)
   * @param lease how long a silent leader keeps the leadership before another replica takes it over; also how
   *     often every replica re-reads the routing table in case a notification was lost
   */
  public record SharedStore(String url, String user, java.util.Optional<String> passwordEnv, String replicaId,
      Duration lease) {
    public static final Duration DEFAULT_LEASE = Duration.ofSeconds(5);

    public String password() {
      return passwordEnv.map(System::getenv).orElse(null);
    }
  }

  public TurnoutConfig(Servers servers, Path storeDirectory, Xds xds, ImmutableList<DatabaseRoute> databases,
      MigratorSettings migrator) {
    this(servers, new Store(storeDirectory, java.util.Optional.empty()), xds, databases, migrator);
  }

  public Path storeDirectory() {
    return store.directory();
  }

  /**
   * @param ackTimeout how long a route change waits for every subscribed sidecar to ACK before naming stragglers
   * @param reconnectGrace after a start, how long route changes keep waiting for sidecars to reconnect: a
   *     restarted control plane knows no sidecar until it reconnects, and must not call a change done while
   *     sidecars that still route the old way are on their way back
   * @param dnsRefresh how often endpoints routed by DNS name are resolved again (a changed address is published)
   * @param forgetNodesAfter how long a sidecar with no open stream stays listed before it is forgotten (pods that
   *     come and go with every deployment must not pile up)
   */
  public record Xds(Duration ackTimeout, Duration reconnectGrace, Duration dnsRefresh, Duration forgetNodesAfter) {
    public Xds(Duration ackTimeout, Duration reconnectGrace) {
      this(ackTimeout, reconnectGrace, DEFAULT_DNS_REFRESH);
    }

    public Xds(Duration ackTimeout, Duration reconnectGrace, Duration dnsRefresh) {
      this(ackTimeout, reconnectGrace, dnsRefresh, DEFAULT_FORGET_NODES_AFTER);
    }
  }

  public static final Duration DEFAULT_FORGET_NODES_AFTER = Duration.ofMinutes(5);

  public static final Duration DEFAULT_DNS_REFRESH = Duration.ofSeconds(30);

  public static final Duration DEFAULT_RECONNECT_GRACE = Duration.ofSeconds(5);

  /** For embedded uses (tests, the demo, benchmarks) where no sidecar predates the process: no reconnect grace. */
  public TurnoutConfig(Servers servers, Path storeDirectory, Duration ackTimeout, ImmutableList<DatabaseRoute> databases,
      MigratorSettings migrator) {
    this(servers, storeDirectory, new Xds(ackTimeout, Duration.ZERO), databases, migrator);
  }

  public Duration ackTimeout() {
    return xds.ackTimeout();
  }

  public TurnoutConfig withReconnectGrace(Duration grace) {
    return new TurnoutConfig(servers, store, new Xds(xds.ackTimeout(), grace, xds.dnsRefresh(), xds.forgetNodesAfter()), databases,
        migrator);
  }

  /**
   * How the migrator connects to PostgreSQL servers: a superuser role, its password read from an environment
   * variable (never from this file, never logged).
   *
   * @param aws present when this control plane may run RDS-to-Aurora migrations
   */
  public record MigratorSettings(String user, java.util.Optional<String> passwordEnv,
      java.util.Optional<dev.turnout.migrator.platform.aws.AwsSettings> aws) {
    public static final MigratorSettings DEFAULT = new MigratorSettings("postgres", java.util.Optional.empty());

    public MigratorSettings(String user, java.util.Optional<String> passwordEnv) {
      this(user, passwordEnv, java.util.Optional.empty());
    }

    public String password() {
      return passwordEnv.map(System::getenv).orElse(null);
    }
  }

  /**
   * Listening ports of the control plane (0 picks a free port, for tests), and TLS when configured.
   *
   * @param bindAddress where xDS (sidecars must reach it) and the read-only HTTP endpoint listen
   * @param admin where the admin API listens: it can start, roll back and finalize migrations and move routes
   * @param tls when present, xDS and the admin API require client certificates signed by its CA
   */
  public record Servers(String bindAddress, int xdsPort, Admin admin, int httpPort, java.util.Optional<Tls> tls) {
    public Servers(String bindAddress, int xdsPort, int adminPort, int httpPort) {
      this(bindAddress, xdsPort, adminPort, httpPort, java.util.Optional.empty());
    }

    /** The admin API where {@link Admin#defaultAddress} puts it. */
    public Servers(String bindAddress, int xdsPort, int adminPort, int httpPort, java.util.Optional<Tls> tls) {
      this(bindAddress, xdsPort, new Admin(Admin.defaultAddress(bindAddress, tls.isPresent()), adminPort, false),
          httpPort, tls);
    }

    public int adminPort() {
      return admin.port();
    }

    public String adminBindAddress() {
      return admin.bindAddress();
    }

    /** Whether anyone beyond this machine may reach the admin API unauthenticated: no TLS, not loopback. */
    public boolean adminBeyondLoopback() {
      return tls.isEmpty() && !Loopback.is(admin.bindAddress());
    }

    /**
     * Why the admin API may not listen where it is asked to, or empty: beyond loopback it needs TLS (client
     * certificates decide who may write), or {@code insecure} said in so many words.
     */
    public java.util.Optional<String> adminProblem() {
      if (!adminBeyondLoopback() || admin.insecure()) {
        return java.util.Optional.empty();
      }
      return java.util.Optional.of(admin.bindAddress() + " is not a loopback address and server.tls is not"
          + " configured: anyone who reaches the admin API could start, roll back and finalize migrations and move"
          + " routes, unauthenticated. Configure server.tls, bind the admin API to 127.0.0.1, or accept that with"
          + " 'insecure: true' under server");
    }
  }

  /**
   * The admin API's listening address and port.
   *
   * @param insecure the configuration accepts, in so many words, an admin API beyond loopback with no TLS
   */
  public record Admin(String bindAddress, int port, boolean insecure) {
    /**
     * Without TLS nobody is authenticated, so the admin API stays on this machine: on {@code bindAddress} when that
     * is loopback, else on 127.0.0.1. With TLS it listens where xDS does.
     */
    public static String defaultAddress(String bindAddress, boolean tls) {
      return tls || Loopback.is(bindAddress) ? bindAddress : "127.0.0.1";
    }
  }

  /**
   * Mutual TLS for xDS and the admin API. A sidecar's certificate CN must equal its node.cluster; an admin
   * client's CN decides what it may call.
   *
   * @param adminWriters identities (certificate CNs) allowed to start, roll back and finalize migrations
   * @param adminReaders identities allowed the read-only admin calls besides the writers; empty allows any client
   * @param consolePort where the web console also listens over HTTPS, asking for a client certificate: an admin
   *     writer's may act there (pause a campaign, roll back a migration); the plain HTTP port's console is read-only
   */
  public record Tls(Path certChain, Path privateKey, Path clientCa, java.util.Set<String> adminWriters,
      java.util.Set<String> adminReaders, int consolePort) {
    /** For configurations made in code (tests, benchmarks): the HTTPS console on any free port. */
    public Tls(Path certChain, Path privateKey, Path clientCa, java.util.Set<String> adminWriters,
        java.util.Set<String> adminReaders) {
      this(certChain, privateKey, clientCa, adminWriters, adminReaders, 0);
    }

    public Tls withConsolePort(int port) {
      return new Tls(certChain, privateKey, clientCa, adminWriters, adminReaders, port);
    }
  }

  /** The HTTPS console's port when {@code server.tls.console_port} does not say. */
  public static final int DEFAULT_CONSOLE_PORT = 18443;

  public static final int DEFAULT_XDS_PORT = 18000;
  public static final int DEFAULT_ADMIN_PORT = 18001;
  public static final int DEFAULT_HTTP_PORT = 18080;
  public static final Duration DEFAULT_ACK_TIMEOUT = Duration.ofSeconds(30);

  public TurnoutConfig withStoreDirectory(Path directory) {
    return new TurnoutConfig(servers, new Store(directory, store.postgres()), xds, databases, migrator);
  }

  public TurnoutConfig withServers(Servers newServers) {
    return new TurnoutConfig(newServers, store, xds, databases, migrator);
  }
}
