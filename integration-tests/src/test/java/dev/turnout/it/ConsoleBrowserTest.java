package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.common.collect.ImmutableSet;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.security.Tls;
import dev.turnout.it.console.CertificateTunnel;
import dev.turnout.it.console.Certificates;
import dev.turnout.it.console.Chromium;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Phase;
import dev.turnout.sidecar.SidecarConfig;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.openqa.selenium.Alert;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.WindowType;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The web console in a real headless chromium (Debian's, through chromedriver), against a real control plane with
 * mutual TLS, a real sidecar and a real PostgreSQL 15 migration: what an SRE sees, without reloading the page.
 * One fixture and one browser for the class; each test leaves the fixture as the next expects it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ConsoleBrowserTest {
  private static final String WRITER = "ops-admin";
  private static final String READER = "sre";

  private Path dir;
  private MigrationFixture fixture;
  private Certificates certs;
  private ChromeDriver browser;
  private CertificateTunnel writerTunnel;
  private CertificateTunnel readerTunnel;
  private String plain;

  @BeforeAll
  void start() throws Exception {
    if (!Chromium.installed()) {
      return; // each test is reported skipped, naming what is missing (see skipWithoutChromium)
    }
    dir = Files.createTempDirectory("console-browser");
    certs = new Certificates(dir.resolve("tls")).issue("app").issue(WRITER).issue(READER);
    TurnoutConfig.Tls serverTls = new TurnoutConfig.Tls(certs.crt("turnout-control-plane"),
        certs.key("turnout-control-plane"), certs.ca(), ImmutableSet.of(WRITER), Set.of()).withConsolePort(0);
    fixture = MigrationFixture.withTls(dir.resolve("fixture"), new MigrationFixture.Tls(serverTls,
        new SidecarConfig.Tls(certs.crt("app"), certs.key("app"), certs.ca())));
    plain = "http://127.0.0.1:" + fixture.plane.httpPort();
    writerTunnel = new CertificateTunnel(fixture.plane.consoleHttpsPort(), certs.crt(WRITER), certs.key(WRITER),
        certs.ca());
    readerTunnel = new CertificateTunnel(fixture.plane.consoleHttpsPort(), certs.crt(READER), certs.key(READER),
        certs.ca());
    browser = Chromium.start(dir.resolve("chromium"), 1280, 900);
  }

  @BeforeEach
  void skipWithoutChromium() {
    assumeTrue(Chromium.installed(), Chromium.missing());
  }

  @AfterAll
  void stop() throws Exception {
    if (browser != null) {
      browser.quit();
    }
    if (writerTunnel != null) {
      writerTunnel.close();
      readerTunnel.close();
    }
    if (fixture != null) {
      fixture.close();
    }
    if (dir != null) { // the servers' data, the certificates and chromium's profile: about 125 MB a run
      try {
        com.google.common.io.MoreFiles.deleteRecursively(dir, com.google.common.io.RecursiveDeleteOption.ALLOW_INSECURE);
      } catch (java.io.IOException e) {
        System.err.println("could not delete " + dir + ": " + e);
      }
    }
  }

  @Test
  @Order(1)
  void aNackingNode_appearsNacked_withItsError() throws Exception {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", fixture.xdsPort)
        .sslContext(Tls.clientContext(certs.crt("app"), certs.key("app"), certs.ca())).build();
    try (var client = RawAdsClient.sotw(channel)) {
      client.send(DiscoveryRequest.newBuilder().setTypeUrl(RawAdsClient.EDS).addResourceNames("app")
          .setNode(RawAdsClient.node("app-nacker", "app")).build());
      DiscoveryResponse eds = client.expect("the app assignment");
      // Envoy's NACK: the last accepted version (none), the rejected response's nonce, the reason.
      client.send(DiscoveryRequest.newBuilder().setTypeUrl(RawAdsClient.EDS).addResourceNames("app")
          .setResponseNonce(eds.getNonce()).setErrorDetail(com.google.rpc.Status.newBuilder().setCode(3)
              .setMessage("endpoint 127.0.0.1 refused by policy")).build());

      browser.get(plain + "/console/nodes");
      wait(10).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("tr[data-node='app-nacker']")));
      assertThat(text(By.cssSelector("tr[data-node='app-nacker']"))).contains("NACKED")
          .contains("endpoint 127.0.0.1 refused by policy");
      assertThat(text(By.cssSelector("tr[data-node='app-1']"))).contains("SYNCED");
      assertThat(text(By.cssSelector(".answered"))).contains("answered by replica");
      screenshot("console-nodes-nack.png");
      browser.get(plain + "/console?status=NACKED");
      wait(10).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("tr[data-database='app']")));
      assertThat(text(By.cssSelector("tr[data-database='app']"))).contains("NACKED");
    } finally {
      channel.shutdownNow();
    }
  }

  @Test
  @Order(2)
  void aReaderCannotRollBack_aWriterCanAfterConfirming() throws Exception {
    Migration m = fixture.migrator().start(fixture.spec(Duration.ofSeconds(120), Duration.ofSeconds(180)));
    try {
      readerAndWriter(m);
    } finally { // the next test migrates the same database: leave no migration behind
      if (!fixture.migrator().get(m.id()).orElseThrow().phase().isTerminal()) {
        fixture.migrator().rollback(m.id(), false);
        fixture.awaitPhase(m.id(), Phase::isTerminal, Duration.ofSeconds(60));
      }
    }
  }

  private void readerAndWriter(Migration m) throws Exception {
    fixture.awaitPhase(m.id(), p -> p == Phase.REPLICATING, Duration.ofSeconds(60));
    String page = "/console/migrations/" + m.id();

    // Without a certificate (the HTTP port): no button, and the API refuses the same POST from the page.
    browser.get(plain + page);
    wait(10).until(ExpectedConditions.textToBe(By.id("phase"), "REPLICATING"));
    assertThat(browser.findElements(By.id("rollback"))).isEmpty();
    assertThat(text(By.id("who"))).isEqualTo("read-only");
    assertThat(post("/v1/migrations/" + m.id() + "/rollback")).startsWith("403");
    // A reader's certificate over HTTPS: named, still read-only.
    browser.get("http://127.0.0.1:" + readerTunnel.port() + page);
    wait(10).until(ExpectedConditions.textToBe(By.id("phase"), "REPLICATING"));
    assertThat(text(By.id("who"))).isEqualTo(READER + ", read-only");
    assertThat(browser.findElements(By.id("rollback"))).isEmpty();
    assertThat(post("/v1/migrations/" + m.id() + "/rollback")).startsWith("403");
    assertThat(fixture.migrator().get(m.id()).orElseThrow().phase()).isEqualTo(Phase.REPLICATING);

    // A writer's: the button, a confirmation; dismissed, nothing happens; accepted, the migration rolls back.
    browser.get("http://127.0.0.1:" + writerTunnel.port() + page);
    assertThat(text(By.id("who"))).isEqualTo("writer " + WRITER);
    wait(10).until(ExpectedConditions.presenceOfElementLocated(By.id("rollback")));
    screenshot("console-migration-writer.png");
    click(By.id("rollback"));
    Alert confirm = wait(5).until(ExpectedConditions.alertIsPresent());
    assertThat(confirm.getText()).contains("Roll back migration " + m.id());
    confirm.dismiss();
    Thread.sleep(500);
    assertThat(fixture.migrator().get(m.id()).orElseThrow().phase()).isEqualTo(Phase.REPLICATING);
    click(By.id("rollback"));
    wait(5).until(ExpectedConditions.alertIsPresent()).accept();
    wait(60).until(ExpectedConditions.textToBe(By.id("phase"), "ROLLED_BACK"));
    assertThat(text(By.id("outcome"))).contains("Done");
    assertThat(fixture.migrator().get(m.id()).orElseThrow().phase()).isEqualTo(Phase.ROLLED_BACK);
    assertThat(MigrationFixture.history(fixture.migrator().get(m.id()).orElseThrow())).contains("ROLLED_BACK");
  }

  /** The text of what {@code by} finds, read again if a poll replaced it meanwhile. */
  private String text(By by) {
    return wait(10).ignoring(org.openqa.selenium.StaleElementReferenceException.class)
        .until(d -> d.findElement(by).getText());
  }

  /** Clicks what {@code by} finds, again if a poll replaced it meanwhile (the live part is swapped every 2 s). */
  private void click(By by) {
    wait(10).ignoring(org.openqa.selenium.StaleElementReferenceException.class).until(d -> {
      d.findElement(by).click();
      return true;
    });
  }

  /** POSTs from the page's own origin, as its script would (with its token); answers "STATUS body". */
  private String post(String path) {
    Object answer = ((JavascriptExecutor) browser).executeAsyncScript(
        "var done = arguments[arguments.length - 1];"
            + "var meta = document.querySelector('meta[name=\"turnout-csrf\"]');"
            + "fetch(arguments[0], {method: 'POST', headers: {'X-Turnout-Csrf': meta ? meta.content : ''}})"
            + ".then(r => r.text().then(t => done(r.status + ' ' + t))).catch(e => done('error ' + e));", path);
    return String.valueOf(answer);
  }

  @Test
  @Order(3)
  void theFleetPageShowsTheRouteFlip_andTheMigrationTimelineAdvances_withoutAReload() throws Exception {
    String source = "127.0.0.1:" + fixture.source.port();
    String target = "127.0.0.1:" + fixture.targetPort;
    browser.get(plain + "/console");
    wait(10).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("tr[data-database='app'] .endpoint")));
    assertThat(text(By.cssSelector("tr[data-database='app'] .endpoint"))).isEqualTo(source);
    markLoaded();
    String fleet = browser.getWindowHandle();

    Migration m = fixture.migrator().start(fixture.spec(Duration.ofSeconds(2), Duration.ofSeconds(60)));
    browser.switchTo().newWindow(WindowType.TAB);
    browser.get(plain + "/console/migrations/" + m.id());
    wait(10).until(ExpectedConditions.presenceOfElementLocated(By.id("timeline")));
    markLoaded();
    List<String> seen = new ArrayList<>();
    new WebDriverWait(browser, Duration.ofSeconds(90), Duration.ofMillis(200))
        .ignoring(org.openqa.selenium.StaleElementReferenceException.class).until(d -> {
      String phases = String.join(" ", d.findElements(By.cssSelector("#timeline li b")).stream()
          .map(WebElement::getText).toList());
      if (seen.isEmpty() || !seen.get(seen.size() - 1).equals(phases)) {
        seen.add(phases);
      }
      return d.findElement(By.id("phase")).getText().equals("COMPLETED");
    });
    assertThat(stillLoaded()).as("the migration page was not reloaded").isTrue();
    // Polled every 2 s, a migration with a 2 s window may show only two timelines: one before and one after.
    assertThat(seen).as("timelines seen, in order").hasSizeGreaterThanOrEqualTo(2);
    assertThat(seen.get(0)).as("the first timeline seen is before the cutover").doesNotContain("QUIESCING");
    assertThat(seen.get(seen.size() - 1)).contains("QUIESCING").contains("SHIFTING").endsWith("COMPLETED");
    assertThat(text(By.id("write-stop"))).matches("[0-9.]+ (ms|s)");
    // After promotion the way back is the reverse replication: lossless while it is healthy, and said so.
    new WebDriverWait(browser, Duration.ofSeconds(15), Duration.ofMillis(200))
        .ignoring(org.openqa.selenium.StaleElementReferenceException.class)
        .until(d -> d.findElement(By.id("rollback-state")).getText().contains("possible and lossless"));
    assertThat(text(By.id("rollback-state"))).contains("while the reverse replication is healthy")
        .contains("reverse lag");
    screenshot("console-migration.png");

    browser.switchTo().window(fleet);
    wait(10).until(ExpectedConditions.textToBe(By.cssSelector("tr[data-database='app'] .endpoint"), target));
    assertThat(stillLoaded()).as("the fleet page was not reloaded").isTrue();
    assertThat(text(By.id("conn"))).isEqualTo("live");
  }

  @Test
  @Order(4)
  void aPageSaysSoWhenTheControlPlaneIsUnreachable() throws Exception {
    CertificateTunnel tunnel = new CertificateTunnel(fixture.plane.consoleHttpsPort(), certs.crt(READER),
        certs.key(READER), certs.ca());
    browser.get("http://127.0.0.1:" + tunnel.port() + "/console");
    wait(10).until(ExpectedConditions.textToBe(By.id("conn"), "live"));
    tunnel.close();
    wait(15).until(ExpectedConditions.textToBePresentInElementLocated(By.id("conn"), "control plane unreachable"));
    String conn = wait(5).ignoring(org.openqa.selenium.StaleElementReferenceException.class)
        .until(d -> d.findElement(By.id("conn")).getAttribute("class"));
    assertThat(conn).contains("down");
  }

  /**
   * Saves the page as {@code name} in the directory the system property {@code turnout.console.screenshots} names
   * (the README's screenshots: {@code -Dturnout.console.screenshots=$PWD/docs}); nothing without it.
   */
  private void screenshot(String name) throws Exception {
    String to = System.getProperty("turnout.console.screenshots");
    if (to != null) {
      Files.createDirectories(Path.of(to));
      Files.write(Path.of(to, name), browser.getScreenshotAs(org.openqa.selenium.OutputType.BYTES));
    }
  }

  private void markLoaded() {
    ((JavascriptExecutor) browser).executeScript("window.turnoutTestMark = 'same page';");
  }

  private boolean stillLoaded() {
    return "same page".equals(((JavascriptExecutor) browser).executeScript("return window.turnoutTestMark;"));
  }

  private WebDriverWait wait(int seconds) {
    return new WebDriverWait((WebDriver) browser, Duration.ofSeconds(seconds), Duration.ofMillis(100));
  }
}
