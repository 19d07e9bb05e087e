package dev.turnout.controlplane.store;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.guava.GuavaModule;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.MigrationException;
import dev.turnout.migrator.MigrationStore;
import dev.turnout.migrator.Phase;
import dev.turnout.migrator.RevisionConflictException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Migrations in the embedded store: one JSON file per migration under {@code migrations/}, replaced atomically
 * (written to a temporary file, fsynced, renamed over the old one, directory fsynced), so a crash leaves either
 * the previous state or the new one, never half of one. A save compares the revision in the file with the one
 * the change was read at; a file written before revisions were kept is at revision 0.
 */
public final class FileMigrationStore implements MigrationStore {
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{1,64}");

  static final ObjectMapper JSON = new ObjectMapper()
      .registerModule(new Jdk8Module())
      .registerModule(new JavaTimeModule())
      .registerModule(new GuavaModule())
      .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
      .disable(SerializationFeature.WRITE_DURATIONS_AS_TIMESTAMPS)
      .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .enable(SerializationFeature.INDENT_OUTPUT);

  private final Path directory;

  public FileMigrationStore(Path storeDirectory) throws MigrationException {
    this.directory = storeDirectory.resolve("migrations");
    try {
      Files.createDirectories(directory);
    } catch (IOException e) {
      throw new MigrationException("cannot create " + directory + ": " + e.getMessage(), e);
    }
  }

  @Override
  public synchronized Migration save(Migration migration) throws MigrationException {
    if (!ID.matcher(migration.id()).matches()) {
      throw new IllegalArgumentException("migration id '" + migration.id() + "' is not a file-safe name");
    }
    Path file = directory.resolve(migration.id() + ".json");
    Path tmp = directory.resolve(migration.id() + ".json.tmp");
    long held = 0;
    Optional<Phase> heldPhase = Optional.empty();
    if (Files.exists(file)) {
      try {
        JsonNode stored = JSON.readTree(file.toFile());
        held = stored.path("revision").asLong(0);
        heldPhase = Optional.of(Phase.valueOf(stored.path("phase").asText()));
      } catch (IOException | IllegalArgumentException e) {
        throw new MigrationException("cannot read " + file + " to save " + migration + ": " + e.getMessage()
            + "; nothing was done for its new state", e);
      }
    }
    if (held != migration.revision()) {
      throw new RevisionConflictException(migration, held, heldPhase);
    }
    Migration saved = migration.atRevision(held + 1);
    try {
      byte[] bytes = JSON.writeValueAsBytes(saved);
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
          StandardOpenOption.TRUNCATE_EXISTING)) {
        ch.write(java.nio.ByteBuffer.wrap(bytes));
        ch.force(true);
      }
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ)) {
        dir.force(true);
      }
    } catch (IOException e) {
      throw new MigrationException("cannot save " + migration + " in " + directory + ": " + e.getMessage()
          + "; nothing was done for its new state", e);
    }
    return saved;
  }

  @Override
  public synchronized List<Migration> loadAll() throws MigrationException {
    List<Migration> result = new ArrayList<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(directory, "*.json")) {
      for (Path file : files) {
        try {
          result.add(JSON.readValue(file.toFile(), Migration.class));
        } catch (IOException e) {
          throw new MigrationException("cannot read migration " + file + ": " + e.getMessage(), e);
        }
      }
    } catch (IOException e) {
      throw new MigrationException("cannot list " + directory + ": " + e.getMessage(), e);
    }
    return result;
  }
}
