package dev.turnout.it.bench;

import static dev.turnout.it.bench.BenchSupport.arg;

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
import java.sql.PreparedStatement;
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
 * three applications work through the sidecar: an autocommit writer (what the demo's Writer does), a
 * connection-per-transaction client (what {@code pgbench -C} does: connect, one transaction, disconnect) and a
 * persistent-connection client whose transactions take a while. Prints, over the N migrations, the errors each
 * client saw by kind, the transactions the fence cut (in flight at the drain, failed), the commits lost
 * (acknowledged but missing on the new primary) and two figures of the write gap, each the longest of the three
 * clients: commit to commit (a client's longest time between two commits, its own transaction included), and
 * writes impossible (from a client's last commit to the first write statement the server accepted after it: the
 * persistent client's 100 ms transaction is its own work, not the cutover's). Then where each client's gap went:
 * its own time, its retry pause, the migrator step in progress while it was held, its connect and login on the
 * target, its transaction. Asserts nothing: it reports.
 *
 * <pre>mvn -q -pl integration-tests exec:java@migration-bench -Dexec.args="--migrations 5"</pre>
 * Options: --migrations N (default 5), --window SECONDS (validation window, default 1), --grace MILLIS (quiesce
 * grace, default the product's), --in-transaction MILLIS (the persistent client's transaction length, default
 * 100), --json FILE, --history (print each migration's history from QUIESCING on, with times), --trace (each
 * client's longest gap, event by event, against the cutover's moments), --rollback (each completed migration is
 * rolled back by the operator, losslessly over the reverse replication, after the clients wrote on the target for
 * --bake-millis, default 2000; the next migration goes to a fresh standby of the same source; see
 * {@link RollbackFigures}).
 */
public final class MigrationBenchmark {

  /** One instant, on the monotonic clock, that the bench maps to the migrator's wall-clock history. */
  private static final long BASE_NANOS = System.nanoTime();
  private static final Instant BASE_INSTANT = Instant.now();

  static Instant instant(long nanos) {
    return BASE_INSTANT.plusNanos(nanos - BASE_NANOS);
  }

  static long nanos(Instant at) {
    return BASE_NANOS + Duration.between(BASE_INSTANT, at).toNanos();
  }

  /** Something a client did or met, at {@link System#nanoTime()}: "connect", "connected", "error ..." */
  record Mark(long nanos, String what) {}

  /**
   * A client's wait between two commits: its last commit, the first write statement of the transaction that
   * committed next (the moment writing worked again), that commit, and what the client did in between.
   */
  record Gap(long lastCommit, long firstWrite, long commit, List<Mark> marks) {
    double commitToCommitMillis() {
      return (commit - lastCommit) / 1e6;
    }

    /** How long no write of this client could get through: from its last commit to its next accepted write. */
    double unavailableMillis() {
      return (firstWrite - lastCommit) / 1e6;
    }
  }

  /**
   * An application through the sidecar, counting what it would see and remembering its longest gaps with what
   * happened in them (its connects, errors and retry pauses), so the bench can say where the time went.
   */
  static final class Client implements Runnable, AutoCloseable {
    enum Shape {
      /** What the demo's Writer does: one connection, autocommit inserts as fast as it can, reconnect on error. */
      AUTOCOMMIT,
      /** pgbench -C: connect, one transaction, disconnect. */
      CONNECTION_PER_TRANSACTION,
      /** One connection, transactions that take a while, a pause between them. */
      PERSISTENT
    }

    /** A client's retry pause after an error: its own pacing, not the product's timing. */
    static final long RETRY_PAUSE_MILLIS = 10;

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
    /** The longest commit-to-commit gap since the last reset, and the longest time without an accepted write. */
    private volatile Gap longest;
    private volatile Gap longestUnavailable;

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
      List<Mark> marks = new ArrayList<>(); // since the last commit
      while (!stop) {
        seq++;
        boolean begun = false;
        Instant beganAt = null;
        try {
          if (c == null) {
            marks.add(new Mark(System.nanoTime(), "connect"));
            c = DriverManager.getConnection(url);
            c.setAutoCommit(shape == Shape.AUTOCOMMIT);
            marks.add(new Mark(System.nanoTime(), "connected"));
          }
          long firstWrite;
          if (shape == Shape.AUTOCOMMIT) {
            try (PreparedStatement ps = c.prepareStatement("insert into writes(seq) values (?)")) {
              ps.setLong(1, seq);
              ps.executeUpdate();
            }
            firstWrite = System.nanoTime();
          } else {
            try (Statement s = c.createStatement()) {
              beganAt = Instant.now();
              s.executeUpdate("insert into writes(seq) values (" + seq + ")");
              firstWrite = System.nanoTime();
              begun = true;
              if (inTransactionMillis > 0) {
                s.execute("select pg_sleep(" + inTransactionMillis / 1000.0 + ")");
              }
            }
            c.commit();
          }
          acknowledged.add(seq);
          long now = System.nanoTime();
          Gap gap = null;
          Gap l = longest;
          if (l == null || now - lastCommit > l.commit() - l.lastCommit()) {
            gap = new Gap(lastCommit, firstWrite, now, List.copyOf(marks));
            longest = gap;
          }
          Gap u = longestUnavailable;
          if (u == null || firstWrite - lastCommit > u.firstWrite() - u.lastCommit()) {
            longestUnavailable = gap != null ? gap : new Gap(lastCommit, firstWrite, now, List.copyOf(marks));
          }
          lastCommit = now;
          marks.clear();
        } catch (SQLException e) {
          String kind = (begun ? "in a transaction: " : "before its first statement: ") + kind(e);
          marks.add(new Mark(System.nanoTime(), "error " + kind));
          errors.computeIfAbsent(kind, k -> new AtomicLong()).incrementAndGet();
          if (begun) {
            failedInTransaction.add(beganAt);
          }
          closeQuietly(c);
          c = null;
          pause(RETRY_PAUSE_MILLIS);
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

    Optional<Gap> longest() {
      return Optional.ofNullable(longest);
    }

    Optional<Gap> longestUnavailable() {
      return Optional.ofNullable(longestUnavailable);
    }

    double longestGapMillis() {
      return longest().map(Gap::commitToCommitMillis).orElse(0.0);
    }

    double unavailableMillis() {
      return longestUnavailable().map(Gap::unavailableMillis).orElse(0.0);
    }

    long errorCount() {
      return errors.values().stream().mapToLong(AtomicLong::get).sum();
    }

    void resetGap() {
      longest = null;
      longestUnavailable = null;
    }

    @Override
    public void close() throws InterruptedException {
      stop = true;
      thread.join(30_000);
    }
  }

  /**
   * The cutover's moments, from the migration's history (and the sidecar's log for the release of the held
   * connections), on the monotonic clock.
   */
  record Milestones(long quiescing, long drainAcked, long graceEnded, long fenced, long promoting, long shifting,
      long released, long routeAcked) {
    static Milestones of(Migration m, Optional<Instant> released) {
      long q = nanos(phaseStart(m, Phase.QUIESCING));
      long drain = note(m, "route drained").orElse(q);
      long grace = note(m, "work in flight").or(() -> note(m, "quiesce grace of")).orElse(drain);
      long shifting = nanos(phaseStart(m, Phase.SHIFTING));
      return new Milestones(q, drain, grace, nanos(phaseStart(m, Phase.CATCHING_UP)),
          nanos(phaseStart(m, Phase.PROMOTING)), shifting, released.map(MigrationBenchmark::nanos)
              .filter(r -> r >= shifting).orElse(shifting), nanos(phaseStart(m, Phase.VERIFYING)));
    }

    private static Optional<Long> note(Migration m, String start) {
      return m.history().stream().filter(e -> e.note().startsWith(start)).findFirst()
          .map(e -> nanos(e.at()));
    }

    /** What the migrator was doing at {@code t}, for a client held or connecting then. */
    String step(long t) {
      if (t < quiescing) {
        return "before the cutover";
      } else if (t < drainAcked) {
        return "drain ACK";
      } else if (t < graceEnded) {
        return "grace (work in flight)";
      } else if (t < fenced) {
        return "fence, final LSN";
      } else if (t < promoting) {
        return "catch-up, WAL proof";
      } else if (t < shifting) {
        return "promote, admit writes";
      } else if (t < released) {
        return "route until the sidecar has it";
      }
      return "connect + login on the target";
    }

    String describe() {
      return String.format(Locale.ROOT, "drain ACKed %s, grace over %s, fenced %s, promoting %s, shifting %s, sidecar"
          + " released %s, route ACKed %s", at(drainAcked), at(graceEnded), at(fenced), at(promoting), at(shifting),
          at(released), at(routeAcked));
    }

    String at(long t) {
      return String.format(Locale.ROOT, "+%.0f", (t - quiescing) / 1e6);
    }
  }

  /** Where the rows of the breakdown go, in order. */
  static final List<String> SEGMENTS = List.of("client's own time (think, detect the cut)", "client's retry pause",
      "before the cutover", "drain ACK", "grace (work in flight)", "fence, final LSN", "catch-up, WAL proof",
      "promote, admit writes", "route until the sidecar has it", "connect + login on the target",
      "first write statement", "rest of the transaction, commit");

  /**
   * Splits {@code gap} into what the client was waiting for: its own time until it meets the cutover (the think
   * pause, the transaction it finishes, noticing its session was ended), its retry pause after an error, then,
   * while it connects through the drained sidecar, the migrator step in progress, and after the release its
   * connect and login on the target, its first write and the rest of its transaction.
   */
  static Map<String, Double> breakdown(Gap gap, Milestones ms) {
    Map<String, Double> out = new java.util.LinkedHashMap<>();
    List<Long> cuts = new ArrayList<>(List.of(gap.lastCommit(), gap.firstWrite(), gap.commit()));
    gap.marks().forEach(mk -> cuts.add(mk.nanos()));
    for (long t : new long[] {ms.quiescing(), ms.drainAcked(), ms.graceEnded(), ms.fenced(), ms.promoting(),
        ms.shifting(), ms.released()}) {
      if (t > gap.lastCommit() && t < gap.commit()) {
        cuts.add(t);
      }
    }
    java.util.Collections.sort(cuts);
    for (int i = 0; i + 1 < cuts.size(); i++) {
      long a = cuts.get(i);
      long b = cuts.get(i + 1);
      if (b <= a) {
        continue;
      }
      String state = "own"; // the client's state at a: the last mark at or before it
      for (Mark mk : gap.marks()) {
        if (mk.nanos() <= a) {
          state = mk.what().startsWith("error") ? "pause" : mk.what();
        }
      }
      String label;
      if (a >= gap.firstWrite()) {
        label = "rest of the transaction, commit";
      } else if (state.equals("own")) {
        label = "client's own time (think, detect the cut)";
      } else if (state.equals("pause")) {
        label = "client's retry pause";
      } else if (state.equals("connect")) {
        label = ms.step(a);
      } else { // connected
        label = "first write statement";
      }
      out.merge(label, (b - a) / 1e6, Double::sum);
    }
    return out;
  }

  /** The marks of {@code gap} relative to the start of QUIESCING, for --trace. */
  static String trace(Gap gap, Milestones ms) {
    StringBuilder out = new StringBuilder(ms.at(gap.lastCommit()) + " last commit");
    for (Mark mk : gap.marks()) {
      out.append(", ").append(ms.at(mk.nanos())).append(' ').append(mk.what());
    }
    return out.append(", ").append(ms.at(gap.firstWrite())).append(" write accepted, ").append(ms.at(gap.commit()))
        .append(" commit").toString();
  }

  /** When the sidecar last logged that it took an endpoint after holding (its held connections go then). */
  private static volatile Instant released;

  /** Watches the log on stderr for the sidecar's release of held connections, and passes everything on. */
  private static void watchReleases() {
    java.io.PrintStream err = System.err;
    System.setErr(new java.io.PrintStream(new java.io.OutputStream() {
      private final java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();

      @Override
      public synchronized void write(int b) {
        err.write(b);
        if (b != '\n') {
          line.write(b);
          return;
        }
        if (line.toString(java.nio.charset.StandardCharsets.UTF_8).contains(
            "endpoint (none: holding new connections) -> ")) {
          released = Instant.now();
        }
        line.reset();
      }
    }, true));
  }

  public static void main(String[] args) throws Exception {
    if (java.util.Arrays.asList(args).contains("--help")) {
      System.out.println("options: --migrations N (5) --window SECONDS (1) --grace MILLIS (the product's)"
          + " --in-transaction MILLIS (100) --history --trace --json FILE --rollback (roll each migration back after"
          + " promotion, then migrate again to a fresh standby) --bake-millis MILLIS (2000: writes on the target"
          + " before each rollback)");
      return;
    }
    int n = Integer.parseInt(arg(args, "--migrations", "5"));
    int window = Integer.parseInt(arg(args, "--window", "1"));
    String graceArg = arg(args, "--grace", null);
    long inTransaction = Long.parseLong(arg(args, "--in-transaction", "100"));
    boolean history = java.util.Arrays.asList(args).contains("--history");
    boolean trace = java.util.Arrays.asList(args).contains("--trace");
    boolean rollback = java.util.Arrays.asList(args).contains("--rollback");
    long bakeMillis = Long.parseLong(arg(args, "--bake-millis", "2000"));
    RollbackFigures back = new RollbackFigures();
    String json = arg(args, "--json", null);
    Migration.Cutover cutover = graceArg == null ? Migration.Cutover.DEFAULT
        : new Migration.Cutover(Duration.ofMillis(Long.parseLong(graceArg)), false);
    watchReleases();
    Path dir = BenchSupport.tempDirectory("turnout-migration-bench", args);
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
    List<Double> unavailable = new ArrayList<>();
    Map<String, List<Double>> gapsByClient = new java.util.LinkedHashMap<>();
    Map<String, List<Double>> unavailableByClient = new java.util.LinkedHashMap<>();
    Map<String, Map<String, Double>> segments = new java.util.LinkedHashMap<>(); // client -> segment -> total ms
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
         Client writer = new Client("autocommit writer", Client.Shape.AUTOCOMMIT, appPort, 0, 0, 0).start();
         Client perTransaction = new Client("connection-per-transaction", Client.Shape.CONNECTION_PER_TRANSACTION,
             appPort, 1_000_000_000L, 0, 0).start();
         Client persistent = new Client("persistent", Client.Shape.PERSISTENT, appPort, 2_000_000_000L,
             inTransaction, 20).start()) {
      List<Client> clients = List.of(writer, perTransaction, persistent);
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
        clients.forEach(Client::resetGap);
        m = await(plane, m.id(), p -> p == Phase.COMPLETED || p.isTerminal() || p == Phase.HALTED);
        Thread.sleep(300);
        double gap = clients.stream().mapToDouble(Client::longestGapMillis).max().orElse(0);
        double noWrites = clients.stream().mapToDouble(Client::unavailableMillis).max().orElse(0);
        // Read what the clients were acknowledged before reading the server: they go on writing.
        Set<Long> acknowledged = new HashSet<>();
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
            + " persistent %.0f), writes impossible %.0f ms (%.0f, %.0f, %.0f), cutover %d ms, lost %d, cut at the"
            + " fence %d (in flight at the drain: %d), ended after beginning past the drain %d%n", i, n, m.id(),
            m.phase(), gap, writer.longestGapMillis(), perTransaction.longestGapMillis(), persistent.longestGapMillis(),
            noWrites, writer.unavailableMillis(), perTransaction.unavailableMillis(), persistent.unavailableMillis(),
            cutover2, missing, fenceCutHere, cutHere, laterHere);
        m.progress().error().ifPresent(e -> System.out.println("    error: " + e));
        if (history) {
          Instant q = phaseStart(m, Phase.QUIESCING);
          m.history().stream().filter(e -> !e.at().isBefore(q))
              .forEach(e -> System.out.printf(Locale.ROOT, "    +%4d ms %s: %s%n", Duration.between(q, e.at()).toMillis(),
                  e.phase(), e.note()));
        }
        if (m.phase() == Phase.COMPLETED) {
          Milestones ms = Milestones.of(m, Optional.ofNullable(released));
          if (trace) {
            System.out.println("    cutover (ms after QUIESCING): " + ms.describe());
          }
          for (Client c : clients) {
            Optional<Gap> g = c.longest();
            if (g.isEmpty()) {
              continue;
            }
            breakdown(g.get(), ms).forEach((k, v) -> segments.computeIfAbsent(c.name, x -> new java.util.HashMap<>())
                .merge(k, v, Double::sum));
            gapsByClient.computeIfAbsent(c.name, x -> new ArrayList<>()).add(c.longestGapMillis());
            unavailableByClient.computeIfAbsent(c.name, x -> new ArrayList<>()).add(c.unavailableMillis());
            if (trace) {
              System.out.printf(Locale.ROOT, "    %-27s %s%n", c.name + ":", trace(g.get(), ms));
            }
          }
          completed++;
          gaps.add(gap);
          unavailable.add(noWrites);
          cutoverMillis.add(cutover2);
          m.history().stream().map(e -> CutoverSteps.parse(e.note())).filter(x -> !x.isEmpty()).reduce((a, b) -> b)
              .ifPresent(x -> x.forEach((step, t) -> steps.computeIfAbsent(step, k -> new ArrayList<>()).add(t)));
          if (rollback) {
            back.rollBack(plane, m, clients, primary, standby, bakeMillis, history, trace);
            servers.remove(standby);
            standby.close(); // fenced; the next migration goes to a fresh standby of the same source
            dropSlot(primary, "standby_" + i);
          } else {
            plane.migrator().finalizeMigration(m.id());
            primary = standby;
          }
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
          + " persistent with %d ms transactions (%d)%n", writer.acknowledged.size(),
          perTransaction.acknowledged.size(), inTransaction, persistent.acknowledged.size());
      for (Client c : clients) {
        System.out.printf(Locale.ROOT, "%-44s %d%n", c.name + " errors", c.errorCount());
        new TreeMap<>(c.errors).forEach((k, v) -> System.out.printf(Locale.ROOT, "    %5d  %s%n", v.get(), k));
      }
      gaps.sort(Double::compare);
      unavailable.sort(Double::compare);
      System.out.printf(Locale.ROOT, "%-44s %d%n", "transactions cut (in flight at the drain)", cut);
      System.out.printf(Locale.ROOT, "%-44s %d%n", "sessions the fence cut (migration history)", fenceCut);
      System.out.printf(Locale.ROOT, "%-44s %d%n", "transactions begun after the drain, ended", begunAfterDrain);
      System.out.printf(Locale.ROOT, "%-44s %s / %s / %s%n", "write gap median / p99 / max (ms)", fmt(pct(gaps, 50)),
          fmt(pct(gaps, 99)), fmt(gaps.isEmpty() ? Double.NaN : gaps.get(gaps.size() - 1)));
      System.out.printf(Locale.ROOT, "%-44s %s / %s / %s%n", "writes impossible median / p99 / max (ms)",
          fmt(pct(unavailable, 50)), fmt(pct(unavailable, 99)),
          fmt(unavailable.isEmpty() ? Double.NaN : unavailable.get(unavailable.size() - 1)));
      System.out.printf(Locale.ROOT, "%-44s %s%n", "cutover QUIESCING->COMPLETED (ms)", cutoverMillis);
      System.out.printf(Locale.ROOT, "%-44s %d%n", "lost commits", lost);
      System.out.printf(Locale.ROOT, "%nper client (ms, over %d completed): write gap = commit to commit; writes"
          + " impossible = last commit to the next write accepted%n%-28s %19s %19s%n", completed, "client",
          "gap median / max", "impossible med / max");
      for (Client c : clients) {
        List<Double> g = new ArrayList<>(gapsByClient.getOrDefault(c.name, List.of()));
        List<Double> u = new ArrayList<>(unavailableByClient.getOrDefault(c.name, List.of()));
        g.sort(Double::compare);
        u.sort(Double::compare);
        System.out.printf(Locale.ROOT, "%-28s %19s %19s%n", c.name, fmt(pct(g, 50)) + " / "
            + fmt(g.isEmpty() ? Double.NaN : g.get(g.size() - 1)), fmt(pct(u, 50)) + " / "
            + fmt(u.isEmpty() ? Double.NaN : u.get(u.size() - 1)));
      }
      System.out.printf(Locale.ROOT, "%nwhere each client's write gap went (mean ms per migration; the rows add up to"
          + " the mean gap)%n%-42s %10s %10s %10s%n", "", "writer", "per-txn", "persistent");
      int done = Math.max(1, completed);
      for (String segment : SEGMENTS) {
        double[] v = clients.stream().mapToDouble(c -> segments.getOrDefault(c.name, Map.of()).getOrDefault(segment,
            0.0) / done).toArray();
        if (java.util.Arrays.stream(v).anyMatch(x -> x >= 0.5)) {
          System.out.printf(Locale.ROOT, "%-42s %10.0f %10.0f %10.0f%n", segment, v[0], v[1], v[2]);
        }
      }
      double[] total = clients.stream().mapToDouble(c -> segments.getOrDefault(c.name, Map.of()).values().stream()
          .mapToDouble(Double::doubleValue).sum() / done).toArray();
      System.out.printf(Locale.ROOT, "%-42s %10.0f %10.0f %10.0f%n", "mean write gap", total[0], total[1], total[2]);
      System.out.printf(Locale.ROOT, "%ncutover step by step (ms, over %d completed; drain-ack to route-ack is the"
          + " write gap, probe and final-proof come after it)%n%-16s %8s %8s %8s%n", completed, "step", "median", "p90",
          "max");
      steps.forEach((step, times) -> {
        List<Double> sorted = times.stream().map(Long::doubleValue).sorted().toList();
        System.out.printf(Locale.ROOT, "%-16s %8s %8s %8s%n", step, fmt(pct(sorted, 50)), fmt(pct(sorted, 90)),
            fmt(sorted.get(sorted.size() - 1)));
      });
      List<Double> writerGaps = new ArrayList<>(gapsByClient.getOrDefault(writer.name, List.of()));
      writerGaps.sort(Double::compare);
      System.out.printf(Locale.ROOT, "%ngoals (over %d migrations, the first included)%n", completed);
      goal("#16: every client's write gap (the longest of the three)", gaps, 300, 1000);
      System.out.printf(Locale.ROOT, "  %-62s %s%n", "#16: connection-per-transaction errors, transactions cut, lost",
          perTransaction.errorCount() + ", " + cut + ", " + lost + " (goal 0, 0, 0): "
          + (perTransaction.errorCount() == 0 && cut == 0 && lost == 0 ? "met" : "MISSED"));
      // #17 was filed when the bench had one client, this autocommit writer: its figure is the one #17 compares.
      goal("#17: the autocommit writer's write gap (#17's own figure)", writerGaps, 150, 500);
      goal("    the longest of the three (the persistent client's 100 ms transaction in it)", gaps, 150, 500);
      if (rollback) {
        back.print(clients);
      }
      if (json != null) {
        Files.writeString(Path.of(json), String.format(Locale.ROOT,
            "{\"benchmark\":\"migration\",\"migrations\":%d,\"completed\":%d,\"median_ms\":%.1f,\"p99_ms\":%.1f,"
                + "\"max_ms\":%.1f,\"unavailable_median_ms\":%.1f,\"unavailable_max_ms\":%.1f,\"lost\":%d,"
                + "\"cut\":%d,\"per_transaction_errors\":%d,\"persistent_errors\":%d}%n",
            n, completed, pct(gaps, 50), pct(gaps, 99), gaps.isEmpty() ? Double.NaN : gaps.get(gaps.size() - 1),
            pct(unavailable, 50), unavailable.isEmpty() ? Double.NaN : unavailable.get(unavailable.size() - 1), lost,
            cut, perTransaction.errorCount(), persistent.errorCount()));
      }
    } finally {
      for (PostgresServer s : servers) {
        s.close();
      }
    }
    System.exit(0);
  }

  /**
   * The rollback side of {@code --rollback}: each completed migration, after the clients have written on the target
   * for a while (the reverse lag sampled meanwhile), is rolled back by the operator without consent (lossless over
   * the reverse path); the same three clients measure its write gap, and every commit they were acknowledged, on the
   * source or the target, must be on the source afterwards.
   */
  static final class RollbackFigures {
    final List<Double> gaps = new ArrayList<>();
    final List<Double> unavailable = new ArrayList<>();
    final List<Long> rollbackMillis = new ArrayList<>();
    final Map<String, List<Long>> steps = new java.util.LinkedHashMap<>(); // step -> its time in each rollback
    final Map<String, Map<String, Long>> errors = new java.util.LinkedHashMap<>(); // client -> kind -> count
    final Map<String, List<Double>> gapsByClient = new java.util.LinkedHashMap<>();
    final List<Double> lagBytes = new ArrayList<>();
    final List<Double> lagMillis = new ArrayList<>();
    /** Per rollback: ms from the promotion's end (SHIFTING) until the source's apply worker ran; NaN: not in the bake. */
    final List<Double> applyStartedMillis = new ArrayList<>();
    long lost;
    long takenOnTarget;
    int tried;
    int rolledBack;

    void rollBack(ControlPlane plane, Migration m, List<Client> clients, PostgresServer source, PostgresServer target,
        long bakeMillis, boolean history, boolean trace) throws Exception {
      tried++;
      long before = clients.stream().mapToLong(c -> c.acknowledged.size()).sum();
      // The reverse lag while the clients write on the target: bytes as `turnout migrate status` computes them (the
      // target's WAL position past what the reverse slots' subscriber confirmed), and time as a commit sees it: the
      // target's WAL position is noted every sample, and its lag is the time until the source has applied a commit
      // that ends past it (the subscription's replication origin: remote_lsn, the end of the last commit applied).
      // Positions not applied when the bake ends count with the time they waited so far (a lower bound).
      // The walsender's replay_lag is not used: it starts when the walsender sends, so a backlog it has not
      // decoded yet does not show. Also when the source's apply worker began (pg_stat_subscription.pid).
      long end = System.nanoTime() + bakeMillis * 1_000_000;
      long promoted = nanos(phaseStart(m, Phase.SHIFTING));
      java.util.ArrayDeque<long[]> noted = new java.util.ArrayDeque<>(); // {nanos, target LSN}
      boolean applying = false;
      try (Connection t = target.connect(); Statement ts = t.createStatement(); Connection c = source.connect();
           Statement ss = c.createStatement()) {
        while (System.nanoTime() < end) {
          try (java.sql.ResultSet rs = ts.executeQuery("select coalesce(max(pg_current_wal_lsn() - confirmed_flush_lsn),"
              + " 0)::int8, pg_current_wal_lsn() - '0/0' from pg_replication_slots"
              + " where slot_name like 'turnout\\_reverse\\_%'")) {
            rs.next();
            lagBytes.add((double) rs.getLong(1));
            noted.add(new long[] {System.nanoTime(), rs.getLong(2)});
          }
          try (java.sql.ResultSet rs = ss.executeQuery("select (select count(*) from pg_stat_subscription where pid is"
              + " not null and subname like 'turnout\\_reverse\\_%'), (select coalesce(max(remote_lsn), '0/0') - '0/0'"
              + " from pg_replication_origin_status where external_id like 'pg\\_%')")) {
            rs.next();
            if (!applying && rs.getLong(1) > 0) {
              applying = true;
              applyStartedMillis.add((System.nanoTime() - promoted) / 1e6);
            }
            long applied = rs.getLong(2);
            long now = System.nanoTime();
            while (!noted.isEmpty() && noted.peek()[1] <= applied) {
              lagMillis.add((now - noted.poll()[0]) / 1e6);
            }
          }
          Thread.sleep(50);
        }
      }
      long now = System.nanoTime();
      noted.forEach(x -> lagMillis.add((now - x[0]) / 1e6));
      if (!applying) {
        applyStartedMillis.add(Double.NaN);
      }
      plane.migrator().reverseHealth(m.id()).ifPresent(h -> {
        if (!h.healthy()) {
          System.out.println("    reverse path broken: " + h.broken().orElse(""));
        }
      });
      Map<String, Map<String, Long>> snapshot = new java.util.HashMap<>();
      for (Client c : clients) {
        Map<String, Long> e = new java.util.HashMap<>();
        c.errors.forEach((k, v) -> e.put(k, v.get()));
        snapshot.put(c.name, e);
      }
      long atRollback = clients.stream().mapToLong(c -> c.acknowledged.size()).sum();
      takenOnTarget += atRollback - before;
      plane.migrator().rollback(m.id(), false); // no consent: the path is healthy
      // Reset once it returns (it reads the path's health first): a gap in progress is counted whole, one that
      // ended before the rollback began (a slow login during the bake) is not the rollback's.
      clients.forEach(Client::resetGap);
      Migration b = await(plane, m.id(), p -> p.isTerminal() || p == Phase.HALTED);
      Thread.sleep(300);
      double gap = clients.stream().mapToDouble(Client::longestGapMillis).max().orElse(0);
      double noWrites = clients.stream().mapToDouble(Client::unavailableMillis).max().orElse(0);
      Set<Long> acknowledged = new HashSet<>();
      clients.forEach(c -> acknowledged.addAll(c.acknowledged));
      Set<Long> present = seqs(source);
      long missing = acknowledged.stream().filter(x -> !present.contains(x)).count();
      lost += missing;
      for (Client c : clients) {
        Map<String, Long> was = snapshot.get(c.name);
        c.errors.forEach((k, v) -> {
          long d = v.get() - was.getOrDefault(k, 0L);
          if (d > 0) {
            errors.computeIfAbsent(c.name, x -> new TreeMap<>()).merge(k, d, Long::sum);
          }
        });
      }
      long took = Duration.between(phaseStart(b, Phase.ROLLING_BACK), phaseStart(b, Phase.ROLLED_BACK)).toMillis();
      Map<String, Long> theseSteps = b.history().stream()
          .map(e -> CutoverSteps.parse(e.note(), CutoverSteps.ROLLBACK_PREFIX)).filter(x -> !x.isEmpty())
          .reduce((x, y) -> y).orElse(Map.of());
      System.out.printf(Locale.ROOT, "rollback %d %s: %s, write gap %.0f ms (writer %.0f, per-transaction %.0f,"
          + " persistent %.0f), writes impossible %.0f ms, rollback %d ms, lost %d; apply worker ran %s ms after the"
          + " promotion; %s%n", tried, b.id(), b.phase(), gap, clients.get(0).longestGapMillis(),
          clients.get(1).longestGapMillis(), clients.get(2).longestGapMillis(), noWrites, took, missing,
          fmt(applyStartedMillis.get(applyStartedMillis.size() - 1)), theseSteps);
      b.progress().error().filter(e -> b.phase() != Phase.ROLLED_BACK)
          .ifPresent(e -> System.out.println("    error: " + e));
      if (trace) {
        long r = nanos(phaseStart(b, Phase.ROLLING_BACK));
        for (Client c : clients) {
          c.longest().ifPresent(g -> {
            StringBuilder out = new StringBuilder(String.format(Locale.ROOT, "+%.0f last commit", (g.lastCommit() - r) / 1e6));
            g.marks().forEach(mk -> out.append(String.format(Locale.ROOT, ", +%.0f %s", (mk.nanos() - r) / 1e6, mk.what())));
            out.append(String.format(Locale.ROOT, ", +%.0f write accepted, +%.0f commit", (g.firstWrite() - r) / 1e6,
                (g.commit() - r) / 1e6));
            System.out.printf(Locale.ROOT, "    %-27s %s%n", c.name + ":", out);
          });
        }
      }
      if (history) {
        Instant r = phaseStart(b, Phase.ROLLING_BACK);
        b.history().stream().filter(e -> !e.at().isBefore(r)).forEach(e -> System.out.printf(Locale.ROOT,
            "    +%4d ms %s: %s%n", Duration.between(r, e.at()).toMillis(), e.phase(), e.note()));
      }
      if (b.phase() == Phase.ROLLED_BACK) {
        rolledBack++;
        gaps.add(gap);
        unavailable.add(noWrites);
        rollbackMillis.add(took);
        for (Client c : clients) {
          gapsByClient.computeIfAbsent(c.name, x -> new ArrayList<>()).add(c.longestGapMillis());
        }
        theseSteps.forEach((step, t) -> steps.computeIfAbsent(step, k -> new ArrayList<>()).add(t));
      }
    }

    void print(List<Client> clients) {
      System.out.printf(Locale.ROOT, "%nrollback after promotion (lossless, no consent): %d of %d rolled back under"
          + " load; %d commits taken by the target before its rollback%n", rolledBack, tried, takenOnTarget);
      for (Client c : clients) {
        Map<String, Long> e = errors.getOrDefault(c.name, Map.of());
        System.out.printf(Locale.ROOT, "%-44s %d%n", c.name + " errors in rollbacks",
            e.values().stream().mapToLong(Long::longValue).sum());
        e.forEach((k, v) -> System.out.printf(Locale.ROOT, "    %5d  %s%n", v, k));
      }
      List<Double> g = sorted(gaps);
      List<Double> u = sorted(unavailable);
      System.out.printf(Locale.ROOT, "%-44s %s / %s / %s%n", "rollback write gap median / p99 / max (ms)",
          fmt(pct(g, 50)), fmt(pct(g, 99)), fmt(last(g)));
      System.out.printf(Locale.ROOT, "%-44s %s / %s / %s%n", "rollback writes impossible med / p99 / max (ms)",
          fmt(pct(u, 50)), fmt(pct(u, 99)), fmt(last(u)));
      for (Client c : clients) {
        List<Double> x = sorted(gapsByClient.getOrDefault(c.name, List.of()));
        System.out.printf(Locale.ROOT, "    %-40s %s / %s%n", c.name + " gap median / max", fmt(pct(x, 50)),
            fmt(last(x)));
      }
      System.out.printf(Locale.ROOT, "%-44s %s%n", "rollback ROLLING_BACK->ROLLED_BACK (ms)", rollbackMillis);
      System.out.printf(Locale.ROOT, "%-44s %d%n", "lost commits (acknowledged, not on the source)", lost);
      List<Double> b = sorted(lagBytes);
      List<Double> ms = sorted(lagMillis);
      System.out.printf(Locale.ROOT, "%-44s %s / %s / %s (%d samples)%n", "reverse lag under load, bytes med/p99/max",
          fmt(pct(b, 50)), fmt(pct(b, 99)), fmt(last(b)), b.size());
      System.out.printf(Locale.ROOT, "%-44s %s / %s / %s (%d samples)%n", "reverse lag under load, ms med/p99/max",
          fmt(pct(ms, 50)), fmt(pct(ms, 99)), fmt(last(ms)), ms.size());
      System.out.printf(Locale.ROOT, "%-44s %s%n", "source's apply worker ran, ms after promotion",
          applyStartedMillis.stream().map(MigrationBenchmark::fmt).toList());
      System.out.printf(Locale.ROOT, "%nrollback step by step (ms, over %d rolled back; drain-ack to route-ack is the"
          + " write gap)%n%-16s %8s %8s %8s%n", rolledBack, "step", "median", "p90", "max");
      steps.forEach((step, times) -> {
        List<Double> x = sorted(times.stream().map(Long::doubleValue).toList());
        System.out.printf(Locale.ROOT, "%-16s %8s %8s %8s%n", step, fmt(pct(x, 50)), fmt(pct(x, 90)), fmt(last(x)));
      });
      System.out.println("goal (#19): rollback write gap median under 300 ms, like the cutover; 0 lost");
    }

    private static List<Double> sorted(List<Double> values) {
      List<Double> out = new ArrayList<>(values);
      out.sort(Double::compare);
      return out;
    }

    private static double last(List<Double> sorted) {
      return sorted.isEmpty() ? Double.NaN : sorted.get(sorted.size() - 1);
    }
  }

  private static void dropSlot(PostgresServer server, String slot) throws SQLException {
    try (Connection c = server.connect(); PreparedStatement ps = c.prepareStatement(
        "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = ? and not active")) {
      ps.setString(1, slot);
      ps.execute();
    }
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

  /** One goal's line: median and max against their limits, and whether both are met. */
  private static void goal(String what, List<Double> sorted, double medianUnder, double maxUnder) {
    double median = pct(sorted, 50);
    double max = sorted.isEmpty() ? Double.NaN : sorted.get(sorted.size() - 1);
    System.out.printf(Locale.ROOT, "  %-62s median %s / max %s ms (goal < %.0f / < %.0f): %s%n", what, fmt(median),
        fmt(max), medianUnder, maxUnder, median < medianUnder && max < maxUnder ? "met" : "MISSED");
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
      return dev.turnout.controlplane.demo.Writer.seqsOn(c);
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
