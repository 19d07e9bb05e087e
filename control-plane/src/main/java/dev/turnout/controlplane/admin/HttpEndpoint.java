package dev.turnout.controlplane.admin;

import com.google.protobuf.util.JsonFormat;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.turnout.admin.v1.RoutingSnapshot;
import dev.turnout.controlplane.xds.AckTracker;
import dev.turnout.controlplane.xds.NodeStatus;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.migrator.Migration;
import dev.turnout.controlplane.migration.Migrations;
import dev.turnout.migrator.Migrator;
import io.grpc.StatusRuntimeException;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The HTTP side for SREs and probes: {@code /healthz}, {@code /readyz}, {@code /metrics} (Prometheus text, via
 * Micrometer) and {@code /v1/routes} (the routing snapshot as JSON); the web console mounts itself here too.
 */
public final class HttpEndpoint implements AutoCloseable {
  private final HttpServer server;
  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private volatile boolean ready;
  /** This replica's sidecars' counters, once {@link #showSidecarCounters} is called. */
  private volatile dev.turnout.controlplane.xds.SidecarStats sidecarStats;

  /** Shows this replica's sidecars' connect failures and hold timeouts per database on {@code /metrics}. */
  public void showSidecarCounters(dev.turnout.controlplane.xds.SidecarStats stats) {
    this.sidecarStats = stats;
  }

  /** Counts one NACK (Prometheus {@code turnout_xds_nacks_total{type,database}}). */
  public void countNack(dev.turnout.controlplane.xds.XdsType type, String database) {
    io.micrometer.core.instrument.Counter.builder("turnout_xds_nacks")
        .description("Responses sidecars rejected, by type and database (empty when the response held several)")
        .tags("type", type.name(), "database", database).register(registry).increment();
  }

  public HttpEndpoint(InetSocketAddress address, AdminService admin, RoutingService routing, AckTracker tracker,
      Migrations migrator) throws IOException {
    server = HttpServer.create(address, 0);
    Timer ackLatency = Timer.builder("turnout_route_ack").description("Route change to the last subscribed node's ACK")
        .publishPercentiles(0.5, 0.99).register(registry);
    routing.onAcked(r -> ackLatency.record(r.ack().elapsed()));
    Gauge.builder("turnout_xds_connected_nodes", tracker, t -> t.counts().connected())
        .description("Sidecars with an open xDS stream").register(registry);
    Gauge.builder("turnout_xds_disconnected_nodes", tracker, t -> t.counts().disconnected())
        .description("Sidecars with no open stream, still listed until xds.forget_nodes_after").register(registry);
    io.micrometer.core.instrument.FunctionCounter.builder("turnout_xds_forgotten_nodes", tracker,
        t -> t.counts().forgotten())
        .description("Sidecars forgotten after xds.forget_nodes_after without a stream").register(registry);
    Gauge.builder("turnout_routing_version", routing, RoutingService::version)
        .description("The routing table's current version").register(registry);
    MultiGauge endpointVersion = MultiGauge.builder("turnout_database_endpoint_version")
        .description("Version at which the database's endpoint last changed").register(registry);
    MultiGauge unresolved = MultiGauge.builder("turnout_database_endpoint_unresolved")
        .description("1 while the database's endpoint name does not resolve (served at its last address, or drained)")
        .register(registry);
    MultiGauge currentNodes = MultiGauge.builder("turnout_database_nodes_current")
        .description("Connected nodes that have ACKed the database's current endpoint").register(registry);
    MultiGauge phase = MultiGauge.builder("turnout_migration_phase")
        .description("1 for the phase each migration is in").register(registry);
    MultiGauge lag = MultiGauge.builder("turnout_migration_replication_lag_bytes").register(registry);
    MultiGauge delay = MultiGauge.builder("turnout_migration_replay_delay_seconds").register(registry);
    MultiGauge walRate = MultiGauge.builder("turnout_migration_wal_generated_bytes_per_second").register(registry);
    MultiGauge replayRate = MultiGauge.builder("turnout_migration_wal_replayed_bytes_per_second").register(registry);
    MultiGauge slotLag = MultiGauge.builder("turnout_migration_slot_lag_bytes")
        .description("How far the furthest-behind logical slot's consumer is from the source's WAL").register(registry);
    MultiGauge campaignMembers = MultiGauge.builder("turnout_campaign_members")
        .description("Members of each unfinished campaign per phase of their migrations (PENDING: not started)")
        .register(registry);
    MultiGauge campaignFailures = MultiGauge.builder("turnout_campaign_failures")
        .description("Members of each unfinished campaign that failed, rolled back or halted").register(registry);
    MultiGauge campaignMaxFailures = MultiGauge.builder("turnout_campaign_max_failures")
        .description("The failures at which each unfinished campaign halts").register(registry);
    MultiGauge campaignEta = MultiGauge.builder("turnout_campaign_eta_seconds")
        .description("Estimated time until each unfinished campaign completes, from its finished members")
        .register(registry);

    MultiGauge sidecarFailures = MultiGauge.builder("turnout_sidecar_connect_failures")
        .description("Connections this replica's sidecars failed to open to the database's server (Envoy's"
            + " cluster.<database>.upstream_cx_connect_fail), summed since this replica started: only grows")
        .register(registry);
    MultiGauge sidecarTimeouts = MultiGauge.builder("turnout_sidecar_hold_timeouts")
        .description("Held connections this replica's sidecars refused at their hold timeout"
            + " (tcp.<database>.on_demand_cluster_timeout), summed since this replica started: only grows")
        .register(registry);
    MultiGauge sidecarNodes = MultiGauge.builder("turnout_sidecar_reporting_nodes")
        .description("Sidecars streaming the database's counters to this replica now").register(registry);
    server.createContext("/healthz", ex -> send(ex, 200, "text/plain", "ok\n"));
    server.createContext("/readyz", ex -> send(ex, ready ? 200 : 503, "text/plain", ready ? "ready\n" : "starting\n"));
    server.createContext("/metrics", ex -> {
      RoutingSnapshot snapshot = admin.snapshot("");
      List<MultiGauge.Row<?>> versions = new ArrayList<>();
      List<MultiGauge.Row<?>> current = new ArrayList<>();
      List<MultiGauge.Row<?>> unresolvedRows = new ArrayList<>();
      for (var d : snapshot.getDatabasesList()) {
        Tags tags = Tags.of("database", d.getDatabase().getName());
        versions.add(MultiGauge.Row.of(tags, d.getDatabase().getEndpointVersion()));
        unresolvedRows.add(MultiGauge.Row.of(tags, d.getDatabase().getUnresolved().isEmpty() ? 0 : 1));
        current.add(MultiGauge.Row.of(tags, d.getNodesCurrent()));
      }
      dev.turnout.controlplane.xds.SidecarStats stats = sidecarStats;
      if (stats != null) {
        var totals = stats.totals();
        sidecarFailures.register(totals.entrySet().stream().<MultiGauge.Row<?>>map(e -> MultiGauge.Row.of(Tags.of("database",
            e.getKey()), e.getValue().connectFailures())).collect(java.util.stream.Collectors.toList()), true);
        sidecarTimeouts.register(totals.entrySet().stream().<MultiGauge.Row<?>>map(e -> MultiGauge.Row.of(Tags.of("database",
            e.getKey()), e.getValue().holdTimeouts())).collect(java.util.stream.Collectors.toList()), true);
        sidecarNodes.register(totals.entrySet().stream().<MultiGauge.Row<?>>map(e -> MultiGauge.Row.of(Tags.of("database",
            e.getKey()), e.getValue().nodes())).collect(java.util.stream.Collectors.toList()), true);
      }
      endpointVersion.register(versions, true);
      currentNodes.register(current, true);
      unresolved.register(unresolvedRows, true);
      // Migration gauges come from the replica that runs them (with several replicas, the leader's are the
      // ones with live figures; the others would report the same migrations again, without them).
      Migrator running = migrator.current();
      List<Migration> active = running == null ? List.of()
          : running.list().stream().filter(m -> !m.phase().isTerminal()).toList();
      phase.register(rows(active, m -> 1), true);
      lag.register(rows(active, m -> migrator.figures(m.id()).map(Migrator.Figures::lagBytes).orElse(null)), true);
      delay.register(rows(active, m -> migrator.figures(m.id()).map(Migrator.Figures::replayDelaySeconds).orElse(null)), true);
      walRate.register(rows(active, m -> migrator.figures(m.id()).map(Migrator.Figures::walBytesPerSecond).orElse(null)), true);
      replayRate.register(rows(active, m -> migrator.figures(m.id()).map(Migrator.Figures::replayBytesPerSecond).orElse(null)), true);
      slotLag.register(rows(active, m -> migrator.figures(m.id()).map(Migrator.Figures::slotLagBytes).orElse(null)), true);
      // Campaign gauges, like the migrations', from the leader only.
      List<dev.turnout.admin.v1.Campaign> campaigns = running == null ? List.of() : admin.unfinishedCampaigns();
      List<MultiGauge.Row<?>> members = new ArrayList<>();
      List<MultiGauge.Row<?>> failures = new ArrayList<>();
      List<MultiGauge.Row<?>> maxFailures = new ArrayList<>();
      List<MultiGauge.Row<?>> eta = new ArrayList<>();
      for (dev.turnout.admin.v1.Campaign c : campaigns) {
        Tags tags = Tags.of("campaign", c.getId(), "name", c.getName());
        c.getMembersByPhaseMap().forEach((p, n) -> members.add(MultiGauge.Row.of(tags.and("phase", p), n)));
        failures.add(MultiGauge.Row.of(tags, c.getFailures()));
        maxFailures.add(MultiGauge.Row.of(tags, c.getMaxFailures()));
        if (c.getEtaSeconds() > 0) {
          eta.add(MultiGauge.Row.of(tags, c.getEtaSeconds()));
        }
      }
      campaignMembers.register(members, true);
      campaignFailures.register(failures, true);
      campaignMaxFailures.register(maxFailures, true);
      campaignEta.register(eta, true);
      send(ex, 200, "text/plain; version=0.0.4; charset=utf-8", registry.scrape());
    });
    server.createContext("/v1/routes", ex -> {
      try {
        send(ex, 200, "application/json", JsonFormat.printer().print(admin.snapshot(routesRequest(
            ex.getRequestURI().getRawQuery()))) + "\n");
      } catch (StatusRuntimeException e) {
        int code = switch (e.getStatus().getCode()) {
          case NOT_FOUND -> 404;
          case INVALID_ARGUMENT -> 400;
          default -> 503;
        };
        send(ex, code, "application/json", "{\"error\":\"" + e.getStatus().getDescription().replace("\\", "\\\\")
            .replace("\"", "\\\"") + "\"}\n");
      }
    });
    // Requests are answered off the server's one dispatcher thread: a console page being rendered must not hold
    // up /healthz or a scrape.
    server.setExecutor(handlers);
    server.start();
  }

  private final java.util.concurrent.ExecutorService handlers = java.util.concurrent.Executors.newFixedThreadPool(4,
      new com.google.common.util.concurrent.ThreadFactoryBuilder().setNameFormat("turnout-http-%d").setDaemon(true)
          .build());

  /**
   * {@code /v1/routes}' query as the admin API's request: {@code node}, {@code database}, {@code service},
   * {@code state} (behind|nacked), {@code all} (list every sidecar), {@code page_size}, {@code page_token}.
   */
  static dev.turnout.admin.v1.GetRoutingSnapshotRequest routesRequest(String rawQuery) {
    var b = dev.turnout.admin.v1.GetRoutingSnapshotRequest.newBuilder();
    if (rawQuery == null || rawQuery.isEmpty()) {
      return b.build();
    }
    for (String pair : rawQuery.split("&")) {
      int eq = pair.indexOf('=');
      String key = java.net.URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), java.nio.charset.StandardCharsets.UTF_8);
      String value = eq < 0 ? "" : java.net.URLDecoder.decode(pair.substring(eq + 1), java.nio.charset.StandardCharsets.UTF_8);
      switch (key) {
        case "node" -> b.setNode(value);
        case "database" -> b.setDatabase(value);
        case "service" -> b.setService(value);
        case "state" -> b.setState(value);
        case "all" -> b.setAllNodes(value.isEmpty() || value.equals("true") || value.equals("1"));
        case "page_token" -> b.setPageToken(value);
        case "page_size" -> {
          try {
            b.setPageSize(Integer.parseInt(value));
          } catch (NumberFormatException e) {
            throw io.grpc.Status.INVALID_ARGUMENT.withDescription("page_size '" + value + "' is not a number")
                .asRuntimeException();
          }
        }
        default -> throw io.grpc.Status.INVALID_ARGUMENT.withDescription("unknown parameter '" + key
            + "'; known: node, database, service, state, all, page_size, page_token").asRuntimeException();
      }
    }
    return b.build();
  }

  private static List<MultiGauge.Row<?>> rows(List<Migration> migrations, Function<Migration, Number> value) {
    List<MultiGauge.Row<?>> rows = new ArrayList<>();
    for (Migration m : migrations) {
      Number v = value.apply(m);
      if (v != null) {
        rows.add(MultiGauge.Row.of(Tags.of("database", m.database(), "migration", m.id(), "phase", m.phase().name()), v));
      }
    }
    return rows;
  }

  private static void send(HttpExchange ex, int status, String type, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("Content-Type", type);
    ex.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = ex.getResponseBody()) {
      out.write(bytes);
    }
  }

  /** Serves the web console on this port too (read-only here). */
  public void mount(dev.turnout.controlplane.console.Console console) {
    console.mount(server);
  }

  public void ready(boolean isReady) {
    ready = isReady;
  }

  public int port() {
    return server.getAddress().getPort();
  }

  @Override
  public void close() {
    ready = false;
    server.stop(0);
    handlers.shutdownNow();
  }
}
