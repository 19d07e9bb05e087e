package dev.turnout.controlplane.demo;

import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.platform.postgres.SameHostReplica;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.tukaani.xz.XZInputStream;

/**
 * PostgreSQL for the demo, from the binaries on the classpath (Maven Central's io.zonky.test.postgres):
 * extracted in Java, clusters made with initdb, servers run with pg_ctl. PostgreSQL refuses to run as root, so
 * as root every server command runs in a user namespace ({@code unshare -U}).
 */
public final class LocalPostgres {
  private LocalPostgres() {}

  /** Extracts the binaries under {@code home} and returns their bin directory. */
  public static Path extract(Path home) throws IOException {
    try (InputStream raw = LocalPostgres.class.getResourceAsStream("/postgres-linux-x86_64.txz")) {
      if (raw == null) {
        throw new IOException("postgres-linux-x86_64.txz is not on the classpath");
      }
      try (TarArchiveInputStream tar = new TarArchiveInputStream(new XZInputStream(raw))) {
        TarArchiveEntry entry;
        while ((entry = tar.getNextEntry()) != null) {
          Path out = home.resolve(entry.getName()).normalize();
          if (!out.startsWith(home)) {
            throw new IOException("archive entry outside the target: " + entry.getName());
          }
          if (entry.isDirectory()) {
            Files.createDirectories(out);
          } else if (entry.isSymbolicLink()) {
            Files.createDirectories(out.getParent());
            Files.deleteIfExists(out);
            Files.createSymbolicLink(out, Path.of(entry.getLinkName()));
          } else {
            Files.createDirectories(out.getParent());
            Files.copy(tar, out, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            if ((entry.getMode() & 0100) != 0) {
              Files.setPosixFilePermissions(out, PosixFilePermissions.fromString("rwxr-xr-x"));
            }
          }
        }
      }
    }
    return home.resolve("bin");
  }

  /** initdb a cluster in {@code data} (trust auth, user postgres) with {@code settings} in postgresql.auto.conf. */
  public static void initdb(Path bin, Path data, List<String> settings) throws IOException, MigrationException {
    run(List.of(bin.resolve("initdb").toString(), "-D", data.toString(), "-U", "postgres", "-A", "trust",
        "--no-sync", "-E", "UTF8", "--locale=C"), data.resolveSibling("initdb.log"));
    StringBuilder conf = new StringBuilder();
    for (String s : settings) {
      int eq = s.indexOf('=');
      conf.append(s, 0, eq).append(" = '").append(s.substring(eq + 1)).append("'\n");
    }
    Files.writeString(data.resolve("postgresql.auto.conf"), conf, java.nio.file.StandardOpenOption.APPEND);
  }

  public static void start(Path bin, Path data) throws MigrationException {
    SameHostReplica.start(bin, data);
  }

  /** Fast shutdown; a server that is not running is fine. */
  public static void stop(Path bin, Path data) {
    if (!Files.exists(data.resolve("postmaster.pid"))) {
      return;
    }
    try {
      run(List.of(bin.resolve("pg_ctl").toString(), "-D", data.toString(), "-m", "fast", "-w", "stop"),
          data.resolveSibling(data.getFileName() + "-stop.log"));
    } catch (IOException | MigrationException e) {
      System.err.println("could not stop the server in " + data + ": " + e.getMessage());
    }
  }

  private static void run(List<String> command, Path log) throws IOException, MigrationException {
    Process p = new ProcessBuilder(SameHostReplica.asServerUser(command)).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    try {
      if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new MigrationException(command.get(0) + " failed: " + Files.readString(log, StandardCharsets.UTF_8));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new MigrationException("interrupted running " + command.get(0));
    }
  }
}
