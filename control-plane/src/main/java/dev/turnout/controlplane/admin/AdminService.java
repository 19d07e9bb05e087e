package dev.turnout.controlplane.admin;

import com.google.protobuf.Duration;
import com.google.protobuf.Timestamp;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.AuditEntry;
import dev.turnout.admin.v1.AuditField;
import dev.turnout.admin.v1.AuditPage;
import dev.turnout.admin.v1.ListAuditRequest;
import dev.turnout.admin.v1.Database;
import dev.turnout.admin.v1.DatabaseRouting;
import dev.turnout.admin.v1.Event;
import dev.turnout.admin.v1.FinalizeMigrationRequest;
import dev.turnout.admin.v1.GetMigrationRequest;
import dev.turnout.admin.v1.GetRoutingSnapshotRequest;
import dev.turnout.admin.v1.ListDatabasesRequest;
import dev.turnout.admin.v1.ListDatabasesResponse;
import dev.turnout.admin.v1.ListMigrationsRequest;
import dev.turnout.admin.v1.ListMigrationsResponse;
import dev.turnout.admin.v1.ListNodesRequest;
import dev.turnout.admin.v1.ListNodesResponse;
import dev.turnout.admin.v1.MigrationOptions;
import dev.turnout.admin.v1.Node;
import dev.turnout.admin.v1.NodeAck;
import dev.turnout.admin.v1.RollbackMigrationRequest;
import dev.turnout.admin.v1.ReplicaReport;
import dev.turnout.admin.v1.RoutingSnapshot;
import dev.turnout.admin.v1.Slot;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.admin.v1.TypeStatus;
import dev.turnout.admin.v1.WatchMigrationRequest;
import dev.turnout.admin.v1.GetRouteHistoryRequest;
import dev.turnout.admin.v1.RouteChange;
import dev.turnout.admin.v1.RouteHistory;
import dev.turnout.admin.v1.SetRouteRequest;
import dev.turnout.admin.v1.SetRouteResponse;
import dev.turnout.admin.v1.Straggler;
import dev.turnout.controlplane.security.PeerIdentity;
import dev.turnout.controlplane.store.AuditLog;
import dev.turnout.controlplane.store.RouteRecord;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.controlplane.store.SharedRoutes;
import dev.turnout.controlplane.store.StoreException;
import dev.turnout.controlplane.xds.RouteConflictException;
import dev.turnout.controlplane.xds.RouteNotAcknowledgedException;
import dev.turnout.controlplane.xds.UnknownDatabaseException;
import dev.turnout.controlplane.xds.AckTracker;
import dev.turnout.controlplane.xds.NodeStatus;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.controlplane.xds.XdsType;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.envoy.RoutingTable;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.MigrationException;
import dev.turnout.controlplane.migration.Migrations;
import dev.turnout.controlplane.migration.XdsRouter;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * {@code turnout.admin.v1.Admin}: validates every request, maps the domain's errors to status codes that mean
 * what they say, each description naming the database or migration.
 */
public final class AdminService extends AdminGrpc.AdminImplBase {
  private static final java.time.Duration MAX_WINDOW = java.time.Duration.ofHours(6);

  private final Migrations migrator;
  private final RoutingService routing;
  private final AckTracker tracker;
  private final AuditLog audit;
  /** Present when several replicas share the store: what the others' sidecars did, for operators. */
  private final Optional<SharedRoutes> replicas;

  public AdminService(Migrations migrator, RoutingService routing, AckTracker tracker, AuditLog audit,
      Optional<SharedRoutes> replicas, dev.turnout.controlplane.campaign.Campaigns campaigns) {
    this.campaigns = campaigns;
    this.migrator = migrator;
    this.routing = routing;
    this.tracker = tracker;
    this.audit = audit;
    this.replicas = replicas;
  }

  private final dev.turnout.controlplane.campaign.Campaigns campaigns;

  // ---- campaigns

  private static dev.turnout.controlplane.campaign.CampaignFile campaignFile(
      dev.turnout.admin.v1.CampaignRequest request) {
    if (request.getYaml().isBlank()) {
      throw invalid("the campaign file is empty");
    }
    try {
      return dev.turnout.controlplane.campaign.CampaignFile.parse(request.getYaml(),
          request.getFileName().isBlank() ? "campaign file" : request.getFileName());
    } catch (IllegalArgumentException e) {
      throw invalid(e.getMessage());
    }
  }

  private dev.turnout.admin.v1.Campaign campaignProto(dev.turnout.migrator.campaign.Campaign c) {
    java.util.function.Function<String, Optional<Migration>> lookup = id -> {
      try {
        return migrator.get(id);
      } catch (MigrationException e) {
        return Optional.empty();
      }
    };
    if (migrator.current() == null) {
      // Not the leader: each lookup would read every migration from the store, once per member (a console polling
      // a 400-member campaign's page on a follower made 400 reads a poll). Read them once.
      try {
        java.util.Map<String, Migration> all = new java.util.HashMap<>();
        migrator.list().forEach(m -> all.put(m.id(), m));
        lookup = id -> Optional.ofNullable(all.get(id));
      } catch (MigrationException e) {
        // the store is away for a moment: each member says so as it did
      }
    }
    return CampaignProtos.campaign(c, lookup, migrator::figures, campaigns);
  }

  private dev.turnout.migrator.campaign.Campaign existingCampaign(String id) throws MigrationException {
    if (id.isBlank()) {
      throw invalid("campaign id is required");
    }
    return campaigns.get(id).orElseThrow(() -> Status.NOT_FOUND.withDescription("no campaign " + id)
        .asRuntimeException());
  }

  /** The file's plan against the routes now; an invalid file or a selector that matches nothing: INVALID_ARGUMENT. */
  private dev.turnout.controlplane.campaign.Campaigns.Planned planned(dev.turnout.admin.v1.CampaignRequest request)
      throws MigrationException {
    dev.turnout.controlplane.campaign.CampaignFile file = campaignFile(request);
    try {
      return campaigns.plan(file);
    } catch (IllegalArgumentException e) {
      throw invalid(e.getMessage());
    }
  }

  /** Every unfinished campaign as the admin API answers it (for the metrics); empty when they cannot be read. */
  List<dev.turnout.admin.v1.Campaign> unfinishedCampaigns() {
    try {
      return campaigns.list().stream().filter(c -> c.state().status() != dev.turnout.migrator.campaign
          .CampaignStatus.COMPLETED && c.state().status() != dev.turnout.migrator.campaign.CampaignStatus.ABORTED)
          .map(this::campaignProto).toList();
    } catch (MigrationException e) {
      return List.of();
    }
  }

  @Override
  public void planCampaign(dev.turnout.admin.v1.CampaignRequest request,
      StreamObserver<dev.turnout.admin.v1.CampaignPlan> response) {
    unary(response, () -> CampaignProtos.plan(planned(request)));
  }

  @Override
  public void startCampaign(dev.turnout.admin.v1.CampaignRequest request,
      StreamObserver<dev.turnout.admin.v1.Campaign> response) {
    unary(response, () -> {
      dev.turnout.controlplane.campaign.CampaignFile file = campaignFile(request);
      try {
        return campaignProto(campaigns.start(file));
      } catch (IllegalArgumentException e) {
        throw invalid(e.getMessage());
      }
    });
  }

  @Override
  public void getCampaign(dev.turnout.admin.v1.CampaignId request,
      StreamObserver<dev.turnout.admin.v1.Campaign> response) {
    unary(response, () -> campaignProto(existingCampaign(request.getId())));
  }

  @Override
  public void listCampaigns(dev.turnout.admin.v1.ListCampaignsRequest request,
      StreamObserver<dev.turnout.admin.v1.ListCampaignsResponse> response) {
    unary(response, () -> dev.turnout.admin.v1.ListCampaignsResponse.newBuilder().addAllCampaigns(
        campaigns.list().stream().map(this::campaignProto).toList()).build());
  }

  @Override
  public void watchCampaign(dev.turnout.admin.v1.CampaignId request,
      StreamObserver<dev.turnout.admin.v1.Campaign> response) {
    String id = request.getId();
    try {
      existingCampaign(id);
    } catch (StatusRuntimeException | MigrationException e) {
      response.onError(status(e));
      return;
    }
    ServerCallStreamObserver<dev.turnout.admin.v1.Campaign> call =
        (ServerCallStreamObserver<dev.turnout.admin.v1.Campaign>) response;
    java.util.concurrent.atomic.AtomicReference<dev.turnout.admin.v1.Campaign> last =
        new java.util.concurrent.atomic.AtomicReference<>();
    java.util.concurrent.atomic.AtomicReference<java.util.concurrent.ScheduledFuture<?>> ticking =
        new java.util.concurrent.atomic.AtomicReference<>();
    boolean[] done = {false};
    Runnable send = () -> {
      synchronized (last) {
        if (call.isCancelled() || done[0]) {
          return;
        }
        try {
          Optional<dev.turnout.migrator.campaign.Campaign> c = campaigns.get(id);
          if (c.isEmpty()) {
            return;
          }
          dev.turnout.admin.v1.Campaign now = campaignProto(c.get());
          if (now.equals(last.get())) {
            return; // nothing new: a watcher hears of changes, not of seconds
          }
          last.set(now);
          call.onNext(now);
          if (now.getStatus().equals("COMPLETED") || now.getStatus().equals("ABORTED")) {
            done[0] = true;
            call.onCompleted();
            ticking.get().cancel(false);
          }
        } catch (MigrationException | RuntimeException e) {
          // the store is away for a moment: try at the next tick
        }
      }
    };
    java.util.function.Consumer<dev.turnout.migrator.campaign.Campaign> listener = c -> {
      if (c.id().equals(id)) {
        send.run();
      }
    };
    // Members' phases and figures move between the campaign's saved states: look every 500 ms too.
    ticking.set(TICKER.scheduleWithFixedDelay(send, 0, 500, java.util.concurrent.TimeUnit.MILLISECONDS));
    call.setOnCancelHandler(() -> {
      campaigns.removeListener(listener);
      ticking.get().cancel(false);
    });
    campaigns.addListener(listener);
  }

  private void campaignCommand(dev.turnout.admin.v1.CampaignId request,
      StreamObserver<dev.turnout.admin.v1.Campaign> response, String what,
      dev.turnout.controlplane.campaign.Campaigns.Command command) {
    unary(response, () -> {
      existingCampaign(request.getId());
      return campaignProto(campaigns.command(request.getId(), what, command));
    });
  }

  @Override
  public void pauseCampaign(dev.turnout.admin.v1.CampaignId request,
      StreamObserver<dev.turnout.admin.v1.Campaign> response) {
    campaignCommand(request, response, "pause", (c, now) -> c.pause(now));
  }

  @Override
  public void resumeCampaign(dev.turnout.admin.v1.CampaignId request,
      StreamObserver<dev.turnout.admin.v1.Campaign> response) {
    campaignCommand(request, response, "resume", (c, now) -> c.resume(now));
  }

  @Override
  public void approveCampaign(dev.turnout.admin.v1.CampaignId request,
      StreamObserver<dev.turnout.admin.v1.Campaign> response) {
    campaignCommand(request, response, "approve", (c, now) -> c.approve(now));
  }

  @Override
  public void abortCampaign(dev.turnout.admin.v1.CampaignId request,
      StreamObserver<dev.turnout.admin.v1.Campaign> response) {
    campaignCommand(request, response, "abort", (c, now) -> c.abort(now));
  }

  /** A call body that may fail with a status or a domain exception. */
  private interface Call<T> {
    T run() throws Exception;
  }

  private static <T> void unary(StreamObserver<T> response, Call<T> call) {
    T result;
    try {
      result = call.run();
    } catch (Exception e) {
      response.onError(status(e));
      return;
    }
    response.onNext(result);
    response.onCompleted();
  }

  /** The status a failed call answers with: the domain's exceptions mapped to the codes that mean what they say. */
  private static StatusRuntimeException status(Exception e) {
    if (e instanceof StatusRuntimeException s) {
      return s;
    }
    if (e instanceof MigrationConflictException c) {
      Status status = switch (c.kind()) {
        case ALREADY_EXISTS -> Status.ALREADY_EXISTS;
        case NOT_FOUND -> Status.NOT_FOUND;
        case FAILED_PRECONDITION -> Status.FAILED_PRECONDITION;
        case UNAVAILABLE -> Status.UNAVAILABLE;
        case ABORTED -> Status.ABORTED;
        case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT;
      };
      return status.withDescription(e.getMessage()).asRuntimeException();
    }
    if (e instanceof MigrationException || e instanceof StoreException) {
      return Status.UNAVAILABLE.withDescription(e.getMessage()).asRuntimeException();
    }
    if (e instanceof UnknownDatabaseException) {
      return Status.NOT_FOUND.withDescription(e.getMessage()).asRuntimeException();
    }
    if (e instanceof RouteConflictException) {
      return Status.ABORTED.withDescription(e.getMessage()).asRuntimeException();
    }
    if (e instanceof InterruptedException) {
      Thread.currentThread().interrupt();
      return Status.CANCELLED.withDescription("interrupted").asRuntimeException();
    }
    return Status.INTERNAL.withDescription(String.valueOf(e.getMessage())).asRuntimeException();
  }

  private static StatusRuntimeException invalid(String message) {
    return Status.INVALID_ARGUMENT.withDescription(message).asRuntimeException();
  }

  @Override
  public void startMigration(StartMigrationRequest request, StreamObserver<dev.turnout.admin.v1.Migration> response) {
    unary(response, () -> {
      Migration.Spec spec = spec(request);
      if (request.getOptions().getDryRun()) {
        return dev.turnout.admin.v1.Migration.newBuilder().setDatabase(spec.database())
            .addAllDatabases(spec.databases())
            .setSource(spec.source().toString()).setTarget(spec.target().toString()).setPhase("DRY_RUN")
            .addAllPlannedActions(migrator.dryRun(spec)).build();
      }
      return toProto(migrator.start(spec, XdsRouter.stillRoutedAsPlanned(routing::table, spec, "start it again")));
    });
  }

  private Migration.Spec spec(StartMigrationRequest request) throws MigrationException {
    RoutingTable table = routing.table();
    String database = database(request, table);
    DatabaseRoute route = table.get(database).orElseThrow(() -> Status.NOT_FOUND.withDescription(
        "unknown database '" + database + "'; known: " + table.databases().keySet()).asRuntimeException());
    Optional<Migration.Aurora> aurora = aurora(database, request.getOptions());
    // A migration under way drains the route: name it rather than the empty route it left.
    migrator.list().stream().filter(m -> m.spec().databases().contains(database) && !m.phase().isTerminal())
        .findFirst().ifPresent(m -> {
          throw Status.ALREADY_EXISTS.withDescription("database '" + database + "' already has migration " + m.id()
              + " in " + m.phase() + (m.phase() == Phase.COMPLETED ? "; finalize it or roll it back first" : "")
              + " (turnout migrate status " + m.id() + ")").asRuntimeException();
        });
    Endpoint source = route.endpoint().orElseThrow(() -> Status.FAILED_PRECONDITION.withDescription(
        "database '" + database + "' is drained (no current endpoint): nothing to migrate from").asRuntimeException());
    // The fence and the promotion act on the server: every database routed to it moves with this one.
    ServerAddress sourceServer = new ServerAddress(source.host(), source.port());
    java.util.List<String> coTenants = XdsRouter.routedTo(table, sourceServer).stream()
        .filter(d -> !d.equals(database)).toList();
    String targetText = request.getTarget();
    if (targetText.isBlank() && aurora.isPresent()) {
      // From AWS's descriptions of the cluster or the instance, never from the route: the route holds the address
      // the instance's endpoint name resolved to (127.0.0.1, 10.x), from which no cluster endpoint follows.
      targetText = migrator.defaultTarget(database, aurora).toString();
    }
    if (targetText.isBlank()) {
      throw invalid("database '" + database + "': target is required (host:port of the standby to move to)");
    }
    Endpoint target;
    try {
      target = Endpoint.parse(targetText);
    } catch (IllegalArgumentException e) {
      throw invalid("database '" + database + "': target: " + e.getMessage());
    }
    if (source.equals(target)) {
      throw invalid("database '" + database + "': target " + target + " is its current endpoint");
    }
    MigrationOptions o = request.getOptions();
    Migration.Options defaults = Migration.Options.defaults();
    java.time.Duration window = o.hasValidationWindow() ? duration(database, "validation_window", o.getValidationWindow())
        : defaults.validationWindow();
    java.time.Duration deadline = o.hasPhaseDeadline() ? duration(database, "phase_deadline", o.getPhaseDeadline())
        : defaults.phaseDeadline();
    if (window.compareTo(MAX_WINDOW) > 0) {
      throw invalid("database '" + database + "': validation_window " + dev.turnout.controlplane.config.Durations.format(window)
          + " is over the maximum " + dev.turnout.controlplane.config.Durations.format(MAX_WINDOW));
    }
    if (o.getMaxLagBytes() < 0) {
      throw invalid("database '" + database + "': max_lag_bytes " + o.getMaxLagBytes() + " is negative");
    }
    Optional<Migration.Replica> replica = Optional.empty();
    if (o.hasCreateReplica()) {
      var r = o.getCreateReplica();
      if (r.getSourceDataDir().isBlank() || r.getTargetDataDir().isBlank() || r.getBinDir().isBlank()) {
        throw invalid("database '" + database + "': create_replica needs source_data_dir, target_data_dir and bin_dir");
      }
      replica = Optional.of(new Migration.Replica(Path.of(r.getSourceDataDir()), Path.of(r.getTargetDataDir()),
          Path.of(r.getBinDir())));
    }
    java.time.Duration grace = Migration.Cutover.DEFAULT_GRACE;
    if (o.hasQuiesceGrace()) {
      Duration g = o.getQuiesceGrace();
      if (g.getSeconds() < 0 || g.getNanos() < 0 || g.getNanos() > 999_999_999) {
        throw invalid("database '" + database + "': quiesce_grace must be zero or a positive duration");
      }
      grace = java.time.Duration.ofSeconds(g.getSeconds(), g.getNanos());
    }
    if (grace.compareTo(deadline) >= 0) {
      throw invalid("database '" + database + "': quiesce_grace " + dev.turnout.controlplane.config.Durations.format(grace)
          + " must be shorter than the phase deadline " + dev.turnout.controlplane.config.Durations.format(deadline) + ", which QUIESCING must also meet");
    }
    return new Migration.Spec(database, sourceServer,
        new ServerAddress(target.host(), target.port()), new Migration.Options(window,
            o.getMaxLagBytes() == 0 ? defaults.maxLagBytes() : o.getMaxLagBytes(), deadline,
            o.getAllowDroppingStaleSlots(), replica, new Migration.Cutover(grace, o.getRollbackPreparedTransactions()),
            o.getAllowUnroutedDatabases(), bake(database, o), o.getWithoutReverseReplication()),
        aurora).withCoTenants(coTenants);
  }

  /** The bake asked for: {@link dev.turnout.migrator.bake.Bake#DEFAULT_DURATION} when unset, zero to skip, limits by signal name. */
  private static dev.turnout.migrator.bake.Bake bake(String database, MigrationOptions o) {
    java.time.Duration length = dev.turnout.migrator.bake.Bake.DEFAULT_DURATION;
    if (o.hasBake()) {
      Duration d = o.getBake();
      if (d.getSeconds() < 0 || d.getNanos() < 0 || d.getNanos() > 999_999_999) {
        throw invalid("database '" + database + "': bake must be zero (no bake) or a positive duration");
      }
      length = java.time.Duration.ofSeconds(d.getSeconds(), d.getNanos());
      if (length.compareTo(dev.turnout.migrator.bake.Bake.MAX_DURATION) > 0) {
        throw invalid("database '" + database + "': bake " + dev.turnout.controlplane.config.Durations.format(length) + " is over the maximum "
            + dev.turnout.controlplane.config.Durations.format(dev.turnout.migrator.bake.Bake.MAX_DURATION));
      }
    }
    java.util.Map<dev.turnout.migrator.bake.Signal, dev.turnout.migrator.bake.Limit> limits = new java.util.EnumMap<>(
        dev.turnout.migrator.bake.Signal.class);
    for (java.util.Map.Entry<String, String> e : o.getBakeLimitsMap().entrySet()) {
      try {
        limits.put(dev.turnout.migrator.bake.Signal.named(e.getKey()), dev.turnout.migrator.bake.Limit.parse(e.getValue()));
      } catch (IllegalArgumentException bad) {
        throw invalid("database '" + database + "': bake_limits: " + bad.getMessage());
      }
    }
    return dev.turnout.migrator.bake.Bake.of(length).withNoAutoRollback(o.getNoAutoRollback()).withLimits(limits);
  }

  /**
   * The database the migration is named after: the one the request names; or, for a request naming a server (or
   * only an RDS instance), the first in name order of those routed to it.
   */
  private String database(StartMigrationRequest request, RoutingTable table) {
    String database = request.getDatabase();
    String server = request.getServer();
    if (!database.isBlank() && !server.isBlank()) {
      throw invalid("give a database or a server, not both (a migration moves the database's whole server)");
    }
    if (!database.isBlank()) {
      return database;
    }
    if (!server.isBlank()) {
      Endpoint named;
      try {
        named = Endpoint.parse(server);
      } catch (IllegalArgumentException e) {
        throw invalid("server: " + e.getMessage());
      }
      java.util.List<String> on = XdsRouter.databasesOn(routing, named);
      if (on.isEmpty()) {
        throw Status.NOT_FOUND.withDescription("no database is routed to " + server + " (routes: " + routes(table)
            + ")").asRuntimeException();
      }
      return on.get(0);
    }
    MigrationOptions o = request.getOptions();
    if (o.hasAurora() && !o.getAurora().getSourceInstance().isBlank()) {
      String instance = o.getAurora().getSourceInstance().toLowerCase(java.util.Locale.ROOT);
      java.util.List<String> on = XdsRouter.databasesOnRdsInstance(routing, instance);
      if (on.isEmpty()) {
        throw Status.NOT_FOUND.withDescription("no database is routed to RDS instance " + instance + " by its"
            + " endpoint name (" + instance + ".<suffix>.<region>.rds.amazonaws.com); name a database or the server"
            + " (host:port)").asRuntimeException();
      }
      return on.get(0);
    }
    throw invalid("database is required (or server: host:port, to move every database routed to it)");
  }

  private static String routes(RoutingTable table) {
    return table.databases().values().stream().map(r -> r.name() + " -> " + r.endpoint().map(Endpoint::toString)
        .orElse("drained")).sorted().collect(java.util.stream.Collectors.joining(", "));
  }

  private static Optional<Migration.Aurora> aurora(String database, MigrationOptions o) {
    if (!o.hasAurora()) {
      return Optional.empty();
    }
    if (o.hasCreateReplica()) {
      throw invalid("database '" + database + "': aurora and create_replica exclude each other");
    }
    var a = o.getAurora();
    try {
      return Optional.of(new Migration.Aurora(a.getSourceInstance(), a.getTargetCluster(),
          a.getCreateInstanceClass().isBlank() ? Optional.empty() : Optional.of(a.getCreateInstanceClass())));
    } catch (IllegalArgumentException e) {
      throw invalid("database '" + database + "': aurora: " + e.getMessage());
    }
  }

  private static java.time.Duration duration(String database, String field, Duration d) {
    if (d.getSeconds() < 0 || d.getNanos() < 0 || d.getNanos() > 999_999_999 || (d.getSeconds() == 0 && d.getNanos() == 0)) {
      throw invalid("database '" + database + "': " + field + " must be a positive duration");
    }
    return java.time.Duration.ofSeconds(d.getSeconds(), d.getNanos());
  }

  private Migration existing(String id) throws MigrationException {
    if (id.isBlank()) {
      throw invalid("migration id is required");
    }
    return migrator.get(id).orElseThrow(() ->
        Status.NOT_FOUND.withDescription("no migration with id '" + id + "'").asRuntimeException());
  }

  @Override
  public void getMigration(GetMigrationRequest request, StreamObserver<dev.turnout.admin.v1.Migration> response) {
    unary(response, () -> toProto(existing(request.getId())));
  }

  @Override
  public void listMigrations(ListMigrationsRequest request, StreamObserver<ListMigrationsResponse> response) {
    unary(response, () -> {
      ListMigrationsResponse.Builder b = ListMigrationsResponse.newBuilder();
      migrator.list().stream().filter(m -> request.getDatabase().isEmpty() || m.database().equals(request.getDatabase()))
          .forEach(m -> b.addMigrations(toProto(m)));
      return b.build();
    });
  }

  @Override
  public void watchMigration(WatchMigrationRequest request, StreamObserver<dev.turnout.admin.v1.Migration> response) {
    Migration first;
    try {
      first = existing(request.getId());
    } catch (StatusRuntimeException | MigrationException e) {
      response.onError(status(e));
      return;
    }
    ServerCallStreamObserver<dev.turnout.admin.v1.Migration> call =
        (ServerCallStreamObserver<dev.turnout.admin.v1.Migration>) response;
    Object lock = new Object();
    boolean[] done = {false};
    java.util.concurrent.atomic.AtomicReference<java.util.concurrent.ScheduledFuture<?>> ticking =
        new java.util.concurrent.atomic.AtomicReference<>();
    Consumer<Migration> listener = new Consumer<>() {
      @Override
      public void accept(Migration m) {
        if (!m.id().equals(first.id())) {
          return;
        }
        synchronized (lock) {
          if (done[0] || call.isCancelled()) {
            return;
          }
          call.onNext(toProto(m));
          if (isSettled(m.phase())) {
            done[0] = true;
            call.onCompleted();
            migrator.removeListener(this);
            var t = ticking.get();
            if (t != null) {
              t.cancel(false);
            }
          }
        }
      }
    };
    // Figures move between saved states: send the state with fresh figures every second until it settles.
    java.util.concurrent.ScheduledFuture<?> ticks = TICKER.scheduleAtFixedRate(
        () -> latest(first.id()).ifPresent(listener), 1, 1, java.util.concurrent.TimeUnit.SECONDS);
    ticking.set(ticks);
    call.setOnCancelHandler(() -> {
      migrator.removeListener(listener);
      ticks.cancel(false);
    });
    migrator.addListener(listener);
    listener.accept(latest(first.id()).orElse(first)); // the state now, in case nothing changes again
    if (isSettled(latest(first.id()).orElse(first).phase())) {
      ticks.cancel(false);
    }
  }

  /** A watched migration's state now; empty when the store cannot be read this time (the watch looks again). */
  private Optional<Migration> latest(String id) {
    try {
      return migrator.get(id);
    } catch (MigrationException e) {
      return Optional.empty();
    }
  }

  private static final java.util.concurrent.ScheduledExecutorService TICKER =
      java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
          new com.google.common.util.concurrent.ThreadFactoryBuilder().setNameFormat("turnout-watch").setDaemon(true).build());

  static boolean isSettled(Phase phase) {
    return phase == Phase.COMPLETED || phase == Phase.HALTED || phase.isTerminal();
  }

  @Override
  public void rollbackMigration(RollbackMigrationRequest request, StreamObserver<dev.turnout.admin.v1.Migration> response) {
    unary(response, () -> {
      existing(request.getId());
      return toProto(migrator.rollback(request.getId(), request.getConsentToLoseWrites()));
    });
  }

  @Override
  public void finalizeMigration(FinalizeMigrationRequest request, StreamObserver<dev.turnout.admin.v1.Migration> response) {
    unary(response, () -> {
      existing(request.getId());
      return toProto(migrator.finalizeMigration(request.getId()));
    });
  }

  @Override
  public void resumeMigration(dev.turnout.admin.v1.ResumeMigrationRequest request,
      StreamObserver<dev.turnout.admin.v1.Migration> response) {
    unary(response, () -> {
      existing(request.getId());
      return toProto(migrator.resume(request.getId()));
    });
  }

  @Override
  public void listDatabases(ListDatabasesRequest request, StreamObserver<ListDatabasesResponse> response) {
    unary(response, () -> {
      ListDatabasesResponse.Builder b = ListDatabasesResponse.newBuilder();
      routing.table().databases().values().forEach(r -> b.addDatabases(toProto(r)));
      return b.build();
    });
  }

  private Database toProto(DatabaseRoute r) {
    return Database.newBuilder().setName(r.name()).setListenPort(r.listenPort())
        .setEndpoint(r.endpoint().map(Endpoint::toString).orElse("")).addAllServices(r.services())
        .setEndpointVersion(routing.endpointVersion(r.name())).setHostname(routing.hostname(r.name()).orElse(""))
        .setUnresolved(routing.unresolved(r.name()).orElse("")).build();
  }

  @Override
  public void getRoutingSnapshot(GetRoutingSnapshotRequest request, StreamObserver<RoutingSnapshot> response) {
    unary(response, () -> snapshot(request));
  }

  /** The summary of every database (what {@code /metrics} and a bare {@code turnout routes} show). */
  public RoutingSnapshot snapshot(String onlyNode) {
    return snapshot(GetRoutingSnapshotRequest.newBuilder().setNode(onlyNode).build());
  }

  static final int SUMMARY_NAMED = 5;
  static final int DEFAULT_PAGE = 500;
  static final int MAX_PAGE = 5000;

  /** How a sidecar stands with one database. */
  private enum NodeState { CURRENT, BEHIND, NACKED, GONE }

  /**
   * The routing snapshot: every database (or the one asked for) with its sidecars counted by state, and either
   * the first few that are not current (the summary) or, when filtered or asked for all, every matching sidecar a
   * page at a time.
   */
  public RoutingSnapshot snapshot(GetRoutingSnapshotRequest request) {
    String state = request.getState();
    if (!state.isEmpty() && !state.equals("behind") && !state.equals("nacked")) {
      throw Status.INVALID_ARGUMENT.withDescription("state '" + state + "' is not one of: behind, nacked")
          .asRuntimeException();
    }
    if (request.getPageSize() < 0 || request.getPageSize() > MAX_PAGE) {
      throw Status.INVALID_ARGUMENT.withDescription("page_size " + request.getPageSize() + " is not within 0.."
          + MAX_PAGE).asRuntimeException();
    }
    // A page token is "D.N": resume at the D-th database listed, after its first N matching sidecars. A later page
    // then starts where the last ended instead of walking every earlier database's sidecars again.
    int startDb = 0;
    long startNode = 0;
    if (!request.getPageToken().isEmpty()) {
      String[] parts = request.getPageToken().split("\\.");
      try {
        startDb = parts.length == 2 ? Integer.parseInt(parts[0]) : -1;
        startNode = parts.length == 2 ? Long.parseLong(parts[1]) : -1;
      } catch (NumberFormatException e) {
        startDb = -1;
      }
      if (startDb < 0 || startNode < 0) {
        throw Status.INVALID_ARGUMENT.withDescription("page_token '" + request.getPageToken()
            + "' is not one this server gave").asRuntimeException();
      }
    }
    boolean firstPage = request.getPageToken().isEmpty();
    boolean listing = request.getAllNodes() || !request.getNode().isEmpty() || !request.getService().isEmpty()
        || !state.isEmpty();
    int pageSize = request.getPageSize() == 0 ? DEFAULT_PAGE : request.getPageSize();
    RoutingSnapshot.Builder b = RoutingSnapshot.newBuilder().setVersion(routing.version());
    var nodes = tracker.nodes();
    if (!request.getNode().isEmpty() && nodes.stream().noneMatch(n -> n.nodeId().equals(request.getNode()))) {
      throw Status.NOT_FOUND.withDescription("no node '" + request.getNode() + "' has connected since the control"
          + " plane started (or it has been gone longer than xds.forget_nodes_after)").asRuntimeException();
    }
    java.util.Collection<DatabaseRoute> databases = routing.table().databases().values();
    if (!request.getDatabase().isEmpty()) {
      DatabaseRoute only = routing.table().get(request.getDatabase()).orElseThrow(() -> Status.NOT_FOUND
          .withDescription("unknown database '" + request.getDatabase() + "'; known: "
              + String.join(", ", routing.table().databases().keySet())).asRuntimeException());
      databases = List.of(only);
    }
    int listed = 0;
    String next = "";
    int index = -1;
    for (DatabaseRoute r : databases) {
      index++;
      if (listing && index < startDb) {
        continue;
      }
      if (listing && !firstPage && listed >= pageSize) {
        break; // a later page ends with its last sidecar; the first one counts every database for the summary
      }
      long skip = listing && index == startDb ? startNode : 0;
      long match = 0;
      Database db = toProto(r);
      DatabaseRouting.Builder d = DatabaseRouting.newBuilder().setDatabase(db);
      int[] counts = new int[NodeState.values().length];
      for (NodeStatus n : nodes) {
        if (!r.allows(n.cluster()) || (!request.getNode().isEmpty() && !n.nodeId().equals(request.getNode()))
            || (!request.getService().isEmpty() && !n.cluster().equals(request.getService()))) {
          continue;
        }
        NodeStatus.TypeStatus eds = n.types().get(XdsType.EDS);
        boolean current = eds != null && eds.ackedVersion() >= db.getEndpointVersion();
        // A node's NACK is of its EDS stream, not of one database: it counts against the databases it lacks.
        NodeState st = !n.connected() ? NodeState.GONE : current ? NodeState.CURRENT
            : eds != null && eds.lastNack().isPresent() ? NodeState.NACKED : NodeState.BEHIND;
        if (!state.isEmpty() && !st.name().equalsIgnoreCase(state)) {
          continue;
        }
        counts[st.ordinal()]++;
        boolean named;
        if (listing) {
          named = match >= skip && listed < pageSize;
          if (match >= skip && !named && next.isEmpty()) {
            next = index + "." + match;
          }
          match++;
          listed += named ? 1 : 0;
        } else {
          named = st != NodeState.CURRENT && st != NodeState.GONE && d.getNodesCount() < SUMMARY_NAMED;
        }
        if (!named) {
          continue;
        }
        NodeAck.Builder ack = NodeAck.newBuilder().setNodeId(n.nodeId()).setCluster(n.cluster())
            .setConnected(n.connected());
        if (eds != null) {
          ack.setSentVersion(eds.sentVersion()).setAckedVersion(eds.ackedVersion()).setCurrent(current);
          eds.lastNack().ifPresent(nack -> ack.setNackError(nack.error()));
        }
        d.addNodes(ack);
      }
      d.setNodesCurrent(counts[NodeState.CURRENT.ordinal()]).setNodesBehind(counts[NodeState.BEHIND.ordinal()])
          .setNodesNacked(counts[NodeState.NACKED.ordinal()]).setNodesGone(counts[NodeState.GONE.ordinal()]);
      b.addDatabases(d);
    }
    if (!next.isEmpty()) {
      b.setNextPageToken(next);
    }
    if (replicas.isPresent()) {
      var shared = replicas.get();
      b.setReplica(shared.replicaId());
    }
    if (replicas.isPresent() && !request.getWithoutReplicaReports()) {
      var shared = replicas.get();
      try {
        for (var r : shared.reports()) {
          if (request.getDatabase().isEmpty() || request.getDatabase().equals(r.database())) {
            b.addReplicaReports(ReplicaReport.newBuilder().setReplica(r.replica()).setLive(r.live())
                .setDatabase(r.database()).setVersion(r.version()).setAckedTotal(r.ackedBy().size())
                .addAllAckedBy(listing ? r.ackedBy() : r.ackedBy().subList(0, Math.min(SUMMARY_NAMED,
                    r.ackedBy().size())))
                .setFailure(r.failure()));
          }
        }
      } catch (dev.turnout.controlplane.store.StoreException e) {
        throw Status.UNAVAILABLE.withDescription(e.getMessage()).asRuntimeException();
      }
    }
    return b.build();
  }

  @Override
  public void listNodes(ListNodesRequest request, StreamObserver<ListNodesResponse> response) {
    unary(response, () -> {
      ListNodesResponse.Builder b = ListNodesResponse.newBuilder();
      String here = replicas.map(SharedRoutes::replicaId).orElse("");
      for (SharedRoutes.NodeRow n : localNodes(tracker)) {
        b.addNodes(toProto(n).setReplica(here));
      }
      if (replicas.isPresent()) {
        try {
          for (SharedRoutes.NodeRow n : replicas.get().nodes()) {
            if (!n.replica().equals(here)) { // this replica's own are the tracker's, fresher than the store's
              b.addNodes(toProto(n).setReplica(n.replica()).setConnected(n.connected() && n.live()));
            }
          }
        } catch (dev.turnout.controlplane.store.StoreException e) {
          throw Status.UNAVAILABLE.withDescription(e.getMessage()).asRuntimeException();
        }
      }
      return b.build();
    });
  }

  private static final int MAX_REASON_LENGTH = 500;

  /** A route change by hand as it was made, before its ACKs are in. */
  private record Started(String by, Optional<Endpoint> previous, Optional<Endpoint> current, long version,
      CompletableFuture<RoutingService.RouteResult> acks) {}

  @Override
  public void setRoute(SetRouteRequest request, StreamObserver<SetRouteResponse> response) {
    Started started;
    try {
      started = changeByHand(request);
    } catch (Exception e) {
      response.onError(status(e));
      return;
    }
    // The answer waits for the sidecars without holding a thread: the ACK tracker completes the future.
    started.acks().whenComplete((result, error) -> {
      SetRouteResponse.Builder b = SetRouteResponse.newBuilder().setDatabase(request.getDatabase())
          .setBy(started.by());
      if (error == null) {
        b.setPrevious(text(result.previous())).setCurrent(text(result.current())).setVersion(result.version())
            .setChanged(!result.previous().equals(result.current())).setAcknowledged(true)
            .addAllAckedBy(result.ack().ackedBy());
      } else {
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        b.setPrevious(text(started.previous())).setCurrent(text(started.current())).setVersion(started.version())
            .setChanged(!started.previous().equals(started.current())).setAcknowledged(false)
            .setFailure(String.valueOf(cause.getMessage())).addAllAckedBy(ackedHere(request.getDatabase(),
                started.version()));
        if (cause instanceof RouteNotAcknowledgedException late) {
          late.stragglers().forEach(s -> b.addStragglers(Straggler.newBuilder().setNodeId(s.nodeId())
              .setCluster(s.cluster()).setAckedVersion(s.ackedVersion()).setNackError(s.error())));
        }
      }
      response.onNext(b.build());
      response.onCompleted();
    });
  }

  /** Validates the request and makes the change (refused while a migration of the database is unfinished). */
  private Started changeByHand(SetRouteRequest request) throws Exception {
    String database = request.getDatabase();
    if (database.isBlank()) {
      throw invalid("database is required");
    }
    RoutingTable table = routing.table();
    if (table.get(database).isEmpty()) {
      throw Status.NOT_FOUND.withDescription("unknown database '" + database + "'; known: "
          + table.databases().keySet()).asRuntimeException();
    }
    String reason = request.getReason().strip();
    if (reason.isEmpty()) {
      throw invalid("database '" + database + "': a reason is required; it is recorded with the change");
    }
    if (reason.length() > MAX_REASON_LENGTH || reason.chars().anyMatch(Character::isISOControl)) {
      throw invalid("database '" + database + "': the reason must be one line of at most " + MAX_REASON_LENGTH
          + " characters");
    }
    Optional<Endpoint> endpoint = switch (request.getChangeCase()) {
      case ENDPOINT -> Optional.of(endpoint(database, "endpoint", request.getEndpoint()));
      case DRAIN -> Optional.empty();
      case CHANGE_NOT_SET -> throw invalid("database '" + database + "': give the endpoint to route to, or drain");
    };
    Optional<Endpoint> expected = request.getExpectedCurrent().isBlank() ? Optional.empty()
        : Optional.of(endpoint(database, "expected_current", request.getExpectedCurrent()));
    RoutingService.ByHand byHand = new RoutingService.ByHand(new RouteRecord.Operator(caller(), reason), expected);
    return migrator.outsideMigrations(database, () -> {
      Optional<Endpoint> previous = routing.table().get(database).flatMap(DatabaseRoute::endpoint);
      CompletableFuture<RoutingService.RouteResult> acks;
      try {
        acks = routing.changeByHand(database, endpoint, byHand);
      } catch (IllegalArgumentException e) { // a DNS name that does not resolve
        throw invalid(e.getMessage());
      }
      return new Started(byHand.operator().identity(), previous, routing.table().get(database).flatMap(DatabaseRoute::endpoint),
          routing.endpointVersion(database), acks);
    });
  }

  private static Endpoint endpoint(String database, String field, String text) {
    try {
      return Endpoint.parse(text);
    } catch (IllegalArgumentException e) {
      throw invalid("database '" + database + "': " + field + ": " + e.getMessage());
    }
  }

  private static String text(Optional<Endpoint> endpoint) {
    return endpoint.map(Endpoint::toString).orElse("");
  }

  /**
   * Who is calling, as a route changed by hand records it: the client certificate's CN over mutual TLS; without
   * TLS nobody is authenticated, and the caller's address is all there is to say.
   */
  static String caller() {
    String identity = PeerIdentity.KEY.get();
    if (identity != null) {
      return identity;
    }
    SocketAddress address = PeerIdentity.ADDRESS.get();
    if (address instanceof InetSocketAddress inet) {
      return "anonymous@" + (inet.getAddress() != null ? inet.getAddress().getHostAddress() : inet.getHostString());
    }
    return address == null ? "anonymous" : "anonymous@" + address;
  }

  /** This replica's connected sidecars allowed to reach {@code database} that have ACKed {@code version}. */
  private java.util.List<String> ackedHere(String database, long version) {
    DatabaseRoute route = routing.table().get(database).orElse(null);
    java.util.List<String> acked = new java.util.ArrayList<>();
    for (NodeStatus n : tracker.nodes()) {
      if (route != null && n.connected() && route.allows(n.cluster()) && n.ackedVersion(XdsType.EDS) >= version) {
        acked.add(n.nodeId());
      }
    }
    return acked;
  }

  private static final int DEFAULT_HISTORY_PAGE = 20;
  private static final int MAX_HISTORY_PAGE = 100;

  @Override
  public void getRouteHistory(GetRouteHistoryRequest request, StreamObserver<RouteHistory> response) {
    unary(response, () -> {
      String database = request.getDatabase();
      if (database.isBlank()) {
        throw invalid("database is required");
      }
      if (request.getPageSize() < 0 || request.getBeforeVersion() < 0) {
        throw invalid("database '" + database + "': page_size and before_version must not be negative");
      }
      int size = request.getPageSize() == 0 ? DEFAULT_HISTORY_PAGE : Math.min(request.getPageSize(), MAX_HISTORY_PAGE);
      long before = request.getBeforeVersion() == 0 ? Long.MAX_VALUE : request.getBeforeVersion();
      // One more than asked for, to know whether an older page exists.
      var changes = routing.history(database, before, size + 1);
      RouteHistory.Builder b = RouteHistory.newBuilder().setDatabase(database);
      for (RouteStore.Recorded r : changes.subList(0, Math.min(size, changes.size()))) {
        RouteRecord record = r.record();
        RouteChange.Builder c = RouteChange.newBuilder().setVersion(record.version())
            .setEndpoint(text(record.route().endpoint())).setCause(record.cause())
            .setHostname(record.hostname().orElse(""));
        record.operator().ifPresent(o -> c.setBy(o.identity()).setReason(o.reason()));
        r.at().ifPresent(at -> c.setAt(Timestamp.newBuilder().setSeconds(at.getEpochSecond()).setNanos(at.getNano())));
        b.addChanges(c);
      }
      if (changes.size() > size) {
        b.setNextBeforeVersion(changes.get(size - 1).record().version());
      }
      return b.build();
    });
  }

  private static final int DEFAULT_AUDIT_PAGE = 20;
  private static final int MAX_AUDIT_PAGE = 500;

  @Override
  public void listAudit(ListAuditRequest request, StreamObserver<AuditPage> response) {
    unary(response, () -> {
      if (request.getPageSize() < 0 || request.getBeforeId() < 0) {
        throw invalid("page_size and before_id must not be negative");
      }
      int size = request.getPageSize() == 0 ? DEFAULT_AUDIT_PAGE : Math.min(request.getPageSize(), MAX_AUDIT_PAGE);
      long before = request.getBeforeId() == 0 ? Long.MAX_VALUE : request.getBeforeId();
      // One more than asked for, to know whether an older page exists.
      var entries = audit.list(before, size + 1);
      AuditPage.Builder page = AuditPage.newBuilder();
      for (AuditLog.Entry e : entries.subList(0, Math.min(size, entries.size()))) {
        AuditEntry.Builder b = AuditEntry.newBuilder().setId(e.id())
            .setAt(Timestamp.newBuilder().setSeconds(e.at().getEpochSecond()).setNanos(e.at().getNano()))
            .setWho(e.caller().identity()).setPeer(e.caller().address()).setCall(e.request().call())
            .setDatabase(e.request().database()).setMigrationId(e.request().migrationId())
            .setCode(e.outcome().code()).setDescription(e.outcome().description());
        e.request().details().forEach((name, value) -> b.addDetails(AuditField.newBuilder().setName(name)
            .setValue(value)));
        page.addEntries(b);
      }
      if (entries.size() > size) {
        page.setNextBeforeId(entries.get(size - 1).id());
      }
      return page.build();
    });
  }

  /** This replica's sidecars as the tracker sees them now, in the form the shared store keeps. */
  public static java.util.List<SharedRoutes.NodeRow> localNodes(AckTracker tracker) {
    java.util.List<SharedRoutes.NodeRow> rows = new java.util.ArrayList<>();
    for (NodeStatus n : tracker.nodes()) {
      com.google.common.collect.ImmutableList.Builder<SharedRoutes.TypeRow> types =
          com.google.common.collect.ImmutableList.builder();
      n.types().forEach((type, s) -> types.add(new SharedRoutes.TypeRow(type.name(), s.sentVersion(),
          s.ackedVersion(), s.lastNack().map(NodeStatus.Nack::error).orElse(""),
          s.lastNack().map(NodeStatus.Nack::version).orElse(0L))));
      rows.add(new SharedRoutes.NodeRow("", true, n.nodeId(), n.cluster(), n.connected(), types.build()));
    }
    return rows;
  }

  private static Node.Builder toProto(SharedRoutes.NodeRow n) {
    Node.Builder node = Node.newBuilder().setId(n.node()).setCluster(n.cluster()).setConnected(n.connected());
    for (SharedRoutes.TypeRow t : n.types()) {
      node.addTypes(TypeStatus.newBuilder().setType(t.type()).setSentVersion(t.sentVersion())
          .setAckedVersion(t.ackedVersion()).setNackError(t.nackError()).setNackedVersion(t.nackedVersion()));
    }
    return node;
  }

  dev.turnout.admin.v1.Migration toProto(Migration m) {
    dev.turnout.admin.v1.Migration.Builder b = bare(m).toBuilder();
    dev.turnout.admin.v1.Live.Builder live = dev.turnout.admin.v1.Live.newBuilder()
        .setWindowSeconds(m.spec().options().validationWindow().toMillis() / 1000.0);
    migrator.figures(m.id()).ifPresent(f -> live.setSampled(true).setLagBytes(f.lagBytes())
        .setReplayDelaySeconds(f.replayDelaySeconds()).setWalBytesPerSecond(f.walBytesPerSecond())
        .setReplayBytesPerSecond(f.replayBytesPerSecond()).setSlotLagBytes(f.slotLagBytes()));
    if (m.phase() == Phase.BAKING) {
      live.setBakeSeconds(m.spec().options().bake().duration().toMillis() / 1000.0);
      migrator.bakeFigures(m.id()).ifPresent(f -> {
        live.setBakeElapsedSeconds(f.elapsed().toMillis() / 1000.0);
        for (dev.turnout.migrator.bake.Judge.Comparison c : f.signals()) {
          live.addBakeSignals(dev.turnout.admin.v1.BakeSignal.newBuilder().setSignal(c.signal().label())
              .setBaseline(c.baseline()).setNow(c.now()).setAllowed(c.allowed()).setLimit(c.limit().toString())
              .setBreached(c.breached()).setText(c.describe()));
        }
      });
    }
    if (m.progress().reverse().isPresent() && !m.phase().isTerminal()) {
      migrator.reverseHealth(m.id()).ifPresentOrElse(h -> live.setReversePath(h.healthy() ? "healthy"
          : "broken: " + h.broken().get()).setReverseLagBytes(h.lagBytes()).setReverseLagMillis(h.lagMillis()),
          () -> live.setReversePath(m.progress().reverse().get().broken().map(why -> "broken: " + why).orElse("healthy"))
              .setReverseLagBytes(-1).setReverseLagMillis(-1));
    }
    if (m.phase() == Phase.REPLICATING) {
      live.setWindowElapsedSeconds(java.time.Duration.between(m.phaseStarted(), java.time.Instant.now()).toMillis() / 1000.0);
    }
    routing.table().get(m.database()).ifPresent(route -> {
      long version = routing.endpointVersion(m.database());
      int nodes = 0;
      int acked = 0;
      for (NodeStatus n : tracker.nodes()) {
        if (n.connected() && route.allows(n.cluster())) {
          nodes++;
          if (n.ackedVersion(XdsType.EDS) >= version) {
            acked++;
          }
        }
      }
      live.setNodes(nodes).setNodesAcked(acked);
    });
    return b.setLive(live).build();
  }

  static dev.turnout.admin.v1.Migration bare(Migration m) {
    dev.turnout.admin.v1.Migration.Builder b = dev.turnout.admin.v1.Migration.newBuilder().setId(m.id())
        .setDatabase(m.database()).addAllDatabases(m.spec().databases())
        .setSource(m.spec().source().toString()).setTarget(m.spec().target().toString())
        .setPhase(m.phase().name()).setError(m.progress().error().orElse(""));
    m.progress().finalLsn().ifPresent(l -> b.setFinalLsn(l.toString()));
    m.progress().slots().forEach(s -> b.addSlots(Slot.newBuilder().setName(s.name()).setPlugin(s.plugin())
        .setConfirmedLsn(s.confirmedLsn().toString())));
    m.history().forEach(e -> b.addHistory(Event.newBuilder()
        .setAt(Timestamp.newBuilder().setSeconds(e.at().getEpochSecond()).setNanos(e.at().getNano()))
        .setPhase(e.phase().name()).setNote(e.note())));
    return b.build();
  }
}
