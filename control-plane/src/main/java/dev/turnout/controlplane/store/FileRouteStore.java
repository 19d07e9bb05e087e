package dev.turnout.controlplane.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.zip.CRC32C;

/**
 * The embedded default store: an append-only journal of JSON lines in a data directory, each line prefixed by
 * its CRC32C, written and fsynced before a change is published.
 *
 * <p>A line torn by a crash (no newline, or a bad checksum at the tail) is dropped at load and cut off the file:
 * the change it held was never published, because publishing waits for the fsync. A bad checksum anywhere
 * before the tail means the file was damaged, and loading refuses rather than guessing. At open the journal
 * is compacted once it has grown past {@link #COMPACT_AFTER_LINES}, keeping each database's latest
 * {@link #HISTORY_KEPT} changes: the last is its route, the others its history.
 *
 * <p>One process owns a data directory at a time (an OS file lock on {@code LOCK}).
 */
public final class FileRouteStore implements RouteStore {
  static final String JOURNAL = "routes.journal";
  static final int COMPACT_AFTER_LINES = 10_000;
  /** How many changes of each database {@link #history} keeps, in memory and through a compaction. */
  static final int HISTORY_KEPT = 100;

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path directory;
  private final Path journal;
  private final FileChannel lockChannel;
  private final FileLock lock;
  /** When a change is recorded, kept with it for its history. */
  private final Clock clock;
  /** Guarded by {@code this}: appends are serialized. */
  private FileChannel out;
  /** Guarded by {@code this}: the audit log beside the journal, opened when first asked for. */
  private FileAuditLog audit;
  /** Guarded by {@code this}: each database's latest changes, oldest first, at most {@link #HISTORY_KEPT}. */
  private final Map<String, Deque<Recorded>> history = new HashMap<>();

  private FileRouteStore(Path directory, FileChannel lockChannel, FileLock lock, Clock clock) {
    this.directory = directory;
    this.clock = clock;
    this.journal = directory.resolve(JOURNAL);
    this.lockChannel = lockChannel;
    this.lock = lock;
  }

  /** Opens (creating if needed) the store in {@code directory}, taking its lock. */
  public static FileRouteStore open(Path directory) throws StoreException {
    return open(directory, Clock.systemUTC());
  }

  /** As {@link #open(Path)}, recording the time of each change from {@code clock}. */
  public static FileRouteStore open(Path directory, Clock clock) throws StoreException {
    try {
      Files.createDirectories(directory);
    } catch (IOException e) {
      throw new StoreException("cannot create data directory " + directory + ": " + describe(e), e);
    }
    FileChannel channel;
    FileLock lock;
    try {
      channel = FileChannel.open(directory.resolve("LOCK"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      try {
        lock = channel.tryLock();
      } catch (java.nio.channels.OverlappingFileLockException e) {
        lock = null; // held by this same process
      }
    } catch (IOException e) {
      throw new StoreException("cannot lock data directory " + directory + ": " + describe(e), e);
    }
    if (lock == null) {
      closeQuietly(channel);
      throw new StoreException("data directory " + directory + " is in use by another turnout process");
    }
    return new FileRouteStore(directory, channel, lock, clock);
  }

  @Override
  public synchronized State load() throws StoreException {
    Map<String, RouteRecord> routes = new LinkedHashMap<>();
    long highest = 0;
    long goodBytes = 0;
    int lines = 0;
    history.clear();
    byte[] bytes;
    try {
      bytes = Files.exists(journal) ? Files.readAllBytes(journal) : new byte[0];
    } catch (IOException e) {
      throw new StoreException("cannot read " + journal + ": " + describe(e), e);
    }
    int start = 0;
    while (start < bytes.length) {
      int end = indexOf(bytes, (byte) '\n', start);
      if (end < 0) {
        break; // torn tail: never fsynced, never published
      }
      String line = new String(bytes, start, end - start, StandardCharsets.UTF_8);
      JsonNode entry = verify(line);
      if (entry == null) {
        if (end + 1 < bytes.length) {
          throw new StoreException(journal + " line " + (lines + 1) + " is damaged (checksum mismatch) and is not the"
              + " last line; refusing to guess the routing table. Restore the data directory from a backup.");
        }
        break;
      }
      // A batch's records are one line, so a crash leaves all of them or none (a migration's databases move in one
      // version: never some of them).
      Iterable<JsonNode> entries = entry.path("op").asText().equals("batch") ? entry.path("entries") : List.of(entry);
      for (JsonNode e : entries) {
        highest = Math.max(highest, e.path("version").asLong());
        if (e.path("op").asText().equals("put")) {
          RouteRecord record = decode(e);
          routes.put(record.route().name(), record);
          remember(new Recorded(record, at(entry.has("entries") ? entry : e)));
        }
      }
      lines++;
      start = end + 1;
      goodBytes = start;
    }
    try {
      if (goodBytes < bytes.length) {
        try (FileChannel ch = FileChannel.open(journal, StandardOpenOption.WRITE)) {
          ch.truncate(goodBytes);
          ch.force(true);
        }
      }
      int kept = 1 + history.values().stream().mapToInt(Deque::size).sum();
      if (lines > COMPACT_AFTER_LINES && lines > 2 * kept) {
        compact(highest);
      }
      out = FileChannel.open(journal, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
      fsyncDirectory();
    } catch (IOException e) {
      throw new StoreException("cannot open " + journal + " for writing: " + describe(e), e);
    }
    return new State(ImmutableMap.copyOf(routes), highest);
  }

  /** One process owns this store: it is always the leader, and the record keeps its own version. */
  @Override
  public synchronized long append(RouteRecord record, Writer writer) throws StoreException {
    ObjectNode entry = encode(record);
    Instant at = clock.instant();
    entry.put("at", at.toString());
    write(entry);
    remember(new Recorded(record, Optional.of(at)));
    return record.version();
  }

  /**
   * Writes {@code records} as one line (a batch: {@code {"op":"batch","at":...,"entries":[...]}}, one record alone
   * as itself) and fsyncs once. A crash in the middle tears that one line, which load drops: none of them is
   * durable, and none was published, since publishing waits for this.
   */
  @Override
  public synchronized List<Long> appendAll(List<RouteRecord> records, Writer writer) throws StoreException {
    if (records.isEmpty()) {
      return List.of();
    }
    Instant at = clock.instant();
    List<Long> versions = new java.util.ArrayList<>(records.size());
    ObjectNode batch = JSON.createObjectNode();
    batch.put("op", "batch");
    batch.put("at", at.toString());
    ArrayNode entries = batch.putArray("entries");
    for (RouteRecord record : records) {
      entries.add(encode(record));
      versions.add(record.version());
    }
    if (records.size() == 1) {
      ObjectNode entry = (ObjectNode) entries.get(0);
      entry.put("at", at.toString());
      write(entry);
    } else {
      write(batch);
    }
    for (RouteRecord record : records) {
      remember(new Recorded(record, Optional.of(at)));
    }
    return versions;
  }

  private void remember(Recorded recorded) {
    Deque<Recorded> changes = history.computeIfAbsent(recorded.record().route().name(), k -> new ArrayDeque<>());
    changes.addLast(recorded);
    while (changes.size() > HISTORY_KEPT) {
      changes.removeFirst();
    }
  }

  @Override
  public synchronized ImmutableList<Recorded> history(String database, long beforeVersion, int limit) {
    ImmutableList.Builder<Recorded> page = ImmutableList.builder();
    Deque<Recorded> changes = history.getOrDefault(database, new ArrayDeque<>());
    int n = 0;
    for (Iterator<Recorded> it = changes.descendingIterator(); it.hasNext() && n < limit; ) {
      Recorded r = it.next();
      if (r.record().version() < beforeVersion) {
        page.add(r);
        n++;
      }
    }
    return page.build();
  }

  private static Optional<Instant> at(JsonNode entry) {
    try {
      return entry.path("at").isTextual() ? Optional.of(Instant.parse(entry.path("at").asText())) : Optional.empty();
    } catch (DateTimeParseException e) {
      return Optional.empty(); // a time this version cannot read loses the time, not the route
    }
  }

  @Override
  public synchronized long reserveVersion(long version) throws StoreException {
    ObjectNode entry = JSON.createObjectNode();
    entry.put("op", "reserve");
    entry.put("version", version);
    write(entry);
    return version;
  }

  /**
   * Appends one framed line to a journal and fsyncs it. On failure whatever part of the line reached the file is
   * cut off again, so a later append does not follow garbage (opening a journal drops a torn tail anyway).
   */
  static void appendDurably(FileChannel out, byte[] line) throws IOException {
    long before = -1;
    try {
      before = out.size();
      ByteBuffer buffer = ByteBuffer.wrap(line);
      while (buffer.hasRemaining()) {
        out.write(buffer);
      }
      out.force(false);
    } catch (IOException e) {
      if (before >= 0) {
        try {
          out.truncate(before);
        } catch (IOException ignored) {
          // the next open cuts the torn tail
        }
      }
      throw e;
    }
  }

  private void write(ObjectNode entry) throws StoreException {
    writeFramed(frame(entry));
  }

  private void writeFramed(byte[] lines) throws StoreException {
    if (out == null) {
      throw new IllegalStateException("load() the store before appending");
    }
    try {
      appendDurably(out, lines);
    } catch (IOException e) {
      throw new StoreException("cannot write the routing journal " + journal + ": " + describe(e)
          + "; the change was not made", e);
    }
  }

  /** Rewrites the journal as each database's kept history in order, its route last; times kept. */
  private void compact(long highest) throws IOException {
    Path tmp = directory.resolve(JOURNAL + ".compact");
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      ObjectNode reserve = JSON.createObjectNode();
      reserve.put("op", "reserve");
      reserve.put("version", highest);
      ch.write(ByteBuffer.wrap(frame(reserve)));
      for (Deque<Recorded> changes : history.values()) {
        for (Recorded r : changes) {
          ObjectNode entry = encode(r.record());
          r.at().ifPresent(at -> entry.put("at", at.toString()));
          ch.write(ByteBuffer.wrap(frame(entry)));
        }
      }
      ch.force(true);
    }
    Files.move(tmp, journal, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  private void fsyncDirectory() throws IOException {
    try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ)) {
      dir.force(true);
    }
  }

  static byte[] frame(ObjectNode entry) {
    String json;
    try {
      json = JSON.writeValueAsString(entry);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    CRC32C crc = new CRC32C();
    byte[] body = json.getBytes(StandardCharsets.UTF_8);
    crc.update(body);
    return (String.format("%08x ", crc.getValue()) + json + "\n").getBytes(StandardCharsets.UTF_8);
  }

  static JsonNode verify(String line) {
    if (line.length() < 10 || line.charAt(8) != ' ') {
      return null;
    }
    String json = line.substring(9);
    CRC32C crc = new CRC32C();
    crc.update(json.getBytes(StandardCharsets.UTF_8));
    if (!String.format("%08x", crc.getValue()).equals(line.substring(0, 8))) {
      return null;
    }
    try {
      return JSON.readTree(json);
    } catch (IOException e) {
      return null;
    }
  }

  static ObjectNode encode(RouteRecord record) {
    ObjectNode entry = JSON.createObjectNode();
    DatabaseRoute route = record.route();
    entry.put("op", "put");
    entry.put("version", record.version());
    entry.put("cause", record.cause());
    entry.put("database", route.name());
    entry.put("port", route.listenPort());
    if (route.endpoint().isPresent()) {
      entry.put("endpoint", route.endpoint().get().toString());
    } else {
      entry.putNull("endpoint");
    }
    ArrayNode services = entry.putArray("services");
    route.services().forEach(services::add);
    record.hostname().ifPresent(h -> entry.put("hostname", h));
    record.operator().ifPresent(o -> {
      entry.put("by", o.identity());
      entry.put("reason", o.reason());
    });
    return entry;
  }

  static RouteRecord decode(JsonNode entry) {
    Set<String> services = new HashSet<>();
    entry.path("services").forEach(s -> services.add(s.asText()));
    JsonNode endpoint = entry.path("endpoint");
    DatabaseRoute route = new DatabaseRoute(entry.path("database").asText(), entry.path("port").asInt(),
        endpoint.isNull() || endpoint.isMissingNode() ? Optional.empty() : Optional.of(Endpoint.parse(endpoint.asText())),
        services);
    JsonNode hostname = entry.path("hostname");
    // Records written before operators could change routes have neither "by" nor "reason".
    Optional<RouteRecord.Operator> operator = entry.path("by").isTextual()
        ? Optional.of(new RouteRecord.Operator(entry.path("by").asText(), entry.path("reason").asText()))
        : Optional.empty();
    return new RouteRecord(route, entry.path("version").asLong(), entry.path("cause").asText(),
        hostname.isTextual() ? Optional.of(hostname.asText()) : Optional.empty(), operator);
  }

  private static int indexOf(byte[] bytes, byte b, int from) {
    for (int i = from; i < bytes.length; i++) {
      if (bytes[i] == b) {
        return i;
      }
    }
    return -1;
  }

  private static String describe(IOException e) {
    if (e instanceof AccessDeniedException) {
      return "permission denied";
    }
    String message = e.getMessage();
    return message == null ? e.getClass().getSimpleName() : message;
  }

  private static void closeQuietly(AutoCloseable c) {
    try {
      c.close();
    } catch (Exception ignored) {
      // closing on an error path
    }
  }

  /** {@code audit.journal} beside the routing journal, under the same lock; closed with the store. */
  @Override
  public synchronized AuditLog audit() throws StoreException {
    if (audit == null) {
      audit = FileAuditLog.open(directory, clock);
    }
    return audit;
  }

  @Override
  public synchronized void close() throws StoreException {
    try {
      if (audit != null) {
        audit.close();
      }
      if (out != null) {
        out.close();
      }
      lock.release();
      lockChannel.close();
    } catch (IOException e) {
      throw new StoreException("cannot close the store in " + directory + ": " + describe(e), e);
    }
  }

  /** For tests and tools: the journal file. */
  public Path journalFile() {
    return journal;
  }

  /** For tests: every line of the journal as stored. */
  List<String> lines() throws IOException {
    return Files.readAllLines(journal);
  }
}
