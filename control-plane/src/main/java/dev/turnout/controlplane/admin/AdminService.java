package dev.turnout.controlplane.admin;

import com.google.protobuf.Duration;
import com.google.protobuf.Timestamp;
import dev.turnout.admin.v1.AdminGrpc;
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
import dev.turnout.controlplane.store.SharedRoutes;
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
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
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

  public AdminService(Migrations migrator, RoutingService routing, AckTracker tracker) {
    this.migrator = migrator;
    this.routing = routing;
    this.tracker = tracker;
  }

  /** A call body that may fail with a status or a domain exception. */
  private interface Call<T> {
    T run() throws Exception;
  }

  private static <T> void unary(StreamObserver<T> response, Call<T> call) {
    T result;
    try {
      result = call.run();
    } catch (StatusRuntimeException e) {
      response.onError(e);
      return;
    } catch (MigrationConflictException e) {
      Status status = switch (e.kind()) {
        case ALREADY_EXISTS -> Status.ALREADY_EXISTS;
        case NOT_FOUND -> Status.NOT_FOUND;
        case FAILED_PRECONDITION -> Status.FAILED_PRECONDITION;
        case UNAVAILABLE -> Status.UNAVAILABLE;
      };
      response.onError(status.withDescription(e.getMessage()).asRuntimeException());
      return;
    } catch (MigrationException e) {
      response.onError(Status.UNAVAILABLE.withDescription(e.getMessage()).asRuntimeException());
      return;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      response.onError(Status.CANCELLED.withDescription("interrupted").asRuntimeException());
      return;
    } catch (Exception e) {
      response.onError(Status.INTERNAL.withDescription(String.valueOf(e.getMessage())).asRuntimeException());
      return;
    }
    response.onNext(result);
    response.onCompleted();
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
            .setSource(spec.source().toString()).setTarget(spec.target().toString()).setPhase("DRY_RUN")
            .addAllPlannedActions(migrator.dryRun(spec)).build();
      }
      return toProto(migrator.start(spec));
    });
  }

  private Migration.Spec spec(StartMigrationRequest request) {
    String database = request.getDatabase();
    if (database.isBlank()) {
      throw invalid("database is required");
    }
    RoutingTable table = routing.table();
    DatabaseRoute route = table.get(database).orElseThrow(() -> Status.NOT_FOUND.withDescription(
        "unknown database '" + database + "'; known: " + table.databases().keySet()).asRuntimeException());
    Optional<Migration.Aurora> aurora = aurora(database, request.getOptions());
    String targetText = request.getTarget();
    if (targetText.isBlank() && aurora.isPresent()) {
      // A migration under way drains the route: name it rather than the empty route it left.
    migrator.list().stream().filter(m -> m.database().equals(database) && !m.phase().isTerminal()).findFirst()
        .ifPresent(m -> {
          throw Status.ALREADY_EXISTS.withDescription("database '" + database + "' already has migration " + m.id()
              + " in " + m.phase() + (m.phase() == Phase.COMPLETED ? "; finalize it or roll it back first" : "")
              + " (turnout migrate status " + m.id() + ")").asRuntimeException();
        });
    Endpoint source = route.endpoint().orElseThrow(() -> Status.FAILED_PRECONDITION.withDescription("database '"
          + database + "' has no endpoint to migrate from").asRuntimeException());
      targetText = auroraEndpoint(database, source, aurora.get().targetCluster());
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
    // A migration under way drains the route: name it rather than the empty route it left.
    migrator.list().stream().filter(m -> m.database().equals(database) && !m.phase().isTerminal()).findFirst()
        .ifPresent(m -> {
          throw Status.ALREADY_EXISTS.withDescription("database '" + database + "' already has migration " + m.id()
              + " in " + m.phase() + (m.phase() == Phase.COMPLETED ? "; finalize it or roll it back first" : "")
              + " (turnout migrate status " + m.id() + ")").asRuntimeException();
        });
    Endpoint source = route.endpoint().orElseThrow(() -> Status.FAILED_PRECONDITION.withDescription(
        "database '" + database + "' is drained (no current endpoint): nothing to migrate from").asRuntimeException());
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
      throw invalid("database '" + database + "': validation_window " + window + " is over the maximum " + MAX_WINDOW);
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
      throw invalid("database '" + database + "': quiesce_grace " + grace + " must be shorter than the phase deadline "
          + deadline + ", which QUIESCING must also meet");
    }
    return new Migration.Spec(database, new ServerAddress(source.host(), source.port()),
        new ServerAddress(target.host(), target.port()), new Migration.Options(window,
            o.getMaxLagBytes() == 0 ? defaults.maxLagBytes() : o.getMaxLagBytes(), deadline,
            o.getAllowDroppingStaleSlots(), replica, new Migration.Cutover(grace, o.getRollbackPreparedTransactions())),
        aurora);
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

  private static final java.util.regex.Pattern RDS_HOST =
      java.util.regex.Pattern.compile("[^.]+\\.([a-z0-9]+)\\.([a-z0-9-]+)\\.rds\\.amazonaws\\.com");

  /** An Aurora cluster's writer endpoint shares the account-and-region suffix of the instance endpoints. */
  static String auroraEndpoint(String database, Endpoint source, String cluster) {
    java.util.regex.Matcher m = RDS_HOST.matcher(source.host());
    if (!m.matches()) {
      throw invalid("database '" + database + "': cannot derive the Aurora cluster endpoint from the source host '"
          + source.host() + "' (not an RDS endpoint name); give the target as host:port");
    }
    return cluster + ".cluster-" + m.group(1) + "." + m.group(2) + ".rds.amazonaws.com:" + source.port();
  }

  private static java.time.Duration duration(String database, String field, Duration d) {
    if (d.getSeconds() < 0 || d.getNanos() < 0 || d.getNanos() > 999_999_999 || (d.getSeconds() == 0 && d.getNanos() == 0)) {
      throw invalid("database '" + database + "': " + field + " must be a positive duration");
    }
    return java.time.Duration.ofSeconds(d.getSeconds(), d.getNanos());
  }

  private Migration existing(String id) {
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
    } catch (StatusRuntimeException e) {
      response.onError(e);
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
        () -> migrator.get(first.id()).ifPresent(listener), 1, 1, java.util.concurrent.TimeUnit.SECONDS);
    ticking.set(ticks);
    call.setOnCancelHandler(() -> {
      migrator.removeListener(listener);
      ticks.cancel(false);
    });
    migrator.addListener(listener);
    listener.accept(migrator.get(first.id()).orElse(first)); // the state now, in case nothing changes again
    if (isSettled(migrator.get(first.id()).orElse(first).phase())) {
      ticks.cancel(false);
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
        .setEndpointVersion(routing.endpointVersion(r.name())).build();
  }

  @Override
  public void getRoutingSnapshot(GetRoutingSnapshotRequest request, StreamObserver<RoutingSnapshot> response) {
    unary(response, () -> snapshot(request.getNode()));
  }

  /** The routing snapshot: every database, and per node allowed to reach it what it has ACKed. */
  public RoutingSnapshot snapshot(String onlyNode) {
    GetRoutingSnapshotRequest request = GetRoutingSnapshotRequest.newBuilder().setNode(onlyNode).build();
    {
      RoutingSnapshot.Builder b = RoutingSnapshot.newBuilder().setVersion(routing.version());
      var nodes = tracker.nodes();
      if (!request.getNode().isEmpty() && nodes.stream().noneMatch(n -> n.nodeId().equals(request.getNode()))) {
        throw Status.NOT_FOUND.withDescription("no node '" + request.getNode() + "' has connected since the control"
            + " plane started").asRuntimeException();
      }
      for (DatabaseRoute r : routing.table().databases().values()) {
        Database db = toProto(r);
        DatabaseRouting.Builder d = DatabaseRouting.newBuilder().setDatabase(db);
        for (NodeStatus n : nodes) {
          if (!r.allows(n.cluster()) || (!request.getNode().isEmpty() && !n.nodeId().equals(request.getNode()))) {
            continue;
          }
          NodeStatus.TypeStatus eds = n.types().get(XdsType.EDS);
          NodeAck.Builder ack = NodeAck.newBuilder().setNodeId(n.nodeId()).setCluster(n.cluster())
              .setConnected(n.connected());
          if (eds != null) {
            ack.setSentVersion(eds.sentVersion()).setAckedVersion(eds.ackedVersion())
                .setCurrent(eds.ackedVersion() >= db.getEndpointVersion());
            eds.lastNack().ifPresent(nack -> ack.setNackError(nack.error()));
          }
          d.addNodes(ack);
        }
        b.addDatabases(d);
      }
      if (routing.shared().isPresent()) {
        var shared = routing.shared().get();
        b.setReplica(shared.replicaId());
        try {
          for (var r : shared.reports()) {
            b.addReplicaReports(ReplicaReport.newBuilder().setReplica(r.replica()).setLive(r.live())
                .setDatabase(r.database()).setVersion(r.version()).addAllAckedBy(r.ackedBy()).setFailure(r.failure()));
          }
        } catch (dev.turnout.controlplane.store.StoreException e) {
          throw Status.UNAVAILABLE.withDescription(e.getMessage()).asRuntimeException();
        }
      }
      return b.build();
    }
  }

  @Override
  public void listNodes(ListNodesRequest request, StreamObserver<ListNodesResponse> response) {
    unary(response, () -> {
      ListNodesResponse.Builder b = ListNodesResponse.newBuilder();
      String here = routing.shared().map(SharedRoutes::replicaId).orElse("");
      for (SharedRoutes.NodeRow n : localNodes(tracker)) {
        b.addNodes(toProto(n).setReplica(here));
      }
      if (routing.shared().isPresent()) {
        try {
          for (SharedRoutes.NodeRow n : routing.shared().get().nodes()) {
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
        .setDatabase(m.database()).setSource(m.spec().source().toString()).setTarget(m.spec().target().toString())
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
