package dev.turnout.controlplane.xds;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.store.AuditLog;
import dev.turnout.controlplane.store.FileRouteStore;
import dev.turnout.controlplane.store.RouteRecord;
import dev.turnout.controlplane.store.RouteStore;
import dev.turnout.controlplane.store.StoreException;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Route changes that arrive while one is being journaled are journaled together, with one write and one fsync of
 * the real journal file, and published as one version; each caller returns when its own change is durable and
 * published, and waits for the ACKs of its own version. What is on disk after the flush (as a crash would leave
 * it) holds every change of the batch; a batch torn by a crash keeps its whole lines only, none of them published.
 */
class RouteGroupCommitTest {
  private static final int DATABASES = 10;

  @TempDir Path dir;

  private GatedStore store;
  private final List<Long> published = new CopyOnWriteArrayList<>();
  private final List<Long> awaited = new CopyOnWriteArrayList<>();
  private SnapshotPublisher publisher;
  private RoutingService routing;
  private final ExecutorService callers = Executors.newFixedThreadPool(DATABASES);

  @BeforeEach
  void start() throws Exception {
    store = new GatedStore(FileRouteStore.open(dir.resolve("store")));
    publisher = new SnapshotPublisher();
    AckWait acks = new AckWait() {
      @Override
      public CompletableFuture<AckTracker.AckReport> await(DatabaseRoute route, long version) {
        awaited.add(version);
        return CompletableFuture.completedFuture(
            new AckTracker.AckReport(route.name(), version, ImmutableList.of("sidecar-1"), Duration.ZERO));
      }

      @Override
      public void published(DatabaseRoute route, long version) {}
    };
    routing = new RoutingService(new RoutingService.Ports(store, new LocalRouteFeed(), acks), publisher,
        Runnable::run, RoutingService.Resolver.SYSTEM);
    routing.start(IntStream.range(0, DATABASES).mapToObj(i -> new DatabaseRoute("db" + i, 20000 + i,
        Optional.of(Endpoint.parse("10.0.0." + i + ":5432")), Set.of())).toList());
    publisher.subscribe(() -> published.add(publisher.version()));
    store.batches.clear(); // the seeds
    store.flushes = 0;
  }

  @AfterEach
  void stop() throws Exception {
    callers.shutdownNow();
    store.close();
  }

  private <T> Future<T> call(Callable<T> change) {
    return callers.submit(change);
  }

  /** Waits until {@code n} changes queue behind the batch held in the store. */
  private void awaitQueued(int n) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (routing.queuedChanges() < n) {
      assertThat(System.nanoTime()).as("%d changes queued", n).isLessThan(deadline);
      Thread.sleep(5);
    }
  }

  @Test
  void nineChangesArrivingDuringAFlush_areJournaledWithOneFsync_publishedAsOneVersion_andDurable() throws Exception {
    long before = publisher.version();
    store.holdNext();
    Future<CompletableFuture<RoutingService.RouteResult>> first =
        call(() -> routing.route("db0", Endpoint.parse("10.1.0.0:5432")));
    store.awaitHeld();
    List<Future<CompletableFuture<RoutingService.RouteResult>>> rest = new ArrayList<>();
    for (int i = 1; i < DATABASES - 1; i++) {
      int n = i;
      rest.add(call(() -> n % 2 == 0 ? routing.drain("db" + n) : routing.route("db" + n,
          Endpoint.parse("10.1.0." + n + ":5432"))));
    }
    awaitQueued(DATABASES - 2);
    // A migration's change is the leader's: it is journaled in a batch of its own, after the others.
    Future<CompletableFuture<List<RoutingService.RouteResult>>> server = call(() -> routing.changeAll(
        List.of("db9"), Optional.of(Endpoint.parse("10.1.0.9:5432")), RouteStore.Writer.LEADER));
    awaitQueued(DATABASES - 1);
    Thread.sleep(50);
    assertThat(rest).as("nobody returns before the batch ahead of them is durable").noneMatch(Future::isDone);

    store.release();
    RoutingService.RouteResult db0 = first.get(10, TimeUnit.SECONDS).get(10, TimeUnit.SECONDS);
    List<RoutingService.RouteResult> results = new ArrayList<>();
    for (var f : rest) {
      results.add(f.get(10, TimeUnit.SECONDS).get(10, TimeUnit.SECONDS));
    }
    RoutingService.RouteResult db9 = server.get(10, TimeUnit.SECONDS).get(10, TimeUnit.SECONDS).get(0);

    assertThat(store.batches).containsExactly(1, DATABASES - 2, 1);
    assertThat(store.flushes).isEqualTo(3);
    long batchVersion = results.stream().mapToLong(RoutingService.RouteResult::version).max().orElseThrow();
    assertThat(published).as("one version for the eight changes in between")
        .containsExactly(db0.version(), batchVersion, db9.version());
    assertThat(results.stream().map(RoutingService.RouteResult::version).distinct()).hasSize(DATABASES - 2);
    assertThat(results).allSatisfy(r -> assertThat(r.version()).isGreaterThan(db0.version()).isLessThan(db9.version()));
    assertThat(results.get(1).current()).isEmpty(); // db2 drained
    assertThat(results.get(0).current()).contains(Endpoint.parse("10.1.0.1:5432"));
    assertThat(results.get(0).previous()).contains(Endpoint.parse("10.0.0.1:5432"));
    assertThat(awaited).as("each caller waits for the ACKs of its own version")
        .containsExactlyInAnyOrderElementsOf(ImmutableList.<Long>builder().add(db0.version(), db9.version())
            .addAll(results.stream().map(RoutingService.RouteResult::version).toList()).build());
    assertThat(routing.endpointVersion("db5")).isEqualTo(results.get(4).version());
    assertThat(before).isLessThan(db0.version());

    // What the disk holds now is what a crash would leave: every change, as published.
    Path crashed = dir.resolve("crashed");
    Files.createDirectories(crashed);
    Files.copy(store.journal(), crashed.resolve("routes.journal"));
    try (FileRouteStore reopened = FileRouteStore.open(crashed)) {
      RouteStore.State state = reopened.load();
      assertThat(state.highestVersion()).isEqualTo(db9.version());
      assertThat(state.routes().get("db0").route().endpoint()).contains(Endpoint.parse("10.1.0.0:5432"));
      assertThat(state.routes().get("db2").route().endpoint()).isEmpty();
      assertThat(state.routes().get("db9").route().endpoint()).contains(Endpoint.parse("10.1.0.9:5432"));
      for (RoutingService.RouteResult r : results) {
        assertThat(state.routes().get(r.database()).version()).isEqualTo(r.version());
        assertThat(state.routes().get(r.database()).route().endpoint()).isEqualTo(r.current());
      }
    }
  }

  @Test
  void aBatchTornByACrash_isDroppedWhole_andNoneOfItWasPublished() throws Exception {
    Path journal = store.journal();
    long sizeBefore = Files.size(journal);
    store.holdNext();
    Future<?> first = call(() -> routing.route("db0", Endpoint.parse("10.1.0.0:5432")));
    store.awaitHeld();
    List<Future<?>> rest = new ArrayList<>();
    for (int i = 1; i <= 3; i++) {
      int n = i;
      rest.add(call(() -> routing.route("db" + n, Endpoint.parse("10.1.0." + n + ":5432"))));
      awaitQueued(n); // in this order: db3's line is the batch's last
    }
    store.release();
    first.get(10, TimeUnit.SECONDS);
    for (Future<?> f : rest) {
      f.get(10, TimeUnit.SECONDS);
    }
    byte[] bytes = Files.readAllBytes(journal);
    // The crash came in the middle of the batch's write: its line (db1, db2, db3) is cut short.
    Path crashed = dir.resolve("crashed");
    Files.createDirectories(crashed);
    Files.write(crashed.resolve("routes.journal"), Arrays.copyOf(bytes, bytes.length - 20));
    try (FileRouteStore reopened = FileRouteStore.open(crashed)) {
      RouteStore.State state = reopened.load();
      assertThat(state.routes().get("db0").route().endpoint()).contains(Endpoint.parse("10.1.0.0:5432"));
      for (int n = 1; n <= 3; n++) {
        assertThat(state.routes().get("db" + n).route().endpoint()).as("the torn batch is dropped whole: db" + n)
            .contains(Endpoint.parse("10.0.0." + n + ":5432"));
      }
      assertThat(Files.size(crashed.resolve("routes.journal"))).isGreaterThan(sizeBefore)
          .isLessThan(bytes.length - 20);
    }
  }

  @Test
  void changesInOneBatch_areDecidedInOrder_andARefusedOneDoesNotStopTheOthers() throws Exception {
    store.holdNext();
    Future<?> first = call(() -> routing.route("db0", Endpoint.parse("10.1.0.0:5432")));
    store.awaitHeld();
    RouteRecord.Operator sre = new RouteRecord.Operator("sre", "test");
    Future<CompletableFuture<RoutingService.RouteResult>> moveDb1 =
        call(() -> routing.changeByHand("db1", Optional.of(Endpoint.parse("10.1.0.1:5432")),
            new RoutingService.ByHand(sre, Optional.empty())));
    awaitQueued(1);
    // Decided on the change queued before it, not yet durable: db1 will be at 10.1.0.1 when this is decided.
    Future<CompletableFuture<RoutingService.RouteResult>> moveDb1Again =
        call(() -> routing.changeByHand("db1", Optional.of(Endpoint.parse("10.2.0.1:5432")),
            new RoutingService.ByHand(sre, Optional.of(Endpoint.parse("10.1.0.1:5432")))));
    awaitQueued(2);
    Future<CompletableFuture<RoutingService.RouteResult>> wrongExpectation =
        call(() -> routing.changeByHand("db2", Optional.empty(),
            new RoutingService.ByHand(sre, Optional.of(Endpoint.parse("10.9.9.9:5432")))));
    awaitQueued(3);
    Future<CompletableFuture<RoutingService.RouteResult>> unknown =
        call(() -> routing.changeByHand("nope", Optional.empty(), new RoutingService.ByHand(sre, Optional.empty())));
    awaitQueued(4);
    store.release();
    first.get(10, TimeUnit.SECONDS);

    RoutingService.RouteResult again = moveDb1Again.get(10, TimeUnit.SECONDS).get(10, TimeUnit.SECONDS);
    RoutingService.RouteResult once = moveDb1.get(10, TimeUnit.SECONDS).get(10, TimeUnit.SECONDS);
    assertThat(again.previous()).contains(Endpoint.parse("10.1.0.1:5432"));
    assertThat(again.version()).isGreaterThan(once.version());
    assertThatThrownBy(() -> wrongExpectation.get(10, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class).cause().isInstanceOf(RouteConflictException.class);
    assertThatThrownBy(() -> unknown.get(10, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class).cause().isInstanceOf(UnknownDatabaseException.class);
    assertThat(store.batches).containsExactly(1, 2);
    assertThat(routing.table().get("db1").orElseThrow().endpoint()).contains(Endpoint.parse("10.2.0.1:5432"));
    assertThat(routing.table().get("db2").orElseThrow().endpoint()).contains(Endpoint.parse("10.0.0.2:5432"));
    assertThat(routing.history("db1", Long.MAX_VALUE, 10)).extracting(h -> h.record().version())
        .startsWith(again.version(), once.version());
  }

  @Test
  void aBatchTheJournalCannotTake_failsEveryCallerInIt_andChangesNothing() throws Exception {
    store.holdNext();
    Future<?> first = call(() -> routing.route("db0", Endpoint.parse("10.1.0.0:5432")));
    store.awaitHeld();
    List<Future<?>> failing = new ArrayList<>();
    for (int i = 1; i <= 3; i++) {
      int n = i;
      failing.add(call(() -> routing.route("db" + n, Endpoint.parse("10.1.0." + n + ":5432"))));
    }
    awaitQueued(3);
    store.failNext();
    store.release();
    first.get(10, TimeUnit.SECONDS);
    long version = publisher.version();
    for (Future<?> f : failing) {
      assertThatThrownBy(() -> f.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
          .cause().isInstanceOf(StoreException.class).hasMessageContaining("disk full");
    }
    assertThat(publisher.version()).isEqualTo(version);
    assertThat(routing.table().get("db1").orElseThrow().endpoint()).contains(Endpoint.parse("10.0.0.1:5432"));

    var next = routing.route("db1", Endpoint.parse("10.1.0.1:5432")).get(10, TimeUnit.SECONDS);
    assertThat(next.version()).isGreaterThan(version);
  }

  /** The real file store, whose next batch can be held (to let changes queue behind it) or refused. */
  private static final class GatedStore implements RouteStore {
    private final FileRouteStore file;
    final List<Integer> batches = new CopyOnWriteArrayList<>();
    volatile int flushes;
    private volatile CountDownLatch held = new CountDownLatch(0);
    private volatile CountDownLatch release = new CountDownLatch(0);
    private volatile boolean fail;

    GatedStore(FileRouteStore file) {
      this.file = file;
    }

    void holdNext() {
      held = new CountDownLatch(1);
      release = new CountDownLatch(1);
    }

    void awaitHeld() throws InterruptedException {
      assertThat(held.await(10, TimeUnit.SECONDS)).isTrue();
    }

    void release() {
      release.countDown();
    }

    void failNext() {
      fail = true;
    }

    Path journal() {
      return file.journalFile();
    }

    @Override
    public State load() throws StoreException {
      return file.load();
    }

    @Override
    public long append(RouteRecord record, Writer writer) throws StoreException {
      return appendAll(List.of(record), writer).get(0);
    }

    @Override
    public List<Long> appendAll(List<RouteRecord> records, Writer writer) throws StoreException {
      if (held.getCount() > 0) {
        held.countDown();
        try {
          release.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      } else if (fail) {
        fail = false;
        throw new StoreException("cannot write the routing journal: disk full; the change was not made");
      }
      batches.add(records.size());
      flushes++;
      return file.appendAll(records, writer);
    }

    @Override
    public long reserveVersion(long version) throws StoreException {
      return file.reserveVersion(version);
    }

    @Override
    public ImmutableList<Recorded> history(String database, long beforeVersion, int limit) {
      return file.history(database, beforeVersion, limit);
    }

    @Override
    public AuditLog audit() throws StoreException {
      return file.audit();
    }

    @Override
    public void close() throws StoreException {
      file.close();
    }
  }
}
