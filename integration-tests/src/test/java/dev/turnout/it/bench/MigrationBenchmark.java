package dev.turnout.it.bench;

import static dev.turnout.it.bench.BenchSupport.arg;

import dev.turnout.controlplane.demo.Writer;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.it.PostgresServer;
import dev.turnout.migrator.CutoverSteps;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.sidecar.Sidecar;
import dev.turnout.sidecar.SidecarConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Benchmark: N migrations in a row of one live database (each to a fresh standby of the current primary) while
 * three applications work through the sidecar: the autocommit writer, a connection-per-transaction client (what
 * {@code pgbench -C} does: connect, one transaction, disconnect) and a persistent-connection client whose
 * transactions take a while. Prints, over the N migrations, the errors each client saw by kind, the
 * transactions the fence cut (in flight at the drain, failed), the write gap (median, p99, max) and the commits
 * lost (acknowledged but missing on the new primary). Asserts nothing: it reports.
 *
 * <pre>mvn -q -pl integration-tests exec:java@migration-bench -Dexec.args="--migrations 5"</pre>
 * Options: --migrations N (default 5), --window SECONDS (validation window, default 1), --grace MILLIS (quiesce
 * grace, default the product's), --in-transaction MILLIS (the persistent client's transaction length, default
 * 100), --json FILE, --history (print each migration's history from QUIESCING on, with times).
 */
public final class MigrationBenchmark {

  /** An application through the sidecar, counting what it would see. */
  static final class Client implements Runnable, AutoCloseable {
    enum Shape { CONNECTION_PER_TRANSACTION, PERSISTENT }

    final String name;
    private final Shape shape;
    private final String url;
    private final long firstSeq;
    private final long inTransactionMillis;
    private final long thinkMillis;
    private final Thread thread;
    final Set<Long> acknowledged = new ConcurrentSkipListSet<>();
    /** Error kind (where it happened, SQLSTATE, message) to count. */
    final Map<String, AtomicLong> errors = new ConcurrentHashMap<>();
    /** When each transaction that failed after its first statement had begun. */
    final ConcurrentLinkedQueue<Instant> failedInTransaction = new ConcurrentLinkedQueue<>();
    private volatile boolean stop;
    private volatile long longestGapNanos;

    Client(String name, Shape shape, int port, long firstSeq, long inTransactionMillis, long thinkMillis) {
      this.name = name;
      this.shape = shape;
      this.url = "jdbc:postgresql://127.0.0.1:" + port + "/postgres?user=app&sslmode=disable&connectTimeout=30"
          + "&socketTimeout=60";
      this.firstSeq = firstSeq;
      this.inTransactionMillis = inTransactionMillis;
      this.thinkMillis = thinkMillis;
      this.thread = new Thread(this, name);
    }

    Client start() {
      thread.start();
      return this;
    }

    @Override
    public void run() {
      Connection c = null;
      long seq = firstSeq;
      long lastCommit = System.nanoTime();
      while (!stop) {
        seq++;
        boolean begun = false;
        Instant beganAt = null;
        try {
          if (c == null) {
            c = DriverManager.getConnection(url);
            c.setAutoCommit(false);
          }
          try (Statement s = c.createStatement()) {
            beganAt = Instant.now();
            s.executeUpdate("insert into writes(seq) values (" + seq + ")");
            begun = true;
            if (inTransactionMillis > 0) {
              s.execute("select pg_sleep(" + inTransactionMillis / 1000.0 + ")");
            }
          }
          c.commit();
          acknowledged.add(seq);
          long now = System.nanoTime();
          longestGapNanos = Math.max(longestGapNanos, now - lastCommit);
          lastCommit = now;
        } catch (SQLException e) {
          errors.computeIfAbsent((begun ? "in a transaction: " : "before its first statement: ") + kind(e),
              k -> new AtomicLong()).incrementAndGet();
          if (begun) {
            failedInTransaction.add(beganAt);
          }
          closeQuietly(c);
          c = null;
          pause(10); // a client's retry pause, not the product's timing
        }
        if (shape == Shape.CONNECTION_PER_TRANSACTION) {
          closeQuietly(c);
          c = null;
        }
        pause(thinkMillis);
      }
      closeQuietly(c);
    }

    private static String kind(SQLException e) {
      String message = String.valueOf(e.getMessage()).replaceAll("\\d+", "N").replaceAll("\\s+", " ");
      return (e.getSQLState() == null ? "-----" : e.getSQLState()) + " "
          + (message.length() > 90 ? message.substring(0, 90) : message);
    }

    private static void closeQuietly(Connection c) {
      if (c != null) {
        try {
          c.close();
        } catch (SQLException ignored) {
          // reconnecting anyway
        }
      }
    }

    private void pause(long ms) {
      if (ms > 0) {
        try {
          Thread.sleep(ms);
        } catch (InterruptedException e) {
          stop = true;
        }
      }
    }

    double longestGapMillis() {
      return longestGapNanos / 1e6;
    }

    void resetGap() {
      longestGapNanos = 0;
    }

    @Override
    public void close() throws InterruptedException {
      stop = true;
      thread.join(30_000);
    }
  }

  public static void main(String[] args) throws Exception {
    int n = Integer.parseInt(arg(args, "--migrations", "5"));
    int window = Integer.parseInt(arg(args, "--window", "1"));
    String graceArg = arg(args, "--grace", null);
    long inTransaction = Long.parseLong(arg(args, "--in-transaction", "100"));
    boolean history = java.util.Arrays.asList(args).contains("--history");
    String json = arg(args, "--json", null);
    Migration.Cutover cutover = graceArg == null ? Migration.Cutover.DEFAULT
        : new Migration.Cutover(Duration.ofMillis(Long.parseLong(graceArg)), false);
    Path dir = Files.createTempDirectory("turnout-migration-bench");
    List<PostgresServer> servers = new ArrayList<>();
    PostgresServer primary = PostgresServer.start(dir.resolve("pg0"), "wal_level=logical", "max_wal_senders=10",
        "max_replication_slots=10");
    servers.add(primary);
    primary.createApplication();
    int appPort = PostgresServer.freePort();
    TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0), dir.resolve("store"),
        Duration.ofSeconds(10), ImmutableList.of(new DatabaseRoute("app", appPort,
            Optional.of(new Endpoint("127.0.0.1", primary.port())), Set.of())), TurnoutConfig.MigratorSettings.DEFAULT);
    List<Double> gaps = new ArrayList<>();
    List<Long> cutoverMillis = new ArrayList<>();
    Map<String, List<Long>> steps = new java.util.LinkedHashMap<>(); // step -> its time in each completed cutover
    long lost = 0;
    long cut = 0;
    long begunAfterDrain = 0;
    long fenceCut = 0;
    int completed = 0;
    try (ControlPlane plane = ControlPlane.start(config);
         Sidecar sidecar = awaitServing(Sidecar.start(SidecarConfig.of("127.0.0.1", plane.xdsPort(), "bench-app",
             "app")), appPort);
         Writer writer = new Writer(appPort, "app").start();
         Client perTransaction = new Client("connection-per-transaction", Client.Shape.CONNECTION_PER_TRANSACTION,
             appPort, 1_000_000_000L, 0, 0).start();
         Client persistent = new Client("persistent", Client.Shape.PERSISTENT, appPort, 2_000_000_000L,
             inTransaction, 20).start()) {
      List<Client> clients = List.of(perTransaction, persistent);
      for (int i = 1; i <= n; i++) {
        PostgresServer standby = PostgresServer.startStandby(dir.resolve("pg" + i), primary, "standby_" + i,
            "wal_level=logical", "max_wal_senders=10", "max_replication_slots=10");
        servers.add(standby);
        awaitStreaming(standby); // a standby not yet streaming is refused by preflight, rightly
        Migration m = plane.migrator().start(new Migration.Spec("app", new ServerAddress("127.0.0.1", primary.port()),
            new ServerAddress("127.0.0.1", standby.port()),
            new Migration.Options(Duration.ofSeconds(window), 16L * 1024 * 1024, Duration.ofSeconds(60), false)
                .withCutover(cutover)));
        m = await(plane, m.id(), p -> p == Phase.QUIESCING || p.isTerminal() || p == Phase.HALTED);
        writer.resetGap();
        clients.forEach(Client::resetGap);
        m = await(plane, m.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED);
        Thread.sleep(300);
        double gap = Math.max(writer.longestGapMillis(), clients.stream().mapToDouble(Client::longestGapMillis).max()
            .orElse(0));
        // Read what the clients were acknowledged before reading the server: they go on writing.
        Set<Long> acknowledged = new HashSet<>(writer.acknowledged());
        clients.forEach(c -> acknowledged.addAll(c.acknowledged));
        Set<Long> present = seqs(standby);
        long missing = acknowledged.stream().filter(s -> !present.contains(s)).count();
        long cutover2 = Duration.between(phaseStart(m, Phase.QUIESCING), phaseStart(m, Phase.COMPLETED)).toMillis();
        Instant drained = m.history().stream().filter(e -> e.note().startsWith("route drained")).findFirst()
            .map(Migration.Event::at).orElse(phaseStart(m, Phase.QUIESCING));
        Instant fenced = phaseStart(m, Phase.CATCHING_UP);
        long cutHere = 0;
        long laterHere = 0;
        for (Client c : clients) {
          for (Instant began; (began = c.failedInTransaction.poll()) != null; ) {
            if (began.isBefore(drained)) {
              cutHere++;
            } else if (began.isBefore(fenced)) {
              laterHere++;
            }
          }
        }
        long fenceCutHere = m.history().stream().map(Migration.Event::note).filter(t -> t.startsWith("fence cut "))
            .mapToLong(t -> Long.parseLong(t.split(" ")[2])).sum();
        System.out.printf(Locale.ROOT, "migration %d/%d %s: %s, write gap %.0f ms (writer %.0f, per-transaction %.0f,"
            + " persistent %.0f), cutover %d ms, lost %d, cut at the fence %d (in flight at the drain: %d), ended"
            + " after beginning past the drain %d%n", i, n, m.id(), m.phase(), gap, writer.longestGapMillis(),
            perTransaction.longestGapMillis(), persistent.longestGapMillis(), cutover2, missing, fenceCutHere, cutHere,
            laterHere);
        m.progress().error().ifPresent(e -> System.out.println("    error: " + e));
        if (history) {
          Instant q = phaseStart(m, Phase.QUIESCING);
          m.history().stream().filter(e -> !e.at().isBefore(q))
              .forEach(e -> System.out.printf(Locale.ROOT, "    +%4d ms %s: %s%n", Duration.between(q, e.at()).toMillis(),
                  e.phase(), e.note()));
        }
        if (m.phase() == Phase.COMPLETED) {
          completed++;
          gaps.add(gap);
          cutoverMillis.add(cutover2);
          m.history().stream().map(e -> CutoverSteps.parse(e.note())).filter(x -> !x.isEmpty()).reduce((a, b) -> b)
              .ifPresent(x -> x.forEach((step, ms) -> steps.computeIfAbsent(step, k -> new ArrayList<>()).add(ms)));
          plane.migrator().finalizeMigration(m.id());
          primary = standby;
        }
        lost += missing;
        cut += cutHere;
        begunAfterDrain += laterHere;
        fenceCut += fenceCutHere;
      }
      Thread.sleep(200);
      System.out.printf(Locale.ROOT, "%nmigration benchmark: %d of %d completed under load through the sidecar%n",
          completed, n);
      System.out.printf(Locale.ROOT, "clients: autocommit writer (%d commits), connection-per-transaction (%d),"
          + " persistent with %d ms transactions (%d)%n", writer.acknowledged().size(),
          perTransaction.acknowledged.size(), inTransaction, persistent.acknowledged.size());
      System.out.printf(Locale.ROOT, "%-44s %d (each one failure, then it reconnects)%n", "autocommit writer errors",
          writer.errors());
      for (Client c : clients) {
        long total = c.errors.values().stream().mapToLong(AtomicLong::get).sum();
        System.out.printf(Locale.ROOT, "%-44s %d%n", c.name + " errors", total);
        new TreeMap<>(c.errors).forEach((k, v) -> System.out.printf(Locale.ROOT, "    %5d  %s%n", v.get(), k));
      }
      gaps.sort(Double::compare);
      System.out.printf(Locale.ROOT, "%-44s %d%n", "transactions cut (in flight at the drain)", cut);
      System.out.printf(Locale.ROOT, "%-44s %d%n", "sessions the fence cut (migration history)", fenceCut);
      System.out.printf(Locale.ROOT, "%-44s %d%n", "transactions begun after the drain, ended", begunAfterDrain);
      System.out.printf(Locale.ROOT, "%-44s %s%n", "write gap median (ms)", fmt(pct(gaps, 50)));
      System.out.printf(Locale.ROOT, "%-44s %s%n", "write gap p99 (ms)", fmt(pct(gaps, 99)));
      System.out.printf(Locale.ROOT, "%-44s %s%n", "write gap max (ms)", fmt(gaps.isEmpty() ? Double.NaN
          : gaps.get(gaps.size() - 1)));
      System.out.printf(Locale.ROOT, "%-44s %s%n", "cutover QUIESCING->COMPLETED (ms)", cutoverMillis);
      System.out.printf(Locale.ROOT, "%-44s %d%n", "lost commits", lost);
      System.out.printf(Locale.ROOT, "%ncutover step by step (ms, over %d completed; drain-ack to route-ack is the"
          + " write gap, probe and final-proof come after it)%n%-16s %8s %8s %8s%n", completed, "step", "median", "p90",
          "max");
      steps.forEach((step, times) -> {
        List<Double> sorted = times.stream().map(Long::doubleValue).sorted().toList();
        System.out.printf(Locale.ROOT, "%-16s %8s %8s %8s%n", step, fmt(pct(sorted, 50)), fmt(pct(sorted, 90)),
            fmt(sorted.get(sorted.size() - 1)));
      });
      System.out.println("goal: 0 errors for connection-per-transaction clients, 0 transactions cut, 0 lost,"
          + " write gap median under 300 ms and max under 1 s");
      if (json != null) {
        Files.writeString(Path.of(json), String.format(Locale.ROOT,
            "{\"benchmark\":\"migration\",\"migrations\":%d,\"completed\":%d,\"median_ms\":%.1f,\"p99_ms\":%.1f,"
                + "\"max_ms\":%.1f,\"lost\":%d,\"cut\":%d,\"per_transaction_errors\":%d,\"persistent_errors\":%d}%n",
            n, completed, pct(gaps, 50), pct(gaps, 99), gaps.isEmpty() ? Double.NaN : gaps.get(gaps.size() - 1), lost,
            cut, perTransaction.errors.values().stream().mapToLong(AtomicLong::get).sum(),
            persistent.errors.values().stream().mapToLong(AtomicLong::get).sum()));
      }
    } finally {
      for (PostgresServer s : servers) {
        s.close();
      }
    }
    System.exit(0);
  }

  private static void awaitStreaming(PostgresServer standby) throws Exception {
    for (int i = 0; i < 600; i++) {
      try (Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(standby.port()));
           Statement s = c.createStatement();
           java.sql.ResultSet rs = s.executeQuery("select count(*) from pg_stat_wal_receiver where status = 'streaming'")) {
        rs.next();
        if (rs.getInt(1) == 1) {
          return;
        }
      }
      Thread.sleep(50);
    }
    throw new IllegalStateException("standby on port " + standby.port() + " never streamed");
  }

  /** Returns {@code sidecar} once a connection through it reaches the server. */
  private static Sidecar awaitServing(Sidecar sidecar, int port) throws InterruptedException {
    for (int i = 0; i < 600; i++) {
      try (Connection c = DriverManager.getConnection(PostgresServer.jdbcUrl(port))) {
        return sidecar;
      } catch (SQLException e) {
        Thread.sleep(50);
      }
    }
    throw new IllegalStateException("the sidecar never served port " + port);
  }

  /** The p-th percentile, nearest rank. */
  private static double pct(List<Double> sorted, int p) {
    if (sorted.isEmpty()) {
      return Double.NaN;
    }
    int rank = (int) Math.ceil(p / 100.0 * sorted.size());
    return sorted.get(Math.max(0, Math.min(sorted.size() - 1, rank - 1)));
  }

  private static String fmt(double v) {
    return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.0f", v);
  }

  private static Instant phaseStart(Migration m, Phase phase) {
    return m.history().stream().filter(e -> e.phase() == phase).findFirst().map(Migration.Event::at)
        .orElse(m.history().get(m.history().size() - 1).at());
  }

  private static Set<Long> seqs(PostgresServer server) throws SQLException {
    try (Connection c = server.connect()) {
      return Writer.seqsOn(c);
    }
  }

  private static Migration await(ControlPlane plane, String id, java.util.function.Predicate<Phase> done)
      throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
    Migration m = plane.migrator().get(id).orElseThrow();
    while (!done.test(m.phase()) && System.nanoTime() < deadline) {
      Thread.sleep(20);
      m = plane.migrator().get(id).orElseThrow();
    }
    return m;
  }
}
