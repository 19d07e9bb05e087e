package dev.turnout.controlplane.store;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.datatype.guava.GuavaModule;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.MigrationStore;
import dev.turnout.migrator.RevisionConflictException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Migrations in the embedded store: one journal per migration, {@code migrations/<id>.log}. A save appends the
 * whole migration as one line (its JSON behind a CRC32C, as the routing journal frames its lines) and fsyncs the
 * file: one disk flush per save, where replacing a file atomically takes two (the file, then its directory), and
 * a cutover saves three times while the writes wait. Loading takes the last intact line, so a save a crash tore
 * leaves the previous state; the torn tail is cut before the next append. A journal grown past
 * {@link #COMPACT_AT} is rewritten to its last line (temporary file, fsync, rename, directory fsync).
 *
 * <p>A save compares the revision it was read at with the one the store holds: the state this process last read
 * or wrote, as long as the journal is the same file of the same size (a stat, no read); otherwise (another
 * process wrote the same directory) the last line again. {@code <id>.json} files of earlier versions (one
 * JSON document, replaced atomically) are read, at revision 0 when they carry none, and give way to a journal at
 * their next save.
 */
public final class FileMigrationStore implements MigrationStore {
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{1,64}");
  /** A journal larger than this is rewritten to its last line after a save. */
  static final long COMPACT_AT = 1 << 20;

  static final ObjectMapper JSON = new ObjectMapper()
      .registerModule(new Jdk8Module())
      .registerModule(new JavaTimeModule())
      .registerModule(new GuavaModule())
      .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
      .disable(SerializationFeature.WRITE_DURATIONS_AS_TIMESTAMPS)
      .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .enable(SerializationFeature.INDENT_OUTPUT);

  private final Path directory;
  /**
   * The state the store holds of each migration this process has read or saved, and the journal it read it from.
   * An entry is read and written only holding its migration's lock ({@link #lockOf}).
   */
  private final Map<String, Held> held = new ConcurrentHashMap<>();
  /**
   * One lock per migration: a save compares and appends holding its migration's lock only, so the saves of
   * different migrations (different journals) do not queue behind each other's fsync. One lock for the whole store
   * made a campaign's 50 concurrent members wait seconds per cutover for the others' disk flushes.
   */
  private final Map<String, Object> locks = new ConcurrentHashMap<>();

  /** A migration as its journal held it when it was that file ({@code fileKey}) of {@code size} bytes. */
  private record Held(Migration migration, Object fileKey, long size) {}

  public FileMigrationStore(Path storeDirectory) throws MigrationException {
    this.directory = storeDirectory.resolve("migrations");
    try {
      Files.createDirectories(directory);
    } catch (IOException e) {
      throw new MigrationException("cannot create " + directory + ": " + e.getMessage(), e);
    }
  }

  @Override
  public Migration save(Migration migration) throws MigrationException {
    if (!ID.matcher(migration.id()).matches()) {
      throw new IllegalArgumentException("migration id '" + migration.id() + "' is not a file-safe name");
    }
    synchronized (lockOf(migration.id())) {
      return saveHoldingLock(migration);
    }
  }

  private Object lockOf(String id) {
    return locks.computeIfAbsent(id, k -> new Object());
  }

  private Migration saveHoldingLock(Migration migration) throws MigrationException {
    Optional<Migration> current = read(migration.id());
    long revision = current.map(Migration::revision).orElse(0L);
    if (revision != migration.revision()) {
      throw new RevisionConflictException(migration, revision, current.map(Migration::phase));
    }
    Migration saved = migration.atRevision(revision + 1);
    Path log = journal(migration.id());
    try {
      boolean created = !Files.exists(log);
      byte[] line = FileRouteStore.frame((ObjectNode) JSON.valueToTree(saved));
      try (FileChannel out = FileChannel.open(log, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
          StandardOpenOption.APPEND)) {
        FileRouteStore.appendDurably(out, line);
        if (out.size() > COMPACT_AT) {
          compact(log, line);
        }
      }
      if (created) {
        fsyncDirectory(); // the new journal's name is durable too
        Files.deleteIfExists(legacy(migration.id())); // the journal, now durable, replaces it
      }
    } catch (IOException e) {
      throw new MigrationException("cannot save " + migration + " in " + directory + ": " + e.getMessage()
          + "; nothing was done for its new state", e);
    }
    remember(saved.id(), saved);
    return saved;
  }

  @Override
  public List<Migration> loadAll() throws MigrationException {
    TreeSet<String> ids = new TreeSet<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(directory, "*.{log,json}")) {
      for (Path file : files) {
        String name = file.getFileName().toString();
        ids.add(name.substring(0, name.lastIndexOf('.')));
      }
    } catch (IOException e) {
      throw new MigrationException("cannot list " + directory + ": " + e.getMessage(), e);
    }
    List<Migration> result = new ArrayList<>();
    for (String id : ids) {
      synchronized (lockOf(id)) {
        held.remove(id); // read again: loadAll is what a restart sees
        read(id).ifPresent(result::add);
      }
    }
    return result;
  }

  private Path journal(String id) {
    return directory.resolve(id + ".log");
  }

  private Path legacy(String id) {
    return directory.resolve(id + ".json");
  }

  /** Keeps {@code m} as what the journal of {@code id} holds, as the journal is now. */
  private void remember(String id, Migration m) throws MigrationException {
    try {
      java.nio.file.attribute.BasicFileAttributes now = Files.readAttributes(journal(id),
          java.nio.file.attribute.BasicFileAttributes.class);
      held.put(id, new Held(m, now.fileKey(), now.size()));
    } catch (IOException e) {
      held.remove(id); // read again next time
    }
  }

  /** What the store holds of {@code id}: the journal's last intact line, else an earlier version's file. */
  private Optional<Migration> read(String id) throws MigrationException {
    Held known = held.get(id);
    if (known != null && known.fileKey() != null) {
      try {
        java.nio.file.attribute.BasicFileAttributes now = Files.readAttributes(journal(id),
            java.nio.file.attribute.BasicFileAttributes.class);
        if (known.fileKey().equals(now.fileKey()) && known.size() == now.size()) {
          return Optional.of(known.migration());
        }
      } catch (IOException e) {
        // gone or unreadable: read below, which says what is wrong
      }
    }
    Optional<Migration> found;
    try {
      found = Files.exists(journal(id)) ? lastIntact(journal(id)) : Optional.empty();
      if (found.isEmpty() && Files.exists(legacy(id))) {
        found = Optional.of(JSON.readValue(legacy(id).toFile(), Migration.class));
      }
    } catch (IOException e) {
      throw new MigrationException("cannot read migration " + id + " in " + directory + ": " + e.getMessage(), e);
    }
    if (found.isPresent() && Files.exists(journal(id))) {
      remember(id, found.get());
    } else {
      held.remove(id);
    }
    return found;
  }

  /**
   * The last intact line of a journal; a torn tail (a save a crash cut short) is cut off the file first. Empty
   * when the first save was torn: the migration was never saved.
   */
  private static Optional<Migration> lastIntact(Path log) throws IOException {
    byte[] bytes = Files.readAllBytes(log);
    int end = bytes.length;
    while (end > 0 && bytes[end - 1] != '\n') {
      end--;
    }
    if (end < bytes.length) {
      try (FileChannel ch = FileChannel.open(log, StandardOpenOption.WRITE)) {
        ch.truncate(end);
        ch.force(false);
      }
    }
    if (end == 0) {
      return Optional.empty();
    }
    int start = end - 1;
    while (start > 0 && bytes[start - 1] != '\n') {
      start--;
    }
    // Only the last whole line counts: falling back to an earlier one would resume from an older state.
    JsonNode node = FileRouteStore.verify(new String(bytes, start, end - 1 - start, StandardCharsets.UTF_8));
    if (node == null) {
      throw new IOException("the last entry of " + log + " is damaged (its checksum does not match); restore the"
          + " file from a backup or remove the line if the migration's servers tell the same state as the line before");
    }
    return Optional.of(JSON.treeToValue(node, Migration.class));
  }

  /** Rewrites {@code log} as its last line alone. */
  private void compact(Path log, byte[] last) throws IOException {
    Path tmp = log.resolveSibling(log.getFileName() + ".compact");
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer buffer = ByteBuffer.wrap(last);
      while (buffer.hasRemaining()) {
        ch.write(buffer);
      }
      ch.force(true);
    }
    Files.move(tmp, log, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    fsyncDirectory();
  }

  private void fsyncDirectory() throws IOException {
    try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ)) {
      dir.force(true);
    }
  }
}
