package dev.turnout.controlplane.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.envoy.Endpoint;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class ConfigLoaderTest {
  private static final Path BASE = Path.of("/etc/turnout");

  private static TurnoutConfig parse(String yaml) throws ConfigException {
    return ConfigLoader.parse(yaml, "turnout.yaml", BASE);
  }

  @Test
  void theExampleFileInTheRepository_isValid() throws Exception {
    TurnoutConfig config = ConfigLoader.load(Path.of("../turnout.example.yaml"));

    assertThat(config.servers().xdsPort()).isEqualTo(18000);
    assertThat(config.servers().bindAddress()).as("sidecars must reach xDS").isEqualTo("0.0.0.0");
    assertThat(config.servers().adminBindAddress()).as("no TLS in the example").isEqualTo("127.0.0.1");
    assertThat(config.databases()).extracting(d -> d.name()).containsExactly("orders", "inventory");
    assertThat(config.databases().get(0).services()).containsExactly("billing", "checkout");
    assertThat(config.databases().get(1).services()).as("absent means every service").isEmpty();
    assertThat(config.ackTimeout()).isEqualTo(Duration.ofSeconds(30));
    assertThat(config.storeDirectory()).isEqualTo(Path.of("..").toAbsolutePath().normalize().resolve("turnout-data"));
  }

  @Test
  void defaults_andRelativeStoreDirectory() throws Exception {
    TurnoutConfig config = parse("""
        store:
          directory: data
        xds:
          ack_timeout: 1500ms
        databases:
          - name: orders
            port: 15432
            endpoint: "[::1]:5432"
        """);
    assertThat(config.servers().adminPort()).isEqualTo(18001);
    assertThat(config.servers().httpPort()).isEqualTo(18080);
    assertThat(config.storeDirectory()).isEqualTo(BASE.resolve("data"));
    assertThat(config.ackTimeout()).isEqualTo(Duration.ofMillis(1500));
    assertThat(config.databases().get(0).endpoint()).contains(new Endpoint("::1", 5432));
  }

  @Test
  void theMigratorsAwsSection_isReadWithDefaults_andBadValuesAreNamed() throws Exception {
    TurnoutConfig config = parse("""
        migrator:
          aws:
            fence_security_group: sg-0fe4ce
            endpoint: https://vpce-1.rds.us-east-1.vpce.amazonaws.com
            replica_deadline: 90m
        """);
    var aws = config.migrator().aws().orElseThrow();
    assertThat(aws.fenceSecurityGroup()).isEqualTo("sg-0fe4ce");
    assertThat(aws.endpointOverride()).contains(java.net.URI.create("https://vpce-1.rds.us-east-1.vpce.amazonaws.com"));
    assertThat(aws.replicaDeadline()).isEqualTo(java.time.Duration.ofMinutes(90));
    assertThat(aws.operationDeadline()).isEqualTo(java.time.Duration.ofMinutes(30));
    assertThat(parse("databases: []\n").migrator().aws()).isEmpty();

    assertThatThrownBy(() -> parse("""
        migrator:
          aws:
            fence_security_group: default
            endpoint: ftp://x
            poll_interval: soon
            region: us-east-1
        """)).isInstanceOf(ConfigException.class)
        .hasMessageContaining("fence security group 'default' is not a security group id")
        .hasMessageContaining("migrator.aws.endpoint: 'ftp://x' is not an http(s) URL")
        .hasMessageContaining("migrator.aws.poll_interval")
        .hasMessageContaining("region");
    assertThatThrownBy(() -> parse("migrator:\n  aws: {}\n"))
        .hasMessageContaining("migrator.aws.fence_security_group is required");
  }

  @Test
  void malformedYaml_namesTheLine() {
    assertThatThrownBy(() -> parse("""
        databases:
          - name: orders
            port: [15432
        """))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("malformed YAML")
        .hasMessageContaining("line 4");
  }

  @Test
  void duplicateDatabaseNames_areRefused_namingBothLines() {
    assertThatThrownBy(() -> parse("""
        databases:
          - name: orders
            port: 15432
            endpoint: 10.0.0.5:5432
          - name: orders
            port: 15433
            endpoint: 10.0.0.6:5432
        """))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("line 5: databases[1] ('orders').name: duplicate database name, first defined at line 2");
  }

  @Test
  void aKeyGivenTwice_isRefused_insteadOfTheLaterWinningSilently() {
    assertThatThrownBy(() -> parse("""
        databases:
          - name: orders
            port: 15432
            endpoint: 10.0.0.5:5432
            endpoint: 10.0.0.6:5432
        """))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("line 5: databases[0].endpoint: given twice (first at line 4)");
  }

  @Test
  void aPortClash_isRefused_namingTheOtherDatabase() {
    assertThatThrownBy(() -> parse("""
        databases:
          - name: orders
            port: 15432
            endpoint: 10.0.0.5:5432
          - name: ledger
            port: 15432
            endpoint: 10.0.0.6:5432
          - name: admin
            port: 18000
            endpoint: 10.0.0.6:5432
        """))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("line 6: databases[1] ('ledger').port: 15432 is already the port of database 'orders'")
        .hasMessageContaining("line 9: databases[2] ('admin').port: 18000 is one of the control plane's own ports");
  }

  @Test
  void anEndpointInAnUnknownFormat_isRefused_sayingWhatIsExpected() {
    assertThatThrownBy(() -> parse("""
        databases:
          - name: orders
            port: 15432
            endpoint: postgres://10.0.0.5:5432
          - name: ledger
            port: 15433
            endpoint: 10.0.0.6
        """))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("line 4: databases[0] ('orders').endpoint")
        .hasMessageContaining("line 7: databases[1] ('ledger').endpoint: endpoint '10.0.0.6' has no port");
  }

  @Test
  void unknownFields_missingFields_andBadValues_areAllReportedAtOnce() {
    assertThatThrownBy(() -> parse("""
        server:
          xds_prot: 18000
          admin_port: seventeen
        databases:
          - name: Orders!
            port: 15432
            endpoint: 10.0.0.5:5432
          - name: ledger
            endpoint: 10.0.0.6:5432
            services: []
        """))
        .isInstanceOf(ConfigException.class)
        .satisfies(e -> assertThat(((ConfigException) e).problems()).hasSize(5))
        .hasMessageContaining("line 2: server.xds_prot: unknown field")
        .hasMessageContaining("line 3: server.admin_port: 'seventeen' is not a port number")
        .hasMessageContaining("line 5: databases[0] ('Orders!').name: database name 'Orders!' must be")
        .hasMessageContaining("line 8: databases[1] ('ledger').port: is required")
        .hasMessageContaining("line 10: databases[1] ('ledger').services: is empty");
  }

  @Test
  void tls_namesEachMissingFile_andReadsTheAdminIdentities(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
    java.nio.file.Files.writeString(dir.resolve("server.crt"), "x");
    java.nio.file.Files.writeString(dir.resolve("server.key"), "x");
    String yaml = """
        server:
          tls:
            cert_chain: server.crt
            private_key: server.key
            client_ca: %s
            admin_writers: [ops-admin]
        """;
    assertThatThrownBy(() -> ConfigLoader.parse(yaml.formatted("missing-ca.crt"), "turnout.yaml", dir))
        .hasMessageContaining("line 5: server.tls.client_ca: " + dir.resolve("missing-ca.crt") + " is not a readable file");
    java.nio.file.Files.writeString(dir.resolve("ca.crt"), "x");
    TurnoutConfig config = ConfigLoader.parse(yaml.formatted("ca.crt"), "turnout.yaml", dir);
    assertThat(config.servers().tls()).get().satisfies(t -> {
      assertThat(t.clientCa()).isEqualTo(dir.resolve("ca.crt"));
      assertThat(t.adminWriters()).containsExactly("ops-admin");
      assertThat(t.adminReaders()).isEmpty();
    });
  }

  @Test
  void withoutTls_theAdminApiListensOnLoopback_whileXdsKeepsTheBindAddress() throws Exception {
    TurnoutConfig config = parse("""
        server:
          bind_address: 0.0.0.0
        """);
    assertThat(config.servers().bindAddress()).isEqualTo("0.0.0.0");
    assertThat(config.servers().adminBindAddress()).isEqualTo("127.0.0.1");
    assertThat(config.servers().adminBeyondLoopback()).isFalse();
    assertThat(parse("databases: []\n").servers().adminBindAddress()).as("no server section").isEqualTo("127.0.0.1");
    assertThat(parse("server:\n  bind_address: \"::1\"\n").servers().adminBindAddress())
        .as("a loopback bind address is kept").isEqualTo("::1");
  }

  @Test
  void aNonLoopbackAdminApiWithoutTls_isRefused_namingTheLine() {
    assertThatThrownBy(() -> parse("""
        server:
          bind_address: 0.0.0.0
          admin_bind_address: 0.0.0.0
        """))
        .isInstanceOf(ConfigException.class)
        .satisfies(e -> assertThat(((ConfigException) e).problems()).singleElement().asString()
            .startsWith("line 3: server.admin_bind_address: 0.0.0.0 is not a loopback address and server.tls is not"
                + " configured")
            .contains("'insecure: true'"));
    assertThatThrownBy(() -> parse("""
        server:
          admin_bind_address: 10.1.2.3
          insecure: yes please
        """))
        .hasMessageContaining("line 2: server.admin_bind_address: 10.1.2.3 is not a loopback address")
        .hasMessageContaining("line 3: server.insecure: 'yes please' is not true or false");
  }

  @Test
  void aNonLoopbackAdminApiWithoutTls_isAccepted_whenTheConfigSaysInsecure() throws Exception {
    TurnoutConfig config = parse("""
        server:
          admin_bind_address: 0.0.0.0
          insecure: true
        """);
    assertThat(config.servers().adminBindAddress()).isEqualTo("0.0.0.0");
    assertThat(config.servers().admin().insecure()).isTrue();
    assertThat(config.servers().adminBeyondLoopback()).as("logged as INSECURE at start").isTrue();
    assertThat(parse("server:\n  admin_bind_address: localhost\n").servers().adminProblem())
        .as("a name that resolves to loopback only").isEmpty();
  }

  @Test
  void withTls_theAdminApiListensWithXds_andInsecureIsRefusedAsALeftover(@org.junit.jupiter.api.io.TempDir Path dir)
      throws Exception {
    for (String f : new String[] {"server.crt", "server.key", "ca.crt"}) {
      java.nio.file.Files.writeString(dir.resolve(f), "x");
    }
    String tls = """
        server:
          bind_address: 0.0.0.0
        %s
          tls:
            cert_chain: server.crt
            private_key: server.key
            client_ca: ca.crt
        """;
    TurnoutConfig config = ConfigLoader.parse(tls.formatted(""), "turnout.yaml", dir);
    assertThat(config.servers().adminBindAddress()).isEqualTo("0.0.0.0");
    assertThat(config.servers().adminProblem()).isEmpty();
    assertThatThrownBy(() -> ConfigLoader.parse(tls.formatted("  insecure: true"), "turnout.yaml", dir))
        .hasMessageContaining("line 3: server.insecure: remove it: with server.tls the admin API requires client"
            + " certificates");
  }

  @Test
  void aFileThatIsNotAMapping_isRefused() {
    assertThatThrownBy(() -> parse("- just\n- a list\n")).hasMessageContaining("must be a YAML mapping");
  }
}
