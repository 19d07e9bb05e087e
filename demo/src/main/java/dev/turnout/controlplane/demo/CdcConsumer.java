package dev.turnout.controlplane.demo;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.postgresql.PGConnection;
import org.postgresql.replication.LogSequenceNumber;
import org.postgresql.replication.PGReplicationStream;

/**
 * A change-data-capture consumer as applications run them: a pgjdbc logical replication stream (test_decoding)
 * through the sidecar, confirming what it has processed, reconnecting from its last confirmed position when the
 * connection drops. It records every inserted {@code seq} with the LSN it arrived at.
 */
public final class CdcConsumer implements Runnable, AutoCloseable {
  private static final Pattern SEQ = Pattern.compile("table public\\.writes: INSERT: .*seq\\[bigint\\]:(-?\\d+)");

  /** One inserted row as the consumer saw it. */
  public record Change(long seq, long lsn, int connection) {}

  private final int port;
  private final String slot;
  private final Thread thread;
  private final List<Change> changes = new CopyOnWriteArrayList<>();
  private final AtomicInteger connections = new AtomicInteger();
  private volatile boolean stop;
  private volatile LogSequenceNumber confirmed = LogSequenceNumber.INVALID_LSN;

  /** Whether each connection starts from the slot's own position instead of the LSN confirmed last. */
  private final boolean fromSlot;

  public CdcConsumer(int port, String slot) {
    this(port, slot, false);
  }

  /**
   * @param fromSlot start every connection from the slot's confirmed position (START_REPLICATION ... 0/0) rather than
   *     from the LSN this consumer confirmed last: what a consumer must do once a reconnection may reach a server
   *     whose WAL positions are not the ones it confirmed (the old source after a rollback over reverse replication,
   *     where Turnout moved the slot past what the consumer confirmed on the target)
   */
  public CdcConsumer(int port, String slot, boolean fromSlot) {
    this.port = port;
    this.slot = slot;
    this.fromSlot = fromSlot;
    this.thread = new Thread(this, "cdc-consumer");
  }

  /** The replication connection in use, for {@link #close} to end if its stream does not. */
  private volatile Connection current;

  public CdcConsumer start() {
    thread.start();
    return this;
  }

  @Override
  public void run() {
    while (!stop) {
      int connection = connections.incrementAndGet();
      Properties props = new Properties();
      props.setProperty("user", "postgres");
      props.setProperty("replication", "database");
      props.setProperty("preferQueryMode", "simple");
      props.setProperty("assumeMinServerVersion", "10");
      props.setProperty("sslmode", "disable");
      try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/postgres", props)) {
        current = c;
        PGReplicationStream stream = c.unwrap(PGConnection.class).getReplicationAPI().replicationStream().logical()
            .withSlotName(slot).withStartPosition(fromSlot ? LogSequenceNumber.INVALID_LSN : confirmed).withStatusInterval(200, TimeUnit.MILLISECONDS).start();
        while (!stop) {
          ByteBuffer message = stream.readPending();
          if (message == null) {
            // Everything received is processed: confirm up to what the server has sent, keepalives included.
            LogSequenceNumber received = stream.getLastReceiveLSN();
            if (received.asLong() > confirmed.asLong()) {
              confirm(stream, received);
            }
            Thread.sleep(10);
            continue;
          }
          String text = StandardCharsets.UTF_8.decode(message).toString();
          Matcher m = SEQ.matcher(text);
          LogSequenceNumber lsn = stream.getLastReceiveLSN();
          if (m.find()) {
            changes.add(new Change(Long.parseLong(m.group(1)), lsn.asLong(), connection));
          }
          confirm(stream, lsn);
        }
        stream.close();
      } catch (SQLException e) {
        sleepQuietly(50); // the connection dropped (fence, cutover): reconnect from the confirmed position
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  private void confirm(PGReplicationStream stream, LogSequenceNumber lsn) {
    stream.setAppliedLSN(lsn);
    stream.setFlushedLSN(lsn);
    confirmed = lsn;
  }

  public List<Change> changes() {
    return changes;
  }

  public int connections() {
    return connections.get();
  }

  private static void sleepQuietly(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Stops reading. Ending the stream waits for the server's answer; if that does not come within two seconds the
   * connection is closed under it (nothing is lost: what was confirmed is confirmed).
   */
  @Override
  public void close() throws InterruptedException {
    stop = true;
    thread.join(2_000);
    if (thread.isAlive()) {
      Connection c = current;
      if (c != null) {
        try {
          c.close();
        } catch (SQLException ignored) {
          // closing it is the point
        }
      }
      thread.interrupt();
      thread.join(10_000);
    }
  }
}
