package dev.turnout.controlplane.campaign;

import com.google.common.collect.ImmutableList;
import com.google.common.util.concurrent.ThreadFactoryBuilder;
import dev.turnout.controlplane.migration.Migrations;
import dev.turnout.controlplane.migration.XdsRouter;
import dev.turnout.controlplane.store.CampaignStore;
import dev.turnout.controlplane.store.StoreException;
import dev.turnout.controlplane.xds.RoutingService;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationConflictException;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.Migrator;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.campaign.Action;
import dev.turnout.migrator.campaign.Campaign;
import dev.turnout.migrator.campaign.CampaignPolicy;
import dev.turnout.migrator.campaign.CampaignSpec;
import dev.turnout.migrator.campaign.CampaignStatus;
import dev.turnout.migrator.campaign.Decision;
import dev.turnout.migrator.campaign.MaintenanceWindow;
import dev.turnout.migrator.campaign.Member;
import dev.turnout.migrator.campaign.MemberState;
import dev.turnout.migrator.campaign.MemberView;
import dev.turnout.migrator.campaign.Plan;
import dev.turnout.migrator.campaign.Planner;
import dev.turnout.migrator.campaign.Target;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The campaigns as this control-plane replica runs or sees them. The migration leader runs them: for each term it
 * loads them from the store, holds every member's migration at VALIDATED unless the campaign lets it cut over
 * ({@link Migrator.CutoverGate}), and decides ({@link CampaignPolicy#decide}) once a second and whenever a member's
 * migration changes: each new campaign state is saved (compare-and-set) before its actions are taken (members'
 * migrations started under ids the campaign chose, so a start lost in a crash is recognised; rollbacks on abort).
 * Other replicas answer reads from the store and refuse commands, naming the leader.
 */
public final class Campaigns implements Migrations.Term {
  private static final Logger log = LoggerFactory.getLogger(Campaigns.class);
  private static final long TICK_MILLIS = 1000;

  private final CampaignStore store;
  private final Migrations migrations;
  private final RoutingService routing;
  private final Clock clock;
  private final Object lock = new Object();
  /** The latest saved state of each campaign this term knows, by id. Written under {@link #lock}. */
  private final Map<String, Campaign> campaigns = new ConcurrentHashMap<>();
  /** The migrations that are campaign members, and those the latest decisions let cut over now. */
  private volatile Set<String> memberIds = Set.of();
  private volatile Set<String> mayCutOver = Set.of();
  /** Why a member's start failed last (a server already in another migration, say), by migration id. */
  private final Map<String, String> startErrors = new ConcurrentHashMap<>();
  private final List<Consumer<Campaign>> listeners = new CopyOnWriteArrayList<>();
  private volatile Migrator migrator;
  private volatile ScheduledExecutorService ticker;
  /**
   * Whether a decision is queued on the ticker and has not begun: it reads every member's migration when it
   * begins, so a change made meanwhile needs no decision of its own. Without this, each save of each member's
   * migration (a dozen per member) queued a pass over the whole campaign: at 50 members cutting over at once the
   * ticker fell seconds behind, and members reaching VALIDATED waited for it (a hold, then a 1 s poll).
   */
  private final AtomicBoolean decisionQueued = new AtomicBoolean();

  public Campaigns(CampaignStore store, Migrations migrations, RoutingService routing, Clock clock) {
    this.store = store;
    this.migrations = migrations;
    this.routing = routing;
    this.clock = clock;
    migrations.addTerm(this);
  }

  // ---- the leader's term

  @Override
  public void starting(Migrator m) throws MigrationException {
    synchronized (lock) {
      campaigns.clear();
      try {
        for (Campaign c : store.loadAll()) {
          campaigns.put(c.id(), c);
        }
      } catch (StoreException e) {
        throw new MigrationException("cannot load the campaigns: " + e.getMessage(), e);
      }
      refreshMembers();
      mayCutOver = Set.of(); // nothing cuts over before this term's first decision
      decisionQueued.set(false); // one queued on the last term's ticker died with it
      m.setCutoverGate(this::holds);
      ScheduledExecutorService t = Executors.newSingleThreadScheduledExecutor(
          new ThreadFactoryBuilder().setNameFormat("turnout-campaigns").setDaemon(true).build());
      ticker = t;
      m.addListener(changed -> {
        if (memberIds.contains(changed.id())) {
          decideSoon(t); // a member moved: decide at once
        }
      });
      if (!campaigns.isEmpty()) {
        log.info("leading {} campaign(s), {} running", campaigns.size(),
            campaigns.values().stream().filter(Campaigns::active).count());
      }
    }
  }

  /**
   * The term's migrator has loaded and resumed every migration: decisions begin now, not before, so a member's
   * migration that exists in the store is seen as started (never asked to start again under its id).
   */
  @Override
  public void resumed(Migrator m) {
    synchronized (lock) {
      migrator = m;
      ScheduledExecutorService t = ticker;
      if (t != null) {
        t.scheduleWithFixedDelay(this::tickAll, 0, TICK_MILLIS, TimeUnit.MILLISECONDS);
      }
    }
  }

  @Override
  public void ended() {
    ScheduledExecutorService t = ticker;
    ticker = null;
    migrator = null;
    if (t != null) {
      t.shutdownNow();
      try {
        t.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static boolean active(Campaign c) {
    return c.state().status() != CampaignStatus.COMPLETED && c.state().status() != CampaignStatus.ABORTED;
  }

  /** The gate of this term's migrator: campaign members cut over only when the latest decision lets them. */
  private Optional<String> holds(Migration m) {
    if (!memberIds.contains(m.id()) || mayCutOver.contains(m.id())) {
      return Optional.empty();
    }
    return Optional.of(heldReason(m.id(), clock.instant()));
  }

  /** Why the member whose migration is {@code migrationId} may not cut over now. */
  private String heldReason(String migrationId, Instant now) {
    for (Campaign c : campaigns.values()) {
      for (int i = 0; i < c.members().size(); i++) {
        if (c.members().get(i).migrationId().filter(migrationId::equals).isPresent()) {
          List<MaintenanceWindow> windows = windowsOf(c.spec(), c.spec().members().get(i));
          Optional<Instant> next = windows.stream().map(w -> w.nextOpening(now)).flatMap(Optional::stream)
              .min(Comparator.naturalOrder());
          if (!windows.isEmpty() && windows.stream().noneMatch(w -> w.isOpen(now))) {
            return "campaign " + c.id() + ": outside the member's maintenance windows" + next.map(n -> "; the next"
                + " opens at " + n).orElse("");
          }
          return "campaign " + c.id() + " (" + c.state().status() + ") has not let it cut over yet";
        }
      }
    }
    return "its campaign has not decided yet";
  }

  /** The windows {@code member}'s cutover waits for: its own, or else the policy's (none: any time). */
  public static List<MaintenanceWindow> windowsOf(CampaignSpec spec, Member member) {
    return member.windows().isEmpty() ? spec.policy().windows() : member.windows();
  }

  private void refreshMembers() {
    Set<String> ids = new java.util.HashSet<>();
    for (Campaign c : campaigns.values()) {
      for (MemberState s : c.members()) {
        s.migrationId().ifPresent(ids::add);
      }
    }
    memberIds = Set.copyOf(ids);
  }

  /** Queues a decision on {@code t} unless one is queued that has not begun (it will see what changed). */
  private void decideSoon(ScheduledExecutorService t) {
    if (decisionQueued.compareAndSet(false, true)) {
      try {
        t.execute(this::tickAll);
      } catch (RejectedExecutionException e) {
        decisionQueued.set(false); // the term ended: the next term decides afresh
      }
    }
  }

  private void tickAll() {
    decisionQueued.set(false); // before anything is read: a change from here on queues another decision
    try {
      synchronized (lock) {
        Migrator m = migrator;
        if (m == null) {
          return;
        }
        Set<String> may = new java.util.HashSet<>();
        for (Campaign c : List.copyOf(campaigns.values())) {
          if (active(c)) {
            may.addAll(tick(m, c));
          }
        }
        mayCutOver = Set.copyOf(may);
      }
    } catch (RuntimeException e) {
      log.error("campaigns: a decision failed: {}", e.getMessage(), e);
    }
  }

  /** Decides once for {@code c}: saves what changed, then acts. Returns the migrations that may cut over. */
  private Set<String> tick(Migrator m, Campaign c) {
    Map<String, MemberView> views = new HashMap<>();
    for (MemberState s : c.members()) {
      if (s.status().running()) { // the policy looks at no other member's migration; finished ones pile up
        s.migrationId().flatMap(m::get).ifPresent(mig -> views.put(mig.id(), MemberView.of(mig)));
      }
    }
    Instant now = clock.instant();
    Decision d = CampaignPolicy.decide(c, views, now);
    if (d.campaign().isPresent()) {
      try {
        c = saved(d.campaign().get());
      } catch (StoreException e) {
        log.warn("campaign {}: cannot save its next state ({}); nothing done, deciding again", c.id(), e.getMessage());
        return Set.of();
      }
    }
    for (Action a : d.actions()) {
      if (a instanceof Action.Start s) {
        startMember(m, c, s);
      } else if (a instanceof Action.RollBack r) {
        try {
          m.rollback(r.migrationId(), false);
          log.info("campaign {}: rolling back {} ({}), as the abort asks", c.id(), r.migrationId(), r.server());
        } catch (MigrationException e) {
          log.warn("campaign {}: cannot roll back {}: {}", c.id(), r.migrationId(), e.getMessage());
        }
      }
    }
    return d.mayCutOver();
  }

  private void startMember(Migrator m, Campaign c, Action.Start s) {
    if (m.get(s.migrationId()).isPresent()) {
      return; // started before a crash: the policy sees it at the next look
    }
    try {
      Migration.Spec spec = specOf(m, c.spec(), s.member());
      m.startAs(s.migrationId(), spec, XdsRouter.stillRoutedAsPlanned(routing::table, spec,
          "the campaign plans it again"));
      startErrors.remove(s.migrationId());
      log.info("campaign {}: started migration {} of {} ({} -> {})", c.id(), s.migrationId(), s.member().server(),
          spec.source(), spec.target());
    } catch (MigrationException | RuntimeException e) {
      String before = startErrors.put(s.migrationId(), e.getMessage());
      if (!e.getMessage().equals(before)) { // once per distinct reason: it is asked again every second
        log.warn("campaign {}: cannot start {} of {}: {}; trying again", c.id(), s.migrationId(),
            s.member().server(), e.getMessage());
      }
    }
  }

  /** The migration of one member: its server's databases as routed now, its target by the member's rule. */
  Migration.Spec specOf(Migrator m, CampaignSpec spec, Member member) throws MigrationException {
    Optional<Migration.Aurora> aurora = Optional.empty();
    List<String> databases;
    if (member.server().startsWith("aurora:")) {
      String instance = member.server().substring("aurora:".length());
      databases = XdsRouter.databasesOnRdsInstance(routing, instance);
      if (member.target().kind() == Target.Kind.AURORA_CLUSTER) {
        aurora = Optional.of(new Migration.Aurora(instance, instance + "-aurora", Optional.of(member.target().value())));
      }
    } else {
      databases = XdsRouter.databasesOn(routing, Endpoint.parse(member.server()));
    }
    if (databases.isEmpty()) {
      throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION, "no database is"
          + " routed to " + member.server() + " now");
    }
    String first = databases.get(0);
    Endpoint source = routing.table().get(first).flatMap(DatabaseRoute::endpoint).orElseThrow();
    ServerAddress target;
    if (member.target().kind() == Target.Kind.AURORA_CLUSTER) {
      if (aurora.isEmpty()) {
        throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION, member.server()
            + ": an Aurora cluster target needs an RDS member (aurora:INSTANCE)");
      }
      target = m.defaultTarget(first, aurora);
    } else if (member.target().kind() == Target.Kind.STANDBY) {
      throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION, member.server()
          + ": making a PostgreSQL standby for a campaign member is not supported; give the standby it has as its"
          + " target");
    } else {
      Endpoint t = Endpoint.parse(member.target().value());
      target = new ServerAddress(t.host(), t.port());
    }
    return new Migration.Spec(first, new ServerAddress(source.host(), source.port()), target, spec.migration(),
        aurora).withCoTenants(databases);
  }

  private Campaign saved(Campaign next) throws StoreException {
    Campaign s = store.save(next);
    campaigns.put(s.id(), s);
    refreshMembers();
    listeners.forEach(l -> l.accept(s));
    return s;
  }

  // ---- operators' commands (the leader only)

  /** A plan of {@code spec}: waves, and per member what would block it now. */
  public record Planned(Plan plan, ImmutableList<MemberPlan> members, ImmutableList<String> blocking) {}

  /** One member as planned: its databases as routed now, its target, and what would block it. */
  public record MemberPlan(int wave, Member member, ImmutableList<String> databases, String target,
      Optional<Instant> nextWindow, ImmutableList<String> blocking) {}

  /** The plan of {@code file} against the routes now: nothing is started. */
  public Planned plan(CampaignFile file) throws MigrationException {
    Migrator m = migrations.leader();
    CampaignSpec spec = file.expand(routes());
    Plan plan = Planner.plan(spec);
    Instant now = clock.instant();
    ImmutableList.Builder<MemberPlan> out = ImmutableList.builder();
    ImmutableList.Builder<String> blocking = ImmutableList.builder();
    for (Plan.Entry e : plan.entries()) {
      List<String> blocks = new ArrayList<>();
      List<String> databases = List.of();
      String target = e.member().target().describe(e.member().server());
      try {
        Migration.Spec s = specOf(m, spec, e.member());
        databases = s.databases();
        target = s.target().toString();
        for (Migration other : m.list()) {
          if (!other.phase().isTerminal() && (other.spec().source().equals(s.source())
              || other.spec().target().equals(s.source()) || other.spec().source().equals(s.target())
              || other.spec().target().equals(s.target()))) {
            blocks.add("its server is in migration " + other.id() + " (" + other.phase() + ")");
          }
        }
      } catch (MigrationException | RuntimeException ex) {
        blocks.add(ex.getMessage());
      }
      Optional<Instant> next = windowsOf(spec, e.member()).stream().map(w -> w.nextOpening(now))
          .flatMap(Optional::stream).min(Comparator.naturalOrder());
      blocks.forEach(b -> blocking.add(e.member().server() + ": " + b));
      out.add(new MemberPlan(e.wave(), e.member(), ImmutableList.copyOf(databases), target, next,
          ImmutableList.copyOf(blocks)));
    }
    return new Planned(plan, out.build(), blocking.build());
  }

  /** Starts a campaign of {@code file}; refused when its plan is blocked or a campaign of its name is unfinished. */
  public Campaign start(CampaignFile file) throws MigrationException {
    Planned planned = plan(file);
    if (!planned.blocking().isEmpty()) {
      throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION, "campaign '"
          + file.name() + "' cannot start: " + String.join("; ", planned.blocking()));
    }
    synchronized (lock) {
      for (Campaign c : campaigns.values()) {
        if (c.spec().name().equals(file.name()) && active(c)) {
          throw new MigrationConflictException(MigrationConflictException.Kind.ALREADY_EXISTS, "campaign '"
              + file.name() + "' is already running as " + c.id() + " (" + c.state().status() + ")");
        }
      }
      String id;
      do {
        id = UUID.randomUUID().toString().substring(0, 8);
      } while (campaigns.containsKey(id));
      Campaign created;
      try {
        created = saved(Campaign.create(id, planned.plan().spec(), clock.instant()));
      } catch (StoreException e) {
        throw new MigrationException("cannot save campaign '" + file.name() + "': " + e.getMessage(), e);
      }
      log.info("campaign {} '{}' started: {} servers in {} waves", id, file.name(), created.members().size(),
          created.waveCount());
      ScheduledExecutorService t = ticker;
      if (t != null) {
        decideSoon(t);
      }
      return created;
    }
  }

  /** An operator's decision on a campaign: pause, resume, approve or abort. */
  @FunctionalInterface
  public interface Command {
    Campaign apply(Campaign c, Instant now);
  }

  public Campaign command(String id, String what, Command command) throws MigrationException {
    migrations.leader();
    synchronized (lock) {
      Campaign c = campaigns.get(id);
      if (c == null) {
        throw new MigrationConflictException(MigrationConflictException.Kind.NOT_FOUND, "no campaign " + id);
      }
      Campaign next;
      try {
        next = command.apply(c, clock.instant());
      } catch (IllegalStateException | IllegalArgumentException e) {
        throw new MigrationConflictException(MigrationConflictException.Kind.FAILED_PRECONDITION, "campaign " + id
            + ": cannot " + what + ": " + e.getMessage());
      }
      Campaign s;
      try {
        s = next == c ? c : saved(next);
      } catch (StoreException e) {
        throw new MigrationException("campaign " + id + ": cannot save the " + what + ": " + e.getMessage(), e);
      }
      log.info("campaign {}: {} by an operator; now {}", id, what, s.state().status());
      ScheduledExecutorService t = ticker;
      if (t != null) {
        decideSoon(t);
      }
      return s;
    }
  }

  // ---- reads (any replica)

  public Optional<Campaign> get(String id) throws MigrationException {
    return list().stream().filter(c -> c.id().equals(id)).findFirst();
  }

  /** The leader's view; elsewhere the store's. Oldest first. */
  public ImmutableList<Campaign> list() throws MigrationException {
    List<Campaign> all;
    if (migrations.leading()) {
      all = List.copyOf(campaigns.values());
    } else {
      try {
        all = store.loadAll();
      } catch (StoreException e) {
        throw new MigrationException("cannot read the campaigns from the store: " + e.getMessage(), e);
      }
    }
    return all.stream().sorted(Comparator.comparing(c -> c.history().get(0).at()))
        .collect(ImmutableList.toImmutableList());
  }

  /** Why the member's migration could not be started, when its last start failed. */
  public Optional<String> startError(String migrationId) {
    return Optional.ofNullable(startErrors.get(migrationId));
  }

  /**
   * Why the member's migration is held at VALIDATED now, when it is: only a VALIDATED migration asks the gate, so
   * members before it, cutting over or finished are held by nothing (and were shown as held until now).
   */
  public Optional<String> held(String migrationId) {
    Migrator m = migrator;
    if (m == null || !memberIds.contains(migrationId) || mayCutOver.contains(migrationId)
        || m.get(migrationId).filter(x -> x.phase() == Phase.VALIDATED).isEmpty()) {
      return Optional.empty();
    }
    return Optional.of(heldReason(migrationId, clock.instant()));
  }

  /** Called with every saved state, on the leader. */
  public void addListener(Consumer<Campaign> listener) {
    listeners.add(listener);
  }

  public void removeListener(Consumer<Campaign> listener) {
    listeners.remove(listener);
  }

  /** The routes now, as a campaign file's selectors and servers are matched against them. */
  List<CampaignFile.Route> routes() {
    List<CampaignFile.Route> out = new ArrayList<>();
    for (DatabaseRoute r : routing.table().databases().values()) {
      out.add(new CampaignFile.Route(r.name(), r.endpoint().map(Endpoint::toString), routing.hostname(r.name()),
          r.services()));
    }
    return out;
  }
}
