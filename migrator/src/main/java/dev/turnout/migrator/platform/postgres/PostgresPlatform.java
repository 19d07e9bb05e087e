package dev.turnout.migrator.platform.postgres;

import com.google.common.collect.ImmutableList;
import dev.turnout.migrator.Lsn;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.Platform;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.Sleeper;
import dev.turnout.migrator.SlotPosition;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;

/**
 * The {@link Platform} of any PostgreSQL reachable over JDBC with a superuser role: the source and a target
 * that is a physical streaming standby of it.
 *
 * <p>The fence does not rely on {@code default_transaction_read_only} alone (a session can
 * {@code SET TRANSACTION READ WRITE}): it also makes every other login role NOLOGIN and ends every client
 * session. {@code ALTER ROLE} replicates, so the target inherits the NOLOGIN and gets the logins back after
 * promotion; {@code ALTER SYSTEM} does not replicate, so each server is armed on its own.
 */
public final class PostgresPlatform implements Platform {

  /** The role and password the migrator connects with (a superuser). */
  public record Credentials(String user, String password) {
    @Override
    public String toString() {
      return "Credentials[user=" + user + ", password=***]";
    }
  }

  private static final Duration REPLICA_START = Duration.ofSeconds(60);
  private static final Duration REPLICA_POLL = Duration.ofMillis(100);

  private final Migration.Spec spec;
  private final Credentials credentials;
  /** The migrator's clock and sleeper: its waits and the ages it reports run on the time the migrator runs on. */
  private final Clock clock;
  private final Sleeper sleeper;
  private Connection source;
  private Connection target;
  /** When each connection was last handed out (System.nanoTime): one idle longer is checked before use. */
  private long sourceUsed;
  private long targetUsed;
  /**
   * A connection used within this long is handed out without {@code isValid}, which costs a round trip; the
   * cutover makes dozens of calls in a row; a connection that broke since fails that one call, as it would have
   * had it broken a moment after the check.
   */
  private static final long CHECK_AFTER_IDLE_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(1);

  public PostgresPlatform(Migration.Spec spec, Credentials credentials, Clock clock, Sleeper sleeper) {
    this.spec = spec;
    this.credentials = credentials;
    this.clock = clock;
    this.sleeper = sleeper;
  }

  /** A factory connecting every migration with the same credentials. */
  public static Platform.Factory factory(Credentials credentials, Clock clock, Sleeper sleeper) {
    return spec -> new PostgresPlatform(spec, credentials, clock, sleeper);
  }

  private Connection connect(ServerAddress server) throws SQLException {
    return connect(server, "postgres");
  }

  private Connection connect(ServerAddress server, String database) throws SQLException {
    Properties props = new Properties();
    props.setProperty("user", credentials.user());
    if (credentials.password() != null) {
      props.setProperty("password", credentials.password());
    }
    props.setProperty("connectTimeout", "10");
    props.setProperty("socketTimeout", "120");
    props.setProperty("sslmode", "prefer");
    props.setProperty("ApplicationName", "turnout-migrator");
    Connection c = DriverManager.getConnection("jdbc:postgresql://" + server + "/"
        + java.net.URLEncoder.encode(database, java.nio.charset.StandardCharsets.UTF_8), props);
    c.setAutoCommit(true);
    try (Statement s = c.createStatement()) {
      // The migrator's own session must be able to write where the servers default to read-only.
      s.execute("SET default_transaction_read_only = off");
    }
    return c;
  }

  private Connection source() throws SQLException {
    long now = System.nanoTime();
    if (!usable(source, now - sourceUsed)) {
      closeQuietly(source);
      source = connect(spec.source());
    }
    sourceUsed = now;
    return source;
  }

  private Connection target() throws SQLException {
    long now = System.nanoTime();
    if (!usable(target, now - targetUsed)) {
      closeQuietly(target);
      target = connect(spec.target());
    }
    targetUsed = now;
    return target;
  }

  private static boolean usable(Connection c, long idleNanos) throws SQLException {
    return c != null && !c.isClosed() && (idleNanos < CHECK_AFTER_IDLE_NANOS || c.isValid(2));
  }

  private MigrationException fail(String what, SQLException e) {
    return new MigrationException("database '" + spec.database() + "': " + what + ": " + e.getMessage(), e);
  }

  @Override
  public Optional<String> ensureTarget() throws MigrationException {
    if (spec.options().createReplica().isEmpty()) {
      return Optional.empty();
    }
    Migration.Replica replica = spec.options().createReplica().get();
    String done = "replica " + spec.target() + " in " + replica.targetDataDir() + " is up";
    try {
      target();
      return Optional.of(done); // already up: a re-run after a crash
    } catch (SQLException notUp) {
      // create and start it below
    }
    if (!Files.exists(replica.targetDataDir().resolve("PG_VERSION"))) {
      try {
        SameHostReplica.create(source(), new SameHostReplica.Plan(replica.sourceDataDir(), replica.targetDataDir(),
            spec.source(), spec.target().port(), "turnout_" + spec.database().replaceAll("[^a-z0-9_]", "_"),
            credentials.user()));
      } catch (SQLException e) {
        throw fail("connecting to the source to copy it", e);
      }
    }
    SameHostReplica.start(replica.binDir(), replica.targetDataDir());
    Instant deadline = clock.instant().plus(REPLICA_START);
    while (true) {
      try {
        if (bool(target(), "select pg_is_in_recovery()")
            && "streaming".equals(text(target(), "select coalesce((select status from pg_stat_wal_receiver), '')"))) {
          return Optional.of(done);
        }
      } catch (SQLException e) {
        // still starting
      }
      if (clock.instant().isAfter(deadline)) {
        throw new MigrationException("database '" + spec.database() + "': the replica in " + replica.targetDataDir()
            + " did not start streaming within " + REPLICA_START.toSeconds() + " s; see its log next to the data"
            + " directory");
      }
      try {
        sleeper.sleep(REPLICA_POLL);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new MigrationException("interrupted while starting the replica");
      }
    }
  }

  @Override
  public ImmutableList<Check> preflight(boolean allowDroppingStaleSlots) throws MigrationException {
    List<Check> checks = new ArrayList<>();
    try {
      boolean sourceInRecovery = bool(source(), "select pg_is_in_recovery()");
      boolean targetInRecovery = bool(target(), "select pg_is_in_recovery()");
      checks.add(new Check("source is a primary", !sourceInRecovery, true,
          sourceInRecovery ? spec.source() + " is in recovery" : spec.source() + " accepts writes"));
      checks.add(new Check("target is a standby", targetInRecovery, true,
          targetInRecovery ? spec.target() + " is in recovery" : spec.target() + " is not in recovery (already promoted?)"));
      String sourceId = text(source(), "select system_identifier::text from pg_control_system()");
      String targetId = text(target(), "select system_identifier::text from pg_control_system()");
      checks.add(new Check("same system identifier", sourceId.equals(targetId), true,
          "source " + sourceId + ", target " + targetId));
      if (targetInRecovery) {
        checks.add(streamingCheck());
        long sourceTimeline = sourceTimeline();
        long targetTimeline = Long.parseLong(text(target(), "select coalesce(received_tli, 0)::text from pg_stat_wal_receiver"));
        checks.add(new Check("same timeline", sourceTimeline == targetTimeline, true,
            "source timeline " + sourceTimeline + ", target receives timeline " + targetTimeline));
      }
      checks.addAll(parameterChecks());
      checks.add(extensionCheck());
      checks.addAll(slotChecks(allowDroppingStaleSlots));
      checks.addAll(fenceChecks());
    } catch (SQLException e) {
      throw fail("preflight", e);
    }
    return ImmutableList.copyOf(checks);
  }

  private Check streamingCheck() throws SQLException {
    try (Statement s = target().createStatement();
         ResultSet rs = s.executeQuery("select status, sender_host, sender_port from pg_stat_wal_receiver")) {
      if (!rs.next()) {
        return new Check("target streams from source", false, true, "the target has no WAL receiver");
      }
      String status = rs.getString(1);
      int senderPort = rs.getInt(3);
      boolean ok = "streaming".equals(status) && senderPort == spec.source().port();
      return new Check("target streams from source", ok, true, "WAL receiver " + status + " from "
          + rs.getString(2) + ":" + senderPort + " (source is " + spec.source() + ")");
    }
  }

  /** Settings a hot standby needs at least as high as its primary, and the ones logical slots need. */
  private static final List<String> AT_LEAST = List.of("max_connections", "max_worker_processes",
      "max_wal_senders", "max_prepared_transactions", "max_locks_per_transaction", "max_replication_slots");

  private List<Check> parameterChecks() throws SQLException {
    List<Check> checks = new ArrayList<>();
    Map<String, String> src = settings(source());
    Map<String, String> tgt = settings(target());
    for (String name : AT_LEAST) {
      long s = Long.parseLong(src.get(name));
      long t = Long.parseLong(tgt.get(name));
      checks.add(new Check("parameter " + name, t >= s, true, "target " + t + ", source " + s
          + (t >= s ? "" : ": the target needs at least the source's value")));
    }
    boolean sourceHasSlots = !slots(source()).isEmpty();
    String wal = tgt.get("wal_level");
    checks.add(new Check("parameter wal_level", !sourceHasSlots || "logical".equals(wal), true,
        "target " + wal + (sourceHasSlots ? "; the source has logical slots to recreate, which needs logical" : "")));
    checks.add(new Check("parameter server_version_num",
        tgt.get("server_version_num").substring(0, 2).equals(src.get("server_version_num").substring(0, 2)), true,
        "target " + tgt.get("server_version_num") + ", source " + src.get("server_version_num")));
    return checks;
  }

  private static Map<String, String> settings(Connection c) throws SQLException {
    Map<String, String> result = new HashMap<>();
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("select name, setting from pg_settings")) {
      while (rs.next()) {
        result.put(rs.getString(1), rs.getString(2));
      }
    }
    return result;
  }

  private Check extensionCheck() throws SQLException {
    Set<String> installed = new HashSet<>(column(source(), "select extname from pg_extension"));
    Set<String> available = new HashSet<>(column(target(), "select name from pg_available_extensions"));
    installed.removeAll(available);
    return new Check("extensions available on target", installed.isEmpty(), true,
        installed.isEmpty() ? "every extension installed on the source is available on the target"
            : "missing on the target: " + installed);
  }

  private List<Check> slotChecks(boolean allowDropping) throws SQLException {
    List<Check> checks = new ArrayList<>();
    for (Slot slot : slots(source())) {
      if (slot.active()) {
        checks.add(new Check("logical slot " + slot.name(), true, false,
            slot.plugin() + ", active, confirmed " + slot.confirmedLsn() + ", retains " + mib(slot.retainedBytes())));
      } else if (allowDropping) {
        try (PreparedStatement ps = source().prepareStatement("select pg_drop_replication_slot(?)")) {
          ps.setString(1, slot.name());
          ps.execute();
        }
        checks.add(new Check("logical slot " + slot.name(), true, false, "inactive, retained "
            + mib(slot.retainedBytes()) + "; dropped as the operator allowed"));
      } else {
        checks.add(new Check("logical slot " + slot.name(), false, true, "inactive slot retaining "
            + mib(slot.retainedBytes()) + " of WAL (" + slot.retainedBytes() + " bytes): its consumer is not running,"
            + " so it cannot reach the cutover position; start the consumer or allow dropping stale slots"));
      }
    }
    return checks;
  }

  /**
   * What the fence will need and meet: pg_walinspect to prove nothing committed after the final LSN (installed
   * here, in the migrator's database, if the server has it), a free replication slot to keep that WAL until
   * finalized, the prepared transactions it would have to wait for, and the role the standby streams as.
   */
  private List<Check> fenceChecks() throws SQLException {
    List<Check> checks = new ArrayList<>();
    boolean available = bool(source(), "select exists (select 1 from pg_available_extensions where name = 'pg_walinspect')");
    boolean installed = bool(source(), "select exists (select 1 from pg_extension where extname = 'pg_walinspect')");
    if (available && !installed) {
      try (Statement s = source().createStatement()) {
        s.execute("create extension if not exists pg_walinspect");
      }
    }
    checks.add(new Check("WAL proof (pg_walinspect)", available, true, !available
        ? spec.source() + " has no pg_walinspect (PostgreSQL 15 or later, contrib): nothing could prove that no"
            + " transaction commits on it after the final LSN"
        : installed ? "installed" : "installed now in database " + text(source(), "select current_database()")));
    boolean holdExists = bool(source(), "select exists (select 1 from pg_replication_slots where slot_name = '"
        + holdSlot() + "')");
    long used = Long.parseLong(text(source(), "select count(*)::text from pg_replication_slots"));
    long max = Long.parseLong(text(source(), "show max_replication_slots"));
    checks.add(new Check("replication slot for the fence", holdExists || used < max, true, holdExists
        ? holdSlot() + " exists" : used + " of " + max + " slots used; the fence takes one (" + holdSlot()
            + ") to keep the WAL after the final LSN until the migration is finalized"));
    ImmutableList<PreparedTransaction> prepared = prepared(source());
    Instant now = clock.instant();
    checks.add(new Check("prepared transactions", prepared.isEmpty(), false, prepared.isEmpty() ? "none"
        : prepared.size() + " on the source: " + prepared.stream().map(p -> p.describe(now))
            .collect(java.util.stream.Collectors.joining(", ")) + "; at cutover the migration waits the quiesce"
            + " grace for them, then stops unless told to roll them back"));
    List<String> standby = new ArrayList<>(standbyRoles());
    standby.remove(credentials.user());
    List<String> superusers = new ArrayList<>();
    try (PreparedStatement ps = source().prepareStatement(
        "select rolname from pg_roles where rolsuper and rolname = any(?) order by 1")) {
      ps.setArray(1, source().createArrayOf("text", standby.toArray()));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          superusers.add(rs.getString(1));
        }
      }
    }
    checks.add(new Check("standby's role", superusers.isEmpty(), false, standby.isEmpty()
        ? "the standby streams as the migrator's role" : "the standby streams as " + standby + ", which keeps its"
            + " login until the target is promoted (so the standby can reconnect)"
            + (superusers.isEmpty() ? "" : "; " + superusers + " is a superuser: until promotion a login as it could"
                + " write (the WAL proof would stop the migration); prefer the migrator's role or a non-superuser"
                + " replication role in primary_conninfo")));
    return checks;
  }

  private static String mib(long bytes) {
    return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
  }

  @Override
  public Sample sample() throws MigrationException {
    try {
      Lsn src = Lsn.parse(text(source(), "select pg_current_wal_lsn()::text"));
      Lsn replay;
      double delay;
      try (Statement s = target().createStatement(); ResultSet rs = s.executeQuery(
          "select pg_last_wal_replay_lsn()::text,"
              + " coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0)::float8")) {
        rs.next();
        replay = rs.getString(1) == null ? new Lsn(0) : Lsn.parse(rs.getString(1));
        delay = rs.getDouble(2);
      }
      return new Sample(Duration.between(Instant.EPOCH, clock.instant()).toNanos(), src, replay, delay);
    } catch (SQLException e) {
      throw fail("sampling replication", e);
    }
  }

  @Override
  public ImmutableList<String> loginRolesToFence(boolean keepStandby) throws MigrationException {
    try {
      // Superusers are refused too (NOLOGIN applies to them); one the migrator could not alter (a provider's own
      // role, when the migrator is not a superuser itself) is left out, and the platform fences it otherwise.
      List<String> roles = column(source(), "select rolname from pg_roles where rolcanlogin and rolname <> current_user"
          + " and (not rolsuper or (select rolsuper from pg_roles where rolname = current_user)) order by rolname");
      if (keepStandby) {
        roles.removeAll(standbyRoles());
      }
      return ImmutableList.copyOf(roles);
    } catch (SQLException e) {
      throw fail("listing login roles", e);
    }
  }

  /**
   * The roles physical standbys of the source stream as: those of its physical walsenders now, and the user
   * the target's {@code primary_conninfo} names (it may be reconnecting at this moment).
   */
  private Set<String> standbyRoles() throws SQLException {
    Set<String> roles = new HashSet<>(column(source(), "select distinct usename::text from pg_stat_activity"
        + " where backend_type = 'walsender' and datid is null and usename is not null"));
    try {
      String conninfo = text(target(), "select coalesce(current_setting('primary_conninfo', true), '')");
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?:^|\\s)user\\s*=\\s*'?([^'\\s]+)")
          .matcher(conninfo);
      if (m.find()) {
        roles.add(m.group(1));
      }
    } catch (SQLException e) {
      // not readable there (a managed service, or no target yet): the walsenders tell
    }
    return roles;
  }

  /**
   * Sessions that can run SQL: every backend connected to a database (client backends, walsenders opened with
   * {@code replication=database}, background workers), but the migrator's own, parallel workers (they end with
   * their leader), autovacuum (its commits only write planner statistics; {@link #commitsAfter} tells them
   * apart) and a PostgreSQL 17 standby's slot-sync reader. That reader uses an ordinary connection made with
   * the standby's own conninfo and reconnects at once when ended; it only reads, so a session with the user and
   * address of a physical walsender and either its application name (set in primary_conninfo) or the worker's
   * default one is left alone.
   */
  private static final String SQL_SESSIONS = "from pg_stat_activity a where a.datid is not null"
      + " and a.pid <> pg_backend_pid() and a.leader_pid is null and a.backend_type <> 'autovacuum worker'"
      + " and not (a.backend_type = 'client backend' and exists (select 1 from pg_stat_activity w"
      + " where w.backend_type = 'walsender' and w.datid is null and w.usename = a.usename"
      + " and w.client_addr is not distinct from a.client_addr"
      + " and (w.application_name = a.application_name or a.application_name like '%slotsync worker')))";

  /** A walsender streaming a logical slot now: its consumer has yet to confirm the final LSN. */
  private static final String STREAMING_A_SLOT = "a.pid in (select active_pid from pg_replication_slots"
      + " where slot_type = 'logical' and active_pid is not null)";

  /** The application's sessions, which the quiesce waits for: clients and walsenders that are not streaming. */
  private static final String APPLICATION_SESSIONS = SQL_SESSIONS
      + " and a.backend_type in ('client backend', 'walsender') and not " + STREAMING_A_SLOT;

  /**
   * Working: in a statement or a transaction, or logged in within the last second and still before its first
   * statement (a connection-per-transaction client between its login and its one transaction).
   */
  private static final String BUSY = "(a.state is distinct from 'idle' or (a.query = ''"
      + " and a.backend_start > clock_timestamp() - interval '1 second'))";

  private static final String SESSION_COLUMNS = "a.pid, coalesce(a.usename::text, ''), a.backend_type,"
      + " coalesce(a.state, ''), " + BUSY + ", a.xact_start";

  private static List<Session> sessions(Statement s, String sql) throws SQLException {
    List<Session> result = new ArrayList<>();
    try (ResultSet rs = s.executeQuery(sql)) {
      while (rs.next()) {
        java.sql.Timestamp xact = rs.getTimestamp(6);
        result.add(new Session(rs.getInt(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getBoolean(5),
            Optional.ofNullable(xact).map(java.sql.Timestamp::toInstant)));
      }
    }
    return result;
  }

  @Override
  public ImmutableList<Session> applicationSessions() throws MigrationException {
    try (Statement s = source().createStatement()) {
      return ImmutableList.copyOf(sessions(s, "select " + SESSION_COLUMNS + " " + APPLICATION_SESSIONS));
    } catch (SQLException e) {
      throw fail("listing the application's sessions on the source " + spec.source(), e);
    }
  }

  @Override
  public void endApplicationSessions(List<Session> sessions) throws MigrationException {
    if (sessions.isEmpty()) {
      return;
    }
    try (PreparedStatement ps = source().prepareStatement(
        "select pg_terminate_backend(a.pid) " + APPLICATION_SESSIONS + " and a.pid = any(?)")) {
      ps.setArray(1, source().createArrayOf("int4", sessions.stream().map(Session::pid).toArray()));
      ps.execute();
    } catch (SQLException e) {
      throw fail("ending sessions on the source " + spec.source(), e);
    }
  }

  @Override
  public ImmutableList<PreparedTransaction> preparedTransactions() throws MigrationException {
    try {
      return prepared(source());
    } catch (SQLException e) {
      throw fail("listing prepared transactions on the source " + spec.source(), e);
    }
  }

  @Override
  public ImmutableList<PreparedTransaction> targetPreparedTransactions() throws MigrationException {
    try {
      return prepared(target());
    } catch (SQLException e) {
      throw fail("listing prepared transactions on the target " + spec.target(), e);
    }
  }

  private static ImmutableList<PreparedTransaction> prepared(Connection c) throws SQLException {
    ImmutableList.Builder<PreparedTransaction> result = ImmutableList.builder();
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
        "select gid, prepared, owner::text, database::text from pg_prepared_xacts order by prepared, gid")) {
      while (rs.next()) {
        result.add(new PreparedTransaction(rs.getString(1), rs.getTimestamp(2).toInstant(), rs.getString(3),
            rs.getString(4)));
      }
    }
    return result.build();
  }

  /** ROLLBACK PREPARED must run in the transaction's own database: one connection per other database. */
  @Override
  public void rollBackPreparedTransactions(List<PreparedTransaction> transactions) throws MigrationException {
    try {
      String here = text(source(), "select current_database()");
      for (PreparedTransaction t : transactions) {
        Connection c = t.database().equals(here) ? source() : connect(spec.source(), t.database());
        try (Statement s = c.createStatement()) {
          s.execute("rollback prepared " + literal(t.gid()));
        } catch (SQLException e) {
          if (!"42704".equals(e.getSQLState())) { // gone meanwhile: committed or rolled back by its owner
            throw e;
          }
        } finally {
          if (c != source) {
            closeQuietly(c);
          }
        }
      }
    } catch (SQLException e) {
      throw fail("rolling back prepared transactions on the source " + spec.source(), e);
    }
  }

  /** The physical slot that keeps the source's WAL after the final LSN readable until the migration is finalized. */
  private String holdSlot() {
    String name = "turnout_fence_" + spec.database().toLowerCase(java.util.Locale.ROOT).replaceAll("[^a-z0-9_]", "_");
    return name.length() > 63 ? name.substring(0, 63) : name;
  }

  @Override
  public ImmutableList<Session> fence(List<String> roles) throws MigrationException {
    try (Statement s = source().createStatement()) {
      s.execute("alter system set default_transaction_read_only = on");
      s.execute("select pg_reload_conf()");
    } catch (SQLException e) {
      throw fail("fencing the source " + spec.source(), e);
    }
    holdWal();
    refuseLogins(roles);
    return endSessions(false);
  }

  @Override
  public void prepareFence() throws MigrationException {
    holdWal();
  }

  /**
   * Keeps the source's WAL from here on until {@link #releaseFenceHold}: a physical slot reserving WAL now, below
   * the final LSN recorded after the fence, so the proof can read that WAL at finalize too.
   */
  public void holdWal() throws MigrationException {
    try (PreparedStatement ps = source().prepareStatement("select pg_create_physical_replication_slot(?, true)"
        + " where not exists (select 1 from pg_replication_slots where slot_name = ?)")) {
      ps.setString(1, holdSlot());
      ps.setString(2, holdSlot());
      ps.execute();
    } catch (SQLException e) {
      throw fail("creating the fence's WAL hold " + holdSlot() + " on the source " + spec.source(), e);
    }
  }

  /** Sets {@code roles} NOLOGIN on the source ({@code ALTER ROLE} replicates to the target). */
  @Override
  public void refuseLogins(List<String> roles) throws MigrationException {
    try {
      alterRoles(source(), roles, "nologin");
    } catch (SQLException e) {
      throw fail("refusing logins on the source " + spec.source(), e);
    }
  }

  @Override
  public ImmutableList<Session> endSessions(boolean slotStreamsToo) throws MigrationException {
    String which = SQL_SESSIONS + (slotStreamsToo ? "" : " and not " + STREAMING_A_SLOT);
    Map<Integer, Session> ended = new java.util.LinkedHashMap<>();
    try (Statement s = source().createStatement()) {
      for (int attempt = 0; attempt < 50; attempt++) {
        List<Session> left = sessions(s, "select " + SESSION_COLUMNS + " " + which);
        if (left.isEmpty()) {
          return ImmutableList.copyOf(ended.values());
        }
        left.forEach(x -> ended.putIfAbsent(x.pid(), x));
        if (s.getConnection().getMetaData().getDatabaseMajorVersion() >= 14) {
          // Waits (up to 100 ms each) until the backend is gone, instead of sleeping and looking again.
          s.execute("select pg_terminate_backend(a.pid, 100) " + which);
        } else {
          s.execute("select pg_terminate_backend(a.pid) " + which);
          s.execute("select pg_sleep(0.01)");
        }
      }
      throw new MigrationException("database '" + spec.database() + "': sessions on " + spec.source()
          + " did not end: " + describe(sessions(s, "select " + SESSION_COLUMNS + " " + which)));
    } catch (SQLException e) {
      throw fail("ending sessions on the source " + spec.source(), e);
    }
  }

  private static String describe(List<Session> sessions) {
    return sessions.stream().map(x -> x.role() + " (" + x.backendType() + ", " + (x.state().isEmpty() ? "no state"
        : x.state()) + ", pid " + x.pid() + ")").collect(java.util.stream.Collectors.joining(", "));
  }

  /**
   * Besides sessions, prepared transactions and logins: new sessions are read-only. A new backend starts with the
   * postmaster's settings, and the postmaster signals the backends only once it has reloaded its own: so once
   * this session's reset value (what the configuration gives it, under its own SET) reads on, new ones are.
   */
  @Override
  public void verifyFence(List<String> roles) throws MigrationException {
    verifySessionsEndedAndLoginsRefused(roles);
    try (Statement s = source().createStatement()) {
      for (int attempt = 0; ; attempt++) {
        try (ResultSet rs = s.executeQuery(
            "select reset_val from pg_settings where name = 'default_transaction_read_only'")) {
          rs.next();
          if ("on".equals(rs.getString(1))) {
            return;
          }
        }
        if (attempt == 200) {
          throw new MigrationException("fence of " + spec.source() + " not holding: new sessions are not read-only");
        }
        s.execute("select pg_sleep(0.01)");
      }
    } catch (SQLException e) {
      throw fail("verifying the fence of " + spec.source(), e);
    }
  }

  /**
   * Throws unless no session that can run SQL is open on the source (but the migrator's and walsenders streaming
   * a logical slot), no transaction is left prepared, and none of {@code roles} can log in.
   */
  public void verifySessionsEndedAndLoginsRefused(List<String> roles) throws MigrationException {
    try (Statement s = source().createStatement()) {
      List<Session> open = sessions(s, "select " + SESSION_COLUMNS + " " + SQL_SESSIONS + " and not " + STREAMING_A_SLOT);
      if (!open.isEmpty()) {
        throw new MigrationException("fence of " + spec.source() + " not holding: " + open.size()
            + " session(s) open: " + describe(open));
      }
      List<PreparedTransaction> prepared = prepared(source());
      if (!prepared.isEmpty()) {
        Instant now = clock.instant();
        throw new MigrationException("fence of " + spec.source() + " not holding: " + prepared.size()
            + " prepared transaction(s) could still be committed: " + prepared.stream().map(p -> p.describe(now))
                .collect(java.util.stream.Collectors.joining(", ")));
      }
      List<String> stillLogin = new ArrayList<>();
      try (PreparedStatement ps = source().prepareStatement(
          "select rolname from pg_roles where rolcanlogin and rolname = any(?) order by rolname")) {
        ps.setArray(1, source().createArrayOf("text", roles.toArray()));
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            stillLogin.add(rs.getString(1));
          }
        }
      }
      if (!stillLogin.isEmpty()) {
        throw new MigrationException("fence of " + spec.source() + " not holding: roles can still log in: " + stillLogin);
      }
    } catch (SQLException e) {
      throw fail("verifying the fence of " + spec.source(), e);
    }
  }

  @Override
  public Lsn sourceLsn() throws MigrationException {
    try {
      return Lsn.parse(text(source(), "select pg_current_wal_lsn()::text"));
    } catch (SQLException e) {
      throw fail("reading the source's WAL position", e);
    }
  }

  /**
   * {@code pg_current_wal_lsn()} is the write position: an asynchronous commit acknowledged a moment ago may
   * still sit in the WAL buffers beyond it. Waiting until the flush position passes the end of the last record
   * inserted now (the WAL writer flushes within wal_writer_delay) makes the final LSN cover it.
   */
  @Override
  public Lsn finalLsn() throws MigrationException {
    try {
      awaitFlushed(lastRecordEnd());
      return Lsn.parse(text(source(), "select pg_current_wal_lsn()::text"));
    } catch (SQLException e) {
      throw fail("reading the source's final WAL position", e);
    }
  }

  /**
   * The end of the last WAL record inserted so far. The insert position points past the header of a page that no
   * record has begun on yet (24 bytes, 40 at the start of a segment); records end before that header.
   */
  private Lsn lastRecordEnd() throws SQLException {
    try (Statement s = source().createStatement(); ResultSet rs = s.executeQuery("select pg_current_wal_insert_lsn()::text,"
        + " (select setting::bigint from pg_settings where name = 'wal_block_size'),"
        + " (select setting::bigint from pg_settings where name = 'wal_segment_size')")) {
      rs.next();
      Lsn insert = Lsn.parse(rs.getString(1));
      long page = rs.getLong(2);
      long segment = rs.getLong(3);
      long offset = Long.remainderUnsigned(insert.value(), page);
      boolean segmentStart = Long.remainderUnsigned(insert.value(), segment) == offset;
      return offset == (segmentStart ? 40 : 24) ? new Lsn(insert.value() - offset) : insert;
    }
  }

  /** Waits (up to 2 s) until the source has flushed its WAL to {@code lsn}; returns the flush position. */
  private Lsn awaitFlushed(Lsn lsn) throws SQLException {
    try (Statement s = source().createStatement()) {
      for (int attempt = 0; ; attempt++) {
        Lsn flushed = Lsn.parse(text(source(), "select pg_current_wal_flush_lsn()::text"));
        if (flushed.atLeast(lsn) || attempt == 100) {
          return flushed;
        }
        s.execute("select pg_sleep(0.02)");
      }
    }
  }

  /**
   * Relation file numbers of the catalogs ANALYZE writes: pg_statistic (with its index and TOAST table),
   * pg_statistic_ext_data (the same) and pg_class, which it updates in place. Catalogs made by initdb keep a
   * file number equal to their OID, below 16384, which no user relation ever gets; one rewritten since (VACUUM
   * FULL) has another number, and its ANALYZE commits are then findings: a false alarm, never a miss.
   */
  private static final Set<Long> STATISTICS_CATALOGS = Set.of(2619L, 2696L, 2840L, 2841L, 3429L, 3433L, 3430L,
      3431L, 1259L);
  private static final java.util.regex.Pattern REL = java.util.regex.Pattern.compile("rel (\\d+)/(\\d+)/(\\d+)");
  private static final java.util.regex.Pattern SUBXACTS = java.util.regex.Pattern.compile("subxacts:((?: \\d+)+)");

  @Override
  public WalCheck commitsAfter(Lsn from) throws MigrationException {
    try {
      String schema = text(source(), "select coalesce((select quote_ident(extnamespace::regnamespace::text)"
          + " from pg_extension where extname = 'pg_walinspect'), '')");
      if (schema.isEmpty()) {
        throw new MigrationException("database '" + spec.database() + "': pg_walinspect is not installed on "
            + spec.source() + ", so its WAL after the final LSN cannot be checked (preflight installs it)");
      }
      // Up to the end of the last record inserted now, once flushed: pg_walinspect reads flushed WAL only, and
      // the flush position alone may stop inside a record (the WAL writer writes whole pages).
      Lsn end = lastRecordEnd();
      Lsn flushed = awaitFlushed(end);
      Lsn to = flushed.atLeast(end) ? end : flushed;
      if (!to.atLeast(new Lsn(from.value() + 1))) {
        return new WalCheck(from, from, ImmutableList.of(), 0);
      }
      record Rec(String lsn, long xid, String rm, String type, String description, String blocks) {}
      List<Rec> records = new ArrayList<>();
      try (PreparedStatement ps = source().prepareStatement("select start_lsn::text, xid::text::bigint,"
          + " resource_manager, record_type, coalesce(description, ''), coalesce(block_ref, '')"
          + " from " + schema + ".pg_get_wal_records_info(?::pg_lsn, ?::pg_lsn)"
          + " where xid::text <> '0' or (resource_manager = 'Transaction' and record_type like 'COMMIT%')")) {
        ps.setString(1, from.toString());
        ps.setString(2, to.toString());
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            records.add(new Rec(rs.getString(1), rs.getLong(2), rs.getString(3), rs.getString(4), rs.getString(5),
                rs.getString(6)));
          }
        } catch (SQLException e) {
          // Between the two positions lies no whole record (a page header, the tail of one that began before).
          if (!String.valueOf(e.getMessage()).contains("could not find a valid record")) {
            throw e;
          }
        }
      }
      ImmutableList.Builder<String> findings = ImmutableList.builder();
      int exempt = 0;
      for (Rec commit : records) {
        if (!"Transaction".equals(commit.rm()) || !commit.type().startsWith("COMMIT")) {
          continue;
        }
        boolean prepared = commit.type().equals("COMMIT_PREPARED");
        // A COMMIT PREPARED record carries the prepared transaction's xid in its description ("733: <time>").
        long xid = prepared ? Long.parseLong(commit.description().replaceFirst(":.*", "").trim()) : commit.xid();
        Set<Long> xids = new HashSet<>(Set.of(xid));
        java.util.regex.Matcher sub = SUBXACTS.matcher(commit.description());
        if (sub.find()) {
          for (String x : sub.group(1).trim().split(" ")) {
            xids.add(Long.parseLong(x));
          }
        }
        List<Rec> data = records.stream().filter(r -> xids.contains(r.xid()) && !"Transaction".equals(r.rm())).toList();
        Set<String> rels = new java.util.TreeSet<>();
        boolean onlyStatistics = !prepared && !data.isEmpty();
        for (Rec r : data) {
          java.util.regex.Matcher rel = REL.matcher(r.description() + " " + r.blocks());
          boolean any = false;
          while (rel.find()) {
            any = true;
            rels.add(rel.group(1) + "/" + rel.group(2) + "/" + rel.group(3));
            onlyStatistics &= STATISTICS_CATALOGS.contains(Long.parseLong(rel.group(3)));
          }
          onlyStatistics &= any && (r.rm().equals("Heap") || r.rm().equals("Heap2") || r.rm().equals("Btree"));
        }
        if (onlyStatistics) {
          exempt++;
          continue;
        }
        String at = prepared ? commit.description().replaceFirst("^\\d+:\\s*", "") : commit.description();
        at = at.replaceFirst(";.*", "");
        findings.add("xid " + xid + " " + (prepared ? "COMMIT PREPARED" : "COMMIT") + " at " + commit.lsn() + " ("
            + at + ")" + (data.isEmpty() ? ", its changes written before the final LSN"
                : ", changed " + relationNames(rels)));
      }
      return new WalCheck(from, to, findings.build(), exempt);
    } catch (SQLException e) {
      throw fail("reading the source's WAL after the final LSN " + from, e);
    }
  }

  /** Relation names where the file number resolves in the migrator's database, else tablespace/database/file. */
  private String relationNames(Set<String> rels) throws SQLException {
    List<String> names = new ArrayList<>();
    for (String rel : rels) {
      String[] p = rel.split("/");
      String name = null;
      try (PreparedStatement ps = source().prepareStatement("select pg_filenode_relation(case when ?::oid ="
          + " (select dattablespace from pg_database where datname = current_database()) then 0 else ?::oid end,"
          + " ?::oid)::regclass::text where ?::oid = (select oid from pg_database where datname = current_database())"
          + " or ?::oid = 0")) {
        ps.setLong(1, Long.parseLong(p[0]));
        ps.setLong(2, Long.parseLong(p[0]));
        ps.setLong(3, Long.parseLong(p[2]));
        ps.setLong(4, Long.parseLong(p[1]));
        ps.setLong(5, Long.parseLong(p[1]));
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) {
            name = rs.getString(1);
          }
        }
      }
      names.add(name == null ? "rel " + rel : name + " (rel " + rel + ")");
    }
    return String.join(", ", names);
  }

  @Override
  public void releaseFenceHold() throws MigrationException {
    try (PreparedStatement ps = source().prepareStatement(
        "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = ? and not active")) {
      ps.setString(1, holdSlot());
      ps.execute();
    } catch (SQLException e) {
      throw fail("dropping the fence's WAL hold " + holdSlot() + " on the source " + spec.source(), e);
    }
  }

  @Override
  public void unfence(List<String> roles) throws MigrationException {
    restoreLogins(roles);
    try (Statement s = source().createStatement()) {
      s.execute("alter system reset default_transaction_read_only");
      s.execute("select pg_reload_conf()");
    } catch (SQLException e) {
      throw fail("unfencing the source " + spec.source(), e);
    }
    releaseFenceHold();
  }

  /** Undo of {@link #refuseLogins}. */
  public void restoreLogins(List<String> roles) throws MigrationException {
    try {
      alterRoles(source(), roles, "login");
    } catch (SQLException e) {
      throw fail("restoring logins on the source " + spec.source(), e);
    }
  }

  /** The source's tables whose changes physical replication does not carry (they are empty on a promoted replica). */
  public ImmutableList<String> unloggedTables() throws MigrationException {
    try {
      return ImmutableList.copyOf(column(source(), "select format('%I.%I', n.nspname, c.relname) from pg_class c"
          + " join pg_namespace n on n.oid = c.relnamespace where c.relpersistence = 'u' and c.relkind in ('r', 'p')"
          + " order by 1"));
    } catch (SQLException e) {
      throw fail("listing unlogged tables", e);
    }
  }

  @Override
  public ImmutableList<Slot> sourceSlots() throws MigrationException {
    try {
      return slots(source());
    } catch (SQLException e) {
      throw fail("listing the source's logical slots", e);
    }
  }

  private static ImmutableList<Slot> slots(Connection c) throws SQLException {
    ImmutableList.Builder<Slot> result = ImmutableList.builder();
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
        "select slot_name, plugin, active, coalesce(confirmed_flush_lsn, '0/0')::text,"
            + " coalesce(pg_current_wal_lsn() - restart_lsn, 0)::bigint"
            + " from pg_replication_slots where slot_type = 'logical' order by slot_name")) {
      while (rs.next()) {
        result.add(new Slot(rs.getString(1), rs.getString(2), rs.getBoolean(3), Lsn.parse(rs.getString(4)), rs.getLong(5)));
      }
    }
    return result.build();
  }

  @Override
  public Lsn targetReplayLsn() throws MigrationException {
    try {
      String lsn = text(target(), "select coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn())::text");
      return Lsn.parse(lsn);
    } catch (SQLException e) {
      throw fail("reading the target's replay position", e);
    }
  }

  @Override
  public void armTargetReadOnly() throws MigrationException {
    try (Statement s = target().createStatement()) {
      s.execute("alter system set default_transaction_read_only = on"); // works on a hot standby
      s.execute("select pg_reload_conf()");
    } catch (SQLException e) {
      throw fail("arming the target read-only", e);
    }
  }

  @Override
  public void promoteTarget() throws MigrationException {
    try {
      if (bool(target(), "select pg_is_in_recovery()")) {
        // pg_promote(wait => true) looks for the end of recovery every 100 ms; the writes are stopped meanwhile,
        // so ask without waiting and look every 5 ms, on the server, for up to 60 s.
        bool(target(), "select pg_promote(false)");
        try (var statement = target().createStatement()) {
          statement.execute("do $$ begin for i in 1..12000 loop exit when not pg_is_in_recovery();"
              + " perform pg_sleep(0.005); end loop; end $$");
        }
        if (bool(target(), "select pg_is_in_recovery()")) {
          throw new MigrationException("database '" + spec.database() + "': " + spec.target() + " did not promote in 60 s");
        }
      }
      long targetTimeline = Long.parseLong(text(target(),
          "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text"));
      long sourceTimeline = sourceTimeline();
      if (targetTimeline <= sourceTimeline) {
        throw new MigrationException("database '" + spec.database() + "': promoted target is on timeline "
            + targetTimeline + ", not above the source's " + sourceTimeline);
      }
    } catch (SQLException e) {
      throw fail("promoting the target " + spec.target(), e);
    }
  }

  private long sourceTimeline() throws SQLException {
    return Long.parseLong(text(source(),
        "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text"));
  }

  @Override
  public boolean targetPromoted() throws MigrationException {
    try {
      return !bool(target(), "select pg_is_in_recovery()");
    } catch (SQLException e) {
      throw fail("asking whether the target is promoted", e);
    }
  }

  @Override
  public void syncFailoverSlots() throws MigrationException {
    try {
      if (target().getMetaData().getDatabaseMajorVersion() < 17
          || !bool(target(), "select current_setting('sync_replication_slots')::bool")) {
        return;
      }
      // The sync worker naps up to 30 s when idle: stop it and sync now (the function refuses while it runs).
      try (Statement s = target().createStatement()) {
        s.execute("alter system set sync_replication_slots = off");
        s.execute("select pg_reload_conf()");
        try (ResultSet rs = s.executeQuery("select source from pg_settings where name = 'sync_replication_slots'")) {
          rs.next();
          if ("command line".equals(rs.getString(1))) {
            throw new MigrationException("database '" + spec.database() + "': sync_replication_slots is set on the"
                + " target's command line, so it cannot be turned off for the final slot sync before promotion;"
                + " set it in postgresql.conf instead");
          }
        }
        for (int attempt = 0; ; attempt++) {
          boolean workerGone;
          try (ResultSet rs = s.executeQuery(
              "select count(*) = 0 from pg_stat_activity where backend_type = 'slotsync worker'")) {
            rs.next();
            workerGone = rs.getBoolean(1);
          }
          if (workerGone) {
            try {
              s.execute("select pg_sync_replication_slots()");
              break;
            } catch (SQLException stillRunning) {
              if (attempt > 300) {
                throw stillRunning;
              }
            }
          } else if (attempt > 300) {
            throw new MigrationException("database '" + spec.database() + "': the target's slot sync worker did"
                + " not stop within 30 s after sync_replication_slots was turned off");
          }
          s.execute("select pg_sleep(0.1)");
        }
      }
    } catch (SQLException e) {
      throw fail("syncing failover slots to the target", e);
    }
  }

  @Override
  public ImmutableList<String> createSlotsOnTarget(List<SlotPosition> slotPositions) throws MigrationException {
    ImmutableList.Builder<String> done = ImmutableList.builder();
    try {
      Map<String, String> existing = new HashMap<>();
      try (Statement s = target().createStatement(); ResultSet rs = s.executeQuery(
          "select slot_name, coalesce(plugin, '') || '|' || coalesce(confirmed_flush_lsn::text, '') || '|'"
              + " || (wal_status = 'lost')::text from pg_replication_slots")) {
        while (rs.next()) {
          existing.put(rs.getString(1), rs.getString(2));
        }
      }
      for (SlotPosition slot : slotPositions) {
        String found = existing.get(slot.name());
        if (found != null) {
          String[] parts = found.split("\\|", -1);
          if (!parts[0].equals(slot.plugin()) || "true".equals(parts[2])) {
            throw new MigrationException("database '" + spec.database() + "': slot " + slot.name() + " on the target"
                + " is not the source's (plugin " + parts[0] + ", lost " + parts[2] + "); expected " + slot.plugin());
          }
          done.add(slot.name() + " verified (synced as a failover slot, confirmed " + parts[1] + ")");
          continue;
        }
        try (PreparedStatement ps = target().prepareStatement("select pg_create_logical_replication_slot(?, ?)")) {
          ps.setString(1, slot.name());
          ps.setString(2, slot.plugin());
          ps.execute();
        }
        done.add(slot.name() + " created (" + slot.plugin() + "; consumers resume from " + slot.confirmedLsn() + ")");
      }
    } catch (SQLException e) {
      throw fail("recreating logical slots on the target", e);
    }
    return done.build();
  }

  @Override
  public void restoreLoginsOnTarget(List<String> roles) throws MigrationException {
    try {
      alterRoles(target(), roles, "login");
    } catch (SQLException e) {
      throw fail("restoring logins on the target", e);
    }
  }

  @Override
  public void admitWritesOnTarget() throws MigrationException {
    try (Statement s = target().createStatement()) {
      s.execute("alter system reset default_transaction_read_only");
      s.execute("select pg_reload_conf()");
    } catch (SQLException e) {
      throw fail("admitting writes on the target", e);
    }
  }

  @Override
  public void disarmTarget() throws MigrationException {
    admitWritesOnTarget();
  }

  @Override
  public void writeProbeTarget() throws MigrationException {
    try (Connection fresh = DriverManager.getConnection("jdbc:postgresql://" + spec.target() + "/postgres",
        credentials.user(), credentials.password())) {
      fresh.setAutoCommit(false);
      try (Statement s = fresh.createStatement()) {
        s.execute("select txid_current()"); // assigns a transaction id: refused by a read-only server
      }
      fresh.commit();
    } catch (SQLException e) {
      throw fail("write probe on the target " + spec.target(), e);
    }
  }

  /** {@code ALTER ROLE r <option>} for each of {@code roles}, sent at once and committed together (one WAL flush). */
  private static void alterRoles(Connection c, List<String> roles, String option) throws SQLException {
    if (roles.isEmpty()) {
      return;
    }
    try (Statement s = c.createStatement()) {
      s.execute(roles.stream().map(r -> "alter role " + quote(r) + " " + option)
          .collect(java.util.stream.Collectors.joining("; ")));
    }
  }

  private static boolean bool(Connection c, String sql) throws SQLException {
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
      rs.next();
      return rs.getBoolean(1);
    }
  }

  private static String text(Connection c, String sql) throws SQLException {
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
      rs.next();
      return rs.getString(1);
    }
  }

  private static List<String> column(Connection c, String sql) throws SQLException {
    List<String> result = new ArrayList<>();
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
      while (rs.next()) {
        result.add(rs.getString(1));
      }
    }
    return result;
  }

  private static String literal(String text) {
    return "'" + text.replace("'", "''") + "'";
  }

  private static String quote(String identifier) {
    return "\"" + identifier.replace("\"", "\"\"") + "\"";
  }

  private static void closeQuietly(Connection c) {
    if (c != null) {
      try {
        c.close();
      } catch (SQLException ignored) {
        // replacing a broken connection
      }
    }
  }

  @Override
  public void close() {
    closeQuietly(source);
    closeQuietly(target);
  }
}
