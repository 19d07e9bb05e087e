package dev.turnout.migrator.platform.postgres;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import dev.turnout.migrator.Lsn;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.Platform.PreparedTransaction;
import dev.turnout.migrator.Platform.Sample;
import dev.turnout.migrator.Platform.Session;
import dev.turnout.migrator.Platform.Slot;
import dev.turnout.migrator.Platform.WalCheck;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.SlotPosition;
import dev.turnout.migrator.check.ServerFacts;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;

/**
 * {@link PostgresSql} on the servers themselves, over JDBC with a superuser role (or, on a managed service, the
 * most privileged role it grants). One connection to each server, opened on first use and replaced when broken;
 * only the migration's runner thread uses it.
 */
final class JdbcPostgresSql implements PostgresSql {

  private static final java.time.Duration REPLICA_START = java.time.Duration.ofSeconds(60);
  private static final java.time.Duration REPLICA_POLL = java.time.Duration.ofMillis(100);

  private final Migration.Spec spec;
  private final PostgresPlatform.Credentials credentials;
  /** The migrator's clock and sleeper: its waits and the ages it reports run on the time the migrator runs on. */
  private final java.time.Clock clock;
  private final dev.turnout.migrator.Sleeper sleeper;
  private Connection source;
  private Connection target;

  JdbcPostgresSql(Migration.Spec spec, PostgresPlatform.Credentials credentials, java.time.Clock clock,
      dev.turnout.migrator.Sleeper sleeper) {
    this.spec = spec;
    this.credentials = credentials;
    this.clock = clock;
    this.sleeper = sleeper;
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

  /**
   * A connection handed out less than this long ago is handed out again without {@code isValid} (a round trip):
   * the cutover's statements follow each other a millisecond or two apart, some fifty of them while the writes wait
   * (15-50 ms of checks on a loaded machine). A server that dies between two of them fails the statement itself,
   * and {@link #fail} names it, as the check would have.
   */
  private static final long RECHECK_AFTER_MILLIS = 10;

  /** When each connection was last handed out (the clock's millis), and to which server the last one went. */
  private long sourceUsed;
  private long targetUsed;
  private ServerAddress lastUsed;

  /**
   * The source's connection, checked ({@code isValid}, one round trip) before a use that does not follow another
   * within {@link #RECHECK_AFTER_MILLIS}: a server that died or restarted since then (between two polls, phases, a
   * failpoint's pause) is reconnected to, or named in the error when it does not answer.
   */
  private Connection source() throws SQLException {
    long now = clock.millis();
    if (source == null || source.isClosed() || now - sourceUsed >= RECHECK_AFTER_MILLIS && !source.isValid(2)) {
      closeQuietly(source);
      source = connect(spec.source());
    }
    sourceUsed = now;
    lastUsed = spec.source();
    return source;
  }

  private Connection target() throws SQLException {
    long now = clock.millis();
    if (target == null || target.isClosed() || now - targetUsed >= RECHECK_AFTER_MILLIS && !target.isValid(2)) {
      closeQuietly(target);
      target = connect(spec.target());
    }
    targetUsed = now;
    lastUsed = spec.target();
    return target;
  }

  /** A lost connection (SQLSTATE class 08) is named by its server, which the driver's message does not say. */
  private MigrationException fail(String what, SQLException e) {
    String server = lastUsed != null && e.getSQLState() != null && e.getSQLState().startsWith("08")
        && !what.contains(lastUsed.toString()) ? " (" + lastUsed + ")" : "";
    return new MigrationException("database '" + spec.database() + "': " + what + server + ": " + e.getMessage(), e);
  }

  @Override
  public Optional<String> ensureReplica(Migration.Replica replica) throws MigrationException {
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
    java.time.Instant deadline = clock.instant().plus(REPLICA_START);
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
  public ServerFacts facts(boolean readTarget, Optional<ServerAddress> reversePublisher) throws MigrationException {
    try {
      ServerFacts.Identity src = identity(source(), spec.source());
      // pg_walfile_name() cannot run in recovery; a source in recovery fails preflight anyway.
      ServerFacts.Source sourceFacts = new ServerFacts.Source(src, src.inRecovery() ? 0 : sourceTimeline(),
          ImmutableMap.copyOf(settings(source())), ImmutableSet.copyOf(column(source(), "select extname from pg_extension")),
          unloggedTables(), ImmutableList.copyOf(column(source(),
              "select datname from pg_database where not datistemplate order by datname")));
      Optional<ServerFacts.Target> targetFacts = Optional.empty();
      if (readTarget) {
        targetFacts = Optional.of(new ServerFacts.Target(identity(target(), spec.target()),
            ImmutableMap.copyOf(settings(target())),
            ImmutableSet.copyOf(column(target(), "select name from pg_available_extensions")), receiver()));
      }
      ImmutableList<ServerFacts.Slot> logical = slots(source()).stream().map(x -> new ServerFacts.Slot(x.name(),
          x.plugin(), x.active(), x.confirmedLsn().toString(), x.retainedBytes())).collect(ImmutableList.toImmutableList());
      Optional<ServerFacts.WayBack> wayBack = src.inRecovery() ? Optional.empty() : Optional.of(wayBack());
      // A role that may not make subscriptions is named by its own check; a probe would only fail on that again.
      if (wayBack.isPresent() && wayBack.get().migratorSuperuser() && readTarget && reversePublisher.isPresent()) {
        wayBack = Optional.of(wayBack.get().withReach(reach(reversePublisher.get())));
      }
      return new ServerFacts(sourceFacts, targetFacts, logical, fenceFacts(readTarget), wayBack);
    } catch (SQLException e) {
      throw fail("preflight", e);
    }
  }

  /**
   * What reverse replication would meet, read in every database of the source that takes connections: tables it
   * could not replicate updates and deletes of (no primary key, replica identity default or nothing; tables of
   * extensions left out), large objects, and whether the migrator's role may make subscriptions.
   */
  private ServerFacts.WayBack wayBack() throws SQLException {
    ImmutableList.Builder<String> without = ImmutableList.builder();
    ImmutableMap.Builder<String, Long> lobs = ImmutableMap.builder();
    for (String database : column(source(), "select datname from pg_database where datallowconn and not datistemplate"
        + " and datname <> 'rdsadmin' order by datname")) {
      Connection c;
      try {
        c = in(spec.source(), database);
      } catch (SQLException e) {
        // The reverse path would need it too: named with the tables it cannot vouch for (blocking unless the
        // migration goes without reverse replication), rather than failing preflight as a whole.
        without.add(database + ".* (the migrator cannot connect to it: " + e.getMessage() + ")");
        continue;
      }
      try {
        for (String table : column(c, "select format('%I.%I', n.nspname, c.relname) from pg_class c"
            + " join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and c.relpersistence = 'p'"
            + " and n.nspname not in ('pg_catalog', 'information_schema')"
            + " and n.nspname not like 'pg\\_toast%'"
            + " and (c.relreplident = 'n' or c.relreplident = 'd' and not exists (select 1 from pg_index i"
            + " where i.indrelid = c.oid and i.indisprimary))"
            + " and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid"
            + " and d.deptype = 'e') order by 1")) {
          without.add(database + "." + table);
        }
        long count = Long.parseLong(text(c, "select count(*) from pg_largeobject_metadata"));
        if (count > 0) {
          lobs.put(database, count);
        }
      } finally {
        release(c);
      }
    }
    // RDS gives no superuser: there CREATE SUBSCRIPTION needs rds_superuser (its master user's role), and rdsadmin
    // exists only there, so a role of that name elsewhere counts for nothing.
    return new ServerFacts.WayBack(without.build(), lobs.build(),
        bool(source(), "select rolsuper or exists (select 1 from pg_roles a where a.rolname = 'rdsadmin')"
            + " and exists (select 1 from pg_roles r where r.rolname = 'rds_superuser'"
            + " and pg_has_role(current_user, r.oid, 'member')) from pg_roles where rolname = current_user"));
  }

  /** The subscriptions {@link #reach} makes and drops; one left by a crash between the two is dropped first. */
  private static final String PROBE_LIKE = "'turnout\\_probe\\_%'";

  /**
   * Whether the source reaches {@code publisher} as the reverse path's subscriptions will, in each database the path
   * covers: a subscription with their connection string (plus {@code connect_timeout=10}), which CREATE SUBSCRIPTION
   * connects with once ({@code connect = true}: walrcv_connect, "could not connect to the publisher: ..." when it
   * cannot). The publication does not exist yet on the standby, which PostgreSQL only warns of. Made disabled and
   * without a slot, it starts no worker, and its DROP does not connect to the target again.
   */
  private ServerFacts.Reach reach(ServerAddress publisher) throws SQLException {
    List<Database> databases = reverseDatabases();
    ImmutableList.Builder<ServerFacts.Refusal> refused = ImmutableList.builder();
    for (Database d : databases) {
      Connection c = in(spec.source(), d.name());
      try (Statement s = c.createStatement()) {
        for (String leftover : column(c, "select subname from pg_subscription where subname like " + PROBE_LIKE
            + " and subdbid = (select oid from pg_database where datname = current_database())")) {
          s.execute("drop subscription " + quote(leftover));
        }
        String name = "turnout_probe_" + text(c, "select pg_backend_pid()");
        boolean quiet = statementsUnlogged(s, true);
        try {
          s.execute("create subscription " + name + " connection " + literal(conninfo(publisher, d.name())
              + " connect_timeout=10") + " publication " + REVERSE_PUBLICATION + " with (connect = true, enabled ="
              + " false, create_slot = false, copy_data = false, slot_name = NONE)");
          s.execute("drop subscription " + name);
        } catch (SQLException e) {
          if (!c.isValid(2)) {
            throw e; // the source itself went away: not the probe's answer
          }
          refused.add(new ServerFacts.Refusal(d.name(), e.getMessage().replaceFirst("^ERROR: ", "")
              .replaceAll("\\s+", " ").trim()));
        } finally {
          if (quiet) {
            statementsUnlogged(s, false);
          }
        }
      } finally {
        release(c);
      }
    }
    return new ServerFacts.Reach(publisher.toString(), credentials.user(), databases.size(), refused.build(), true);
  }

  /**
   * The probe's statement holds the migrator's password: kept out of the source's log, where PostgreSQL writes a
   * failed statement beside its error (log_min_error_statement) and DDL when asked to (log_statement). Both are
   * superuser settings: where the role may not set them (a managed service's), the probe runs as it is. Returns
   * whether they were set.
   */
  private static boolean statementsUnlogged(Statement s, boolean unlogged) {
    try {
      s.execute(unlogged ? "set log_min_error_statement = panic; set log_statement = none"
          : "reset log_min_error_statement; reset log_statement");
      return true;
    } catch (SQLException e) {
      return false;
    }
  }

  private static ServerFacts.Identity identity(Connection c, ServerAddress address) throws SQLException {
    return new ServerFacts.Identity(address.host(), address.port(), bool(c, "select pg_is_in_recovery()"),
        text(c, "select system_identifier::text from pg_control_system()"));
  }

  private Optional<ServerFacts.Receiver> receiver() throws SQLException {
    try (Statement s = target().createStatement(); ResultSet rs = s.executeQuery(
        "select status, sender_host, sender_port, coalesce(received_tli, 0) from pg_stat_wal_receiver")) {
      if (!rs.next()) {
        return Optional.empty();
      }
      return Optional.of(new ServerFacts.Receiver(rs.getString(1), rs.getString(2), rs.getInt(3), rs.getLong(4)));
    }
  }

  /**
   * What the fence will need and meet: pg_walinspect, a free replication slot to keep the WAL after the final LSN
   * until finalized, the prepared transactions it would wait for, and the roles the standby streams as.
   */
  private ServerFacts.Fence fenceFacts(boolean readTarget) throws SQLException {
    ServerFacts.WalProof proof = new ServerFacts.WalProof(
        bool(source(), "select exists (select 1 from pg_available_extensions where name = 'pg_walinspect')"),
        bool(source(), "select exists (select 1 from pg_extension where extname = 'pg_walinspect')"),
        text(source(), "select current_database()"));
    ServerFacts.HoldSlot hold;
    try (PreparedStatement ps = source().prepareStatement("select exists (select 1 from pg_replication_slots"
        + " where slot_name = ?), (select count(*) from pg_replication_slots),"
        + " current_setting('max_replication_slots')::bigint")) {
      ps.setString(1, holdSlot(spec));
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        hold = new ServerFacts.HoldSlot(holdSlot(spec), rs.getBoolean(1), rs.getLong(2), rs.getLong(3));
      }
    }
    ImmutableList<ServerFacts.Prepared> prepared = prepared(source()).stream().map(p -> new ServerFacts.Prepared(
        p.gid(), p.prepared(), p.owner(), p.database())).collect(ImmutableList.toImmutableList());
    List<String> standby = new ArrayList<>(new java.util.TreeSet<>(standbyRoles(readTarget)));
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
    return new ServerFacts.Fence(proof, hold, prepared, new ServerFacts.StandbyRoles(ImmutableList.copyOf(standby),
        ImmutableList.copyOf(superusers)));
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

  /** The source's tables whose changes physical replication does not carry (they are empty on a promoted replica). */
  private ImmutableList<String> unloggedTables() throws SQLException {
    return ImmutableList.copyOf(column(source(), "select format('%I.%I', n.nspname, c.relname) from pg_class c"
        + " join pg_namespace n on n.oid = c.relnamespace where c.relpersistence = 'u' and c.relkind in ('r', 'p')"
        + " order by 1"));
  }

  @Override
  public void dropSlot(String name) throws MigrationException {
    try (PreparedStatement ps = source().prepareStatement("select pg_drop_replication_slot(slot_name)"
        + " from pg_replication_slots where slot_name = ? and not active")) {
      ps.setString(1, name);
      ps.execute();
    } catch (SQLException e) {
      throw fail("dropping the inactive slot " + name + " on the source " + spec.source(), e);
    }
  }

  @Override
  public void installWalProof() throws MigrationException {
    try (Statement s = source().createStatement()) {
      s.execute("create extension if not exists pg_walinspect");
    } catch (SQLException e) {
      throw fail("installing pg_walinspect on the source " + spec.source(), e);
    }
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
      return new Sample(java.time.Duration.between(java.time.Instant.EPOCH, clock.instant()).toNanos(), src, replay,
          delay);
    } catch (SQLException e) {
      throw fail("sampling replication", e);
    }
  }

  /**
   * Summed over the whole server (every database but the templates), not only the routes' names: the server is
   * what moves (every database on it drains, moves and shifts together), and a route's name need not be a database's.
   * The migrator's own reads count too (a few transactions a second in its database); the commits floor's slack
   * keeps them from mattering. pg_stat_statements is read only where its view is there in the migrator's database;
   * a view there but not loaded (an error) counts as not available, never as a failed read.
   */
  @Override
  public dev.turnout.migrator.bake.Workload workload(Server server) throws MigrationException {
    try {
      Connection c = server == Server.SOURCE ? source() : target();
      dev.turnout.migrator.bake.Workload.Counters counters;
      long connections;
      try (PreparedStatement ps = c.prepareStatement("select coalesce(sum(xact_commit), 0)::int8,"
          + " coalesce(sum(xact_rollback), 0)::int8, coalesce(sum(deadlocks), 0)::int8,"
          + " coalesce(sum(conflicts), 0)::int8, coalesce(sum(temp_bytes), 0)::int8,"
          + " coalesce(sum(numbackends), 0)::int8 from pg_stat_database"
          + " where datname not in ('template0', 'template1')")) {
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          counters = new dev.turnout.migrator.bake.Workload.Counters(rs.getLong(1), rs.getLong(2), rs.getLong(3),
              rs.getLong(4), rs.getLong(5));
          connections = rs.getLong(6);
        }
      }
      Optional<dev.turnout.migrator.bake.Workload.Statements> statements = Optional.empty();
      if (bool(c, "select to_regclass('pg_stat_statements') is not null")) {
        try (PreparedStatement ps = c.prepareStatement("select coalesce(sum(s.calls), 0)::int8,"
            + " coalesce(sum(s.total_exec_time), 0)::float8 from pg_stat_statements s")) {
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            statements = Optional.of(new dev.turnout.migrator.bake.Workload.Statements(rs.getLong(1), rs.getDouble(2)));
          }
        } catch (SQLException notLoaded) {
          // "pg_stat_statements must be loaded via shared_preload_libraries": latency not available
        }
      }
      return new dev.turnout.migrator.bake.Workload(
          java.time.Duration.between(java.time.Instant.EPOCH, clock.instant()).toNanos(), counters, connections,
          statements);
    } catch (SQLException e) {
      throw fail("reading the workload of the " + server.name().toLowerCase(java.util.Locale.ROOT) + " "
          + (server == Server.SOURCE ? spec.source() : spec.target()), e);
    }
  }

  @Override
  public ImmutableList<String> loginRolesToFence(boolean keepStandby) throws MigrationException {
    try {
      // Superusers are refused too (NOLOGIN applies to them); one the migrator could not alter (a provider's own
      // role, when the migrator is not a superuser itself) is left out, and the platform fences it otherwise.
      List<String> roles = loginRoles(source());
      if (keepStandby) {
        roles.removeAll(standbyRoles(true));
      }
      return ImmutableList.copyOf(roles);
    } catch (SQLException e) {
      throw fail("listing login roles", e);
    }
  }

  /**
   * The login roles of the server {@code c} is connected to that the migrator can refuse: all but its own; superusers
   * only when it is one itself (NOLOGIN applies to them too).
   */
  private static List<String> loginRoles(Connection c) throws SQLException {
    return column(c, "select rolname from pg_roles where rolcanlogin and rolname <> current_user"
        + " and (not rolsuper or (select rolsuper from pg_roles where rolname = current_user)) order by rolname");
  }

  /**
   * The roles physical standbys of the source stream as: those of its physical walsenders now, and the user
   * the target's {@code primary_conninfo} names (it may be reconnecting at this moment).
   */
  private Set<String> standbyRoles(boolean readTarget) throws SQLException {
    Set<String> roles = new HashSet<>(column(source(), "select distinct usename::text from pg_stat_activity"
        + " where backend_type = 'walsender' and datid is null and usename is not null"));
    if (!readTarget) {
      return roles;
    }
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
      + " and a.pid not in (select w.pid from pg_stat_subscription w join pg_subscription s on s.oid = w.subid"
      + " where s.subname like 'turnout\\_reverse\\_%' and w.pid is not null)"
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
   * Working: in a statement or a transaction, or logged in within the last second (a connection-per-transaction
   * client between its login and its one transaction). Not "still before its first statement": drivers run
   * statements of their own at login (pgjdbc sends {@code SET application_name}), so a session idle after them
   * may still have its work ahead; the quiesce tells the two apart by having seen it in a transaction or not.
   */
  private static final String BUSY = "(a.state is distinct from 'idle'"
      + " or a.backend_start > clock_timestamp() - interval '1 second')";

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
  public ImmutableList<Session> targetApplicationSessions() throws MigrationException {
    try (Statement s = target().createStatement()) {
      return ImmutableList.copyOf(sessions(s, "select " + SESSION_COLUMNS + " " + APPLICATION_SESSIONS));
    } catch (SQLException e) {
      throw fail("listing the application's sessions on the target " + spec.target(), e);
    }
  }

  @Override
  public void endApplicationSessions(List<Session> sessions) throws MigrationException {
    try {
      endApplicationSessions(source(), sessions);
    } catch (SQLException e) {
      throw fail("ending sessions on the source " + spec.source(), e);
    }
  }

  @Override
  public void endTargetApplicationSessions(List<Session> sessions) throws MigrationException {
    try {
      endApplicationSessions(target(), sessions);
    } catch (SQLException e) {
      throw fail("ending sessions on the target " + spec.target(), e);
    }
  }

  private static void endApplicationSessions(Connection c, List<Session> sessions) throws SQLException {
    if (sessions.isEmpty()) {
      return;
    }
    try (PreparedStatement ps = c.prepareStatement(
        "select pg_terminate_backend(a.pid) " + APPLICATION_SESSIONS + " and a.pid = any(?)")) {
      ps.setArray(1, c.createArrayOf("int4", sessions.stream().map(Session::pid).toArray()));
      ps.execute();
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
    rollBackPrepared(Server.SOURCE, transactions);
  }

  @Override
  public void rollBackTargetPreparedTransactions(List<PreparedTransaction> transactions) throws MigrationException {
    rollBackPrepared(Server.TARGET, transactions);
  }

  private void rollBackPrepared(Server server, List<PreparedTransaction> transactions) throws MigrationException {
    ServerAddress address = server == Server.SOURCE ? spec.source() : spec.target();
    try {
      Connection home = server == Server.SOURCE ? source() : target();
      String here = text(home, "select current_database()");
      for (PreparedTransaction t : transactions) {
        Connection c = t.database().equals(here) ? home : connect(address, t.database());
        try (Statement s = c.createStatement()) {
          s.execute("rollback prepared " + literal(t.gid()));
        } catch (SQLException e) {
          if (!"42704".equals(e.getSQLState())) { // gone meanwhile: committed or rolled back by its owner
            throw e;
          }
        } finally {
          if (c != home) {
            closeQuietly(c);
          }
        }
      }
    } catch (SQLException e) {
      throw fail("rolling back prepared transactions on the " + (server == Server.SOURCE ? "source " : "target ")
          + address, e);
    }
  }

  /** The physical slot that keeps the source's WAL after the final LSN readable until the migration is finalized. */
  static String holdSlot(Migration.Spec spec) {
    String name = "turnout_fence_" + spec.database().toLowerCase(java.util.Locale.ROOT).replaceAll("[^a-z0-9_]", "_");
    return name.length() > 63 ? name.substring(0, 63) : name;
  }

  /** Below the final LSN recorded after the fence, so the proof can read that WAL at finalize too. */
  @Override
  public void holdWal() throws MigrationException {
    try (PreparedStatement ps = source().prepareStatement("select pg_create_physical_replication_slot(?, true)"
        + " where not exists (select 1 from pg_replication_slots where slot_name = ?)")) {
      ps.setString(1, holdSlot(spec));
      ps.setString(2, holdSlot(spec));
      ps.execute();
    } catch (SQLException e) {
      throw fail("creating the fence's WAL hold " + holdSlot(spec) + " on the source " + spec.source(), e);
    }
    try {
      primeWalProof(); // the WAL it holds is what the proof will read
    } catch (SQLException e) {
      throw fail("looking up pg_walinspect on the source " + spec.source(), e);
    }
  }

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
  public void verifyReadOnlyByDefault() throws MigrationException {
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

  @Override
  public void verifySessionsEndedAndLoginsRefused(List<String> roles) throws MigrationException {
    try (Statement s = source().createStatement()) {
      List<Session> open = sessions(s, "select " + SESSION_COLUMNS + " " + SQL_SESSIONS + " and not " + STREAMING_A_SLOT);
      if (!open.isEmpty()) {
        throw new MigrationException("fence of " + spec.source() + " not holding: " + open.size()
            + " session(s) open: " + describe(open));
      }
      List<PreparedTransaction> prepared = prepared(source());
      if (!prepared.isEmpty()) {
        java.time.Instant now = clock.instant();
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
      WalEnd w = walEnd();
      if (w.flushed().atLeast(w.lastRecordEnd())) {
        return w.written();
      }
      awaitFlushed(w.lastRecordEnd());
      return Lsn.parse(text(source(), "select pg_current_wal_lsn()::text"));
    } catch (SQLException e) {
      throw fail("reading the source's final WAL position", e);
    }
  }

  /**
   * Where the source's WAL stands, read in one round trip, in this order: the end of the last record inserted, the
   * flush position, the write position ({@code pg_current_wal_lsn()}); and the schema pg_walinspect is in, quoted
   * (empty when it is not installed).
   */
  private record WalEnd(Lsn lastRecordEnd, Lsn flushed, Lsn written, String walInspectSchema) {}

  /**
   * The insert position points past the header of a page that no record has begun on yet (24 bytes, 40 at the start
   * of a segment); the last record ends before that header.
   */
  private WalEnd walEnd() throws SQLException {
    try (Statement s = source().createStatement(); ResultSet rs = s.executeQuery("select pg_current_wal_insert_lsn()::text,"
        + " (select setting::bigint from pg_settings where name = 'wal_block_size'),"
        + " (select setting::bigint from pg_settings where name = 'wal_segment_size'),"
        + " pg_current_wal_flush_lsn()::text, pg_current_wal_lsn()::text,"
        + " coalesce((select quote_ident(extnamespace::regnamespace::text) from pg_extension"
        + " where extname = 'pg_walinspect'), '')")) {
      rs.next();
      Lsn insert = Lsn.parse(rs.getString(1));
      long page = rs.getLong(2);
      long segment = rs.getLong(3);
      long offset = Long.remainderUnsigned(insert.value(), page);
      boolean segmentStart = Long.remainderUnsigned(insert.value(), segment) == offset;
      Lsn end = offset == (segmentStart ? 40 : 24) ? new Lsn(insert.value() - offset) : insert;
      return new WalEnd(end, Lsn.parse(rs.getString(4)), Lsn.parse(rs.getString(5)), rs.getString(6));
    }
  }

  /** Waits (up to 2 s) until the source has flushed its WAL to {@code lsn}; returns the flush position. */
  private Lsn awaitFlushed(Lsn lsn) throws SQLException {
    try (Statement s = source().createStatement()) {
      for (int attempt = 0; ; attempt++) {
        Lsn flushed;
        try (ResultSet rs = s.executeQuery("select pg_current_wal_flush_lsn()::text")) {
          rs.next();
          flushed = Lsn.parse(rs.getString(1));
        }
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
  /** A commit record's replication origin, as pg_walinspect describes it ({@code origin: node 1, lsn ...}). */
  private static final java.util.regex.Pattern ORIGIN = java.util.regex.Pattern.compile("origin: node (\\d+),");
  private static final java.util.regex.Pattern SUBXACTS = java.util.regex.Pattern.compile("subxacts:((?: \\d+)+)");

  /** The schema pg_walinspect is installed in, quoted; empty when it is not installed. */
  private String walInspectSchema() throws SQLException {
    return text(source(), "select coalesce((select quote_ident(extnamespace::regnamespace::text)"
        + " from pg_extension where extname = 'pg_walinspect'), '')");
  }

  /** The source connection whose backend has made the WAL proof's catalog lookups (see {@link #primeWalProof}). */
  private Connection proofPrimed;

  /**
   * Makes the WAL proof's catalog lookups once in the source connection's backend, before the final LSN: a
   * backend's first read of a catalog page holding dead rows prunes the page, and that WAL record, written after the
   * final LSN by the proof itself, is one nobody flushes but the WAL writer (up to {@code wal_writer_delay} later),
   * and the proof waits for it.
   */
  private void primeWalProof() throws SQLException {
    Connection c = source();
    if (c == proofPrimed) {
      return;
    }
    String schema = walInspectSchema();
    if (!schema.isEmpty()) {
      try (Statement s = c.createStatement()) { // strict: null arguments read nothing, but the function is looked up
        s.executeQuery("select count(*) from " + schema + ".pg_get_wal_records_info(null, null)").close();
      }
    }
    proofPrimed = c;
  }

  /**
   * One transaction of the migrator's that writes one WAL record, a restore point named after the fence's WAL hold
   * (an operator can recover the source to it), committed to the local disk: its commit flushes every WAL record
   * inserted before it, so the final LSN read next need not wait up to {@code wal_writer_delay} for the WAL writer
   * to flush what nobody flushes (heap pruning, an ended session's abort). A transaction that writes no WAL of its
   * own ({@code txid_current()} alone) commits without flushing. It changes no data and lies before the final LSN.
   * Where restore points are refused (a managed service), nothing is flushed, and the final LSN waits for the WAL
   * writer as before.
   */
  @Override
  public void flushWal() throws MigrationException {
    try {
      primeWalProof(); // done while the fence was prepared, unless the connection was replaced since
      try (Statement s = source().createStatement()) {
        s.execute("begin; set local synchronous_commit = local; select txid_current();"
            + " select pg_create_restore_point(" + literal(holdSlot(spec)) + "); commit");
      } catch (SQLException refused) {
        if (refused.getSQLState() != null && refused.getSQLState().startsWith("08")) {
          throw refused;
        }
        try (Statement s = source().createStatement()) {
          s.execute("rollback"); // in case the failure left the transaction open
        }
      }
    } catch (SQLException e) {
      throw fail("flushing the source's WAL before reading the final LSN", e);
    }
  }

  @Override
  public WalCheck commitsAfter(Lsn from) throws MigrationException {
    try {
      WalEnd w = walEnd();
      String schema = w.walInspectSchema();
      if (schema.isEmpty()) {
        throw new MigrationException("database '" + spec.database() + "': pg_walinspect is not installed on "
            + spec.source() + ", so its WAL after the final LSN cannot be checked (preflight installs it)");
      }
      // Up to the end of the last record inserted now, once flushed: pg_walinspect reads flushed WAL only, and
      // the flush position alone may stop inside a record (the WAL writer writes whole pages).
      Lsn end = w.lastRecordEnd();
      Lsn flushed = w.flushed().atLeast(end) ? w.flushed() : awaitFlushed(end);
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
      int replicated = 0;
      // The reverse path commits on the source by design: the transactions the migrator made its subscriptions in
      // (the xmin of their pg_subscription rows), and every commit their apply workers make, which carries the
      // subscription's replication origin (pg_<subscription oid>) in its commit record. Nobody else can commit under
      // that origin: setting up a replication origin session takes a superuser, and the fence refuses every login
      // but the migrator's.
      Set<Long> reverseXids = new HashSet<>();
      Set<Long> reverseOrigins = new HashSet<>();
      for (String x : column(source(), "select xmin::text from pg_subscription where subname like " + REVERSE_LIKE)) {
        reverseXids.add(Long.parseLong(x));
      }
      for (String o : column(source(), "select roident::text from pg_replication_origin where roname in"
          + " (select 'pg_' || oid from pg_subscription where subname like " + REVERSE_LIKE + ")")) {
        reverseOrigins.add(Long.parseLong(o));
      }
      for (Rec commit : records) {
        if (!"Transaction".equals(commit.rm()) || !commit.type().startsWith("COMMIT")) {
          continue;
        }
        java.util.regex.Matcher origin = ORIGIN.matcher(commit.description());
        if (commit.type().equals("COMMIT") && (reverseXids.contains(commit.xid())
            || origin.find() && reverseOrigins.contains(Long.parseLong(origin.group(1))))) {
          replicated++;
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
      return new WalCheck(from, to, findings.build(), exempt, replicated);
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
      ps.setString(1, holdSlot(spec));
      ps.execute();
    } catch (SQLException e) {
      throw fail("dropping the fence's WAL hold " + holdSlot(spec) + " on the source " + spec.source(), e);
    }
  }

  @Override
  public void restoreLogins(List<String> roles) throws MigrationException {
    try {
      alterRoles(source(), roles, "login");
    } catch (SQLException e) {
      throw fail("restoring logins on the source " + spec.source(), e);
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

  /**
   * {@code ALTER SYSTEM} works on a hot standby too. pg_reload_conf() only signals the postmaster: a session that
   * logs in before the postmaster has reloaded still starts read-only. So when writes are let in (before the route
   * is pushed) this waits, for up to 200 ms, until this session's reset value reads off: the postmaster signals the
   * backends once it has reloaded its own settings, so new sessions then start writable (the fence's side is
   * verified the same way, see {@link #verifyReadOnlyByDefault}). A session reloads between statements only, so
   * the wait is a statement per look, not a loop on the server.
   */
  @Override
  public void readOnlyByDefault(Server server, boolean on) throws MigrationException {
    try (Statement s = (server == Server.SOURCE ? source() : target()).createStatement()) {
      s.execute(on ? "alter system set default_transaction_read_only = on"
          : "alter system reset default_transaction_read_only");
      s.execute("select pg_reload_conf()");
      for (int look = 0; !on && look < 200; look++) {
        try (ResultSet rs = s.executeQuery("select reset_val = 'off' from pg_settings"
            + " where name = 'default_transaction_read_only'")) {
          if (rs.next() && rs.getBoolean(1)) {
            break; // (a configuration file that sets it on itself: the looks run out, nothing fails)
          }
        }
        s.execute("select pg_sleep(0.001)");
      }
    } catch (SQLException e) {
      throw fail((on ? "making new sessions read-only on the " : "letting new sessions write on the ")
          + (server == Server.SOURCE ? "source " + spec.source() : "target " + spec.target()), e);
    }
  }

  @Override
  public void promoteTarget() throws MigrationException {
    try {
      if (bool(target(), "select pg_is_in_recovery()")) {
        // pg_promote(wait => true) looks for the end of recovery every 100 ms; the writes are stopped meanwhile,
        // so ask without waiting and look every millisecond, on the server, for up to 60 s: one round trip.
        try (var statement = target().createStatement()) {
          statement.execute("do $$ begin perform pg_promote(false); for i in 1..60000 loop"
              + " exit when not pg_is_in_recovery(); perform pg_sleep(0.001); end loop; end $$");
        }
      }
      long targetTimeline;
      try (Statement s = target().createStatement(); ResultSet rs = s.executeQuery("select pg_is_in_recovery(),"
          + " case when not pg_is_in_recovery() then"
          + " ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end")) {
        rs.next();
        if (rs.getBoolean(1)) {
          throw new MigrationException("database '" + spec.database() + "': " + spec.target() + " did not promote in 60 s");
        }
        targetTimeline = rs.getLong(2);
      }
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
  public boolean targetInRecovery() throws MigrationException {
    try {
      return bool(target(), "select pg_is_in_recovery()");
    } catch (SQLException e) {
      throw fail("asking whether the target is promoted", e);
    }
  }

  @Override
  public boolean syncsFailoverSlots() throws MigrationException {
    try {
      return target().getMetaData().getDatabaseMajorVersion() >= 17
          && bool(target(), "select current_setting('sync_replication_slots')::bool");
    } catch (SQLException e) {
      throw fail("asking whether the target syncs failover slots", e);
    }
  }

  @Override
  public void syncFailoverSlots() throws MigrationException {
    if (!syncsFailoverSlots()) {
      return;
    }
    try {
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
  public void writeProbeTarget() throws MigrationException {
    // In the maintenance database, then in each database the migration moves that exists under its route's name,
    // as its clients connect: each is there and takes a write.
    List<String> databases = new ArrayList<>();
    databases.add("postgres");
    try {
      for (String d : column(target(), "select datname from pg_database where datallowconn order by datname")) {
        if (spec.databases().contains(d) && !d.equals("postgres")) {
          databases.add(d);
        }
      }
    } catch (SQLException e) {
      throw fail("listing the target's databases for the write probe", e);
    }
    for (String database : databases) {
      // As an application connects: the server's defaults (read-only, if the target were still armed) apply.
      try (Connection fresh = DriverManager.getConnection("jdbc:postgresql://" + spec.target() + "/"
          + java.net.URLEncoder.encode(database, java.nio.charset.StandardCharsets.UTF_8), credentials.user(),
          credentials.password())) {
        fresh.setAutoCommit(false);
        try (Statement s = fresh.createStatement()) {
          s.execute("select txid_current()"); // assigns a transaction id: refused by a read-only server
        }
        fresh.commit();
      } catch (SQLException e) {
        throw fail("write probe on the target " + spec.target() + " in database '" + database + "'", e);
      }
    }
  }

  // The reverse path.

  /** The publication in each database of the target; the slots and subscriptions are {@link #reverseName}. */
  static final String REVERSE_PUBLICATION = "turnout_reverse";
  /** Matches the reverse path's slots and subscriptions by name, in a LIKE. */
  private static final String REVERSE_LIKE = "'turnout\\_reverse\\_%'";

  /**
   * The slot on the target and the subscription on the source of one database: named by the database's OID, which a
   * physical replica shares with its primary, so the name is the same on both and unique in the cluster (slot names
   * are cluster-wide, subscription names per database).
   */
  static String reverseName(long databaseOid) {
    return "turnout_reverse_" + databaseOid;
  }

  /** A database of the server: its OID and name. */
  private record Database(long oid, String name) {}

  /**
   * Every database the reverse path covers: the server is what moves, so every one that takes connections, but the
   * templates and RDS's own. Read on the target (the same list as the source's, since the catalog was replicated).
   */
  private List<Database> reverseDatabases() throws SQLException {
    List<Database> result = new ArrayList<>();
    try (Statement s = target().createStatement(); ResultSet rs = s.executeQuery("select oid::int8, datname from"
        + " pg_database where datallowconn and not datistemplate and datname <> 'rdsadmin' order by datname")) {
      while (rs.next()) {
        result.add(new Database(rs.getLong(1), rs.getString(2)));
      }
    }
    return result;
  }

  /** A connection to {@code database} on {@code server}: the migrator's own is to the maintenance database. */
  private Connection in(ServerAddress server, String database) throws SQLException {
    if (database.equals("postgres")) {
      return server.equals(spec.source()) ? source() : target();
    }
    return connect(server, database);
  }

  private void release(Connection c) {
    if (c != source && c != target) {
      closeQuietly(c);
    }
  }

  /**
   * A libpq connection string for the source to reach the target at {@code publisher} as the migrator's role (on
   * Aurora a member of rds_superuser, which holds rds_replication: the role a logical walsender needs there).
   */
  private String conninfo(ServerAddress publisher, String database) {
    StringBuilder b = new StringBuilder();
    b.append("host=").append(conninfoValue(publisher.host())).append(" port=").append(publisher.port())
        .append(" dbname=").append(conninfoValue(database)).append(" user=").append(conninfoValue(credentials.user()))
        .append(" application_name=turnout_reverse");
    if (credentials.password() != null) {
      // Kept in pg_subscription (readable by superusers only), as every subscription's password is.
      b.append(" password=").append(conninfoValue(credentials.password()));
    }
    return b.toString();
  }

  private static String conninfoValue(String v) {
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'";
  }

  /**
   * The publication first, then the slot: pgoutput reads the publication with the snapshot of the change it
   * decodes, so the publication must exist before the slot's start. The target is still read-only by default; the
   * migrator's session is not.
   */
  @Override
  public String startReverseReplication() throws MigrationException {
    try {
      for (Database d : reverseDatabases()) {
        String name = reverseName(d.oid());
        Connection t = in(spec.target(), d.name());
        try (Statement s = t.createStatement()) {
          if (!bool(t, "select exists (select 1 from pg_publication where pubname = " + literal(REVERSE_PUBLICATION) + ")")) {
            s.execute("create publication " + REVERSE_PUBLICATION + " for all tables");
          }
          if (!bool(t, "select exists (select 1 from pg_replication_slots where slot_name = " + literal(name) + ")")) {
            s.execute("select pg_create_logical_replication_slot(" + literal(name) + ", 'pgoutput')");
          }
        } finally {
          release(t);
        }
      }
      return schemaFingerprint();
    } catch (SQLException e) {
      throw fail("making the reverse replication's slots on the target " + spec.target(), e);
    }
  }

  /**
   * The subscription copies nothing ({@code copy_data = false}: the source equals the target at the final LSN) and
   * streams from the slot made at the promotion ({@code create_slot = false}), from its start; it applies
   * transactions in order as they come ({@code streaming = off}), which {@link #reverseAppliedLsn} relies on.
   */
  @Override
  public void subscribeReverse(ServerAddress publisher) throws MigrationException {
    try {
      for (Database d : reverseDatabases()) {
        String name = reverseName(d.oid());
        Connection c = in(spec.source(), d.name());
        try (Statement s = c.createStatement()) {
          if (!bool(c, "select exists (select 1 from pg_subscription where subname = " + literal(name) + ")")) {
            s.execute("create subscription " + name + " connection " + literal(conninfo(publisher, d.name())) + " publication "
                + REVERSE_PUBLICATION + " with (create_slot = false, slot_name = " + literal(name) + ", copy_data ="
                + " false, enabled = true, streaming = off)");
          }
        } finally {
          release(c);
        }
      }
    } catch (SQLException e) {
      throw fail("subscribing the source " + spec.source() + " to the reverse replication from the target "
          + publisher, e);
    }
  }

  /**
   * The target's tables, their columns, types and replica identities, in every database the path covers, hashed:
   * logical replication carries no DDL, so a change here means the source may no longer apply what the target
   * sends (a new column), or applies it differently. Indexes do not count; anything else is taken as DDL.
   */
  private String schemaFingerprint() throws SQLException {
    StringBuilder all = new StringBuilder();
    for (Database d : reverseDatabases()) {
      Connection t = in(spec.target(), d.name());
      try {
        all.append(d.name()).append('=').append(text(t, "select coalesce(md5(string_agg(format('%s.%s:%s:%s:%s:%s',"
            + " n.nspname, c.relname, c.relreplident, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)),"
            + " ',' order by n.nspname, c.relname, a.attnum)), '') from pg_class c"
            + " join pg_namespace n on n.oid = c.relnamespace join pg_attribute a on a.attrelid = c.oid"
            + " where c.relkind in ('r', 'p') and c.relpersistence = 'p' and a.attnum > 0 and not a.attisdropped"
            + " and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%'"))
            .append(';');
      } finally {
        release(t);
      }
    }
    return com.google.common.hash.Hashing.sha256().hashString(all, java.nio.charset.StandardCharsets.UTF_8).toString()
        .substring(0, 16);
  }

  @Override
  public void quickApplyLauncher(boolean on) throws MigrationException {
    try (Statement s = source().createStatement()) {
      if (source().getMetaData().getDatabaseMajorVersion() >= 16) {
        return;
      }
      // Set only over the default, and reset only as set here (an operator's own 100 ms would be reset too).
      boolean change = on ? bool(source(), "select source = 'default' from pg_settings"
          + " where name = 'wal_retrieve_retry_interval'")
          : bool(source(), "select exists (select 1 from pg_file_settings where name = 'wal_retrieve_retry_interval'"
              + " and sourcefile like '%postgresql.auto.conf' and setting = '" + QUICK_LAUNCHER + "')");
      if (change) {
        s.execute(on ? "alter system set wal_retrieve_retry_interval = '" + QUICK_LAUNCHER + "'"
            : "alter system reset wal_retrieve_retry_interval");
        s.execute("select pg_reload_conf()");
      }
    } catch (SQLException e) {
      throw fail((on ? "setting" : "resetting") + " wal_retrieve_retry_interval on the source " + spec.source(), e);
    }
  }

  private static final String QUICK_LAUNCHER = "100ms";

  @Override
  public dev.turnout.migrator.Platform.ReverseHealth reverseHealth(String fingerprint, boolean subscribed)
      throws MigrationException {
    try {
      List<Database> databases = reverseDatabases();
      Map<String, String> slots = new HashMap<>();
      long lag = 0;
      try (Statement s = target().createStatement(); ResultSet rs = s.executeQuery("select slot_name,"
          + " coalesce(pg_current_wal_lsn() - confirmed_flush_lsn, 0)::int8, coalesce(wal_status, '')"
          + " from pg_replication_slots where slot_name like " + REVERSE_LIKE)) {
        while (rs.next()) {
          slots.put(rs.getString(1), rs.getString(3));
          lag = Math.max(lag, rs.getLong(2));
        }
      }
      record Sub(boolean enabled, long errors) {}
      Map<String, Sub> subs = new HashMap<>();
      boolean stats = source().getMetaData().getDatabaseMajorVersion() >= 15;
      try (Statement s = source().createStatement(); ResultSet rs = s.executeQuery("select s.subname::text,"
          + " s.subenabled, " + (stats ? "coalesce((select apply_error_count from pg_stat_subscription_stats x"
          + " where x.subid = s.oid), 0)::int8" : "0::int8") + " from pg_subscription s where s.subname like "
          + REVERSE_LIKE)) {
        while (rs.next()) {
          subs.put(rs.getString(1), new Sub(rs.getBoolean(2), rs.getLong(3)));
        }
      }
      List<String> problems = new ArrayList<>();
      for (Database d : databases) {
        String name = reverseName(d.oid());
        Sub sub = subs.get(name);
        if (!slots.containsKey(name)) {
          problems.add("slot " + name + " (database " + d.name() + ") missing on the target");
        } else if ("lost".equals(slots.get(name))) {
          problems.add("slot " + name + " (database " + d.name() + ") on the target lost its WAL");
        }
        if (sub == null) {
          if (subscribed) {
            problems.add("subscription " + name + " (database " + d.name() + ") missing on the source");
          }
        } else if (!sub.enabled()) {
          problems.add("subscription " + name + " (database " + d.name() + ") disabled on the source");
        } else if (sub.errors() > 0) {
          problems.add("subscription " + name + " (database " + d.name() + ") failed to apply " + sub.errors()
              + " time(s) on the source (see its log)");
        }
      }
      String now = schemaFingerprint();
      if (!now.equals(fingerprint)) {
        problems.add(0, "the target's schema changed since promotion (DDL, which logical replication does not carry)");
      }
      // A subscription's walsender is named after it. Its replay_lag is the time from a commit's WAL on the target
      // to the source's report of having applied it; PostgreSQL shows NULL once the standby has caught up.
      long lagMillis = 0;
      try (Statement s = target().createStatement(); ResultSet rs = s.executeQuery("select coalesce(max(extract(epoch"
          + " from replay_lag) * 1000), 0)::int8 from pg_stat_replication where application_name like "
          + REVERSE_LIKE)) {
        if (rs.next()) {
          lagMillis = rs.getLong(1);
        }
      }
      return new dev.turnout.migrator.Platform.ReverseHealth(lag, lagMillis, problems.isEmpty() ? Optional.empty()
          : Optional.of(String.join("; ", problems)));
    } catch (SQLException e) {
      throw fail("reading the reverse replication", e);
    }
  }

  @Override
  public void refuseLoginsOnTarget(List<String> roles) throws MigrationException {
    try {
      // And every login role the target has now: one created there since the promotion (CREATE ROLE is no table
      // change, so the reverse path stays healthy) would otherwise log in and write after the rollback's last position.
      Set<String> all = new java.util.LinkedHashSet<>(roles);
      all.addAll(loginRoles(target()));
      alterRoles(target(), List.copyOf(all), "nologin");
    } catch (SQLException e) {
      throw fail("refusing logins on the target " + spec.target(), e);
    }
  }

  /**
   * Sessions on the target that can run SQL, but the migrator's, the reverse path's walsenders and autovacuum. The
   * migrator's other connections are known by its application name AND its role: a name alone anyone can claim.
   */
  private static final String TARGET_SESSIONS = "from pg_stat_activity a where a.datid is not null"
      + " and a.pid <> pg_backend_pid() and a.leader_pid is null and a.backend_type in ('client backend', 'walsender')"
      + " and not (a.application_name = 'turnout-migrator' and a.usename = current_user)"
      + " and a.pid not in (select active_pid from pg_replication_slots where slot_name like " + REVERSE_LIKE
      + " and active_pid is not null)";

  @Override
  public int endTargetSessions(boolean slotStreamsToo) throws MigrationException {
    String which = TARGET_SESSIONS + (slotStreamsToo ? "" : " and a.pid not in (select active_pid from"
        + " pg_replication_slots where slot_type = 'logical' and active_pid is not null)");
    try (Statement s = target().createStatement()) {
      Set<Integer> ended = new HashSet<>();
      for (int attempt = 0; attempt < 50; attempt++) {
        List<Integer> left = new ArrayList<>();
        try (ResultSet rs = s.executeQuery("select a.pid " + which)) {
          while (rs.next()) {
            left.add(rs.getInt(1));
          }
        }
        if (left.isEmpty()) {
          return ended.size();
        }
        ended.addAll(left);
        // pg_terminate_backend(pid, 100) waits in steps of 100 ms, one backend after another (three clients' sessions
        // held the fence 300 ms): signal them all, then look every millisecond, on the server, for up to 100 ms,
        // until they have left pg_stat_activity (a backend leaves it after aborting its transaction). The loop
        // around looks again in a new transaction either way.
        s.execute("do $$ declare pids int[]; begin select coalesce(array_agg(a.pid), '{}') into pids " + which + ";"
            + " perform pg_terminate_backend(p) from unnest(pids) p; for i in 1..100 loop perform"
            + " pg_stat_clear_snapshot(); exit when not exists (select 1 from pg_stat_activity where pid = any(pids));"
            + " perform pg_sleep(0.001); end loop; end $$");
      }
      throw new MigrationException("database '" + spec.database() + "': sessions on the target " + spec.target()
          + " did not end");
    } catch (SQLException e) {
      throw fail("ending sessions on the target " + spec.target(), e);
    }
  }

  /**
   * The end of the last record inserted after a commit of the migrator's is past every commit the target took
   * before its fence. That WAL must also be flushed, or the target's walsender cannot decode up to it and the
   * source is not seen to apply it until the WAL writer flushes ({@code wal_writer_delay}, 200 ms): a commit flushes
   * only when its transaction wrote WAL of its own ({@code txid_current()} alone does not), so the transaction writes
   * a restore point (as the source's final LSN does, see {@link #flushWal}); and when another backend inserted
   * records after it (an ended session's abort, pruning), a second one flushes past them. Where restore points are
   * refused, the end is the same and the wait is the WAL writer's, as before.
   */
  @Override
  public Lsn targetEndLsn() throws MigrationException {
    try (Statement s = target().createStatement()) {
      flushTargetWal(s);
      try (ResultSet rs = s.executeQuery("select pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text,"
          + " (select setting::bigint from pg_settings where name = 'wal_block_size'),"
          + " (select setting::bigint from pg_settings where name = 'wal_segment_size')")) {
        rs.next();
        Lsn insert = Lsn.parse(rs.getString(1));
        long page = rs.getLong(3);
        long offset = Long.remainderUnsigned(insert.value(), page);
        boolean segmentStart = Long.remainderUnsigned(insert.value(), rs.getLong(4)) == offset;
        Lsn end = offset == (segmentStart ? 40 : 24) ? new Lsn(insert.value() - offset) : insert;
        if (!Lsn.parse(rs.getString(2)).atLeast(end)) {
          rs.close();
          flushTargetWal(s); // its commit lies after end and flushes every record before it
        }
        return end;
      }
    } catch (SQLException e) {
      throw fail("reading the end of the target's WAL", e);
    }
  }

  /** A commit of the migrator's on the target that flushes the WAL before it (see {@link #targetEndLsn}). */
  private void flushTargetWal(Statement s) throws SQLException {
    try {
      s.execute("begin; set local synchronous_commit = local; select txid_current();"
          + " select pg_create_restore_point('turnout_rollback'); commit");
    } catch (SQLException refused) {
      if (refused.getSQLState() != null && refused.getSQLState().startsWith("08")) {
        throw refused;
      }
      s.execute("rollback"); // in case the failure left the transaction open
      s.execute("begin; set local synchronous_commit = local; select txid_current(); commit");
    }
  }

  /**
   * Per subscription, the later of two positions, each of which the source has applied everything before: the end
   * of WAL the target's walsender last reported in a keepalive ({@code latest_end_lsn}: the apply worker handles
   * messages in order, one at a time, with streaming off, so every change sent before that keepalive is applied and
   * committed), and the slot's confirmed position on the target (flushed by the source). The least over them.
   */
  @Override
  public Lsn reverseAppliedLsn() throws MigrationException {
    try {
      Map<String, Lsn> confirmed = new HashMap<>();
      try (Statement s = target().createStatement(); ResultSet rs = s.executeQuery("select slot_name,"
          + " coalesce(confirmed_flush_lsn, '0/0')::text from pg_replication_slots where slot_name like " + REVERSE_LIKE)) {
        while (rs.next()) {
          confirmed.put(rs.getString(1), Lsn.parse(rs.getString(2)));
        }
      }
      Map<String, Lsn> reported = new HashMap<>();
      try (Statement s = source().createStatement(); ResultSet rs = s.executeQuery("select s.subname::text,"
          + " coalesce(max(w.latest_end_lsn), '0/0')::text from pg_subscription s left join pg_stat_subscription w"
          + " on w.subid = s.oid and w.relid is null where s.subname like " + REVERSE_LIKE + " group by 1")) {
        while (rs.next()) {
          reported.put(rs.getString(1), Lsn.parse(rs.getString(2)));
        }
      }
      Lsn least = null;
      for (Database d : reverseDatabases()) {
        String name = reverseName(d.oid());
        Lsn a = confirmed.getOrDefault(name, new Lsn(0));
        Lsn b = reported.getOrDefault(name, new Lsn(0));
        Lsn applied = a.atLeast(b) ? a : b;
        least = least == null || least.atLeast(applied) ? applied : least;
      }
      return least == null ? new Lsn(0) : least;
    } catch (SQLException e) {
      throw fail("reading how far the source applied the target's WAL", e);
    }
  }

  @Override
  public ImmutableList<Slot> targetSlots() throws MigrationException {
    try {
      return slots(target());
    } catch (SQLException e) {
      throw fail("listing the target's logical slots", e);
    }
  }

  /** {@code origin: node 1, lsn 0/15248C0, at ...}: the position on the target of the commit applied here. */
  private static final java.util.regex.Pattern ORIGIN_LSN = java.util.regex.Pattern.compile(
      "origin: node (\\d+), lsn ([0-9A-Fa-f]+/[0-9A-Fa-f]+)");

  /**
   * Reads the source's commits after the final LSN that carry a reverse subscription's origin (before the
   * subscriptions are dropped: the origins go with them), and for each slot moves the source's slot to the end of the
   * last one whose position on the target its consumer had confirmed there. Logical decoding then skips those
   * commits (their records begin before the slot's position) and sends every later one.
   */
  @Override
  public ImmutableList<String> bringSourceSlotsForward(List<SlotPosition> slotPositions, Lsn finalLsn)
      throws MigrationException {
    ImmutableList.Builder<String> done = ImmutableList.builder();
    try {
      Set<Long> origins = new HashSet<>();
      for (String o : column(source(), "select roident::text from pg_replication_origin where roname in"
          + " (select 'pg_' || oid from pg_subscription where subname like " + REVERSE_LIKE + ")")) {
        origins.add(Long.parseLong(o));
      }
      WalEnd w = walEnd();
      if (!w.flushed().atLeast(w.lastRecordEnd())) {
        // pg_walinspect reads flushed WAL only, and the apply workers commit without flushing: the WAL writer would
        // flush it within wal_writer_delay (200 ms); a restore point's commit flushes it now.
        flushWal();
      }
      Lsn end = w.flushed().atLeast(w.lastRecordEnd()) ? w.lastRecordEnd() : awaitFlushed(w.lastRecordEnd());
      // Applied commits in source order: (position on the target, end on the source).
      List<Lsn[]> applied = new ArrayList<>();
      if (!w.walInspectSchema().isEmpty() && end.atLeast(new Lsn(finalLsn.value() + 1))) {
        try (PreparedStatement ps = source().prepareStatement("select end_lsn::text, description from "
            + w.walInspectSchema() + ".pg_get_wal_records_info(?::pg_lsn, ?::pg_lsn) where resource_manager ="
            + " 'Transaction' and record_type = 'COMMIT' and description like '%origin: node%'")) {
          ps.setString(1, finalLsn.toString());
          ps.setString(2, end.toString());
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              java.util.regex.Matcher o = ORIGIN_LSN.matcher(rs.getString(2));
              if (o.find() && origins.contains(Long.parseLong(o.group(1)))) {
                applied.add(new Lsn[] {Lsn.parse(o.group(2)), Lsn.parse(rs.getString(1))});
              }
            }
          }
        }
      }
      Map<String, Lsn> onTarget = new HashMap<>();
      for (Slot slot : slots(target())) {
        onTarget.put(slot.name(), slot.confirmedLsn());
      }
      for (SlotPosition slot : slotPositions) {
        Lsn confirmed = onTarget.get(slot.name());
        if (confirmed == null) {
          done.add(slot.name() + " not on the target: left at its position on the source");
          continue;
        }
        Lsn to = null;
        int skipped = 0;
        for (Lsn[] a : applied) {
          if (confirmed.atLeast(a[0])) {
            to = a[1];
            skipped++;
          }
        }
        String database;
        Lsn now;
        try (PreparedStatement ps = source().prepareStatement("select database::text,"
            + " coalesce(confirmed_flush_lsn, '0/0')::text from pg_replication_slots where slot_name = ?")) {
          ps.setString(1, slot.name());
          try (ResultSet rs = ps.executeQuery()) {
            if (!rs.next()) {
              done.add(slot.name() + " not on the source");
              continue;
            }
            database = rs.getString(1);
            now = Lsn.parse(rs.getString(2));
          }
        }
        if (to == null || now.atLeast(to)) {
          done.add(slot.name() + " at " + now + " (its consumer confirmed " + confirmed + " on the target; "
              + skipped + " applied commit(s) to skip)");
          continue;
        }
        Connection c = in(spec.source(), database);
        try (PreparedStatement ps = c.prepareStatement("select pg_replication_slot_advance(?, ?::pg_lsn)")) {
          ps.setString(1, slot.name());
          ps.setString(2, to.toString());
          ps.execute();
        } finally {
          release(c);
        }
        done.add(slot.name() + " advanced to " + to + " past " + skipped + " applied commit(s) its consumer"
            + " confirmed on the target (up to " + confirmed + ")");
      }
      return done.build();
    } catch (SQLException e) {
      throw fail("bringing the source's CDC slots forward", e);
    }
  }

  @Override
  public String bringSequencesForward() throws MigrationException {
    int moved = 0;
    int total = 0;
    try {
      for (Database d : reverseDatabases()) {
        Map<String, Long> values = new java.util.LinkedHashMap<>();
        Connection t = in(spec.target(), d.name());
        try (Statement s = t.createStatement(); ResultSet rs = s.executeQuery("select format('%I.%I', schemaname,"
            + " sequencename), last_value from pg_sequences where last_value is not null")) {
          while (rs.next()) {
            values.put(rs.getString(1), rs.getLong(2));
          }
        } finally {
          release(t);
        }
        total += values.size();
        if (values.isEmpty()) {
          continue;
        }
        Connection c = in(spec.source(), d.name());
        // Never backwards: a rollback resumed after the source took writes keeps the source's own higher value.
        try (PreparedStatement ps = c.prepareStatement("select setval(?::regclass, ?, true) from pg_sequences"
            + " where format('%I.%I', schemaname, sequencename) = ? and coalesce(last_value, 0) < ?")) {
          for (Map.Entry<String, Long> e : values.entrySet()) {
            ps.setString(1, e.getKey());
            ps.setLong(2, e.getValue());
            ps.setString(3, e.getKey());
            ps.setLong(4, e.getValue());
            try (ResultSet rs = ps.executeQuery()) {
              if (rs.next()) {
                moved++;
              }
            }
          }
        } finally {
          release(c);
        }
      }
      return "sequences brought forward on the source to the target's values: " + moved + " of " + total
          + " used on the target moved";
    } catch (SQLException e) {
      throw fail("bringing the source's sequences forward to the target's", e);
    }
  }

  /**
   * The subscriptions first, without touching the target (disabled, detached from their slots, dropped): the source
   * must stop applying whatever happens to the target; then the slots (ending the walsenders still on them) and the
   * publications on the target.
   */
  @Override
  public void stopReverseReplication() throws MigrationException {
    stopReverseSubscriptions();
    try {
      try (Statement s = target().createStatement()) {
        for (int attempt = 0; attempt < 100; attempt++) {
          s.execute("select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name like "
              + REVERSE_LIKE + " and active_pid is not null");
          try (ResultSet rs = s.executeQuery("select count(pg_drop_replication_slot(slot_name)) from"
              + " pg_replication_slots where slot_name like " + REVERSE_LIKE + " and not active")) {
            rs.next();
          }
          if (!bool(target(), "select exists (select 1 from pg_replication_slots where slot_name like "
              + REVERSE_LIKE + ")")) {
            break;
          }
          s.execute("select pg_sleep(0.01)");
        }
      }
      for (Database d : reverseDatabases()) {
        Connection t = in(spec.target(), d.name());
        try (Statement s = t.createStatement()) {
          s.execute("drop publication if exists " + REVERSE_PUBLICATION);
        } finally {
          release(t);
        }
      }
    } catch (SQLException e) {
      throw fail("dropping the reverse replication's slots and publications on the target " + spec.target(), e);
    }
  }

  /**
   * Each subscription disabled, detached from its slot and dropped: DROP SUBSCRIPTION stops the apply worker and
   * waits for it to exit, so the source applies nothing more once this returns. The target is not touched.
   */
  @Override
  public void stopReverseSubscriptions() throws MigrationException {
    try {
      List<String[]> subs = new ArrayList<>();
      try (Statement s = source().createStatement(); ResultSet rs = s.executeQuery("select s.subname::text, d.datname"
          + " from pg_subscription s join pg_database d on d.oid = s.subdbid where s.subname like " + REVERSE_LIKE)) {
        while (rs.next()) {
          subs.add(new String[] {rs.getString(1), rs.getString(2)});
        }
      }
      for (String[] sub : subs) {
        Connection c = in(spec.source(), sub[1]);
        try (Statement s = c.createStatement()) {
          s.execute("alter subscription " + quote(sub[0]) + " disable");
          s.execute("alter subscription " + quote(sub[0]) + " set (slot_name = none)");
          s.execute("drop subscription if exists " + quote(sub[0]));
        } finally {
          release(c);
        }
      }
    } catch (SQLException e) {
      throw fail("dropping the reverse replication's subscriptions on the source " + spec.source(), e);
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
