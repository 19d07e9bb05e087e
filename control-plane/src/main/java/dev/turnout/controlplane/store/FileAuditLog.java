package dev.turnout.controlplane.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The embedded store's audit log: {@code audit.journal} in the store directory, one JSON line per call prefixed by
 * its CRC32C (as {@code routes.journal}), appended and fsynced before the call is answered.
 *
 * <p>Bounded: when it reaches twice {@link #KEPT} lines it is rewritten with the newest {@code KEPT} (a temporary
 * file, fsynced, renamed over it), at open or as it is appended to. A line torn by a crash at the tail is cut off
 * at open; a damaged line before the tail is skipped with a warning (the routing table does not depend on it).
 *
 * <p>It lives in a directory a {@link FileRouteStore} has locked: one process writes it.
 */
public final class FileAuditLog implements AuditLog, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(FileAuditLog.class);
  static final String JOURNAL = "audit.journal";
  /** How many entries the journal keeps through a rewrite: about 4 MB of typical entries. */
  static final int KEPT = 10_000;
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path directory;
  private final Path journal;
  private final Clock clock;
  private final int kept;
  @GuardedBy("this")
  private FileChannel out;
  @GuardedBy("this")
  private long lastId;
  @GuardedBy("this")
  private int lines;

  private FileAuditLog(Path directory, Clock clock, int kept) {
    this.directory = directory;
    this.journal = directory.resolve(JOURNAL);
    this.clock = clock;
    this.kept = kept;
  }

  /** Opens (creating if needed) {@code audit.journal} in {@code directory}, which the caller has locked. */
  static FileAuditLog open(Path directory, Clock clock) throws StoreException {
    return open(directory, clock, KEPT);
  }

  /** As {@link #open(Path, Clock)}, keeping {@code kept} entries through a rewrite (tests use few). */
  static FileAuditLog open(Path directory, Clock clock, int kept) throws StoreException {
    FileAuditLog audit = new FileAuditLog(directory, clock, kept);
    synchronized (audit) {
      audit.load();
    }
    return audit;
  }

  /** A line read back: its entry, or null when damaged. */
  private record Line(Entry entry, int number) {}

  @GuardedBy("this")
  private void load() throws StoreException {
    byte[] bytes;
    try {
      bytes = Files.exists(journal) ? Files.readAllBytes(journal) : new byte[0];
    } catch (IOException e) {
      throw new StoreException("cannot read the audit log " + journal + ": " + e.getMessage(), e);
    }
    long good = 0;
    int start = 0;
    int count = 0;
    while (start < bytes.length) {
      int end = indexOf(bytes, start);
      if (end < 0) {
        break; // torn tail: never fsynced, so never answered
      }
      JsonNode node = FileRouteStore.verify(new String(bytes, start, end - start, StandardCharsets.UTF_8));
      count++;
      if (node == null && end + 1 >= bytes.length) {
        count--;
        break; // a damaged last line is a torn one
      }
      if (node == null) {
        log.warn("{} line {} is damaged (checksum mismatch); it is skipped", journal, count);
      } else {
        lastId = Math.max(lastId, node.path("id").asLong());
      }
      start = end + 1;
      good = start;
    }
    lines = count;
    try {
      if (good < bytes.length) {
        try (FileChannel ch = FileChannel.open(journal, StandardOpenOption.WRITE)) {
          ch.truncate(good);
          ch.force(true);
        }
      }
      out = FileChannel.open(journal, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
      fsyncDirectory();
      if (lines >= 2 * kept) {
        rewrite();
      }
    } catch (IOException e) {
      throw new StoreException("cannot open the audit log " + journal + " for writing: " + e.getMessage(), e);
    }
  }

  @Override
  public synchronized Entry append(Caller caller, Request request, Outcome outcome) throws StoreException {
    if (out == null) {
      throw new StoreException("the audit log " + journal + " is closed");
    }
    Entry entry = new Entry(lastId + 1, clock.instant(), caller, request, outcome);
    try {
      FileRouteStore.appendDurably(out, FileRouteStore.frame(encode(entry)));
    } catch (IOException e) {
      throw new StoreException("cannot write the audit log " + journal + ": " + e.getMessage(), e);
    }
    lastId = entry.id();
    lines++;
    if (lines >= 2 * kept) {
      try {
        rewrite();
      } catch (IOException e) {
        // The entry is recorded; the file is only longer than it should be until a rewrite succeeds.
        log.warn("cannot rewrite the audit log {} down to its newest {} entries: {}", journal, kept, e.getMessage());
      }
    }
    return entry;
  }

  /** Replaces the journal with its newest {@link #kept} entries, atomically. */
  @GuardedBy("this")
  private void rewrite() throws IOException {
    List<Entry> all = readAll();
    List<Entry> newest = all.subList(Math.max(0, all.size() - kept), all.size());
    Path tmp = directory.resolve(JOURNAL + ".rewrite");
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      for (Entry e : newest) {
        ByteBuffer buffer = ByteBuffer.wrap(FileRouteStore.frame(encode(e)));
        while (buffer.hasRemaining()) {
          ch.write(buffer);
        }
      }
      ch.force(true);
    }
    Files.move(tmp, journal, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    fsyncDirectory();
    out.close();
    out = FileChannel.open(journal, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    lines = newest.size();
    log.info("audit log {} rewritten with its newest {} entries (ids {} to {})", journal, newest.size(),
        newest.isEmpty() ? 0 : newest.get(0).id(), lastId);
  }

  @Override
  public synchronized ImmutableList<Entry> list(long beforeId, int limit) throws StoreException {
    List<Entry> all;
    try {
      all = readAll();
    } catch (IOException e) {
      throw new StoreException("cannot read the audit log " + journal + ": " + e.getMessage(), e);
    }
    ImmutableList.Builder<Entry> page = ImmutableList.builder();
    int n = 0;
    for (int i = all.size() - 1; i >= 0 && n < limit; i--) {
      if (all.get(i).id() < beforeId) {
        page.add(all.get(i));
        n++;
      }
    }
    return page.build();
  }

  /** Every readable entry in file order (oldest first). Damaged lines were named at open; here they are skipped. */
  @GuardedBy("this")
  private List<Entry> readAll() throws IOException {
    List<Entry> entries = new ArrayList<>();
    if (!Files.exists(journal)) {
      return entries;
    }
    for (String line : Files.readAllLines(journal, StandardCharsets.UTF_8)) {
      JsonNode node = FileRouteStore.verify(line);
      if (node != null) {
        entries.add(decode(node));
      }
    }
    return entries;
  }

  static ObjectNode encode(Entry e) {
    ObjectNode node = JSON.createObjectNode();
    node.put("id", e.id());
    node.put("at", e.at().toString());
    node.put("who", e.caller().identity());
    node.put("from", e.caller().address());
    node.put("call", e.request().call());
    node.put("database", e.request().database());
    node.put("migration", e.request().migrationId());
    ObjectNode details = node.putObject("details");
    e.request().details().forEach(details::put);
    node.put("code", e.outcome().code());
    node.put("description", e.outcome().description());
    return node;
  }

  static Entry decode(JsonNode node) {
    java.util.Map<String, String> details = new java.util.LinkedHashMap<>();
    for (Iterator<String> names = node.path("details").fieldNames(); names.hasNext(); ) {
      String name = names.next();
      details.put(name, node.path("details").path(name).asText());
    }
    Instant at;
    try {
      at = Instant.parse(node.path("at").asText());
    } catch (DateTimeParseException e) {
      at = Instant.EPOCH;
    }
    return new Entry(node.path("id").asLong(), at,
        new Caller(node.path("who").asText(), node.path("from").asText()),
        new Request(node.path("call").asText(), node.path("database").asText(), node.path("migration").asText(),
            ImmutableMap.copyOf(details)),
        new Outcome(node.path("code").asText(), node.path("description").asText()));
  }

  private void fsyncDirectory() throws IOException {
    try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ)) {
      dir.force(true);
    }
  }

  private static int indexOf(byte[] bytes, int from) {
    for (int i = from; i < bytes.length; i++) {
      if (bytes[i] == '\n') {
        return i;
      }
    }
    return -1;
  }

  /** For tests and tools: the journal file. */
  public Path journalFile() {
    return journal;
  }

  @Override
  public synchronized void close() throws StoreException {
    if (out == null) {
      return;
    }
    try {
      out.close();
    } catch (IOException e) {
      throw new StoreException("cannot close the audit log " + journal + ": " + e.getMessage(), e);
    } finally {
      out = null;
    }
  }
}
