package dev.turnout.controlplane.console;

import com.google.common.util.concurrent.ThreadFactoryBuilder;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsExchange;
import com.sun.net.httpserver.HttpsParameters;
import com.sun.net.httpserver.HttpsServer;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.CampaignId;
import dev.turnout.admin.v1.RollbackMigrationRequest;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.migration.Migrations;
import dev.turnout.controlplane.security.AdminAuthorization;
import dev.turnout.controlplane.security.PeerIdentity;
import io.grpc.BindableService;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.MetadataUtils;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The SRE web console: server-rendered pages (fleet, nodes, migrations, campaigns) that update themselves, the JSON
 * they are made from under {@code /v1/}, and the operators' actions. It reads and acts through the admin service,
 * called in process through the same authorization and audit as the admin port, so a click is judged and recorded
 * as a {@code turnout campaign pause} would be.
 *
 * <p>On the plain HTTP port the console is read-only. With {@code server.tls} it also listens over HTTPS
 * ({@code server.tls.console_port}) asking for a client certificate signed by the client CA: a certificate whose CN
 * is an admin writer may act, after a confirmation in the page. An action is a POST that must carry the page's
 * token in the {@code X-Turnout-Csrf} header, equal to the {@code turnout_csrf} cookie (a header no cross-site form
 * can send, and a cross-site script cannot read), from the same origin when the browser says where it comes from
 * ({@code Origin}, {@code Sec-Fetch-Site}).
 */
public final class Console implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Console.class);
  static final String CSRF_HEADER = "X-Turnout-Csrf";
  static final String CSRF_COOKIE = "turnout_csrf";

  private final Server reads;
  private final Server writes;
  private final ManagedChannel readChannel;
  private final ManagedChannel writeChannel;
  private final Set<String> writers;
  private final String replica;
  private final Series series;
  private final ScheduledExecutorService sampler;
  private final ExecutorService handlers;
  private final Pages pages;
  private final Clock clock;
  private final SecureRandom random = new SecureRandom();
  private HttpsServer https;
  /** Pages, polls and JSON answered since the start (assets not counted). */
  private final java.util.concurrent.atomic.AtomicLong served = new java.util.concurrent.atomic.AtomicLong();

  /**
   * @param admin the admin service the admin port serves
   * @param audit the admin port's audit interceptor: the console's actions are recorded in the same log
   * @param tls the control plane's mutual TLS; empty: the console is read-only
   * @param replica the name of this replica, shown on every page
   */
  public Console(BindableService admin, ServerInterceptor audit, Optional<TurnoutConfig.Tls> tls, String replica,
      Migrations migrations, Clock clock) throws IOException {
    this.clock = clock;
    this.replica = replica;
    this.writers = tls.map(TurnoutConfig.Tls::adminWriters).orElse(Set.of());
    String name = "turnout-console-" + Long.toHexString(new SecureRandom().nextLong());
    // Reads: the console shows what the HTTP port's /v1/routes and /metrics already show anyone who reaches it.
    // Run on the page's own thread (direct executor): a read holds no lock a call could wait on, and a page's
    // cost is then all on the HTTP handler threads.
    reads = InProcessServerBuilder.forName(name + "-r").directExecutor().addService(ServerInterceptors.intercept(admin,
        new ConsoleCaller())).build().start();
    // Writes: the admin port's chain (authorization, audit, the caller) with the browser's identity as the caller.
    List<ServerInterceptor> chain = new ArrayList<>();
    tls.ifPresent(t -> chain.add(new AdminAuthorization(t.adminWriters(), t.adminReaders())));
    chain.add(audit);
    chain.add(new ConsoleCaller());
    writes = InProcessServerBuilder.forName(name + "-w").addService(ServerInterceptors.intercept(admin,
        chain.toArray(ServerInterceptor[]::new))).build().start();
    readChannel = InProcessChannelBuilder.forName(name + "-r").directExecutor().build();
    writeChannel = InProcessChannelBuilder.forName(name + "-w").build();
    series = new Series(Series.Source.of(migrations), clock);
    sampler = Executors.newSingleThreadScheduledExecutor(
        new ThreadFactoryBuilder().setNameFormat("turnout-console-sampler").setDaemon(true).build());
    sampler.scheduleWithFixedDelay(() -> {
      try {
        series.sample();
      } catch (RuntimeException e) {
        log.debug("console: cannot sample the migrations' figures: {}", e.getMessage());
      }
    }, 1, 1, TimeUnit.SECONDS);
    // The HTTPS console's pages are rendered off its dispatcher thread (the HTTP port's server has its own pool).
    handlers = Executors.newFixedThreadPool(4,
        new ThreadFactoryBuilder().setNameFormat("turnout-http-%d").setDaemon(true).build());
    pages = new Pages(clock, replica);
  }

  /** Serves the console (read-only) on the control plane's HTTP server. */
  public void mount(HttpServer server) {
    register(server);
  }

  /**
   * Starts the HTTPS console on {@code address} with the control plane's certificate, asking browsers for a client
   * certificate signed by the client CA (one is not required: without it the console is read-only).
   */
  public void listenHttps(InetSocketAddress address, TurnoutConfig.Tls tls) throws IOException {
    SSLContext context;
    try {
      context = ((JdkSslContext) SslContextBuilder.forServer(tls.certChain().toFile(), tls.privateKey().toFile())
          .trustManager(tls.clientCa().toFile()).sslProvider(SslProvider.JDK).build()).context();
    } catch (IllegalArgumentException | javax.net.ssl.SSLException e) {
      throw new IOException("console: cannot load the TLS files " + tls.certChain() + ", " + tls.privateKey() + ", "
          + tls.clientCa() + ": " + e.getMessage(), e);
    }
    https = HttpsServer.create(address, 0);
    https.setHttpsConfigurator(new HttpsConfigurator(context) {
      @Override
      public void configure(HttpsParameters params) {
        SSLParameters p = getSSLContext().getDefaultSSLParameters();
        p.setWantClientAuth(true);
        params.setSSLParameters(p);
      }
    });
    https.setExecutor(handlers);
    register(https);
    https.start();
  }

  /** Pages, polls and JSON requests answered since the start (scripts and styles not counted). */
  public long requestsServed() {
    return served.get();
  }

  /** The HTTPS console's port, or -1 when there is none. */
  public int httpsPort() {
    return https == null ? -1 : https.getAddress().getPort();
  }

  private void register(HttpServer server) {
    server.createContext("/", this::root);
    server.createContext("/console", ex -> handle(ex, this::page));
    server.createContext("/webjars/", this::asset);
    server.createContext("/v1/fleet", ex -> handle(ex, this::json));
    server.createContext("/v1/nodes", ex -> handle(ex, this::json));
    server.createContext("/v1/migrations", ex -> handle(ex, this::json));
    server.createContext("/v1/campaigns", ex -> handle(ex, this::json));
    server.createContext("/v1/console", ex -> handle(ex, this::json));
  }

  /** One browser request: who sent it, over what, and its query. */
  record Request(String path, Map<String, String> query, String identity, boolean https, boolean writer,
      InetSocketAddress from, String csrf, boolean hxRequest) {
    String param(String name) {
      return query.getOrDefault(name, "");
    }

    int intParam(String name, int otherwise) {
      try {
        return query.containsKey(name) ? Integer.parseInt(query.get(name)) : otherwise;
      } catch (NumberFormatException e) {
        throw Status.INVALID_ARGUMENT.withDescription(name + " '" + query.get(name) + "' is not a number")
            .asRuntimeException();
      }
    }
  }

  /** What a handler answers. */
  record Answer(int status, String type, String body, Map<String, String> headers) {
    static Answer html(String body) {
      return new Answer(200, "text/html; charset=utf-8", body, Map.of());
    }

    static Answer json(String body) {
      return new Answer(200, "application/json", body, Map.of());
    }
  }

  private interface Handler {
    Answer handle(HttpExchange ex, Request r) throws Exception;
  }

  private void handle(HttpExchange ex, Handler handler) throws IOException {
    served.incrementAndGet();
    try {
      Request r = request(ex);
      Answer a;
      try {
        a = handler.handle(ex, r);
      } catch (StatusRuntimeException e) {
        a = error(e.getStatus(), ex.getRequestURI().getPath().startsWith("/v1/"));
      }
      Map<String, String> headers = new LinkedHashMap<>(a.headers());
      if (r.csrf() != null && !cookies(ex).containsKey(CSRF_COOKIE)) {
        // The token the page carries, as a cookie the page's script never reads: an action must send both.
        headers.put("Set-Cookie", CSRF_COOKIE + "=" + r.csrf() + "; Path=/; SameSite=Strict; HttpOnly"
            + (r.https() ? "; Secure" : ""));
      }
      headers.put("Cache-Control", "no-store");
      headers.put("X-Content-Type-Options", "nosniff");
      headers.put("X-Frame-Options", "DENY");
      headers.put("Referrer-Policy", "same-origin");
      headers.put("X-Turnout-Replica", replica);
      send(ex, a.status(), a.type(), a.body().getBytes(StandardCharsets.UTF_8), headers);
    } catch (Exception e) {
      log.warn("console: {} {} failed: {}", ex.getRequestMethod(), ex.getRequestURI().getPath(), e.toString(), e);
      send(ex, 500, "text/plain; charset=utf-8", ("internal error: " + e.getMessage() + "\n")
          .getBytes(StandardCharsets.UTF_8), Map.of());
    } finally {
      ex.close();
    }
  }

  private Request request(HttpExchange ex) {
    boolean isHttps = ex instanceof HttpsExchange;
    String identity = null;
    if (ex instanceof HttpsExchange s) {
      try {
        s.getSSLSession().getPeerCertificates();
        identity = PeerIdentity.commonName(s.getSSLSession());
      } catch (SSLPeerUnverifiedException e) {
        identity = null; // no certificate: read-only
      }
    }
    boolean writer = identity != null && writers.contains(identity);
    String csrf = cookies(ex).get(CSRF_COOKIE);
    if (writer && (csrf == null || !csrf.matches("[A-Za-z0-9_-]{20,64}"))) {
      byte[] token = new byte[24];
      random.nextBytes(token);
      csrf = Base64.getUrlEncoder().withoutPadding().encodeToString(token);
    }
    return new Request(ex.getRequestURI().getPath(), query(ex.getRequestURI()), identity, isHttps, writer,
        ex.getRemoteAddress(), writer ? csrf : null, ex.getRequestHeaders().containsKey("HX-Request"));
  }

  private static Map<String, String> query(URI uri) {
    Map<String, String> q = new LinkedHashMap<>();
    String raw = uri.getRawQuery();
    if (raw == null || raw.isEmpty()) {
      return q;
    }
    for (String pair : raw.split("&")) {
      int eq = pair.indexOf('=');
      String k = URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), StandardCharsets.UTF_8);
      String v = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
      q.put(k, v);
    }
    return q;
  }

  private static Map<String, String> cookies(HttpExchange ex) {
    Map<String, String> c = new LinkedHashMap<>();
    for (String header : ex.getRequestHeaders().getOrDefault("Cookie", List.of())) {
      for (String part : header.split(";")) {
        int eq = part.indexOf('=');
        if (eq > 0) {
          c.put(part.substring(0, eq).trim(), part.substring(eq + 1).trim());
        }
      }
    }
    return c;
  }

  private void root(HttpExchange ex) throws IOException {
    try {
      if (ex.getRequestURI().getPath().equals("/")) {
        send(ex, 302, "text/plain", new byte[0], Map.of("Location", "/console"));
      } else {
        send(ex, 404, "text/plain; charset=utf-8", ("not found: " + ex.getRequestURI().getPath()
            + "\n").getBytes(StandardCharsets.UTF_8), Map.of());
      }
    } finally {
      ex.close();
    }
  }

  /** WebJars' files and the console's own script and style, from the class path, cached a day. */
  private void asset(HttpExchange ex) throws IOException {
    try {
      String path = ex.getRequestURI().getPath();
      String resource = path.startsWith("/webjars/console/")
          ? "/dev/turnout/controlplane/console/" + path.substring("/webjars/console/".length())
          : "/META-INF/resources" + path;
      if (path.contains("..") || !(resource.endsWith(".js") || resource.endsWith(".css"))) {
        send(ex, 404, "text/plain", new byte[0], Map.of());
        return;
      }
      try (InputStream in = Console.class.getResourceAsStream(resource)) {
        if (in == null) {
          send(ex, 404, "text/plain", new byte[0], Map.of());
          return;
        }
        byte[] body = in.readAllBytes();
        send(ex, 200, (resource.endsWith(".js") ? "text/javascript" : "text/css") + "; charset=utf-8", body,
            Map.of("Cache-Control", "public, max-age=86400", "X-Content-Type-Options", "nosniff"));
      }
    } finally {
      ex.close();
    }
  }

  private static void send(HttpExchange ex, int status, String type, byte[] body, Map<String, String> headers)
      throws IOException {
    ex.getResponseHeaders().set("Content-Type", type);
    headers.forEach((k, v) -> ex.getResponseHeaders().set(k, v));
    boolean gzip = body.length > 1400 && ex.getRequestHeaders().getOrDefault("Accept-Encoding", List.of()).stream()
        .anyMatch(h -> h.contains("gzip"));
    if (gzip) {
      java.io.ByteArrayOutputStream zipped = new java.io.ByteArrayOutputStream(body.length / 4);
      try (java.util.zip.GZIPOutputStream z = new java.util.zip.GZIPOutputStream(zipped)) {
        z.write(body);
      }
      body = zipped.toByteArray();
      ex.getResponseHeaders().set("Content-Encoding", "gzip");
      ex.getResponseHeaders().set("Vary", "Accept-Encoding");
    }
    ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
    if (body.length > 0) {
      try (OutputStream out = ex.getResponseBody()) {
        out.write(body);
      }
    }
  }

  private static Answer error(Status status, boolean json) {
    int code = switch (status.getCode()) {
      case NOT_FOUND -> 404;
      case INVALID_ARGUMENT -> 400;
      case PERMISSION_DENIED, UNAUTHENTICATED -> 403;
      case FAILED_PRECONDITION, ABORTED, ALREADY_EXISTS -> 409;
      default -> 503;
    };
    String message = status.getCode() + ": " + status.getDescription();
    if (json) {
      return new Answer(code, "application/json", "{\"error\":" + quote(message) + ",\"code\":\""
          + status.getCode() + "\"}\n", Map.of());
    }
    return new Answer(code, "text/html; charset=utf-8", "<!doctype html><meta charset=utf-8><title>Turnout</title>"
        + "<p>" + Html.esc(message) + "</p><p><a href=\"/console\">Fleet</a></p>", Map.of());
  }

  static String quote(String s) {
    try {
      return new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(s);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private AdminGrpc.AdminBlockingStub reader(Request r) {
    return AdminGrpc.newBlockingStub(readChannel).withDeadlineAfter(10, TimeUnit.SECONDS)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(ConsoleCaller.headers(r.identity(), r.from())));
  }

  private AdminGrpc.AdminBlockingStub writer(Request r) {
    return AdminGrpc.newBlockingStub(writeChannel).withDeadlineAfter(60, TimeUnit.SECONDS)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(ConsoleCaller.headers(r.identity(), r.from())));
  }

  // ---- pages

  private Answer page(HttpExchange ex, Request r) {
    if (!ex.getRequestMethod().equals("GET")) {
      return new Answer(405, "text/plain", "GET only\n", Map.of("Allow", "GET"));
    }
    Views views = new Views(reader(r), series, replica, clock);
    String path = r.path();
    Pages.Page page;
    if (path.equals("/console") || path.equals("/console/") || path.equals("/console/fleet")) {
      page = pages.fleet(views.fleet(r.param("q"), r.param("status"), r.intParam("page", 1),
          r.intParam("page_size", Views.FLEET_PAGE)), r);
    } else if (path.equals("/console/nodes")) {
      page = pages.nodes(views.nodes(r.param("q"), r.param("state"), r.intParam("page", 1)), r);
    } else if (path.equals("/console/migrations")) {
      page = pages.migrations(views.migrations(r.param("q")), r);
    } else if (path.startsWith("/console/migrations/")) {
      page = pages.migration(views.migration(path.substring("/console/migrations/".length())), r);
    } else if (path.equals("/console/campaigns")) {
      page = pages.campaigns(views.campaigns(), r);
    } else if (path.startsWith("/console/campaigns/")) {
      page = pages.campaign(views.campaign(path.substring("/console/campaigns/".length())), r);
    } else {
      throw Status.NOT_FOUND.withDescription("no page " + path).asRuntimeException();
    }
    // A poll (htmx) gets the live part only; a browser's first request the whole page.
    return Answer.html(r.hxRequest() ? page.live() : page.whole());
  }

  // ---- JSON

  private Answer json(HttpExchange ex, Request r) throws Exception {
    String path = r.path();
    if (ex.getRequestMethod().equals("POST")) {
      return action(ex, r);
    }
    if (!ex.getRequestMethod().equals("GET")) {
      return new Answer(405, "application/json", "{\"error\":\"GET or POST\"}\n", Map.of("Allow", "GET, POST"));
    }
    Views views = new Views(reader(r), series, replica, clock);
    if (path.equals("/v1/console")) {
      return Answer.json(Views.write(Map.of("replica", replica, "identity", r.identity() == null ? "" : r.identity(),
          "canAct", r.writer(), "https", r.https())));
    }
    if (path.equals("/v1/fleet")) {
      return Answer.json(Views.write(views.fleet(r.param("q"), r.param("status"), r.intParam("page", 1),
          r.intParam("page_size", Views.FLEET_PAGE))));
    }
    if (path.equals("/v1/nodes")) {
      return Answer.json(Views.write(views.nodes(r.param("q"), r.param("state"), r.intParam("page", 1))));
    }
    if (path.equals("/v1/migrations")) {
      return Answer.json(proto(views.listMigrations()));
    }
    if (path.startsWith("/v1/migrations/") && path.endsWith("/series")) {
      String id = path.substring("/v1/migrations/".length(), path.length() - "/series".length());
      return Answer.json(Views.write(Map.of("migration", id, "replica", replica, "points", series.of(id))));
    }
    if (path.startsWith("/v1/migrations/")) {
      return Answer.json(proto(views.getMigration(path.substring("/v1/migrations/".length()))));
    }
    if (path.equals("/v1/campaigns")) {
      return Answer.json(proto(views.listCampaigns()));
    }
    if (path.startsWith("/v1/campaigns/")) {
      return Answer.json(proto(views.getCampaign(path.substring("/v1/campaigns/".length()))));
    }
    throw Status.NOT_FOUND.withDescription("no resource " + path).asRuntimeException();
  }

  private static String proto(Message m) throws com.google.protobuf.InvalidProtocolBufferException {
    return JsonFormat.printer().print(m) + "\n";
  }

  /**
   * An operator's action: {@code POST /v1/campaigns/ID/pause|resume|approve|abort} and
   * {@code POST /v1/migrations/ID/rollback[?consent_to_lose_writes=true]}. Only for an admin writer's client
   * certificate, with the page's token, from the page's origin.
   */
  private Answer action(HttpExchange ex, Request r) throws Exception {
    String refused = refusal(ex, r);
    if (refused != null) {
      log.warn("console: refused {} {} from {} ({}): {}", ex.getRequestMethod(), r.path(), r.from(),
          r.identity() == null ? "no client certificate" : r.identity(), refused);
      return new Answer(403, "application/json", "{\"error\":" + quote(refused) + ",\"code\":\"PERMISSION_DENIED\"}\n",
          Map.of());
    }
    String[] parts = r.path().split("/");
    // "", "v1", "campaigns"|"migrations", ID, verb
    if (parts.length != 5) {
      throw Status.NOT_FOUND.withDescription("no action " + r.path()).asRuntimeException();
    }
    String id = URLDecoder.decode(parts[3], StandardCharsets.UTF_8);
    AdminGrpc.AdminBlockingStub admin = writer(r);
    Message result = switch (parts[2] + "/" + parts[4]) {
      case "campaigns/pause" -> admin.pauseCampaign(CampaignId.newBuilder().setId(id).build());
      case "campaigns/resume" -> admin.resumeCampaign(CampaignId.newBuilder().setId(id).build());
      case "campaigns/approve" -> admin.approveCampaign(CampaignId.newBuilder().setId(id).build());
      case "campaigns/abort" -> admin.abortCampaign(CampaignId.newBuilder().setId(id).build());
      case "migrations/rollback" -> admin.rollbackMigration(RollbackMigrationRequest.newBuilder().setId(id)
          .setConsentToLoseWrites(r.param("consent_to_lose_writes").equals("true")).build());
      default -> throw Status.NOT_FOUND.withDescription("no action " + r.path()).asRuntimeException();
    };
    log.info("console: {} {} by {} from {}", parts[4], id, r.identity(), r.from());
    return Answer.json(proto(result));
  }

  /** Why an action may not be taken, or null when it may. */
  private String refusal(HttpExchange ex, Request r) {
    if (!r.https()) {
      return "the console on the HTTP port is read-only: act on the HTTPS console (server.tls.console_port) with an"
          + " admin writer's client certificate";
    }
    if (r.identity() == null) {
      return "no client certificate: the console is read-only";
    }
    if (!r.writer()) {
      return "identity '" + r.identity() + "' is not an admin writer: the console is read-only";
    }
    String site = ex.getRequestHeaders().getFirst("Sec-Fetch-Site");
    if (site != null && !site.equals("same-origin")) {
      return "a cross-site request (Sec-Fetch-Site: " + site + ")";
    }
    String origin = ex.getRequestHeaders().getFirst("Origin");
    String host = ex.getRequestHeaders().getFirst("Host");
    if (origin != null && (host == null || !origin.replaceFirst("^https?://", "").equals(host))) {
      return "a request from another origin (" + origin + ")";
    }
    String token = ex.getRequestHeaders().getFirst(CSRF_HEADER);
    String cookie = cookies(ex).get(CSRF_COOKIE);
    if (token == null || cookie == null || !java.security.MessageDigest.isEqual(
        token.getBytes(StandardCharsets.UTF_8), cookie.getBytes(StandardCharsets.UTF_8))) {
      return "the page's token is missing or does not match (reload the page)";
    }
    return null;
  }

  @Override
  public void close() {
    if (https != null) {
      https.stop(0);
    }
    sampler.shutdownNow();
    readChannel.shutdownNow();
    writeChannel.shutdownNow();
    reads.shutdownNow();
    writes.shutdownNow();
    handlers.shutdownNow();
  }
}
