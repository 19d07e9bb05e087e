package dev.turnout.controlplane.store;

import dev.turnout.migrator.campaign.Campaign;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The campaigns of the embedded store: one file {@code <store>/campaigns/<id>.json} each, replaced whole at every
 * save (written beside it, fsynced, renamed over it, the directory fsynced), so a crash leaves the old state or
 * the new one, never a mix. A campaign changes a few times per member, not per step: the whole file is cheap.
 */
public final class FileCampaignStore implements CampaignStore {
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{1,64}");
  private final Path directory;

  public FileCampaignStore(Path storeDirectory) throws StoreException {
    this.directory = storeDirectory.resolve("campaigns");
    try {
      Files.createDirectories(directory);
    } catch (IOException e) {
      throw new StoreException("cannot create " + directory + ": " + e.getMessage(), e);
    }
  }

  @Override
  public synchronized Campaign save(Campaign campaign) throws StoreException {
    if (!ID.matcher(campaign.id()).matches()) {
      throw new StoreException("campaign id '" + campaign.id() + "' is not 1 to 64 letters, digits, '-' or '_'");
    }
    Path file = directory.resolve(campaign.id() + ".json");
    long held = Files.exists(file) ? read(file).revision() : 0;
    if (held != campaign.revision()) {
      throw new StaleCampaignException(campaign, held);
    }
    Campaign saved = campaign.atRevision(campaign.revision() + 1);
    Path next = directory.resolve(campaign.id() + ".json.next");
    try {
      byte[] body = FileMigrationStore.JSON.writeValueAsBytes(saved);
      try (FileChannel ch = FileChannel.open(next, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
          StandardOpenOption.TRUNCATE_EXISTING)) {
        ByteBuffer buffer = ByteBuffer.wrap(body);
        while (buffer.hasRemaining()) {
          ch.write(buffer);
        }
        ch.force(true);
      }
      try {
        Files.move(next, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(next, file, StandardCopyOption.REPLACE_EXISTING);
      }
      try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ)) {
        dir.force(true);
      } catch (IOException ignored) {
        // some file systems cannot sync a directory; the rename is still atomic
      }
    } catch (IOException e) {
      throw new StoreException("cannot save campaign " + campaign.id() + " in " + file + ": " + e.getMessage(), e);
    }
    return saved;
  }

  @Override
  public synchronized List<Campaign> loadAll() throws StoreException {
    List<Campaign> out = new ArrayList<>();
    try (Stream<Path> files = Files.list(directory)) {
      for (Path file : files.filter(f -> f.getFileName().toString().endsWith(".json")).sorted().toList()) {
        out.add(read(file));
      }
    } catch (IOException e) {
      throw new StoreException("cannot list " + directory + ": " + e.getMessage(), e);
    }
    return out;
  }

  private static Campaign read(Path file) throws StoreException {
    try {
      return FileMigrationStore.JSON.readValue(Files.readAllBytes(file), Campaign.class);
    } catch (IOException e) {
      throw new StoreException("campaign file " + file + " is not readable: " + e.getMessage(), e);
    }
  }
}
