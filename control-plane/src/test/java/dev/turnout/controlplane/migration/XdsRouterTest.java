package dev.turnout.controlplane.migration;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.envoy.RoutingTable;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.ServerAddress;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The precondition a start (by an operator, or a campaign's) checks under the lock a route change by hand takes:
 * the plan moves the databases routed to its source server, and nothing moved since it was made.
 */
class XdsRouterTest {
  static final ServerAddress SOURCE = new ServerAddress("10.0.0.5", 5432);
  static final Endpoint AT_SOURCE = new Endpoint("10.0.0.5", 5432);

  final AtomicReference<RoutingTable> table = new AtomicReference<>(RoutingTable.of(List.of(
      route("orders", 15432, AT_SOURCE), route("billing", 15433, AT_SOURCE),
      route("reports", 15434, new Endpoint("10.0.0.9", 5432)))));
  final Migration.Spec plan = new Migration.Spec("orders", SOURCE, new ServerAddress("10.0.0.6", 5432),
      Migration.Options.defaults()).withCoTenants(ImmutableList.of("billing"));

  static DatabaseRoute route(String name, int port, Endpoint endpoint) {
    return new DatabaseRoute(name, port, Optional.of(endpoint), Set.of());
  }

  @Test
  void aPlanThatStillHolds_passes() {
    assertThatCode(() -> XdsRouter.stillRoutedAsPlanned(table::get, plan, "start it again").check())
        .doesNotThrowAnyException();
  }

  @Test
  void aDatabaseRoutedElsewhereSinceThePlan_refusesTheStart_namingWhereItIsNow() {
    table.set(table.get().with(route("orders", 15432, new Endpoint("10.0.0.7", 5432))));

    assertThatThrownBy(() -> XdsRouter.stillRoutedAsPlanned(table::get, plan, "start it again").check())
        .isInstanceOf(MigrationConflictException.class)
        .hasMessage("database 'orders' was routed to 10.0.0.7:5432 while the migration from 10.0.0.5:5432 was being"
            + " planned; start it again");
  }

  @Test
  void aCoTenantArrivingSinceThePlan_refusesTheStart_namingBothSets() {
    table.set(table.get().with(route("reports", 15434, AT_SOURCE)));

    assertThatThrownBy(() -> XdsRouter.stillRoutedAsPlanned(table::get, plan, "the campaign plans it again").check())
        .isInstanceOf(MigrationConflictException.class)
        .hasMessage("the databases routed to 10.0.0.5:5432 changed while the migration was being planned (planned"
            + " [orders, billing], now [billing, orders, reports]); the campaign plans it again");
  }
}
