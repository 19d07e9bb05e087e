package dev.turnout.it.bench;

import com.google.common.collect.ImmutableList;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.CampaignRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.controlplane.xds.XdsType;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.it.console.Chromium;
import dev.turnout.migrator.Migrator;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WindowType;
import org.openqa.selenium.chrome.ChromeDriver;

/**
 * Benchmark of the web console at fleet scale: a control plane routing N databases (1,000 by default), M simulated
 * sidecars (5,000, in a second JVM, real ADS streams ACKing like Envoy) and a campaign running over the first
 * servers on {@link SimulatedPlatform} (simulated step durations: nothing about a migration's safety is measured
 * here). In Debian's headless chromium it prints:
 * <ul>
 *   <li>the fleet page's weight (the first visit: HTML, scripts and styles as transferred, gzip, and unpacked);
 *   <li>its time to first render (first contentful paint, and the server's time to the last byte of the HTML),
 *       median and max over several loads;
 *   <li>the control plane's CPU while C consoles (tabs, 20 by default) watch the campaign's page, against the same
 *       time with none: the console's own threads (the HTTP handlers, which also run the admin service's reads)
 *       and the whole process.
 * </ul>
 * With {@code --screenshots DIR} it also saves the fleet, nodes, campaign and migration pages as PNG.
 *
 * <pre>mvn -q -pl integration-tests exec:java@console-bench -Dexec.args="[--databases 1000] [--sidecars 5000]
 *     [--consoles 20] [--seconds 30] [--renders 10] [--campaign 400] [--screenshots docs]"</pre>
 */
public final class ConsoleBenchmark {
  private ConsoleBenchmark() {}

  public static void main(String[] args) throws Exception {
    int databases = 1000;
    int sidecars = 5000;
    int services = 100;
    int consoles = 20;
    int seconds = 30;
    int renders = 10;
    int campaignServers = 400;
    Path screenshots = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--databases" -> databases = Integer.parseInt(args[++i]);
        case "--sidecars" -> sidecars = Integer.parseInt(args[++i]);
        case "--services" -> services = Integer.parseInt(args[++i]);
        case "--consoles" -> consoles = Integer.parseInt(args[++i]);
        case "--seconds" -> seconds = Integer.parseInt(args[++i]);
        case "--renders" -> renders = Integer.parseInt(args[++i]);
        case "--campaign" -> campaignServers = Integer.parseInt(args[++i]);
        case "--screenshots" -> screenshots = Path.of(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i] + "; known: --databases,"
            + " --sidecars, --services, --consoles, --seconds, --renders, --campaign, --screenshots");
      }
    }
    if (!Chromium.installed()) {
      System.err.println(Chromium.missing());
      System.exit(2);
    }
    Path dir = BenchSupport.tempDirectory("turnout-console-bench", args);
    System.out.printf(Locale.ROOT, "%nconsole bench: %d databases, %d SIMULATED sidecars (second JVM) in %d services,"
        + " a campaign over %d SIMULATED servers, %d cores; in %s%n", databases, sidecars, services, campaignServers,
        Runtime.getRuntime().availableProcessors(), dir);
    List<DatabaseRoute> routes = new ArrayList<>();
    StringBuilder yaml = new StringBuilder("name: console-bench\npolicy:\n  canary: 1\n  canary_bake: 0s\n"
        + "  wave_size: 25\n  wave_bake: 0s\n  max_concurrent: 25\n  max_concurrent_per_host: 25\n"
        + "  max_failures: 1\nmigration:\n  window: 5s\n  deadline: 2m\nservers:\n");
    for (int i = 0; i < databases; i++) {
      String source = address(1, i);
      routes.add(new DatabaseRoute("db" + String.format(Locale.ROOT, "%04d", i), 20000 + i,
          Optional.of(Endpoint.parse(source)), Set.of("svc-" + (i % services))));
      if (i < campaignServers) {
        yaml.append("  - server: ").append(source).append("\n    target: ").append(address(2, i)).append('\n');
      }
    }
    TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0), dir.resolve("store"),
        Duration.ofSeconds(60), ImmutableList.copyOf(routes), TurnoutConfig.MigratorSettings.DEFAULT);
    SimulatedPlatform platform = new SimulatedPlatform();
    Process clients = null;
    ChromeDriver browser = null;
    ManagedChannel admin = null;
    try (ControlPlane plane = ControlPlane.start(config, RoutingService.Resolver.SYSTEM, Migrator.Failpoint.NONE,
        platform)) {
      clients = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xss512k",
          "-cp", XdsFanoutBenchmark.classPath(), CampaignBenchmark.class.getName(), "--client-process",
          Integer.toString(plane.xdsPort()), Integer.toString(sidecars), Integer.toString(services))
          .redirectErrorStream(true).redirectOutput(dir.resolve("sidecars.log").toFile()).start();
      awaitAllAcked(plane, sidecars, plane.routing().version(), Duration.ofMinutes(5));
      String base = "http://127.0.0.1:" + plane.httpPort();
      browser = Chromium.start(dir.resolve("chromium"), 1400, 1000);

      // The first visit, cold: its weight.
      browser.get(base + "/console");
      Map<String, Object> weight = weight(browser);
      System.out.printf(Locale.ROOT, "fleet page weight, first visit (%d databases, page of 50): HTML %s transferred"
          + " (%s unpacked); scripts and styles %s transferred (%s unpacked) in %s files; total %s; first contentful"
          + " paint %.0f ms (DOMContentLoaded %.0f ms)%n", databases,
          kib(weight.get("htmlTransfer")), kib(weight.get("htmlDecoded")), kib(weight.get("assetsTransfer")),
          kib(weight.get("assetsDecoded")), weight.get("assets"), kib(num(weight.get("htmlTransfer"))
              + num(weight.get("assetsTransfer"))), num(timing(browser).get("fcp")), num(timing(browser).get("dcl")));
      System.out.printf(Locale.ROOT, "each poll (the live part, every 2 s): %s transferred%n",
          kib(pollBytes(base + "/console")));

      // Time to first render: loads after the first (scripts cached, as an SRE's second look), the median and max.
      List<Double> paint = new ArrayList<>();
      List<Double> html = new ArrayList<>();
      for (int i = 0; i < renders + 2; i++) {
        browser.get("about:blank");
        browser.get(base + "/console");
        Map<String, Object> t = timing(browser);
        if (i >= 2) { // two warm-ups: the JIT
          paint.add(num(t.get("fcp")) >= 0 ? num(t.get("fcp")) : num(t.get("dcl")));
          html.add(num(t.get("html")));
        }
      }
      Collections.sort(paint);
      Collections.sort(html);
      System.out.printf(Locale.ROOT, "fleet page, %d databases and %d sidecars, %d loads: first contentful paint"
          + " median %.0f ms, max %.0f ms; the server's HTML (request to last byte) median %.0f ms, max %.0f ms%n",
          databases, sidecars, paint.size(), paint.get(paint.size() / 2), paint.get(paint.size() - 1),
          html.get(html.size() / 2), html.get(html.size() - 1));

      // The campaign, and the consoles watching it.
      admin = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext()
          .maxInboundMessageSize(256 << 20).build();
      String id = AdminGrpc.newBlockingStub(admin).startCampaign(CampaignRequest.newBuilder()
          .setYaml(yaml.toString()).setFileName("console-bench.yaml").build()).getId();
      browser.get("about:blank"); // no page polls while the control plane is measured alone
      Thread.sleep(3000);
      Cpu idle = cpu(seconds);
      System.out.printf(Locale.ROOT, "campaign running, no console: process %.1f%% of a core, HTTP threads %.2f%%"
          + " (%d s)%n", idle.process(), idle.http(), seconds);
      List<String> tabs = new ArrayList<>();
      for (int i = 0; i < consoles; i++) {
        if (i > 0) {
          browser.switchTo().newWindow(WindowType.TAB);
        }
        browser.get(base + "/console/campaigns/" + id);
        tabs.add(browser.getWindowHandle());
      }
      Thread.sleep(3000);
      long served = plane.console().requestsServed();
      Cpu watched = cpu(seconds);
      served = plane.console().requestsServed() - served;
      System.out.printf(Locale.ROOT, "campaign running, %d consoles watching its page: process %.1f%% of a core,"
          + " HTTP threads %.2f%% (%d s); %d polls answered (%.1f/s; every console every 2 s would be %.1f/s)%n",
          consoles, watched.process(), watched.http(), seconds, served, served / (double) seconds, consoles / 2.0);
      for (String tab : tabs.subList(1, tabs.size())) { // the screenshots need a browser that is not swamped
        browser.switchTo().window(tab).close();
      }
      browser.switchTo().window(tabs.get(0));
      if (screenshots != null) {
        Files.createDirectories(screenshots);
        shoot(browser, base + "/console", screenshots.resolve("console-fleet.png"));
        shoot(browser, base + "/console/nodes", screenshots.resolve("console-nodes.png"));
        shoot(browser, base + "/console/campaigns/" + id, screenshots.resolve("console-campaign.png"));
        for (var m : AdminGrpc.newBlockingStub(admin).getCampaign(dev.turnout.admin.v1.CampaignId.newBuilder()
            .setId(id).build()).getMembersList()) {
          if (!m.getMigrationId().isEmpty() && !m.getPhase().equals("COMPLETED")) {
            shoot(browser, base + "/console/migrations/" + m.getMigrationId(),
                screenshots.resolve("console-migration-simulated.png"));
            break;
          }
        }
        System.out.println("screenshots in " + screenshots.toAbsolutePath());
      }
    } finally {
      if (browser != null) {
        browser.quit();
      }
      if (admin != null) {
        admin.shutdownNow();
      }
      if (clients != null) {
        clients.getOutputStream().close();
        if (!clients.waitFor(30, TimeUnit.SECONDS)) {
          clients.destroyForcibly();
        }
      }
    }
    System.exit(0);
  }

  static void shoot(ChromeDriver browser, String url, Path file) throws Exception {
    browser.get(url);
    Thread.sleep(2500); // a poll or two, and the charts' first points
    Files.write(file, browser.getScreenshotAs(OutputType.BYTES));
  }

  /** The process's CPU and the HTTP handler threads' (the console's pages), in percent of one core over seconds. */
  record Cpu(double process, double http) {}

  private static Cpu cpu(int seconds) throws InterruptedException {
    var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    long p0 = os.getProcessCpuTime();
    long h0 = httpThreadsCpu();
    long t0 = System.nanoTime();
    Thread.sleep(seconds * 1000L);
    long wall = System.nanoTime() - t0;
    return new Cpu(100.0 * (os.getProcessCpuTime() - p0) / wall, 100.0 * (httpThreadsCpu() - h0) / wall);
  }

  private static long httpThreadsCpu() {
    ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    long sum = 0;
    for (var info : threads.getThreadInfo(threads.getAllThreadIds())) {
      if (info != null && (info.getThreadName().startsWith("turnout-http-")
          || info.getThreadName().startsWith("HTTP-Dispatcher"))) {
        long t = threads.getThreadCpuTime(info.getThreadId());
        sum += Math.max(0, t);
      }
    }
    return sum;
  }

  /**
   * The page's first contentful paint (from the navigation's start, as the browser's Paint Timing gives it; the
   * end of DOMContentLoaded where it gives none) and the HTML's time from request to last byte.
   */
  @SuppressWarnings("unchecked")
  static Map<String, Object> timing(ChromeDriver browser) {
    return (Map<String, Object>) ((JavascriptExecutor) browser).executeAsyncScript(
        "var done = arguments[arguments.length - 1];"
            + "var n = performance.getEntriesByType('navigation')[0];"
            + "var r = {fcp: -1, dcl: n.domContentLoadedEventEnd, html: n.responseEnd - n.requestStart};"
            + "try { new PerformanceObserver(function (l) { l.getEntries().forEach(function (e) {"
            + "  if (e.name === 'first-contentful-paint') { r.fcp = e.startTime; } }); done(r); })"
            + "  .observe({type: 'paint', buffered: true}); } catch (e) { done(r); }"
            + "setTimeout(function () { done(r); }, 2000);");
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> weight(ChromeDriver browser) {
    return (Map<String, Object>) ((JavascriptExecutor) browser).executeScript(
        "var n = performance.getEntriesByType('navigation')[0];"
            + "var r = performance.getEntriesByType('resource').filter(e => /\\.(js|css)$/.test(e.name));"
            + "var p = performance.getEntriesByName('first-contentful-paint')[0];"
            + "return {fcp: p ? p.startTime : -1, htmlTransfer: n.transferSize, htmlDecoded: n.decodedBodySize,"
            + " assetsTransfer: r.reduce((a, e) => a + e.transferSize, 0),"
            + " assetsDecoded: r.reduce((a, e) => a + e.decodedBodySize, 0), assets: r.length};");
  }

  private static long pollBytes(String url) throws Exception {
    var client = java.net.http.HttpClient.newHttpClient();
    var response = client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(url))
        .header("HX-Request", "true").header("Accept-Encoding", "gzip").build(),
        java.net.http.HttpResponse.BodyHandlers.ofByteArray());
    return response.body().length;
  }

  private static double num(Object o) {
    return o instanceof Number n ? n.doubleValue() : 0;
  }

  private static String kib(Object bytes) {
    return String.format(Locale.ROOT, "%.1f KiB", num(bytes) / 1024);
  }

  private static String address(int net, int i) {
    return "10." + net + "." + (i / 250) + "." + (i % 250 + 1) + ":5432";
  }

  private static void awaitAllAcked(ControlPlane plane, int sidecars, long version, Duration timeout)
      throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long acked = plane.tracker().nodes().stream().filter(n -> n.ackedVersion(XdsType.EDS) >= version).count();
      if (acked >= sidecars) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("only " + acked + " of " + sidecars + " sidecars ACKed within " + timeout);
      }
      Thread.sleep(100);
    }
  }
}
