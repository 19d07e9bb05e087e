package dev.turnout.controlplane.security;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.Drain;
import dev.turnout.admin.v1.MigrationOptions;
import dev.turnout.admin.v1.RollbackMigrationRequest;
import dev.turnout.admin.v1.SetRouteRequest;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.TestConfigs;
import dev.turnout.controlplane.cli.Turnout;
import dev.turnout.controlplane.config.TurnoutConfig;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The admin API's audit log as an auditor uses it: writes made over a real socket — allowed, refused by the
 * service, refused for the caller's identity — read back with {@code turnout audit}, before and after a restart.
 */
class AdminAuditTest {
  @TempDir Path dir;
  private TestCertificates certs;
  private ControlPlane plane;
  private final List<ManagedChannel> channels = new ArrayList<>();

  @AfterEach
  void stop() throws Exception {
    channels.forEach(ManagedChannel::shutdownNow);
    if (plane != null) {
      plane.close();
    }
  }

  private TurnoutConfig mutualTls() {
    TurnoutConfig.Tls tls = new TurnoutConfig.Tls(certs.crt("turnout-control-plane"),
        certs.key("turnout-control-plane"), certs.ca(), Set.of("ops-admin"), Set.of("sre-viewer"));
    return new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0, Optional.of(tls)), dir.resolve("store"),
        Duration.ofSeconds(5), ImmutableList.of(database("orders", 25432, "10.0.0.5:5432")),
        TurnoutConfig.MigratorSettings.DEFAULT);
  }

  private AdminGrpc.AdminBlockingStub adminAs(String who) throws Exception {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort())
        .sslContext(Tls.clientContext(certs.crt(who), certs.key(who), certs.ca())).build();
    channels.add(channel);
    return AdminGrpc.newBlockingStub(channel);
  }

  private static SetRouteRequest.Builder route(String database, String reason) {
    return SetRouteRequest.newBuilder().setDatabase(database).setReason(reason);
  }

  @Test
  void everyWrite_refusedOnesIncluded_isOnRecord_andReadBackWithTurnoutAudit_alsoAfterARestart() throws Exception {
    certs = new TestCertificates(dir);
    for (String name : new String[] {"ops-admin", "sre-viewer", "checkout"}) {
      certs.issue(name);
    }
    plane = ControlPlane.start(mutualTls());
    AdminGrpc.AdminBlockingStub ops = adminAs("ops-admin");
    AdminGrpc.AdminBlockingStub viewer = adminAs("sre-viewer");

    // 1: a route by hand. 2: a migration of a database Turnout does not know. A dry run: not a write.
    assertThat(ops.setRoute(route("orders", "db1 replaced").setEndpoint("10.0.0.9:5432").build()).getChanged())
        .isTrue();
    assertThatThrownBy(() -> ops.startMigration(StartMigrationRequest.newBuilder().setDatabase("ledger")
        .setTarget("10.0.0.6:5432").build())).hasMessageContaining("NOT_FOUND");
    assertThatThrownBy(() -> ops.startMigration(StartMigrationRequest.newBuilder().setDatabase("orders")
        .setTarget("10.0.0.6:5432").setOptions(MigrationOptions.newBuilder().setDryRun(true)).build()))
        .as("it reads servers that are not there; not on record either way").hasMessageContaining("UNAVAILABLE");
    // 3: a reader trying to write, refused before the service. 4: a reason made to forge lines in a terminal.
    assertThatThrownBy(() -> viewer.setRoute(route("orders", "just looking").setDrain(Drain.getDefaultInstance())
        .build())).hasMessageContaining("PERMISSION_DENIED");
    assertThatThrownBy(() -> ops.setRoute(route("orders", "ok\u001b[31m\n4 forged OK").setEndpoint("10.0.0.8:5432")
        .build())).hasMessageContaining("INVALID_ARGUMENT");

    String admin = "127.0.0.1:" + plane.adminPort();
    Run audit = cli("audit", "--admin", admin, "--tls-cert", certs.crt("sre-viewer").toString(),
        "--tls-key", certs.key("sre-viewer").toString(), "--tls-ca", certs.ca().toString());
    assertThat(audit.exit()).as(audit.err()).isZero();
    assertThatTheFourWritesAreListed(audit.out());

    Run notAReader = cli("audit", "--admin", admin, "--tls-cert", certs.crt("checkout").toString(),
        "--tls-key", certs.key("checkout").toString(), "--tls-ca", certs.ca().toString());
    assertThat(notAReader.exit()).isEqualTo(2);
    assertThat(notAReader.err()).contains("PERMISSION_DENIED: identity 'checkout' may not call ListAudit");

    plane.close();
    plane = null;
    plane = ControlPlane.start(mutualTls());
    admin = "127.0.0.1:" + plane.adminPort();
    String[] asViewer = {"--admin", admin, "--tls-cert", certs.crt("sre-viewer").toString(),
        "--tls-key", certs.key("sre-viewer").toString(), "--tls-ca", certs.ca().toString()};
    Run again = cli(concat(new String[] {"audit"}, asViewer));
    assertThat(again.exit()).as(again.err()).isZero();
    assertThatTheFourWritesAreListed(again.out());

    Run newest = cli(concat(new String[] {"audit", "--limit", "2"}, asViewer));
    assertThat(rows(newest.out())).extracting(r -> r.split(" +")[0]).containsExactly("4", "3");
    assertThat(newest.out()).contains("older: turnout audit --before 3 --limit 2");
    Run older = cli(concat(new String[] {"audit", "--limit", "2", "--before", "3"}, asViewer));
    assertThat(rows(older.out())).extracting(r -> r.split(" +")[0]).containsExactly("2", "1");
    assertThat(older.out()).doesNotContain("older:");

    Run json = cli(concat(new String[] {"audit", "--json", "--limit", "1"}, asViewer));
    assertThat(json.out()).contains("\"who\": \"ops-admin\"", "\"code\": \"INVALID_ARGUMENT\"",
        "\"value\": \"ok\\u001b[31m\\n4 forged OK\"");
  }

  private static void assertThatTheFourWritesAreListed(String out) {
    List<String> rows = rows(out);
    assertThat(rows).as(out).hasSize(4);
    assertThat(rows.get(3)).startsWith("1 ").contains(" ops-admin ", " 127.0.0.1:", " SetRoute ", " orders ", " OK ",
        "endpoint=10.0.0.9:5432 reason=\"db1 replaced\" version=", "changed=true acknowledged=true");
    assertThat(rows.get(2)).startsWith("2 ").contains(" ops-admin ", " StartMigration ", " ledger ", " NOT_FOUND ",
        "target=10.0.0.6:5432 | unknown database 'ledger'; known: [orders]");
    assertThat(rows.get(1)).startsWith("3 ").contains(" sre-viewer ", " SetRoute ", " orders ", " PERMISSION_DENIED ",
        "drain=true reason=\"just looking\" | identity 'sre-viewer' may not call SetRoute");
    assertThat(rows.get(0)).startsWith("4 ").contains(" ops-admin ", " INVALID_ARGUMENT ",
        "reason=\"ok\\u001b[31m\\u000a4 forged OK\"", "the reason must be one line");
    assertThat(out).as("no control character reaches the terminal").doesNotContain("\u001b");
  }

  @Test
  void withoutTls_aWriteIsRecordedAsAnonymous_withTheCallersAddress() throws Exception {
    plane = ControlPlane.start(TestConfigs.config(dir.resolve("store"), Duration.ofSeconds(5),
        List.of(database("orders", 25432, "10.0.0.5:5432"))));
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", plane.adminPort()).usePlaintext().build();
    channels.add(channel);
    assertThatThrownBy(() -> AdminGrpc.newBlockingStub(channel).rollbackMigration(RollbackMigrationRequest
        .newBuilder().setId("nosuch01").setConsentToLoseWrites(true).build())).hasMessageContaining("NOT_FOUND");

    Run audit = cli("audit", "--admin", "127.0.0.1:" + plane.adminPort());
    assertThat(audit.exit()).as(audit.err()).isZero();
    assertThat(rows(audit.out())).singleElement().asString().startsWith("1 ")
        .containsPattern(" anonymous +127\\.0\\.0\\.1:\\d+ +RollbackMigration +- +nosuch01 +NOT_FOUND ")
        .contains("consent_to_lose_writes=true | no migration with id 'nosuch01'");
  }

  /** The table's rows (not its header or the paging line). */
  private static List<String> rows(String out) {
    return out.lines().filter(l -> l.matches("\\d+ .*")).toList();
  }

  private record Run(int exit, String out, String err) {}

  /** {@code turnout ARGS} in this JVM, as an operator would run it, capturing what it prints. */
  private static synchronized Run cli(String... args) {
    PrintStream out = System.out;
    PrintStream err = System.err;
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
      int exit = Turnout.run(args);
      return new Run(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(out);
      System.setErr(err);
    }
  }

  private static String[] concat(String[] a, String[] b) {
    String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, all, a.length, b.length);
    return all;
  }
}
