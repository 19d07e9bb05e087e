package dev.turnout.it.bench;

import static dev.turnout.it.bench.BenchSupport.arg;
import static dev.turnout.it.bench.BenchSupport.intArg;
import static dev.turnout.it.bench.BenchSupport.pct;
import static dev.turnout.it.bench.BenchSupport.settleHeap;

import com.google.common.collect.ImmutableList;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.CampaignId;
import dev.turnout.admin.v1.CampaignRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.controlplane.xds.XdsType;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.it.SimulatedSidecar;
import dev.turnout.migrator.CutoverSteps;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.campaign.Campaign;
import dev.turnout.migrator.campaign.MemberState;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

/**
 * Benchmark: one campaign over a fleet of N source servers (400, the mission's fleet, and 2,000 by default), each
 * holding one routed database with its standby, run by an in-process control plane while 1,000 simulated sidecars
 * (a second JVM, real ADS streams, ACKing like Envoy) are subscribed. The servers are a {@link SimulatedPlatform}:
 * a simulation of step durations for scale only (routes point at 10.x.y.z addresses nothing listens on). The
 * campaign is planned and started over the admin API (the YAML built here: a canary of one that goes on by itself,
 * then waves, a fleet-wide limit, the migrator's default validation window) and polled until COMPLETED. Prints,
 * per fleet size, with its goal beside each figure: the plan's round trip, the control plane's CPU and heap per member, the route
 * ACK p99 during the campaign, and the campaign's wall time against the ideal (each member's simulated step times
 * and validation window, wave after wave, {@code max_concurrent} at once) with the overhead, and the campaign's
 * own share of it (against the members' measured times at the concurrency: starting members and waiting for a
 * wave's last); then where the time beyond the ideal went. Asserts nothing: it reports.
 *
 * <pre>mvn -q -pl integration-tests exec:java@campaign-bench -Dexec.args="--servers 400,2000"</pre>
 * Options: --servers N[,N...] (400,2000), --sidecars N (1000), --services N (100: database i is open to service
 * i mod N and sidecar j is of service j mod N, so each route change goes to sidecars/N of them), --window D
 * (validation window, 30s as {@code turnout migrate start}'s; 2s runs both sizes in 3 minutes), --wave N (50),
 * --concurrency N (max_concurrent, 50), --json FILE, --keep (keep the stores' directory), --quick (a smoke test: 20
 * servers, 50 sidecars in 10 services, window 500ms, waves of 5, 5 at once). With {@code -q}, Maven's
 * logger (which exec:java shares) keeps the control plane's INFO lines, a dozen per member, out of the figures.
 */
public final class CampaignBenchmark {
  private static final double GOAL_OVERHEAD_PERCENT = 5;
  private static final double GOAL_ACK_P99_MS = 1000;
  private static final double GOAL_HEAP_KIB = 50;

  /** What one run is asked to do. */
  private record Setup(int servers, int sidecars, int services, Duration window, int wave, int concurrency) {}

  public static void main(String[] args) throws Exception {
    if (args.length > 0 && args[0].equals("--client-process")) {
      clientProcess(args);
      return;
    }
    boolean quick = List.of(args).contains("--quick");
    String sizes = arg(args, "--servers", quick ? "20" : "400,2000");
    int sidecars = intArg(args, "--sidecars", quick ? 50 : 1000);
    int services = intArg(args, "--services", quick ? 10 : 100);
    // The migrator's own default (turnout migrate start --window): the window a campaign's members get unless the
    // file says otherwise. --window 2s shows the campaign's fixed cost a wave against a window too short for use.
    Duration window = duration(arg(args, "--window", quick ? "500ms" : "30s"));
    int wave = intArg(args, "--wave", quick ? 5 : 50);
    int concurrency = intArg(args, "--concurrency", quick ? 5 : 50);
    String json = arg(args, "--json", null);

    Path dir = BenchSupport.tempDirectory("turnout-campaign-bench", args);
    System.out.printf(Locale.ROOT, "%ncampaign bench: SIMULATED servers (step durations only, nothing connected),"
        + " %d sidecars in %d services (second JVM), %d cores; stores in %s%n", sidecars, services,
        Runtime.getRuntime().availableProcessors(), dir);
    SimulatedPlatform platform = new SimulatedPlatform();
    run(new Setup(10, Math.min(sidecars, 20), Math.min(services, 5), Duration.ofMillis(300), 5, 5), platform, dir,
        false); // warm-up: class loading and the JIT would be counted against the first size
    StringBuilder out = new StringBuilder("[");
    for (String size : sizes.split(",")) {
      String row = run(new Setup(Integer.parseInt(size.trim()), sidecars, services, window, wave, concurrency),
          platform, dir, true);
      out.append(out.length() > 1 ? "," : "").append(row);
    }
    if (json != null) {
      Files.writeString(Path.of(json), out.append("]\n").toString());
    }
    System.exit(0);
  }

  /** {@code 500ms}, {@code 2s}, {@code 1m}. */
  private static Duration duration(String text) {
    String t = text.trim();
    if (t.endsWith("ms")) {
      return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
    }
    long n = Long.parseLong(t.substring(0, t.length() - 1));
    return switch (t.charAt(t.length() - 1)) {
      case 's' -> Duration.ofSeconds(n);
      case 'm' -> Duration.ofMinutes(n);
      default -> throw new IllegalArgumentException("--window: '" + text + "' is not like 500ms, 2s or 1m");
    };
  }

  private static String run(Setup s, SimulatedPlatform platform, Path parent, boolean print) throws Exception {
    platform.clear();
    Path dir = Files.createTempDirectory(parent, "run-" + s.servers());
    List<DatabaseRoute> routes = new ArrayList<>();
    StringBuilder yaml = new StringBuilder();
    yaml.append("name: bench-").append(s.servers()).append('\n')
        .append("policy:\n")
        .append("  canary: 1\n")
        .append("  canary_bake: 0s\n") // the canary goes on by itself: no approve in a benchmark
        .append("  wave_size: ").append(s.wave()).append('\n')
        .append("  wave_bake: 0s\n")
        .append("  max_concurrent: ").append(s.concurrency()).append('\n')
        .append("  max_concurrent_per_host: ").append(s.concurrency()).append('\n')
        .append("  max_failures: 1\n")
        .append("migration:\n")
        .append("  window: ").append(s.window().toMillis()).append("ms\n")
        .append("  deadline: 2m\n")
        .append("servers:\n");
    for (int i = 0; i < s.servers(); i++) {
      String source = address(1, i);
      routes.add(new DatabaseRoute("db" + i, 20000 + i, Optional.of(Endpoint.parse(source)),
          Set.of("svc-" + (i % s.services()))));
      yaml.append("  - server: ").append(source).append('\n')
          .append("    target: ").append(address(2, i)).append('\n');
    }
    TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0), dir.resolve("store"),
        Duration.ofSeconds(60), ImmutableList.copyOf(routes), TurnoutConfig.MigratorSettings.DEFAULT);
    Process clients = null;
    ManagedChannel admin = null;
    try (ControlPlane plane = ControlPlane.start(config, RoutingService.Resolver.SYSTEM, Migrator.Failpoint.NONE,
        platform)) {
      clients = clientProcess(plane, s, dir);
      awaitAllAcked(plane, s.sidecars(), plane.routing().version(), Duration.ofMinutes(5), dir);
      admin = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext()
          .maxInboundMessageSize(256 << 20).build();
      var stub = AdminGrpc.newBlockingStub(admin);
      CampaignRequest request = CampaignRequest.newBuilder().setYaml(yaml.toString()).setFileName("bench.yaml").build();

      // Plan: what `turnout campaign plan` waits for (three calls; the median).
      List<Double> plans = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        long t = System.nanoTime();
        var plan = stub.planCampaign(request);
        plans.add((System.nanoTime() - t) / 1e6);
        if (plan.getBlockingCount() > 0 || plan.getMembersCount() != s.servers()) {
          throw new IllegalStateException("the plan has " + plan.getMembersCount() + " members and blocks: "
              + plan.getBlockingList());
        }
      }

      ConcurrentLinkedQueue<Long> acks = new ConcurrentLinkedQueue<>();
      plane.routing().onAcked(r -> acks.add(r.ack().elapsed().toNanos()));
      settleHeap();
      long heapBefore = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
      var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
      double loadBefore = os.getSystemLoadAverage();
      long cpuBefore = os.getProcessCpuTime();
      Instant t0 = Instant.now();
      String id = stub.startCampaign(request).getId();

      // Polled as an operator's `turnout campaign status` would, once a second.
      long deadline = System.nanoTime() + Duration.ofMinutes(30).toNanos();
      long nextProgress = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (true) {
        var c = stub.getCampaign(CampaignId.newBuilder().setId(id).build());
        if (c.getStatus().equals("COMPLETED")) {
          break;
        }
        if (c.getStatus().equals("HALTED") || c.getStatus().equals("ABORTED")) {
          throw new IllegalStateException("campaign " + id + " " + c.getStatus() + ": " + c.getReason()
              + "; its store is in " + dir);
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("campaign " + id + " not COMPLETED within 30 min: " + c.getStatus() + " "
              + c.getMembersByPhaseMap());
        }
        if (print && System.nanoTime() > nextProgress) {
          System.out.printf(Locale.ROOT, "  ... %d servers: %s, wave %d of %d, %s%n", s.servers(), c.getStatus(),
              c.getWave(), c.getWaves(), new TreeMap<>(c.getMembersByPhaseMap()));
          nextProgress = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        }
        Thread.sleep(1000);
      }
      long cpu = os.getProcessCpuTime() - cpuBefore;
      double loadAfter = os.getSystemLoadAverage();
      Campaign done = plane.campaigns().get(id).orElseThrow();
      Instant completed = done.history().stream().filter(e -> e.text().startsWith("completed"))
          .map(Campaign.Event::at).reduce((a, b) -> b).orElseThrow();
      double wallMs = Duration.between(t0, completed).toNanos() / 1e6;
      List<Double> ackMs = acks.stream().map(n -> n / 1e6).toList();
      String metricsP99 = metricsAckP99(plane);

      Report r = report(s, done, plane.migrator(), platform, t0);
      settleHeap(); // the campaign COMPLETED and held, with its members' migrations
      long heapAfter = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
      double heapPerMemberKiB = (heapAfter - heapBefore) / 1024.0 / s.servers();
      double overheadPercent = (wallMs - r.idealMs) * 100 / r.idealMs;
      double ackP99 = ackMs.isEmpty() ? 0 : pct(ackMs, 99);
      double planMs = pct(plans, 50);
      if (print) {
        printReport(s, r, planMs, wallMs, overheadPercent, ackMs, ackP99, metricsP99, heapPerMemberKiB, cpu,
            loadBefore, loadAfter);
      }
      return String.format(Locale.ROOT, "{\"servers\":%d,\"sidecars\":%d,\"services\":%d,\"window_ms\":%d,"
          + "\"wave\":%d,\"concurrency\":%d,\"plan_ms\":%.1f,\"wall_s\":%.2f,\"ideal_s\":%.2f,\"overhead_percent\":%.2f,"
          + "\"ack_p99_ms\":%.1f,\"acks\":%d,\"heap_kib_per_member\":%.2f,\"cpu_s\":%.2f,\"load_before\":%.2f,"
          + "\"load_after\":%.2f}", s.servers(), s.sidecars(), s.services(), s.window().toMillis(), s.wave(),
          s.concurrency(), planMs, wallMs / 1000, r.idealMs / 1000, overheadPercent, ackP99, ackMs.size(),
          heapPerMemberKiB, cpu / 1e9, loadBefore, loadAfter);
    } finally {
      if (admin != null) {
        admin.shutdownNow();
      }
      stopClients(clients);
    }
  }

  /** {@code 10.<net>.<i/250>.<i%250+1>:5432}: net 1 the sources, 2 their standbys. Nothing listens there. */
  private static String address(int net, int i) {
    return "10." + net + "." + (i / 250) + "." + (i % 250 + 1) + ":5432";
  }

  /** What the campaign's members and waves show, against what the simulated steps would take alone. */
  private static final class Report {
    double idealMs;
    double memberIdealMs;
    /** Each wave's members' measured times divided by the concurrency, summed over the waves. */
    double membersIdealMs;
    int waves;
    final List<Double> memberMs = new ArrayList<>();
    /** From a wave's opening (the campaign's start, or the previous wave's last completion) to its first start. */
    final List<Double> waveGapMs = new ArrayList<>();
    /** From a wave's first member's start to its last one's. */
    final List<Double> staggerMs = new ArrayList<>();
    /** From a wave's opening to its last completion, minus its ideal. */
    final List<Double> waveOverheadMs = new ArrayList<>();
    final Map<Phase, List<Double>> phaseMs = new EnumMap<>(Phase.class);
    /** Each cutover step's time (drain-ack, fence, saves, route-ack...) as the migrations recorded it. */
    final Map<String, List<Double>> cutoverMs = new java.util.LinkedHashMap<>();
    /** Members whose migration found its cutover held by the campaign at least once (each hold waits a second). */
    int held;
  }

  private static Report report(Setup s, Campaign c, Migrator migrator, SimulatedPlatform platform, Instant t0) {
    Report r = new Report();
    Map<Integer, List<Migration>> byWave = new TreeMap<>();
    double idealSum = 0;
    for (MemberState m : c.members()) {
      Migration mig = migrator.get(m.migrationId().orElseThrow()).orElseThrow();
      if (mig.phase() != Phase.COMPLETED) {
        throw new IllegalStateException(mig + " is " + mig.phase());
      }
      byWave.computeIfAbsent(m.wave(), w -> new ArrayList<>()).add(mig);
      idealSum += platform.idealOf(mig.spec().source(), s.window());
      r.memberMs.add(millis(mig.history().get(0).at(), completedAt(mig)));
      if (mig.history().stream().anyMatch(e -> e.note().startsWith("cutover held"))) {
        r.held++;
      }
      Phase phase = null;
      Instant since = null;
      for (Migration.Event e : mig.history()) {
        CutoverSteps.parse(e.note()).forEach((step, ms) -> r.cutoverMs.computeIfAbsent(step,
            k -> new ArrayList<>()).add((double) ms));
        if (e.phase() != phase) {
          if (phase != null) {
            r.phaseMs.computeIfAbsent(phase, p -> new ArrayList<>()).add(millis(since, e.at()));
          }
          phase = e.phase();
          since = e.at();
        }
      }
    }
    r.memberIdealMs = idealSum / c.members().size();
    r.waves = byWave.size();
    Instant opened = t0;
    for (List<Migration> wave : byWave.values()) {
      double ideal = Math.ceil(wave.size() / (double) s.concurrency()) * r.memberIdealMs;
      r.idealMs += ideal;
      Instant first = wave.stream().map(m -> m.history().get(0).at()).min(Instant::compareTo).orElseThrow();
      Instant last = wave.stream().map(m -> m.history().get(0).at()).max(Instant::compareTo).orElseThrow();
      Instant end = wave.stream().map(CampaignBenchmark::completedAt).max(Instant::compareTo).orElseThrow();
      r.waveGapMs.add(millis(opened, first));
      r.staggerMs.add(millis(first, last));
      r.waveOverheadMs.add(millis(opened, end) - ideal);
      // The members' own measured times (their route changes and saves included) at the concurrency: what the
      // wave would take if the campaign itself (starting members, waiting for a wave's last) cost nothing.
      double measured = wave.stream().mapToDouble(m -> millis(m.history().get(0).at(), completedAt(m))).sum();
      r.membersIdealMs += measured / Math.min(s.concurrency(), wave.size());
      opened = end;
    }
    return r;
  }

  private static Instant completedAt(Migration m) {
    return m.history().stream().filter(e -> e.phase() == Phase.COMPLETED).findFirst().orElseThrow().at();
  }

  private static double millis(Instant from, Instant to) {
    return Duration.between(from, to).toNanos() / 1e6;
  }

  private static double mean(List<Double> values) {
    return values.stream().mapToDouble(Double::doubleValue).average().orElse(0);
  }

  private static void printReport(Setup s, Report r, double planMs, double wallMs, double overheadPercent,
      List<Double> ackMs, double ackP99, String metricsP99, double heapKiB, long cpuNanos, double loadBefore,
      double loadAfter) {
    System.out.printf(Locale.ROOT, "%n%,d servers (one database each), %d waves (canary 1, then %d), %d at once,"
        + " validation window %d ms; load average %.2f at the start, %.2f at the end%n", s.servers(), r.waves,
        s.wave(), s.concurrency(), s.window().toMillis(), loadBefore, loadAfter);
    String row = "  %-44s %-26s %-12s %s%n";
    System.out.printf(Locale.ROOT, row, "figure", "measured", "goal", "");
    System.out.printf(Locale.ROOT, row, "plan (PlanCampaign round trip, median of 3)", ms(planMs), "(none)", "");
    System.out.printf(Locale.ROOT, row, "wall time / ideal", String.format(Locale.ROOT, "%.1f s / %.1f s",
        wallMs / 1000, r.idealMs / 1000), "", "");
    System.out.printf(Locale.ROOT, row, "overhead over the ideal", String.format(Locale.ROOT, "%.1f %% (%.0f ms a"
        + " wave)", overheadPercent, (wallMs - r.idealMs) / r.waves), "< 5 %", verdict(overheadPercent
        < GOAL_OVERHEAD_PERCENT));
    double ownPercent = (wallMs - r.membersIdealMs) * 100 / r.membersIdealMs;
    System.out.printf(Locale.ROOT, row, "  of which the campaign's own", String.format(Locale.ROOT, "%.1f %% (%.0f ms"
        + " a wave)", ownPercent, (wallMs - r.membersIdealMs) / r.waves), "(none)", "");
    System.out.printf(Locale.ROOT, row, "route ACK p99 during the campaign", ms(ackP99) + " (" + ackMs.size()
        + " changes)", "< 1 s", verdict(ackP99 < GOAL_ACK_P99_MS));
    System.out.printf(Locale.ROOT, row, "heap per member", String.format(Locale.ROOT, "%.1f KiB", heapKiB),
        "< 50 KiB", verdict(heapKiB < GOAL_HEAP_KIB));
    System.out.printf(Locale.ROOT, row, "control-plane CPU over the campaign", String.format(Locale.ROOT,
        "%.1f s (%.0f%% of a core)", cpuNanos / 1e9, cpuNanos / 1e6 / wallMs * 100), "(none)", "");
    System.out.printf(Locale.ROOT, row, "CPU per member", ms(cpuNanos / 1e6 / s.servers()), "(none)", "");
    System.out.printf(Locale.ROOT, "  route ACK p50 %s, max %s; turnout_route_ack p99 on /metrics at the end: %s%n",
        ackMs.isEmpty() ? "-" : ms(pct(ackMs, 50)), ackMs.isEmpty() ? "-" : ms(pct(ackMs, 100)), metricsP99);
    // The ACK figure runs from the publication; a migration also waits for its change to be journaled and
    // published behind the others' (one at a time): what its drain and route steps took, p50 / p99.
    List<Double> drain = r.cutoverMs.getOrDefault("drain-ack", List.of(0.0));
    List<Double> route = r.cutoverMs.getOrDefault("route-ack", List.of(0.0));
    System.out.printf(Locale.ROOT, "  a member's route change from its request to the last ACK (journal and publish"
        + " included): drain %s / %s, route to the target %s / %s (p50 / p99)%n", ms(pct(drain, 50)),
        ms(pct(drain, 99)), ms(pct(route, 50)), ms(pct(route, 99)));
    System.out.printf(Locale.ROOT, "  where the time went: a member took %s on average (p50 %s, max %s) against"
        + " %s of simulated steps and window;%n  a wave's first start came %s (mean; max %s) after the wave"
        + " opened, its last start %s (mean; max %s) after its first;%n  a wave ran %s (mean; max %s) beyond its"
        + " ideal; %d member(s) found their cutover held by the campaign (a hold waits 1 s)%n", ms(mean(r.memberMs)),
        ms(pct(r.memberMs, 50)), ms(pct(r.memberMs, 100)), ms(r.memberIdealMs), ms(mean(r.waveGapMs)),
        ms(pct(r.waveGapMs, 100)), ms(mean(r.staggerMs)), ms(pct(r.staggerMs, 100)), ms(mean(r.waveOverheadMs)),
        ms(pct(r.waveOverheadMs, 100)), r.held);
    StringBuilder phases = new StringBuilder("  mean time in each phase:");
    for (Map.Entry<Phase, List<Double>> e : r.phaseMs.entrySet()) {
      phases.append(' ').append(e.getKey()).append(' ').append(String.format(Locale.ROOT, "%.0f", mean(e.getValue())));
    }
    System.out.println(phases.append(" ms"));
    StringBuilder steps = new StringBuilder("  mean cutover steps:");
    r.cutoverMs.forEach((step, values) -> steps.append(' ').append(step).append(' ')
        .append(String.format(Locale.ROOT, "%.0f", mean(values))));
    System.out.println(steps.append(" ms"));
  }

  private static String ms(double millis) {
    return millis >= 10_000 ? String.format(Locale.ROOT, "%.1f s", millis / 1000)
        : String.format(Locale.ROOT, "%.0f ms", millis);
  }

  private static String verdict(boolean met) {
    return met ? "met" : "MISSED";
  }

  /** The 0.99 quantile of {@code turnout_route_ack} as the control plane publishes it (a decaying window). */
  private static String metricsAckP99(ControlPlane plane) throws Exception {
    var response = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
        java.net.URI.create("http://127.0.0.1:" + plane.httpPort() + "/metrics")).build(),
        java.net.http.HttpResponse.BodyHandlers.ofString());
    for (String line : response.body().split("\n")) {
      if (line.startsWith("turnout_route_ack_seconds{") && line.contains("quantile=\"0.99\"")) {
        double seconds = Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
        return ms(seconds * 1000);
      }
    }
    return "(not found)";
  }

  // ---- the sidecars: a second JVM, so the CPU and heap measured here are the control plane's

  /** HTTP/2 connections carry 100 streams each: a load process is not thousands of hosts. */
  private static final int PER_CHANNEL = 100;

  /** The load process: {@code --client-process PORT SIDECARS SERVICES}; runs until its stdin closes. */
  private static void clientProcess(String[] args) throws Exception {
    int port = Integer.parseInt(args[1]);
    int sidecars = Integer.parseInt(args[2]);
    int services = Integer.parseInt(args[3]);
    List<ManagedChannel> channels = new ArrayList<>();
    List<SimulatedSidecar> nodes = new ArrayList<>();
    for (int i = 0; i < sidecars; i++) {
      if (i % PER_CHANNEL == 0) {
        channels.add(NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().maxInboundMessageSize(64 << 20)
            .build());
      }
      nodes.add(new SimulatedSidecar(channels.get(channels.size() - 1), "node-" + i, "svc-" + (i % services)));
    }
    System.out.println("sidecars started: " + sidecars);
    System.out.flush();
    while (System.in.read() != -1) {
      // until the benchmark closes our stdin
    }
    System.exit(0);
  }

  private static Process clientProcess(ControlPlane plane, Setup s, Path dir) throws Exception {
    return new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xss512k",
        "-cp", XdsFanoutBenchmark.classPath(), CampaignBenchmark.class.getName(), "--client-process",
        Integer.toString(plane.xdsPort()), Integer.toString(s.sidecars()), Integer.toString(s.services()))
        .redirectErrorStream(true).redirectOutput(dir.resolve("sidecars.log").toFile()).start();
  }

  private static void stopClients(Process clients) throws Exception {
    if (clients != null) {
      clients.getOutputStream().close();
      if (!clients.waitFor(60, TimeUnit.SECONDS)) {
        clients.destroyForcibly();
        clients.waitFor(10, TimeUnit.SECONDS);
      }
    }
  }

  private static void awaitAllAcked(ControlPlane plane, int sidecars, long version, Duration timeout, Path dir)
      throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long acked = plane.tracker().nodes().stream().filter(n -> n.ackedVersion(XdsType.EDS) >= version).count();
      if (acked >= sidecars) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("only " + acked + " of " + sidecars + " sidecars ACKed within " + timeout
            + "; see " + dir.resolve("sidecars.log"));
      }
      Thread.sleep(100);
    }
  }
}
