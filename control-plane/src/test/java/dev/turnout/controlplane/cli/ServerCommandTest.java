package dev.turnout.controlplane.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code turnout server} as an operator runs it: a separate JVM, a config file, signals. */
class ServerCommandTest {
  @TempDir Path dir;

  static Process turnout(Path workDir, String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), Turnout.class.getName()));
    command.addAll(List.of(args));
    return new ProcessBuilder(command).directory(workDir.toFile()).redirectErrorStream(true).start();
  }

  static String output(Process process) throws Exception {
    assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
    return new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
  }

  @Test
  void aBadConfig_exitsWith2_namingTheFieldAndLine_andCreatesNoStore() throws Exception {
    Files.writeString(dir.resolve("turnout.yaml"), """
        store:
          directory: data
        databases:
          - name: orders
            port: 15432
            endpoint: 10.0.0.5
        """);
    Process process = turnout(dir, "server", "-c", "turnout.yaml");
    String out = output(process);

    assertThat(process.exitValue()).isEqualTo(2);
    assertThat(out).contains("line 6: databases[0] ('orders').endpoint: endpoint '10.0.0.5' has no port");
    assertThat(dir.resolve("data")).doesNotExist();
  }

  @Test
  void theServer_seedsItsStore_logsWhereItListens_andStopsCleanlyOnSigterm() throws Exception {
    Files.writeString(dir.resolve("turnout.yaml"), """
        server:
          bind_address: 127.0.0.1
          xds_port: 0
          admin_port: 0
          http_port: 0
        store:
          directory: data
        databases:
          - name: orders
            port: 15432
            endpoint: 10.0.0.5:5432
        """);
    Process process = turnout(dir, "server", "-c", "turnout.yaml");
    BufferedReader reader = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    List<String> lines = new ArrayList<>();
    String line;
    while ((line = reader.readLine()) != null) {
      lines.add(line);
      if (line.contains("listening on")) {
        break;
      }
    }
    assertThat(lines).anySatisfy(l -> assertThat(l).contains("database orders seeded from configuration: endpoint 10.0.0.5:5432"));
    assertThat(dir.resolve("data/routes.journal")).exists();

    process.destroy(); // SIGTERM
    assertThat(process.waitFor(15, TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).isIn(0, 143);
  }

  /** This module's class path is a control plane installed without turnout-aws.jar. */
  @Test
  void awsConfigured_withoutTheAwsPlatformInstalled_doesNotStart_andSaysWhichJarToPutWhere() throws Exception {
    Files.writeString(dir.resolve("turnout.yaml"), """
        server:
          bind_address: 127.0.0.1
          xds_port: 0
          admin_port: 0
          http_port: 0
        store:
          directory: data
        migrator:
          user: postgres
          aws:
            fence_security_group: sg-0123456789abcdef0
        databases:
          - name: orders
            port: 15432
            endpoint: 10.0.0.5:5432
        """);
    Process process = turnout(dir, "server", "-c", "turnout.yaml");
    String out = output(process);

    assertThat(process.exitValue()).isEqualTo(1);
    assertThat(out).contains("turnout: cannot start: migrator.aws is configured, but the AWS platform is not"
        + " installed: put turnout-aws.jar (module migrator-aws) beside turnout.jar, whose manifest names it, or on the"
        + " class path");
    assertThat(dir.resolve("data")).as("refused before the store is opened").doesNotExist();
  }

  @Test
  void bootstrap_refusesAnUnsafeNodeId() throws Exception {
    Process process = turnout(dir, "bootstrap", "--xds", "127.0.0.1:18000", "--node", "a b", "--cluster", "svc");
    String out = output(process);
    assertThat(process.exitValue()).isEqualTo(2);
    assertThat(out).contains("node id 'a b' must be non-empty");
  }
}
