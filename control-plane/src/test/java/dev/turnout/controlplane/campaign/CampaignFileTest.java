package dev.turnout.controlplane.campaign;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.controlplane.campaign.CampaignFile.Route;
import dev.turnout.migrator.campaign.CampaignSpec;
import dev.turnout.migrator.campaign.MaintenanceWindow;
import dev.turnout.migrator.campaign.Member;
import dev.turnout.migrator.campaign.Planner;
import dev.turnout.migrator.campaign.Policy;
import dev.turnout.migrator.campaign.Target;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import org.junit.jupiter.api.Test;

class CampaignFileTest {

  private static CampaignFile parse(String yaml) {
    return CampaignFile.parse(yaml, "wave.yaml");
  }

  private static List<String> problems(String yaml) {
    try {
      parse(yaml);
    } catch (InvalidCampaignFileException e) {
      assertThat(e.getMessage()).startsWith("wave.yaml is not valid:\n  ");
      return e.problems();
    }
    throw new AssertionError("parsed:\n" + yaml);
  }

  private static List<String> unresolved(CampaignFile file, List<Route> routes) {
    try {
      file.expand(routes);
    } catch (InvalidCampaignFileException e) {
      assertThat(e.getMessage()).startsWith("campaign '" + file.name() + "' does not resolve against the routes:");
      return e.problems();
    }
    throw new AssertionError("expanded against " + routes);
  }

  private static Route byAddress(String database, String endpoint, String... services) {
    return new Route(database, Optional.of(endpoint), Optional.empty(), Set.of(services));
  }

  private static Route byName(String database, String hostname, String endpoint, String... services) {
    return new Route(database, Optional.of(endpoint), Optional.of(hostname), Set.of(services));
  }

  private static final String RDS = ".c9akciq32.eu-central-1.rds.amazonaws.com";

  /** The fleet campaign.example.yaml was written for. */
  private static final List<Route> EXAMPLE_ROUTES = List.of(
      byAddress("orders", "10.0.0.5:5432", "checkout"),
      byAddress("billing", "10.0.0.5:5432"),
      byName("orders-eu", "orders-rds" + RDS, "10.1.0.9:5432", "checkout"),
      byAddress("orders-us", "10.0.0.7:5432", "checkout"),
      byAddress("orders-internal", "10.0.0.7:5432", "reporting"),
      byName("orders-archive", "archive-rds" + RDS, "10.1.0.12:5432", "checkout"),
      byAddress("orders-reports", "10.0.0.11:5432", "reporting"),
      new Route("orders-drained", Optional.empty(), Optional.empty(), Set.of("checkout")));

  @Test
  void theExampleFileInTheRepository_parsesIntoThePolicyAndOptionsItDocuments() throws Exception {
    CampaignFile file = CampaignFile.parse(Files.readString(Path.of("../campaign.example.yaml")),
        "campaign.example.yaml");

    assertThat(file.name()).isEqualTo("rds-to-aurora-wave-1");
    Policy p = file.policy();
    assertThat(p.canary()).isEqualTo(new Policy.Canary(1, Optional.of(Duration.ofMinutes(30))));
    assertThat(p.waves()).isEqualTo(new Policy.Waves(2, Duration.ofMinutes(10)));
    assertThat(p.limits()).isEqualTo(new Policy.Limits(2, 1, Policy.FailureLimit.count(1)));
    assertThat(p.order()).isEqualTo(Policy.Order.GIVEN);
    assertThat(p.windows()).containsExactly(
        new MaintenanceWindow("0 2 * * 1-5", Duration.ofHours(3), ZoneId.of("Europe/Berlin")));
    var m = file.migration();
    assertThat(m.validationWindow()).isEqualTo(Duration.ofSeconds(30));
    assertThat(m.phaseDeadline()).isEqualTo(Duration.ofMinutes(2));
    assertThat(m.cutover().quiesceGrace()).isEqualTo(Duration.ofSeconds(2));
    assertThat(m.maxLagBytes()).isEqualTo(16L * 1024 * 1024);
    assertThat(m.allowUnroutedDatabases()).isFalse();
    assertThat(m.allowDroppingStaleSlots()).isFalse();
    assertThat(m.withoutReverseReplication()).as("members keep a lossless way back by default").isFalse();
    assertThat(CampaignFile.parse(Files.readString(Path.of("../campaign.example.yaml")).replace(
        "without_reverse_replication: false", "without_reverse_replication: true"), "campaign.example.yaml")
        .migration().withoutReverseReplication()).isTrue();
    assertThat(file.servers()).containsExactly(
        new Member("10.0.0.5:5432", "db-host-1", null, Target.given("10.0.0.6:5432"),
            com.google.common.collect.ImmutableList.of(new MaintenanceWindow("0 3 * * SAT,SUN", Duration.ofHours(4))),
            OptionalLong.of(1_000_000)),
        Member.of("aurora:orders-rds", Target.auroraCluster("db.r6g.large")));
    assertThat(file.selectors()).hasSize(1);
    CampaignFile.Selector s = file.selectors().get(0);
    assertThat(s.databases()).isEqualTo("orders-*");
    assertThat(s.service()).contains("checkout");
    assertThat(s.auroraCluster()).contains(Target.auroraCluster("db.r6g.large"));
    assertThat(s.targets()).containsExactly(java.util.Map.entry("10.0.0.7:5432", Target.given("10.0.0.8:5432")));
  }

  @Test
  void theExampleFile_expandsToTheListedServers_thenThoseItsSelectorFinds_eachWithEveryDatabaseOnIt()
      throws Exception {
    CampaignFile file = CampaignFile.parse(Files.readString(Path.of("../campaign.example.yaml")),
        "campaign.example.yaml");

    CampaignSpec spec = file.expand(EXAMPLE_ROUTES);

    assertThat(spec.members()).extracting(Member::server).containsExactly(
        "10.0.0.5:5432", "aurora:orders-rds", // listed
        "aurora:archive-rds", "10.0.0.7:5432"); // found, by their first database: orders-archive, orders-internal
    assertThat(spec.members()).<List<String>>extracting(Member::databases).containsExactly(
        List.of("billing", "orders"), List.of("orders-eu"), List.of("orders-archive"),
        List.of("orders-internal", "orders-us")); // a co-tenant outside the selector moves with its server
    assertThat(spec.members().get(2).target()).isEqualTo(Target.auroraCluster("db.r6g.large"));
    assertThat(spec.members().get(3).target()).isEqualTo(Target.given("10.0.0.8:5432"));
    assertThat(spec.policy()).isEqualTo(file.policy());
    assertThat(spec.migration()).isEqualTo(file.migration());
    assertThat(Planner.plan(spec).waves()).as("canary, then waves of 2").isEqualTo(3);
  }

  @Test
  void leftOutPolicyAndMigration_areTheDomainsDefaults() {
    CampaignFile file = parse("""
        name: one
        servers:
          - server: 10.0.0.5:5432
            target: 10.0.0.6:5432
        """);
    assertThat(file.policy()).isEqualTo(Policy.DEFAULT);
    assertThat(file.migration()).isEqualTo(dev.turnout.migrator.Migration.Options.defaults());
    assertThat(parse("""
        name: one
        policy:
          canary: 0
          max_failures: 10%
          order: smallest_first
        migration:
          allow_unrouted_databases: true
          rollback_prepared_transactions: true
          quiesce_grace: 500ms
        servers: [{server: 10.0.0.5:5432, target: 10.0.0.6:5432}]
        """)).satisfies(f -> {
          assertThat(f.policy().canary()).isEqualTo(Policy.Canary.NONE);
          assertThat(f.policy().limits().maxFailures()).isEqualTo(Policy.FailureLimit.percent(10));
          assertThat(f.policy().order()).isEqualTo(Policy.Order.SMALLEST_FIRST);
          assertThat(f.migration().allowUnroutedDatabases()).isTrue();
          assertThat(f.migration().cutover()).isEqualTo(
              new dev.turnout.migrator.Migration.Cutover(Duration.ofMillis(500), true));
        });
  }

  @Test
  void everyMistake_isReportedAtOnce_eachWithItsLine() {
    List<String> problems = problems("""
        policy:
          canary: -1
          wave_sizee: 3
          max_concurrent: 0
          max_concurrent_per_host: 0
          max_failures: 150%
          order: biggest_first
          windows:
            - cron: "0 25 * * *"
              duration: 3h
              zone: Mars/Olympus
            - cron: "0 2 * * *"
              duration: soon
        migration:
          deadline: 2s
          quiesce_grace: 5s
          max_lag_bytes: lots
          allow_unrouted_databases: yes please
        servers:
          - server: 10.0.0.5:5432
          - server: 10.0.0.6
            target: 10.0.0.7:5432
          - aurora: orders-rds
            aurora_cluster: r6g.large
          - aurora: billing-rds
            target: 10.0.0.9:5432
            aurora_cluster: db.r6g.large
          - server: 10.0.0.8:5432
            target: 10.0.0.8:5432
        select:
          - databases: "Orders/*"
          - databases: "billing-*"
            targets:
              "not an address": 10.0.0.3:5432
        """);
    assertThat(problems).containsExactly(
        "line 1: name: is required: what operators call the campaign",
        "line 3: policy.wave_sizee: unknown field 'wave_sizee' (did you mean 'wave_size'?); known: canary,"
            + " canary_bake, wave_size, wave_bake, max_concurrent, max_concurrent_per_host, max_failures, order,"
            + " windows",
        "line 2: policy.canary: '-1' must be 0 (no canary) or more",
        "line 6: policy.max_failures: '150%' must be from 1% to 100%",
        "line 4: policy.max_concurrent: '0' must be 1 or more",
        "line 5: policy.max_concurrent_per_host: '0' must be 1 or more",
        "line 7: policy.order: 'biggest_first' is not 'given' or 'smallest_first'",
        "line 11: policy.windows[0].zone: 'Mars/Olympus' is not a time zone (a region like Europe/Berlin, or UTC)",
        "line 9: policy.windows[0].cron: '0 25 * * *' is not a cron expression: hour value 25 is out of range 0-23"
            + " (in '25')",
        "line 13: policy.windows[1].duration: 'soon' is not a duration such as 500ms, 30s, 2m or 1h",
        "line 16: migration.quiesce_grace: '5s' must be shorter than the phase deadline (2s), which QUIESCING must"
            + " also meet",
        "line 17: migration.max_lag_bytes: 'lots' is not a whole number",
        "line 18: migration.allow_unrouted_databases: 'yes please' is not true or false",
        "line 20: servers[0] ('10.0.0.5:5432').target: is required: the server's streaming standby, HOST:PORT",
        "line 21: servers[1] ('10.0.0.6').server: '10.0.0.6' is not HOST:PORT (or aurora:INSTANCE for a source)",
        "line 24: servers[2] ('aurora:orders-rds').aurora_cluster: 'r6g.large' is not an RDS instance class like"
            + " db.r6g.large",
        "line 26: servers[3] ('aurora:billing-rds').target: is for a HOST:PORT server; an RDS instance moves to a"
            + " new Aurora cluster: aurora_cluster: INSTANCE_CLASS",
        "line 29: servers[4] ('10.0.0.8:5432').target: '10.0.0.8:5432' is the server itself",
        "line 31: select[0].databases: 'Orders/*' is not a glob of database names (a-z, 0-9, '_', '.', '-', with"
            + " '*' for any run of characters and '?' for one)",
        "line 31: select[0]: give aurora_cluster (for the RDS instances it finds) or targets (each PostgreSQL"
            + " server's standby), or both: without them no server it finds could move",
        "line 34: select[1].targets: 'not an address' is not a server as routes name it (HOST:PORT): endpoint 'not"
            + " an address' has no port; expected host:port such as db1.internal:5432");
  }

  @Test
  void aBadCronExpression_isNamedAtItsLine() {
    assertThat(problems("""
        name: w
        policy:
          windows:
            - cron: "0 25 * * *"
              duration: 3h
        servers: [{server: 10.0.0.5:5432, target: 10.0.0.6:5432}]
        """)).singleElement().asString()
        .startsWith("line 4: policy.windows[0].cron: '0 25 * * *' is not a cron expression: ");
  }

  @Test
  void malformedYaml_andDuplicateKeys_areNamedAtTheirLine() {
    assertThat(problems("name: a\npolicy:\n  canary: [1\n")).singleElement().asString()
        .startsWith("line 4: malformed YAML: ");
    assertThat(problems("name: a\nname: b\nservers: []\nselect: [{databases: a, targets: {}}]\n")).first()
        .isEqualTo("line 2: name: is given twice (first at line 1)");
    assertThat(problems("- a list\n")).containsExactly("the file must be a YAML mapping with 'name', 'policy', and"
        + " 'servers' or 'select' (see campaign.example.yaml)");
    assertThat(problems("name: nothing to move\n")).containsExactly("line 1: servers: list the servers to move, or"
        + " select them from the routes (select:), or both");
  }

  @Test
  void aServerOrATargetNamedTwice_isNamedAtTheLineOfTheSecond() {
    assertThat(problems("""
        name: twice
        servers:
          - server: 10.0.0.5:5432
            target: 10.0.0.6:5432
          - server: 10.0.0.5:5432
            target: 10.0.0.7:5432
        """)).containsExactly("line 5: servers[1].server: '10.0.0.5:5432' is also servers[0].server: a server moves"
        + " once");
    assertThat(problems("""
        name: twice
        servers:
          - server: 10.0.0.5:5432
            target: 10.0.0.6:5432
          - server: 10.0.0.6:5432
            target: 10.0.0.7:5432
        """)).containsExactly("line 4: servers[0].target: '10.0.0.6:5432' is servers[1].server: a server this"
        + " campaign moves cannot be a target in it");
  }

  @Test
  void selectors_findTheServersOfTheDatabasesMatchingTheirGlob_andService() {
    CampaignFile file = parse("""
        name: by-glob
        policy: {canary: 0}
        select:
          - databases: "shop-?"
            service: checkout
            targets:
              "10.0.0.1:5432": 10.0.1.1:5432
              "10.0.0.2:5432": 10.0.1.2:5432
              "10.0.0.3:5432": 10.0.1.3:5432
        """);
    List<Route> routes = List.of(
        byAddress("shop-b", "10.0.0.2:5432", "checkout"),
        byAddress("shop-a", "10.0.0.1:5432"), // open to every service, checkout included
        byAddress("shop-c", "10.0.0.3:5432", "reporting"), // not for checkout
        byAddress("shop-aa", "10.0.0.4:5432", "checkout"), // ? is one character
        byAddress("shop-z", "10.0.0.2:5432", "reporting")); // not selected, but on a selected server

    assertThat(unresolved(file, routes)).containsExactly("select[0] (line 4: databases 'shop-?', service"
        + " checkout).targets: '10.0.0.3:5432' is not the server of a database this selector matches");

    CampaignSpec spec = parse("""
        name: by-glob
        policy: {canary: 0}
        select:
          - databases: "shop-?"
            service: checkout
            targets:
              "10.0.0.1:5432": 10.0.1.1:5432
              "10.0.0.2:5432": 10.0.1.2:5432
        """).expand(routes);
    assertThat(spec.members()).containsExactly(
        Member.of("10.0.0.1:5432", Target.given("10.0.1.1:5432")).withDatabases(List.of("shop-a")),
        Member.of("10.0.0.2:5432", Target.given("10.0.1.2:5432")).withDatabases(List.of("shop-b", "shop-z")));
  }

  @Test
  void databasesRoutedByAnRdsEndpointName_becomeAuroraMembers_namedByTheInstance() {
    CampaignFile file = parse("""
        name: to-aurora
        select:
          - databases: "*"
            aurora_cluster: db.r6g.xlarge
        """);
    List<Route> routes = List.of(
        byName("payments", "payments-db" + RDS, "10.1.0.5:5432"),
        byName("ledger", "PAYMENTS-DB" + RDS.toUpperCase(java.util.Locale.ROOT), "10.1.0.5:5432"),
        byName("users", "users-db" + RDS, "10.1.0.6:5432"),
        byName("stats", "stats.cluster-c9akciq32.eu-central-1.rds.amazonaws.com", "10.1.0.7:5432"));
    assertThat(unresolved(file, routes)).as("an Aurora cluster's endpoint is not an RDS instance's").containsExactly(
        "select[0] (line 3: databases '*'): found PostgreSQL server 10.1.0.7:5432 (database 'stats') but has no"
            + " target for it: add its standby to targets (\"10.1.0.7:5432\": HOST:PORT)");

    CampaignSpec spec = file.expand(routes.subList(0, 3));

    assertThat(spec.members()).extracting(Member::server, Member::databases).containsExactly(
        org.assertj.core.groups.Tuple.tuple("aurora:payments-db", List.of("ledger", "payments")),
        org.assertj.core.groups.Tuple.tuple("aurora:users-db", List.of("users")));
  }

  @Test
  void aSelectorThatFindsAnRdsInstance_orAPostgresServer_withNoTargetRuleForIt_isAnError() {
    CampaignFile file = parse("""
        name: no-rule
        select:
          - databases: "*"
            targets: {"10.0.0.1:5432": "10.0.1.1:5432"}
        """);
    assertThat(unresolved(file, List.of(
        byAddress("a", "10.0.0.1:5432"),
        byName("b", "b-db" + RDS, "10.1.0.5:5432"),
        byAddress("c", "10.0.0.9:5432")))).containsExactly(
        "select[0] (line 3: databases '*'): found RDS instance 'b-db' (database 'b') but has no aurora_cluster to"
            + " move it to",
        "select[0] (line 3: databases '*'): found PostgreSQL server 10.0.0.9:5432 (database 'c') but has no target"
            + " for it: add its standby to targets (\"10.0.0.9:5432\": HOST:PORT)");
  }

  @Test
  void aRouteByAddress_andOneByDnsName_toTheSameEndpoint_areOneServer() {
    List<Route> routes = List.of(
        byAddress("inventory", "10.0.0.9:5432"),
        byName("stock", "pg-9.internal", "10.0.0.9:5432"),
        byAddress("other", "10.0.0.10:5432"));

    CampaignSpec listedByName = parse("""
        name: by-name
        servers: [{server: "pg-9.internal:5432", target: "10.0.0.19:5432"}]
        """).expand(routes);
    assertThat(listedByName.members()).containsExactly(
        Member.of("pg-9.internal:5432", Target.given("10.0.0.19:5432")).withDatabases(List.of("inventory", "stock")));

    CampaignSpec selected = parse("""
        name: selected
        servers: [{server: "10.0.0.9:5432", target: "10.0.0.19:5432"}]
        select:
          - databases: "st*"
            targets: {"pg-9.internal:5432": "10.0.0.29:5432"}
        """).expand(routes);
    assertThat(selected.members()).as("found by the selector, but listed already: moved once").containsExactly(
        Member.of("10.0.0.9:5432", Target.given("10.0.0.19:5432")).withDatabases(List.of("inventory", "stock")));

    CampaignSpec foundByName = parse("""
        name: found
        select:
          - databases: "inventory"
            targets: {"pg-9.internal:5432": "10.0.0.29:5432"}
        """).expand(routes);
    assertThat(foundByName.members()).as("the target named by the DNS name the server is routed by").containsExactly(
        Member.of("pg-9.internal:5432", Target.given("10.0.0.29:5432")).withDatabases(List.of("inventory", "stock")));
  }

  @Test
  void whatDoesNotResolve_isNamedAllAtOnce() {
    CampaignFile file = parse("""
        name: unresolved
        servers:
          - server: 10.0.0.5:5432
            target: 10.0.0.6:5432
          - server: db5.internal:5432
            target: 10.0.0.16:5432
          - server: 10.0.0.99:5432
            target: 10.0.0.98:5432
          - aurora: gone-db
            aurora_cluster: db.r6g.large
        select:
          - databases: "billing-*"
            targets: {"10.0.0.7:5432": "10.0.0.8:5432"}
          - databases: "drained"
            targets: {"10.0.0.7:5432": "10.0.0.8:5432"}
        """);
    assertThat(unresolved(file, List.of(
        byAddress("orders", "10.0.0.5:5432"),
        byName("orders-2", "db5.internal", "10.0.0.5:5432"),
        new Route("drained", Optional.empty(), Optional.empty(), Set.of())))).containsExactly(
        "servers[1] 'db5.internal:5432': is the server of servers[0] '10.0.0.5:5432' (both reach 10.0.0.5:5432,"
            + " holding databases 'orders', 'orders-2'): a server moves once",
        "servers[2] '10.0.0.99:5432': no route points to it (by address, or by a DNS name and port)",
        "servers[3] 'aurora:gone-db': no database is routed to RDS instance 'gone-db' by its endpoint name"
            + " (gone-db.<suffix>.<region>.rds.amazonaws.com)",
        "select[0] (line 12: databases 'billing-*'): matches no database",
        "select[1] (line 14: databases 'drained'): matches only drained databases (database 'drained'): their"
            + " server cannot be known until they are routed",
        "select[0] (line 12: databases 'billing-*').targets: '10.0.0.7:5432' is not the server of a database this"
            + " selector matches",
        "select[1] (line 14: databases 'drained').targets: '10.0.0.7:5432' is not the server of a database this"
            + " selector matches");
  }

  @Test
  void theSpecsOwnChecks_afterExpansion_nameMembersAsTheFileDoes() {
    CampaignFile file = parse("""
        name: conflict
        policy: {canary: 3}
        servers:
          - server: 10.0.0.5:5432
            target: 10.0.0.6:5432
        select:
          - databases: "b*"
            targets: {"10.0.0.7:5432": "10.0.0.6:5432"}
        """);
    assertThat(unresolved(file, List.of(byAddress("a", "10.0.0.5:5432"), byAddress("b", "10.0.0.7:5432"))))
        .containsExactly("'10.0.0.7:5432' found by select[0] (line 7: databases 'b*'): '10.0.0.6:5432' is also the"
            + " target of servers[0] '10.0.0.5:5432'");
    CampaignFile tooFew = parse("""
        name: few
        policy: {canary: 3}
        servers:
          - server: 10.0.0.5:5432
            target: 10.0.0.6:5432
        """);
    assertThat(unresolved(tooFew, List.of(byAddress("a", "10.0.0.5:5432")))).containsExactly(
        "policy.canary: '3' is more than the 1 member");
  }
}
