package dev.turnout.migrator;

import static dev.turnout.migrator.Harness.SOURCE;
import static dev.turnout.migrator.Harness.TARGET;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import dev.turnout.migrator.check.ServerFacts;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The fence and the promotion act on a server, so a migration moves every database routed to its source: drained
 * together, fenced once, promoted once, routed to the target in one change, and rolled back together.
 */
class ServerAsUnitTest {
  final Harness h = new Harness();

  static Migration.Spec ordersWithBilling(Migration.Options options) {
    return new Migration.Spec("orders", SOURCE, TARGET, options).withCoTenants(List.of("billing", "audit"));
  }

  /** The source as preflight reads it, holding {@code databases}. */
  void sourceHolds(String... databases) {
    h.servers.preflightReads(f -> new ServerFacts(new ServerFacts.Source(f.source().identity(), f.source().timeline(),
        f.source().settings(), f.source().extensions(), f.source().unloggedTables(), ImmutableList.copyOf(databases)),
        f.target(), f.logicalSlots(), f.fence()));
  }

  @Test
  void aServerWithThreeDatabases_isDrainedOnce_fencedOnce_promotedOnce_andRoutedToTheTargetInOneChange() throws Exception {
    sourceHolds("audit", "billing", "orders", "postgres");

    Migration done = h.run(ordersWithBilling(Harness.options()));

    assertThat(done.phase()).as(Harness.history(done)).isEqualTo(Phase.COMPLETED);
    assertThat(h.journal.lines()).as("the actions, in order").containsExactly(
        "drain orders, audit, billing",
        "hold the source's WAL",
        "arm the target read-only",
        "fence [app]",
        "promote the target",
        "refuse logins [replicator]",
        "restore logins on the target [app, replicator]",
        "admit writes on the target",
        "route orders, audit, billing to " + TARGET,
        "write probe on the target");
    assertThat(done.history().get(0).note()).isEqualTo("planned: " + SOURCE + " -> " + TARGET
        + "; moving every database routed to the source together: orders, audit, billing");
    assertThat(done.history()).extracting(Migration.Event::note).contains(
        "preflight ok   every database on the source is routed: moving audit, billing, orders; not counted: postgres"
            + " (maintenance)");
    assertThat(done.toString()).isEqualTo("migration " + done.id() + " of databases 'orders' with 'audit', 'billing'");
  }

  @Test
  void aDatabaseOnTheSourceThatNoRoutePointsTo_blocksPreflight_namingIt() throws Exception {
    sourceHolds("billing", "orders", "postgres", "reports");

    Migration m = h.run(new Migration.Spec("orders", SOURCE, TARGET, Harness.options()).withCoTenants(List.of("billing")));

    assertThat(m.phase()).isEqualTo(Phase.ROLLED_BACK);
    assertThat(m.progress().error()).hasValueSatisfying(e -> assertThat(e).contains(
        "every database on the source is routed: moving billing, orders; not counted: postgres (maintenance); no route"
            + " points to [reports]: clients reaching them directly lose their writes at the fence",
        "--allow-unrouted-databases"));
    assertThat(h.journal.lines()).as("nothing drained, nothing fenced").isEmpty();
  }

  @Test
  void anUnroutedDatabase_theOperatorAllowed_isOnlyAWarning() throws Exception {
    sourceHolds("orders", "postgres", "reports");

    Migration m = h.run(new Migration.Spec("orders", SOURCE, TARGET, Harness.options().allowingUnroutedDatabases(true)));

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.COMPLETED);
    assertThat(m.history()).extracting(Migration.Event::note).anySatisfy(n -> assertThat(n)
        .startsWith("preflight warn every database on the source is routed: moving orders;")
        .contains("no route points to [reports]").endsWith("allowed by the operator"));
  }

  @Test
  void aDatabaseRoutedToTheSourceAfterPlanning_rollsBackBeforeTheFence_namingIt() throws Exception {
    CompletableFuture<Void> drainAck = h.router.hold("drain orders, audit, billing");
    h.clock.schedule(Harness.WINDOW.plusMillis(1), () -> {
      h.router.routeByHand("latecomer", SOURCE); // by hand, while the drain waits for its ACK
      drainAck.complete(null);
    });

    Migration m = h.run(ordersWithBilling(Harness.options()));

    assertThat(m.phase()).as(Harness.history(m)).isEqualTo(Phase.ROLLED_BACK);
    assertThat(m.progress().error()).hasValueSatisfying(e -> assertThat(e).contains(
        "database(s) [latecomer] routed to the source " + SOURCE + " since the migration was planned"));
    assertThat(h.journal.lines()).as("never fenced; every database routed back").doesNotContain("fence [app]")
        .contains("route orders, audit, billing to " + SOURCE);
  }

  @Test
  void aRollbackAfterCompletion_routesEveryDatabaseBackInOneChange() throws Exception {
    Migration done = h.run(ordersWithBilling(Harness.options()));

    Migration back = h.migrator.rollback(done.id(), true);

    assertThat(h.now(back.id()).phase()).isEqualTo(Phase.ROLLED_BACK);
    assertThat(h.journal.lines()).contains("route orders, audit, billing to " + SOURCE);
    assertThat(h.router.endpoint("audit")).isEqualTo(SOURCE.toString());
  }

  @Test
  void aSecondMigrationOfACoTenant_orOfTheSameServer_isRefused_namingTheFirst() throws Exception {
    String first = h.run(ordersWithBilling(Harness.options())).id(); // COMPLETED: not finished until finalized
    String then = " in COMPLETED; finalize it or roll it back first";

    assertThatThrownBy(() -> h.migrator.start(new Migration.Spec("billing", SOURCE, new ServerAddress("10.0.0.7", 5432),
        Harness.options()))).isInstanceOf(MigrationConflictException.class)
        .hasMessage("database 'billing' already has migration " + first + then);
    assertThatThrownBy(() -> h.migrator.start(new Migration.Spec("other", SOURCE, new ServerAddress("10.0.0.7", 5432),
        Harness.options()))).isInstanceOf(MigrationConflictException.class)
        .hasMessage("server " + SOURCE + " (the source of both) is already in migration " + first + " (" + SOURCE
            + " -> " + TARGET + ", databases orders, audit, billing)" + then);
    assertThatThrownBy(() -> h.migrator.start(new Migration.Spec("other", TARGET, new ServerAddress("10.0.0.7", 5432),
        Harness.options()))).as("a server that is one migration's target cannot be another's source")
        .isInstanceOf(MigrationConflictException.class)
        .hasMessageStartingWith("server " + TARGET + " (this one's source, that one's target) is already in migration "
            + first);
    assertThatThrownBy(() -> h.migrator.outsideMigrations("audit", () -> "a route by hand"))
        .as("a co-tenant's route changes only through the migration").isInstanceOf(MigrationConflictException.class)
        .hasMessageStartingWith("database 'audit' has migration " + first + " in COMPLETED");
    assertThat(h.migrator.outsideMigrations("elsewhere", () -> Optional.of("done"))).contains("done");
  }

  @Test
  void aSpecCannotNameItsDatabaseAsItsOwnCoTenant_andCoTenantsAreKeptInNameOrder() {
    Migration.Spec spec = new Migration.Spec("orders", SOURCE, TARGET, Harness.options())
        .withCoTenants(List.of("orders", "zeta", "alpha", "zeta"));
    assertThat(spec.databases()).containsExactly("orders", "alpha", "zeta");
    assertThatThrownBy(() -> new Migration.Spec("orders", SOURCE, TARGET, Harness.options(), Optional.empty(),
        ImmutableList.of("orders"))).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("named twice");
  }
}
