package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The jars an operator installs, run as installed: turnout.jar (whose Envoy API the shade plugin cut down to what
 * Turnout refers to) with turnout-aws.jar and turnout-demo.jar beside it, each command started with
 * {@code java -jar turnout.jar}. Every other test runs on the modules' classes; this one catches a class the jars
 * lack. {@code mvn package} makes the jars, so this runs in {@code mvn verify}; under {@code mvn test} alone it is
 * skipped unless the jars are newer than the classes they are made of.
 */
class InstalledJarsTest {
  private static final Path ROOT = Path.of("").toAbsolutePath().getParent();
  private static final Path TURNOUT = ROOT.resolve("control-plane/target/turnout.jar");
  private static final Path AWS = ROOT.resolve("migrator-aws/target/turnout-aws.jar");
  private static final Path DEMO = ROOT.resolve("demo/target/turnout-demo.jar");

  @TempDir Path dir;
  private final List<Process> started = new ArrayList<>();
  private int xdsPort;
  private int adminPort;
  private int httpPort;

  @BeforeEach
  void install() throws IOException {
    fresh(TURNOUT, "control-plane", "envoy-config", "migrator", "sidecar");
    fresh(AWS, "migrator-aws", "migrator");
    fresh(DEMO, "demo");
    for (Path jar : List.of(TURNOUT, AWS, DEMO)) {
      Files.copy(jar, dir.resolve(jar.getFileName()));
    }
    xdsPort = freePort();
    adminPort = freePort();
    httpPort = freePort();
  }

  @AfterEach
  void stop() throws InterruptedException {
    for (Process p : started) {
      p.destroyForcibly();
      p.waitFor(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void turnoutJar_servesTheBuiltInSidecar_andMovesItsRoute() throws Exception {
    startServer("");
    int appPort = freePort();
    started.add(turnout("sidecar", "--xds", "127.0.0.1:" + xdsPort, "--node", "app-1", "--cluster", "app",
        "--metrics-port", Integer.toString(freePort())).start());
    String[] routes = {""};
    Eventually.until("the sidecar applies what the jar's xDS server sends", Duration.ofSeconds(60),
        () -> (routes[0] = unchecked(() -> run("routes", "--admin", "127.0.0.1:" + adminPort))).contains("1 current"),
        () -> ": " + routes[0]);

    assertThat(run("route", "set", "app", "127.0.0.1:" + appPort, "--reason", "installed jars", "--admin",
        "127.0.0.1:" + adminPort)).contains("acknowledged by every subscribed sidecar: app-1");
    assertThat(run("bootstrap", "--xds", "127.0.0.1:" + xdsPort, "--node", "app-1", "--cluster", "app", "--delta"))
        .contains("DELTA_GRPC");
  }

  @Test
  void theJarsBesideIt_bringTheDemoAndTheAwsPlatform() throws Exception {
    assertThat(run("--help")).as("the demo's own command, not the one saying it is not installed")
        .contains("Run a live migration on this machine: PostgreSQL");
    startServer("""
        migrator:
          user: postgres
          aws:
            fence_security_group: sg-0123456789abcdef0
        """);
  }

  /** Starts {@code turnout server} on a config with these lines added; returns once /readyz answers 200. */
  private void startServer(String extra) throws Exception {
    Files.writeString(dir.resolve("turnout.yaml"), """
        server:
          bind_address: 127.0.0.1
          xds_port: %d
          admin_port: %d
          http_port: %d
        store:
          directory: data
        databases:
          - name: app
            port: %d
            endpoint: 127.0.0.1:5432
        """.formatted(xdsPort, adminPort, httpPort, freePort()) + extra);
    Path log = dir.resolve("server.log");
    Process server = turnout("server", "-c", "turnout.yaml").redirectOutput(log.toFile()).start();
    started.add(server);
    HttpClient http = HttpClient.newHttpClient();
    HttpRequest ready = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + httpPort + "/readyz")).build();
    Eventually.until("/readyz answers 200", Duration.ofSeconds(60), () -> {
      assertThat(server.isAlive()).as(() -> "server exited: " + read(log)).isTrue();
      try {
        return http.send(ready, HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
      } catch (IOException notYet) {
        return false;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }, () -> ": " + read(log));
  }

  private interface Call {
    String get() throws Exception;
  }

  private static String unchecked(Call call) {
    try {
      return call.get();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private ProcessBuilder turnout(String... args) {
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-jar", "turnout.jar"));
    command.addAll(List.of(args));
    return new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true);
  }

  /** Runs a command to its end; its output, which names the exit code when it is not 0. */
  private String run(String... args) throws Exception {
    Process p = turnout(args).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return p.exitValue() == 0 ? out : out + "\n(exit " + p.exitValue() + ")";
  }

  private static String read(Path log) {
    try {
      return Files.readString(log);
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  /** Skips the test unless the jar exists and is newer than every class of the modules it is made of. */
  private static void fresh(Path jar, String... modules) throws IOException {
    Assumptions.assumeTrue(Files.exists(jar), jar + " is not built (mvn package makes it)");
    FileTime built = Files.getLastModifiedTime(jar);
    for (String module : modules) {
      Path classes = ROOT.resolve(module).resolve("target/classes");
      if (!Files.isDirectory(classes)) {
        continue;
      }
      try (Stream<Path> files = Files.walk(classes)) {
        Assumptions.assumeTrue(files.filter(Files::isRegularFile).allMatch(f -> modifiedBefore(f, built)),
            jar + " is older than " + classes + " (mvn package makes it again)");
      }
    }
  }

  private static boolean modifiedBefore(Path file, FileTime time) {
    try {
      return Files.getLastModifiedTime(file).compareTo(time) <= 0;
    } catch (IOException e) {
      return false;
    }
  }

  private static int freePort() throws IOException {
    return PostgresServer.freePort();
  }
}
