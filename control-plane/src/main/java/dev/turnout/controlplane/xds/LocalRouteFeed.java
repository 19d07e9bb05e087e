package dev.turnout.controlplane.xds;

import com.google.common.collect.ImmutableMap;
import dev.turnout.controlplane.store.RouteRecord;
import dev.turnout.controlplane.store.RouteStore;

/**
 * The feed of a control plane that is its store's only writer: its table is the store's, so there is nothing
 * else to learn, and a change it recorded is all there is to publish.
 */
public final class LocalRouteFeed implements RouteFeed {
  private static final RouteStore.State NOTHING = new RouteStore.State(ImmutableMap.of(), 0);

  @Override
  public RouteStore.State recordedElsewhere() {
    return NOTHING;
  }

  @Override
  public RouteStore.State afterRecording(java.util.List<RouteRecord> recorded) {
    ImmutableMap.Builder<String, RouteRecord> routes = ImmutableMap.builder();
    long highest = 0;
    for (RouteRecord r : recorded) {
      routes.put(r.route().name(), r);
      highest = Math.max(highest, r.version());
    }
    return new RouteStore.State(routes.buildKeepingLast(), highest);
  }

  @Override
  public void onChange(Runnable listener) {}
}
