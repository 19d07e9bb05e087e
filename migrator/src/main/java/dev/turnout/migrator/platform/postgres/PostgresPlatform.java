package dev.turnout.migrator.platform.postgres;

import com.google.common.collect.ImmutableList;
import dev.turnout.migrator.Lsn;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.Platform;
import dev.turnout.migrator.ServerAddress;
import dev.turnout.migrator.SlotPosition;
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

  private final Migration.Spec spec;
  private final Credentials credentials;
  private Connection source;
  private Connection target;

  public PostgresPlatform(Migration.Spec spec, Credentials credentials) {
    this.spec = spec;
    this.credentials = credentials;
  }

  /** A factory connecting every migration with the same credentials. */
  public static Platform.Factory factory(Credentials credentials) {
    return spec -> new PostgresPlatform(spec, credentials);
  }

  private Connection connect(ServerAddress server) throws SQLException {
    Properties props = new Properties();
    props.setProperty("user", credentials.user());
    if (credentials.password() != null) {
      props.setProperty("password", credentials.password());
    }
    props.setProperty("connectTimeout", "10");
    props.setProperty("socketTimeout", "120");
    props.setProperty("sslmode", "prefer");
    props.setProperty("ApplicationName", "turnout-migrator");
    Connection c = DriverManager.getConnection("jdbc:postgresql://" + server + "/postgres", props);
    c.setAutoCommit(true);
    try (Statement s = c.createStatement()) {
      // The migrator's own session must be able to write where the servers default to read-only.
      s.execute("SET default_transaction_read_only = off");
    }
    return c;
  }

  private Connection source() throws SQLException {
    if (source == null || !source.isValid(2)) {
      closeQuietly(source);
      source = connect(spec.source());
    }
    return source;
  }

  private Connection target() throws SQLException {
    if (target == null || !target.isValid(2)) {
      closeQuietly(target);
      target = connect(spec.target());
    }
    return target;
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
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(60);
    while (true) {
      try {
        if (bool(target(), "select pg_is_in_recovery()")
            && "streaming".equals(text(target(), "select coalesce((select status from pg_stat_wal_receiver), '')"))) {
          return Optional.of(done);
        }
      } catch (SQLException e) {
        // still starting
      }
      if (System.nanoTime() > deadline) {
        throw new MigrationException("database '" + spec.database() + "': the replica in " + replica.targetDataDir()
            + " did not start streaming within 60 s; see its log next to the data directory");
      }
      try {
        Thread.sleep(100);
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
      return new Sample(System.nanoTime(), src, replay, delay);
    } catch (SQLException e) {
      throw fail("sampling replication", e);
    }
  }

  @Override
  public ImmutableList<String> loginRolesToFence() throws MigrationException {
    try {
      return ImmutableList.copyOf(column(source(), "select rolname from pg_roles where rolcanlogin"
          + " and rolname <> current_user and not rolreplication order by rolname"));
    } catch (SQLException e) {
      throw fail("listing login roles", e);
    }
  }

  @Override
  public void fence(List<String> roles) throws MigrationException {
    try (Statement s = source().createStatement()) {
      s.execute("alter system set default_transaction_read_only = on");
      s.execute("select pg_reload_conf()");
    } catch (SQLException e) {
      throw fail("fencing the source " + spec.source(), e);
    }
    refuseLogins(roles);
    endClientSessions();
  }

  /** Sets {@code roles} NOLOGIN on the source ({@code ALTER ROLE} replicates to the target). */
  public void refuseLogins(List<String> roles) throws MigrationException {
    try (Statement s = source().createStatement()) {
      for (String role : roles) {
        s.execute("alter role " + quote(role) + " nologin");
      }
    } catch (SQLException e) {
      throw fail("refusing logins on the source " + spec.source(), e);
    }
  }

  /** Ends every client session on the source but the migrator's own; sessions opened before a fence keep their rights. */
  public void endClientSessions() throws MigrationException {
    try (Statement s = source().createStatement()) {
      for (int attempt = 0; attempt < 50; attempt++) {
        if (clientSessions(s) == 0) {
          return;
        }
        s.execute("select pg_terminate_backend(a.pid) " + CLIENT_SESSIONS);
        s.execute("select pg_sleep(0.05)");
      }
      throw new MigrationException("database '" + spec.database() + "': client sessions on " + spec.source()
          + " did not end");
    } catch (SQLException e) {
      throw fail("ending client sessions on the source " + spec.source(), e);
    }
  }

  /**
   * The source's client sessions but the migrator's own. A PostgreSQL 17 standby's slot-sync worker reads the
   * primary's slots over an ordinary connection made with the standby's own conninfo, reconnecting at once when
   * ended; it writes nothing, so a session with the user and address of a physical walsender and either its
   * application name (set in primary_conninfo) or the worker's default one is not counted.
   */
  private static final String CLIENT_SESSIONS = "from pg_stat_activity a where a.backend_type = 'client backend'"
      + " and a.pid <> pg_backend_pid() and not exists (select 1 from pg_stat_activity w"
      + " where w.backend_type = 'walsender' and w.datname is null and w.usename = a.usename"
      + " and w.client_addr is not distinct from a.client_addr"
      + " and (w.application_name = a.application_name or a.application_name like '%slotsync worker'))";

  private static int clientSessions(Statement s) throws SQLException {
    try (ResultSet rs = s.executeQuery("select count(*) " + CLIENT_SESSIONS)) {
      rs.next();
      return rs.getInt(1);
    }
  }

  @Override
  public void verifyFence(List<String> roles) throws MigrationException {
    verifySessionsEndedAndLoginsRefused(roles);
    try (Connection fresh = DriverManager.getConnection("jdbc:postgresql://" + spec.source() + "/postgres",
        credentials.user(), credentials.password());
         Statement fs = fresh.createStatement();
         ResultSet rs = fs.executeQuery("show default_transaction_read_only")) {
      rs.next();
      if (!"on".equals(rs.getString(1))) {
        throw new MigrationException("fence of " + spec.source() + " not holding: new sessions are not read-only");
      }
    } catch (SQLException e) {
      throw fail("verifying the fence of " + spec.source(), e);
    }
  }

  /** Throws unless no client session is open on the source and none of {@code roles} can log in. */
  public void verifySessionsEndedAndLoginsRefused(List<String> roles) throws MigrationException {
    try (Statement s = source().createStatement()) {
      int sessions = clientSessions(s);
      if (sessions != 0) {
        throw new MigrationException("fence of " + spec.source() + " not holding: " + sessions
            + " client session(s) open: " + String.join(", ", column(source(), "select format('%s@%s (%s)',"
            + " a.usename, coalesce(a.client_addr::text, 'local'), coalesce(nullif(a.application_name, ''), 'no name'))"
            + " " + CLIENT_SESSIONS)));
      }
      List<String> stillLogin = new ArrayList<>();
      for (String role : roles) {
        try (PreparedStatement ps = source().prepareStatement("select rolcanlogin from pg_roles where rolname = ?")) {
          ps.setString(1, role);
          try (ResultSet rs = ps.executeQuery()) {
            if (rs.next() && rs.getBoolean(1)) {
              stillLogin.add(role);
            }
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

  @Override
  public void unfence(List<String> roles) throws MigrationException {
    restoreLogins(roles);
    try (Statement s = source().createStatement()) {
      s.execute("alter system reset default_transaction_read_only");
      s.execute("select pg_reload_conf()");
    } catch (SQLException e) {
      throw fail("unfencing the source " + spec.source(), e);
    }
  }

  /** Undo of {@link #refuseLogins}. */
  public void restoreLogins(List<String> roles) throws MigrationException {
    try (Statement s = source().createStatement()) {
      for (String role : roles) {
        s.execute("alter role " + quote(role) + " login");
      }
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
        if (!bool(target(), "select pg_promote(true, 60)")) {
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
      if (Integer.parseInt(text(target(), "show server_version_num")) < 170000
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
    try (Statement s = target().createStatement()) {
      for (String role : roles) {
        s.execute("alter role " + quote(role) + " login");
      }
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
