package dev.turnout.controlplane;

import com.google.common.util.concurrent.ThreadFactoryBuilder;
import dev.turnout.controlplane.admin.AdminAudit;
import dev.turnout.controlplane.admin.AdminService;
import dev.turnout.controlplane.admin.HttpEndpoint;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.console.Console;
import dev.turnout.controlplane.campaign.Campaigns;
import dev.turnout.controlplane.migration.Migrations;
import dev.turnout.controlplane.store.FileCampaignStore;
import dev.turnout.controlplane.migration.XdsRouter;
import dev.turnout.controlplane.security.AdminAuthorization;
import dev.turnout.controlplane.security.PeerIdentity;
import dev.turnout.controlplane.store.AuditLog;
import dev.turnout.controlplane.store.FileMigrationStore;
import dev.turnout.controlplane.store.FileRouteStore;
import dev.turnout.controlplane.store.Leadership;
import dev.turnout.controlplane.store.PostgresStore;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.controlplane.store.SharedRoutes;
import dev.turnout.controlplane.store.StoreException;
import dev.turnout.controlplane.xds.AckTracker;
import dev.turnout.controlplane.xds.LocalAckWait;
import dev.turnout.controlplane.xds.LocalRouteFeed;
import dev.turnout.controlplane.xds.ReplicaAckWait;
import dev.turnout.controlplane.xds.ReplicaRouteFeed;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.controlplane.xds.XdsServer;
import dev.turnout.migrator.DryRun;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.MigrationStore;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Platform;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.Sleeper;
import dev.turnout.migrator.platform.aws.AwsPlatformProvider;
import dev.turnout.migrator.platform.postgres.PostgresPlatform;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The Turnout process: the store, the routing table, the xDS server and the ACK tracker, wired and started. */
public final class ControlPlane implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ControlPlane.class);

  private final TurnoutConfig config;
  private final RouteStore store;
  private final ScheduledExecutorService scheduler;
  private final ExecutorService callbacks;
  private final XdsServer xds;
  private final Migrations migrations;
  private final Campaigns campaigns;
  private final Leadership leadership;
  private final Server admin;
  private final AdminAudit audit;
  private final HttpEndpoint http;
  private Console console;
  /** What the bake reads of the sidecars' counters: this replica's, and with a shared store every replica's. */
  private dev.turnout.migrator.bake.SidecarCounters sidecarCounters;

  private ControlPlane(TurnoutConfig config, RouteStore store, Leadership leadership, ScheduledExecutorService scheduler,
      ExecutorService callbacks, XdsServer xds, Migrations migrations, Campaigns campaigns, Server admin,
      AdminAudit audit, HttpEndpoint http) {
    this.campaigns = campaigns;
    this.admin = admin;
    this.audit = audit;
    this.http = http;
    this.config = config;
    this.store = store;
    this.scheduler = scheduler;
    this.callbacks = callbacks;
    this.xds = xds;
    this.migrations = migrations;
    this.leadership = leadership;
  }

  /** Opens the store, publishes what it holds (seeding new databases from the config) and starts serving xDS. */
  public static ControlPlane start(TurnoutConfig config) throws StoreException, IOException {
    return start(config, RoutingService.Resolver.SYSTEM);
  }

  public static ControlPlane start(TurnoutConfig config, RoutingService.Resolver resolver)
      throws StoreException, IOException {
    return start(config, resolver, Migrator.Failpoint.NONE);
  }

  /** Starts with a failpoint in the migrator, for tests that crash or roll back at an exact step. */
  public static ControlPlane start(TurnoutConfig config, RoutingService.Resolver resolver,
      Migrator.Failpoint failpoint) throws StoreException, IOException {
    return start(config, resolver, failpoint, null);
  }

  /**
   * As {@link #start(TurnoutConfig, RoutingService.Resolver, Migrator.Failpoint)}, migrating on {@code platforms}
   * instead of the configured ones (a benchmark's simulated servers); null: the configured ones.
   */
  public static ControlPlane start(TurnoutConfig config, RoutingService.Resolver resolver,
      Migrator.Failpoint failpoint, Platform.Factory platformsOverride) throws StoreException, IOException {
    // Also checked by ConfigLoader, naming the line; here for configurations made in code.
    Optional<String> adminProblem = config.servers().adminProblem();
    if (adminProblem.isPresent()) {
      throw new IllegalArgumentException("server.admin_bind_address: " + adminProblem.get());
    }
    Platform.Factory platforms = platformsOverride != null ? platformsOverride : platforms(config.migrator());
    Optional<PostgresStore> shared = config.store().postgres().isPresent()
        ? Optional.of(PostgresStore.open(config.store().postgres().get())) : Optional.empty();
    RouteStore store = shared.isPresent() ? shared.get().routes() : FileRouteStore.open(config.storeDirectory());
    ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor(
        new ThreadFactoryBuilder().setNameFormat("turnout-scheduler").setDaemon(true).build());
    ExecutorService callbacks = Executors.newCachedThreadPool(
        new ThreadFactoryBuilder().setNameFormat("turnout-route-%d").setDaemon(true).build());
    XdsServer xds = null;
    Leadership leadership = null;
    Migrations migrations = null;
    Campaigns campaigns = null;
    AdminAudit adminAudit = null;
    Console consoleRef = null;
    try {
      String adminHost = config.servers().adminBindAddress();
      AtomicReference<String> adminAddress = new AtomicReference<>(adminHost + ":" + config.servers().adminPort());
      AckTracker tracker = new AckTracker(Clock.systemUTC(), config.xds().reconnectGrace());
      xds = XdsServer.create(routingPorts(config, store, shared, tracker, scheduler, callbacks), tracker, config,
          Clock.systemUTC(), callbacks, resolver);
      MigrationStore migrationStore = shared.isPresent() ? shared.get().migrations()
          : new FileMigrationStore(config.storeDirectory());
      RoutingService routing = xds.routing();
      AtomicReference<Leadership> leader = new AtomicReference<>();
      // A sidecar streams its counters to one replica; the leader's bake adds every replica's (through the store).
      dev.turnout.controlplane.xds.SidecarStats ownStats = xds.sidecarStats();
      Optional<dev.turnout.controlplane.migration.ReplicaSidecarCounters> replicaCounters = shared.map(
          p -> new dev.turnout.controlplane.migration.ReplicaSidecarCounters(ownStats, p.replicas()));
      dev.turnout.migrator.bake.SidecarCounters sidecarCounters = replicaCounters.isPresent()
          ? replicaCounters.get() : ownStats;
      Migrations terms = new Migrations(migrationStore, () -> {
        Migrator migrator = new Migrator(migrationStore, new XdsRouter(routing), platforms, Clock.systemUTC(),
            Sleeper.SYSTEM, Executors.newCachedThreadPool(
                new ThreadFactoryBuilder().setNameFormat("turnout-migration-%d").setDaemon(true).build()), failpoint);
        migrator.setSidecarCounters(sidecarCounters);
        return migrator;
      },
          shared.map(PostgresStore::replicaId).orElse("(the only one)"),
          () -> leader.get() == null ? "this replica" : leader.get().leader());
      migrations = terms;
      campaigns = new Campaigns(shared.isPresent() ? shared.get().campaigns()
          : new FileCampaignStore(config.storeDirectory()), terms, routing, Clock.systemUTC());
      if (shared.isPresent()) {
        leadership = new Leadership(shared.get(), adminAddress::get, new Leadership.Listener() {
          @Override
          public void elected(long epoch) {
            try {
              terms.lead();
            } catch (MigrationException e) {
              throw new IllegalStateException("cannot resume the migrations from the store: " + e.getMessage(), e);
            }
          }

          @Override
          public void deposed(String why) {
            terms.follow();
          }
        });
        leader.set(leadership);
        // Alive in the store before serving, so route changes wait for this replica's sidecars from the start.
        leadership.start();
      }
      xds.start();
      scheduleDnsRefresh(config.xds().dnsRefresh(), scheduler, callbacks, xds.routing());
      scheduleForgettingNodes(config.xds().forgetNodesAfter(), scheduler, xds.tracker());
      if (shared.isPresent()) {
        schedulePublishingNodes(shared.get().replicas(), xds.tracker(), config.store().postgres().get().lease(),
            scheduler, callbacks);
        schedulePublishingSidecarCounters(replicaCounters.get(), xds.sidecarStats(),
            config.store().postgres().get().lease(), scheduler, callbacks);
      }
      log.info("xDS (ADS, state-of-the-world and delta) listening on {}:{}; store {}",
          config.servers().bindAddress(), xds.port(), shared.isPresent()
              ? config.store().postgres().get().url() + " as replica " + shared.get().replicaId()
              : config.storeDirectory());
      if (leadership == null) {
        migrations.lead();
      }
      AuditLog auditLog = store.audit();
      Migrations owner = migrations;
      adminAudit = new AdminAudit(auditLog, id -> {
        try {
          return owner.get(id).map(Migration::database);
        } catch (MigrationException e) {
          return Optional.empty(); // the entry matters more than this detail
        }
      });
      AdminService adminService = new AdminService(migrations, xds.routing(), xds.tracker(), auditLog,
          shared.map(PostgresStore::replicas), campaigns);
      NettyServerBuilder adminBuilder = NettyServerBuilder
          .forAddress(new InetSocketAddress(adminHost, config.servers().adminPort()));
      // Interceptors run last listed first: the caller's identity, then the audit (which so records the writes
      // the authorization refuses), then the authorization.
      if (config.servers().tls().isPresent()) {
        TurnoutConfig.Tls tls = config.servers().tls().get();
        adminBuilder.sslContext(dev.turnout.controlplane.security.Tls.serverContext(tls))
            .addService(ServerInterceptors.intercept(adminService,
                new AdminAuthorization(tls.adminWriters(), tls.adminReaders()), adminAudit, new PeerIdentity()));
      } else {
        // No identity without certificates: the caller's address is what a route changed by hand records.
        adminBuilder.addService(ServerInterceptors.intercept(adminService, adminAudit, new PeerIdentity()));
      }
      Server admin = adminBuilder.build().start();
      adminAddress.set(adminHost + ":" + admin.getPort());
      HttpEndpoint http = new HttpEndpoint(new InetSocketAddress(config.servers().bindAddress(),
          config.servers().httpPort()), adminService, xds.routing(), xds.tracker(), migrations);
      xds.onNack(http::countNack);
      http.showSidecarCounters(xds.sidecarStats());
      Console console = new Console(adminService, adminAudit, config.servers().tls(),
          shared.map(PostgresStore::replicaId).orElseGet(ControlPlane::hostName), migrations, Clock.systemUTC());
      consoleRef = console;
      http.mount(console);
      if (config.servers().tls().isPresent()) {
        console.listenHttps(new InetSocketAddress(config.servers().bindAddress(),
            config.servers().tls().get().consolePort()), config.servers().tls().get());
        log.info("console over HTTPS on {}:{}: admin writers' client certificates may act ({})",
            config.servers().bindAddress(), console.httpsPort(), config.servers().tls().get().adminWriters());
      }
      http.ready(true);
      logAdminAddress(config.servers(), adminAddress.get());
      log.info("HTTP (/healthz /readyz /metrics /v1/, the console at /console, read-only) on {}:{}",
          config.servers().bindAddress(), http.port());
      ControlPlane plane = new ControlPlane(config, store, leadership, scheduler, callbacks, xds, migrations, campaigns,
          admin, adminAudit, http);
      plane.console = console;
      plane.sidecarCounters = sidecarCounters;
      return plane;
    } catch (MigrationException e) {
      closeQuietly(consoleRef);
      closeQuietly(adminAudit);
      abandon(leadership, migrations, xds, scheduler, callbacks, store);
      throw new StoreException("cannot load migrations: " + e.getMessage(), e);
    } catch (StoreException | IOException | RuntimeException e) {
      closeQuietly(consoleRef);
      closeQuietly(adminAudit);
      abandon(leadership, migrations, xds, scheduler, callbacks, store);
      throw e;
    }
  }

  /**
   * How routing learns changes and waits for ACKs: from this process's own sidecars when it is the only control
   * plane; through the store when several replicas share it, each reporting its own sidecars.
   */
  private static RoutingService.Ports routingPorts(TurnoutConfig config, RouteStore store,
      Optional<PostgresStore> shared, AckTracker tracker, ScheduledExecutorService scheduler,
      ExecutorService callbacks) {
    LocalAckWait ownSidecars = new LocalAckWait(tracker, scheduler, config.ackTimeout());
    if (shared.isEmpty()) {
      return new RoutingService.Ports(store, new LocalRouteFeed(), ownSidecars);
    }
    SharedRoutes replicas = shared.get().replicas();
    return new RoutingService.Ports(store, new ReplicaRouteFeed(store, replicas),
        new ReplicaAckWait(replicas, ownSidecars, callbacks, config.ackTimeout()));
  }

  /** Where the admin API listens, said so an operator knows who can reach it; loudly when anyone can. */
  private static void logAdminAddress(TurnoutConfig.Servers servers, String address) {
    if (servers.tls().isPresent()) {
      log.info("admin API (turnout.admin.v1.Admin) on {}, mutual TLS: writes for {} only", address,
          servers.tls().get().adminWriters());
    } else if (servers.adminBeyondLoopback()) { // allowed only by server.insecure: true
      log.warn("INSECURE: admin API (turnout.admin.v1.Admin) on {} in plain text with no authentication"
          + " (server.insecure: true): anyone who reaches {} can start, roll back and finalize migrations and move"
          + " routes", address, address);
    } else {
      log.info("admin API (turnout.admin.v1.Admin) on {}, plain text, loopback only{}", address,
          servers.adminBindAddress().equals(servers.bindAddress()) ? ""
              : " (no server.tls: not on " + servers.bindAddress() + " like xDS)");
    }
  }

  private static void closeQuietly(Console console) {
    if (console != null) {
      console.close();
    }
  }

  /** This machine's name, for the console's "answered by" when there is one replica. */
  private static String hostName() {
    try {
      return java.net.InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      return "this control plane";
    }
  }

  private static void closeQuietly(AdminAudit audit) {
    if (audit != null) {
      audit.close();
    }
  }

  /** Sidecars gone for {@code after} are forgotten, looked for every quarter of it (at most every minute). */
  private static void scheduleForgettingNodes(Duration after, ScheduledExecutorService scheduler, AckTracker tracker) {
    long every = Math.max(1000, Math.min(after.toMillis() / 4, 60_000));
    scheduler.scheduleWithFixedDelay(() -> {
      int forgotten = tracker.forgetDisconnected(after);
      if (forgotten > 0) {
        log.info("forgot {} sidecar(s) with no xDS stream for {}", forgotten, after);
      }
    }, every, every, TimeUnit.MILLISECONDS);
  }

  /** Undoes a start that failed part way: whatever of it was made is stopped, the store closed. */
  private static void abandon(Leadership leadership, Migrations migrations, XdsServer xds,
      ScheduledExecutorService scheduler, ExecutorService callbacks, RouteStore store) throws StoreException {
    if (leadership != null) {
      leadership.close();
    }
    if (migrations != null) {
      migrations.follow();
    }
    if (xds != null) {
      xds.shutdown();
    }
    scheduler.shutdownNow();
    callbacks.shutdownNow();
    store.close();
  }

  /**
   * This replica's sidecars go to the shared store whenever they changed, looked at every lease/5, so
   * {@code turnout nodes} on any replica lists every replica's. On the callbacks pool, one at a time, as the DNS
   * refresh: a store that hangs must not hold up the scheduler's ACK deadlines.
   */
  private static void schedulePublishingNodes(SharedRoutes store, AckTracker tracker, Duration lease,
      ScheduledExecutorService scheduler, ExecutorService callbacks) {
    AtomicReference<java.util.List<SharedRoutes.NodeRow>> published = new AtomicReference<>();
    java.util.concurrent.atomic.AtomicBoolean running = new java.util.concurrent.atomic.AtomicBoolean();
    scheduler.scheduleWithFixedDelay(() -> {
      java.util.List<SharedRoutes.NodeRow> now = AdminService.localNodes(tracker);
      if (now.equals(published.get()) || !running.compareAndSet(false, true)) {
        return;
      }
      callbacks.execute(() -> {
        try {
          store.publishNodes(now);
          published.set(now);
        } catch (StoreException | RuntimeException e) {
          log.debug("cannot publish this replica's sidecars: {}", e.getMessage()); // the leadership says so too
        } finally {
          running.set(false);
        }
      });
    }, 0, Math.max(100, lease.toMillis() / 5), TimeUnit.MILLISECONDS);
  }

  /**
   * This replica's sidecar counters go to the shared store whenever they changed, looked at every lease/5, so the
   * leader's bake counts every replica's sidecars. On the callbacks pool, one at a time, like the nodes.
   */
  private static void schedulePublishingSidecarCounters(dev.turnout.controlplane.migration.ReplicaSidecarCounters
      counters, dev.turnout.controlplane.xds.SidecarStats stats, Duration lease, ScheduledExecutorService scheduler,
      ExecutorService callbacks) {
    AtomicReference<Object> published = new AtomicReference<>();
    java.util.concurrent.atomic.AtomicBoolean running = new java.util.concurrent.atomic.AtomicBoolean();
    scheduler.scheduleWithFixedDelay(() -> {
      Object now = stats.totals();
      if (now.equals(published.get()) || !running.compareAndSet(false, true)) {
        return;
      }
      callbacks.execute(() -> {
        try {
          counters.publish();
          published.set(now);
        } catch (StoreException | RuntimeException e) {
          log.debug("cannot publish this replica's sidecar counters: {}", e.getMessage());
        } finally {
          running.set(false);
        }
      });
    }, 0, Math.max(100, lease.toMillis() / 5), TimeUnit.MILLISECONDS);
  }

  /**
   * Re-resolves DNS-named endpoints every {@code every}, on the callbacks pool: a slow resolver must not hold
   * up the scheduler's ACK deadlines. One refresh at a time.
   */
  private static void scheduleDnsRefresh(java.time.Duration every, ScheduledExecutorService scheduler,
      ExecutorService callbacks, RoutingService routing) {
    java.util.concurrent.atomic.AtomicBoolean running = new java.util.concurrent.atomic.AtomicBoolean();
    scheduler.scheduleWithFixedDelay(() -> {
      if (running.compareAndSet(false, true)) {
        callbacks.execute(() -> {
          try {
            routing.refreshDns();
          } catch (RuntimeException e) {
            log.warn("DNS refresh failed: {}", e.getMessage(), e);
          } finally {
            running.set(false);
          }
        });
      }
    }, every.toMillis(), every.toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * PostgreSQL to PostgreSQL by default; RDS to Aurora for specs that name an Aurora cluster, through the AWS
   * platform when {@code migrator.aws} is configured: then turnout-aws.jar must be installed, or the start fails
   * saying so (rather than the first Aurora migration, perhaps weeks later).
   */
  private static Platform.Factory platforms(TurnoutConfig.MigratorSettings settings) {
    PostgresPlatform.Credentials credentials = new PostgresPlatform.Credentials(settings.user(), settings.password());
    Platform.Factory postgres = PostgresPlatform.factory(credentials, Clock.systemUTC(), Sleeper.SYSTEM);
    Optional<Platform.Factory> aws = settings.aws().map(a -> AwsPlatformProvider.installed()
        .orElseThrow(() -> new IllegalArgumentException(AwsPlatformProvider.NOT_INSTALLED))
        .factory(credentials, a, Clock.systemUTC(), Sleeper.SYSTEM));
    return new Platform.Factory() {
      @Override
      public Platform open(Migration.Spec spec) throws MigrationException {
        return spec.aurora().isEmpty() ? postgres.open(spec) : aws(spec.database()).open(spec);
      }

      @Override
      public Platform openDryRun(Migration.Spec spec, DryRun dryRun) throws MigrationException {
        return spec.aurora().isEmpty() ? postgres.openDryRun(spec, dryRun)
            : aws(spec.database()).openDryRun(spec, dryRun);
      }

      @Override
      public Optional<ServerAddress> defaultTarget(String database, Optional<Migration.Aurora> aurora)
          throws MigrationException {
        return aurora.isEmpty() ? postgres.defaultTarget(database, aurora) : aws(database).defaultTarget(database, aurora);
      }

      private Platform.Factory aws(String database) throws MigrationConflictException {
        return aws.orElseThrow(() -> new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION,
            "database '" + database + "': an Aurora migration needs migrator.aws in turnout.yaml"
                + " (fence_security_group at least)"));
      }
    };
  }

  /** This replica's migrator while it leads migrations (always, with the embedded store); null otherwise. */
  public Migrator migrator() {
    return migrations.current();
  }

  public Campaigns campaigns() {
    return campaigns;
  }

  public Migrations migrations() {
    return migrations;
  }

  public RoutingService routing() {
    return xds.routing();
  }

  public AckTracker tracker() {
    return xds.tracker();
  }

  /** The sidecars' counters as the migrator's bake reads them (every replica's, when the store is shared). */
  public dev.turnout.migrator.bake.SidecarCounters sidecarCounters() {
    return sidecarCounters;
  }

  public int httpPort() {
    return http.port();
  }

  /** The web console (its request count, for the console benchmark). */
  public Console console() {
    return console;
  }

  /** The HTTPS console's port (with server.tls), or -1. */
  public int consoleHttpsPort() {
    return console.httpsPort();
  }

  public int adminPort() {
    return admin.getPort();
  }

  /** The address the admin API listens on, as bound. */
  public InetSocketAddress adminAddress() {
    return (InetSocketAddress) admin.getListenSockets().get(0);
  }

  public int xdsPort() {
    return xds.port();
  }

  public XdsServer xds() {
    return xds;
  }

  public TurnoutConfig config() {
    return config;
  }

  @Override
  public void close() throws StoreException {
    http.close();
    console.close();
    admin.shutdownNow();
    audit.close(); // what is queued is written before the store closes
    if (leadership != null) {
      leadership.close(); // another replica takes over at once: this one's lock goes with its connection
    }
    migrations.follow(); // running migrations resume from the store at the next start, as after a crash
    xds.shutdown();
    scheduler.shutdownNow();
    callbacks.shutdown();
    try {
      callbacks.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    store.close();
  }
}
