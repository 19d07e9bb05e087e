package dev.turnout.controlplane.console;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.security.TestCertificates;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The console's actions over HTTPS with client certificates, as a browser (or a forged cross-site request) would
 * send them: only a writer's certificate, with the page's token in a header matching its cookie, from the page's own
 * origin, reaches the admin service; everything else is refused before it.
 */
class ConsoleActionsTest {
  @TempDir Path dir;
  TestCertificates certs;
  ControlPlane plane;

  @BeforeEach
  void start() throws Exception {
    certs = new TestCertificates(dir);
    certs.issue("ops-admin");
    certs.issue("sre-viewer");
    TurnoutConfig.Tls tls = new TurnoutConfig.Tls(certs.crt("turnout-control-plane"),
        certs.key("turnout-control-plane"), certs.ca(), Set.of("ops-admin"), Set.of("sre-viewer"));
    // The source of orders: a port that accepts and never answers, so a migration of it stays in PREFLIGHT (its
    // connection waits) for as long as a test needs a campaign running.
    hole = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
    Thread holder = new Thread(() -> {
      while (!hole.isClosed()) {
        try {
          held.add(hole.accept());
        } catch (java.io.IOException e) {
          return;
        }
      }
    }, "silent-source");
    holder.setDaemon(true);
    holder.start();
    plane = ControlPlane.start(new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0, Optional.of(tls)),
        dir.resolve("store"), Duration.ofSeconds(5), ImmutableList.of(database("orders", 25432, silentSource())),
        TurnoutConfig.MigratorSettings.DEFAULT));
  }

  @AfterEach
  void stop() throws Exception {
    plane.close();
    hole.close();
    for (java.net.Socket socket : held) {
      socket.close();
    }
  }

  private java.net.ServerSocket hole;
  private final java.util.List<java.net.Socket> held = new java.util.concurrent.CopyOnWriteArrayList<>();

  private String silentSource() {
    return "127.0.0.1:" + hole.getLocalPort();
  }

  private HttpClient as(String who) throws Exception {
    var context = ((JdkSslContext) SslContextBuilder.forClient().keyManager(certs.crt(who).toFile(),
        certs.key(who).toFile()).trustManager(certs.ca().toFile()).sslProvider(SslProvider.JDK).build()).context();
    return HttpClient.newBuilder().sslContext(context).build();
  }

  private String https(String path) {
    return "https://127.0.0.1:" + plane.consoleHttpsPort() + path;
  }

  /** The page a writer's browser loads: its token (in the page) and its cookie. */
  private record Page(String token, String cookie) {}

  private Page page(HttpClient client) throws Exception {
    HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(https("/console"))).build(),
        HttpResponse.BodyHandlers.ofString());
    Matcher m = Pattern.compile("name=\"turnout-csrf\" content=\"([^\"]*)\"").matcher(r.body());
    assertThat(m.find()).isTrue();
    String cookie = r.headers().firstValue("Set-Cookie").orElse("");
    return new Page(m.group(1), cookie.isEmpty() ? "" : cookie.substring(0, cookie.indexOf(';')));
  }

  private HttpResponse<String> post(HttpClient client, String path, String token, String cookie, String origin)
      throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(https(path))).POST(HttpRequest.BodyPublishers.noBody());
    if (token != null) {
      b.header(Console.CSRF_HEADER, token);
    }
    if (cookie != null && !cookie.isEmpty()) {
      b.header("Cookie", cookie);
    }
    if (origin != null) {
      b.header("Origin", origin);
    }
    return client.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void aWritersAction_needsThePagesToken_fromThePagesOrigin() throws Exception {
    HttpClient writer = as("ops-admin");
    Page page = page(writer);
    assertThat(page.token()).hasSizeGreaterThanOrEqualTo(20);
    assertThat(page.cookie()).isEqualTo(Console.CSRF_COOKIE + "=" + page.token());
    String origin = "https://127.0.0.1:" + plane.consoleHttpsPort();

    // A cross-site form: no header. A forged header without the cookie. Another origin.
    assertThat(post(writer, "/v1/campaigns/c-1/pause", null, page.cookie(), origin).statusCode()).isEqualTo(403);
    assertThat(post(writer, "/v1/campaigns/c-1/pause", "forged-token-forged-token", page.cookie(), origin).body())
        .contains("token is missing or does not match");
    assertThat(post(writer, "/v1/campaigns/c-1/pause", page.token(), "", origin).statusCode()).isEqualTo(403);
    assertThat(post(writer, "/v1/campaigns/c-1/pause", page.token(), page.cookie(), "https://evil.example").body())
        .contains("another origin");

    // The page's own request reaches the admin service, which answers for the campaign.
    HttpResponse<String> own = post(writer, "/v1/campaigns/c-1/pause", page.token(), page.cookie(), origin);
    assertThat(own.statusCode()).isEqualTo(404);
    assertThat(own.body()).contains("NOT_FOUND").contains("no campaign c-1");
  }

  @Test
  void aWriterPausesACampaign_asTheAdminApiWould_andTheAuditLogNamesTheCertificate() throws Exception {
    // A campaign of one member whose source accepts and never answers: it runs (its member in PREFLIGHT) until the
    // click pauses it.
    var admin = io.grpc.netty.NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort())
        .sslContext(dev.turnout.controlplane.security.Tls.clientContext(certs.crt("ops-admin"),
            certs.key("ops-admin"), certs.ca())).build();
    try {
      var stub = dev.turnout.admin.v1.AdminGrpc.newBlockingStub(admin);
      String id = stub.startCampaign(dev.turnout.admin.v1.CampaignRequest.newBuilder().setFileName("t.yaml")
          .setYaml("name: console-test\npolicy:\n  canary: 0\nservers:\n  - server: " + silentSource() + "\n"
              + "    target: 127.0.0.1:1\n").build()).getId();
      HttpClient writer = as("ops-admin");
      Page page = page(writer);
      String origin = "https://127.0.0.1:" + plane.consoleHttpsPort();
      HttpResponse<String> campaignPage = writer.send(HttpRequest.newBuilder(URI.create(https("/console/campaigns/"
          + id))).header("Cookie", page.cookie()).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(campaignPage.body()).contains("id=\"pause\"").contains("data-confirm=\"Pause campaign console-test?");

      HttpResponse<String> paused = post(writer, "/v1/campaigns/" + id + "/pause", page.token(), page.cookie(), origin);
      // The answer is the admin service's: the campaign as the pause left it.
      assertThat(paused.statusCode()).as(paused.body()).isEqualTo(200);
      assertThat(paused.body()).contains("\"status\": \"PAUSED\"");
      var audit = stub.listAudit(dev.turnout.admin.v1.ListAuditRequest.getDefaultInstance());
      assertThat(audit.getEntriesList()).anySatisfy(e -> {
        assertThat(e.getCall()).isEqualTo("PauseCampaign");
        assertThat(e.getWho()).isEqualTo("ops-admin");
      });
    } finally {
      admin.shutdownNow();
    }
  }

  @Test
  void aReader_andThePlainPort_areReadOnly() throws Exception {
    HttpClient reader = as("sre-viewer");
    HttpResponse<String> page = reader.send(HttpRequest.newBuilder(URI.create(https("/console"))).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(page.statusCode()).isEqualTo(200);
    assertThat(page.body()).contains("<b>sre-viewer</b>, read-only").contains("content=\"\"");
    assertThat(post(reader, "/v1/campaigns/c-1/pause", "x", "", null).body())
        .contains("identity 'sre-viewer' is not an admin writer");

    HttpResponse<String> plain = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
        "http://127.0.0.1:" + plane.httpPort() + "/v1/migrations/m-1/rollback"))
        .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(plain.statusCode()).isEqualTo(403);
    assertThat(plain.body()).contains("the console on the HTTP port is read-only");
  }

  @Test
  void everyPageNamesTheReplica_andTheJsonIsThere() throws Exception {
    HttpClient client = HttpClient.newHttpClient();
    String base = "http://127.0.0.1:" + plane.httpPort();
    for (String path : new String[] {"/console", "/console/nodes", "/console/migrations", "/console/campaigns"}) {
      HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(base + path)).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).as(path).isEqualTo(200);
      assertThat(r.body()).as(path).contains("answered by replica");
      assertThat(r.headers().firstValue("X-Turnout-Replica")).as(path).isPresent();
    }
    HttpResponse<String> fleet = client.send(HttpRequest.newBuilder(URI.create(base + "/v1/fleet?q=ord")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(fleet.body()).contains("\"name\":\"orders\"").contains("\"endpoint\":\"" + silentSource() + "\"");
    HttpResponse<String> missing = client.send(HttpRequest.newBuilder(URI.create(base + "/v1/migrations/nope"))
        .build(), HttpResponse.BodyHandlers.ofString());
    assertThat(missing.statusCode()).isEqualTo(404);
    HttpResponse<String> poll = client.send(HttpRequest.newBuilder(URI.create(base + "/console"))
        .header("HX-Request", "true").build(), HttpResponse.BodyHandlers.ofString());
    assertThat(poll.body()).startsWith("<div id=\"live\"").doesNotContain("<html");
    HttpResponse<String> script = client.send(HttpRequest.newBuilder(URI.create(base + Pages.HTMX)).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(script.statusCode()).as("htmx from its WebJar").isEqualTo(200);
    assertThat(client.send(HttpRequest.newBuilder(URI.create(base + Pages.UPLOT_JS)).build(),
        HttpResponse.BodyHandlers.ofString()).statusCode()).as("uPlot from its WebJar").isEqualTo(200);
  }
}
