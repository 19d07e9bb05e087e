package dev.turnout.migrator.platform.postgres;

import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.ServerAddress;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Set;

/**
 * Makes a physical streaming standby of a source on the same host, with the SQL backup API
 * ({@code pg_backup_start} / file copy / {@code pg_backup_stop}), so it works with binaries that have no
 * pg_basebackup and across versions pg_basebackup refuses. The standby streams through a physical slot
 * created first, so the source keeps the WAL the copy needs.
 */
public final class SameHostReplica {

  /**
   * What to copy where: the source's data directory (readable on this host), the new standby's directory
   * (must not exist), the port it will listen on, and the role it replicates as.
   */
  public record Plan(Path sourceDataDir, Path targetDataDir, ServerAddress source, int targetPort, String slot,
      String replicationUser) {}

  /** Never copied: the running server's own state, WAL (streamed instead) and slots (the source's own). */
  private static final Set<String> SKIP_CONTENTS = Set.of("pg_wal", "pg_replslot", "pg_stat_tmp", "pg_notify",
      "pg_serial", "pg_snapshots", "pg_subtrans", "pg_dynshmem");
  private static final Set<String> SKIP_FILES = Set.of("postmaster.pid", "postmaster.opts", "backup_label",
      "tablespace_map", "standby.signal", "recovery.signal", "backup_label.old");

  private SameHostReplica() {}

  /**
   * Creates the standby's data directory; the caller starts it. Backup start and stop use one session, as the
   * non-exclusive backup API requires.
   */
  public static void create(Connection sourceAdmin, Plan plan) throws MigrationException {
    if (Files.exists(plan.targetDataDir())) {
      throw new MigrationException("cannot create a replica in " + plan.targetDataDir() + ": it already exists");
    }
    try (Statement s = sourceAdmin.createStatement()) {
      try (PreparedStatement ps = sourceAdmin.prepareStatement(
          "select 1 from pg_replication_slots where slot_name = ?")) {
        ps.setString(1, plan.slot());
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) {
            try (PreparedStatement create = sourceAdmin.prepareStatement(
                "select pg_create_physical_replication_slot(?, true)")) { // reserve WAL now
              create.setString(1, plan.slot());
              create.execute();
            }
          }
        }
      }
      int version = serverVersion(s);
      s.execute(version >= 150000 ? "select pg_backup_start('turnout replica', true)"
          : "select pg_start_backup('turnout replica', true, false)");
      String label;
      String spcmap;
      try {
        copy(plan.sourceDataDir(), plan.targetDataDir());
      } finally {
        try (ResultSet rs = s.executeQuery(version >= 150000
            ? "select labelfile, spcmapfile from pg_backup_stop(true)"
            : "select labelfile, spcmapfile from pg_stop_backup(false, true)")) {
          rs.next();
          label = rs.getString(1);
          spcmap = rs.getString(2);
        }
      }
      Path target = plan.targetDataDir();
      Files.writeString(target.resolve("backup_label"), label, StandardCharsets.UTF_8);
      if (spcmap != null && !spcmap.isEmpty()) {
        Files.writeString(target.resolve("tablespace_map"), spcmap, StandardCharsets.UTF_8);
      }
      Files.writeString(target.resolve("standby.signal"), "", StandardCharsets.UTF_8);
      // Settings the source was started with on its command line are not in the copied files: carry them over,
      // so the standby has what a hot standby needs (at least the source's max_connections, and so on).
      StringBuilder inherited = new StringBuilder("\n# added by turnout: the source's command-line settings\n");
      try (ResultSet rs = s.executeQuery("select name, setting from pg_settings where source = 'command line'"
          + " and name not in ('port', 'data_directory', 'config_file', 'hba_file', 'ident_file')")) {
        while (rs.next()) {
          inherited.append(rs.getString(1)).append(" = '").append(rs.getString(2).replace("'", "''")).append("'\n");
        }
      }
      Files.writeString(target.resolve("postgresql.auto.conf"), inherited + "\n# added by turnout: stream from the source\n"
          + "primary_conninfo = 'host=" + plan.source().host() + " port=" + plan.source().port() + " user="
          + plan.replicationUser() + " dbname=postgres application_name=turnout_replica'\n"
          + "primary_slot_name = '" + plan.slot() + "'\n"
          + "port = " + plan.targetPort() + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    } catch (SQLException e) {
      throw new MigrationException("creating a replica of " + plan.source() + " in " + plan.targetDataDir()
          + ": " + e.getMessage(), e);
    } catch (IOException e) {
      throw new MigrationException("copying " + plan.sourceDataDir() + " to " + plan.targetDataDir() + ": " + e, e);
    }
  }

  /**
   * Starts the standby with {@code pg_ctl} (it outlives this process, as a server should), logging next to its
   * data directory. PostgreSQL refuses to run as root: as root it runs in a user namespace ({@code unshare -U}).
   */
  public static void start(Path binDir, Path dataDir) throws MigrationException {
    Path log = dataDir.resolveSibling(dataDir.getFileName() + ".log");
    java.util.List<String> command = asServerUser(java.util.List.of(binDir.resolve("pg_ctl").toString(), "-D",
        dataDir.toString(), "-l", log.toString(), "-w", "-t", "60", "start"));
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (p.waitFor() != 0) {
        throw new MigrationException("pg_ctl start of the replica in " + dataDir + " failed: " + out.trim()
            + "; see " + log);
      }
    } catch (IOException e) {
      throw new MigrationException("cannot run " + binDir.resolve("pg_ctl") + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new MigrationException("interrupted while starting the replica in " + dataDir);
    }
  }

  /**
   * A PostgreSQL server command (initdb, pg_ctl, postgres) as this process may run it: PostgreSQL refuses to
   * run as root, so as root it runs in a new user namespace ({@code unshare -U}), where it is not root and the
   * files it makes still belong to this user outside.
   */
  public static java.util.List<String> asServerUser(java.util.List<String> command) {
    if (!"root".equals(System.getProperty("user.name"))) {
      return command;
    }
    java.util.List<String> wrapped = new java.util.ArrayList<>(java.util.List.of("unshare", "-U"));
    wrapped.addAll(command);
    return wrapped;
  }

  private static int serverVersion(Statement s) throws SQLException {
    try (ResultSet rs = s.executeQuery("show server_version_num")) {
      rs.next();
      return Integer.parseInt(rs.getString(1));
    }
  }

  /** Copies the data directory; files may change or vanish while the server runs, which the WAL replay repairs. */
  private static void copy(Path from, Path to) throws IOException {
    Files.createDirectories(to);
    Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rwx------"));
    Files.walkFileTree(from, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
        Path rel = from.relativize(dir);
        Path dest = to.resolve(rel.toString());
        Files.createDirectories(dest);
        Files.setPosixFilePermissions(dest, PosixFilePermissions.fromString("rwx------"));
        return rel.getNameCount() == 1 && SKIP_CONTENTS.contains(rel.toString())
            ? FileVisitResult.SKIP_SUBTREE : FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
        Path rel = from.relativize(file);
        if (rel.getNameCount() == 1 && SKIP_FILES.contains(rel.toString())) {
          return FileVisitResult.CONTINUE;
        }
        try {
          Files.copy(file, to.resolve(rel.toString()), StandardCopyOption.REPLACE_EXISTING);
        } catch (java.nio.file.NoSuchFileException vanished) {
          // dropped by the running server during the copy: replay recreates what matters
        }
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
        if (e instanceof java.nio.file.NoSuchFileException) {
          return FileVisitResult.CONTINUE;
        }
        throw e;
      }
    });
  }
}
