package dev.turnout.migrator;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.PriorityQueue;
import java.util.concurrent.Future;
import java.util.concurrent.TimeoutException;

/**
 * A clock that moves only when slept on, and the {@link Sleeper} that moves it (grpc-java's FakeClock is the
 * model): tasks scheduled on it run, on the sleeping thread, as time passes them. A migration's two-minute
 * deadline passes in microseconds.
 */
final class FakeClock extends Clock {
  private record Task(Instant at, long seq, Runnable action) {}

  private final Object lock = new Object();
  /** Guarded by {@link #lock}. */
  private Instant now;
  /** Guarded by {@link #lock}; ordered by time, then by when they were scheduled. */
  private final PriorityQueue<Task> tasks = new PriorityQueue<>((a, b) -> a.at.equals(b.at)
      ? Long.compare(a.seq, b.seq) : a.at.compareTo(b.at));
  private long scheduled;

  FakeClock(Instant start) {
    this.now = start;
  }

  @Override
  public Instant instant() {
    synchronized (lock) {
      return now;
    }
  }

  @Override
  public ZoneId getZone() {
    return ZoneOffset.UTC;
  }

  @Override
  public Clock withZone(ZoneId zone) {
    return this;
  }

  /** Runs {@code action} once the clock has moved {@code after} past now. */
  void schedule(Duration after, Runnable action) {
    synchronized (lock) {
      tasks.add(new Task(now.plus(after), scheduled++, action));
    }
  }

  /** Moves the clock by {@code d}, running each task it passes at its own time, outside the lock. */
  void advance(Duration d) {
    Instant until;
    synchronized (lock) {
      until = now.plus(d);
    }
    while (true) {
      Task due;
      synchronized (lock) {
        due = tasks.peek() != null && !tasks.peek().at.isAfter(until) ? tasks.poll() : null;
        if (due == null) {
          if (now.isBefore(until)) {
            now = until;
          }
          return;
        }
        if (now.isBefore(due.at)) {
          now = due.at;
        }
      }
      due.action.run();
    }
  }

  /** When the next task is due, if any. */
  private Instant nextTask() {
    synchronized (lock) {
      return tasks.isEmpty() ? null : tasks.peek().at;
    }
  }

  /** Sleeps by moving this clock; waits for a future by running the tasks due before its deadline. */
  Sleeper sleeper() {
    return new Sleeper() {
      @Override
      public void sleep(Duration d) {
        advance(d);
      }

      @Override
      public void awaitDone(Future<?> future, Duration timeout) throws InterruptedException, TimeoutException {
        Instant deadline = instant().plus(timeout);
        while (!future.isDone()) {
          Instant next = nextTask();
          if (next == null || next.isAfter(deadline)) {
            advance(Duration.between(instant(), deadline));
            if (!future.isDone()) {
              throw new TimeoutException("fake time passed the deadline " + deadline);
            }
            return;
          }
          advance(Duration.between(instant(), next));
        }
      }
    };
  }
}
