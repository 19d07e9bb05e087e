package dev.turnout.migrator;

import com.google.common.collect.ImmutableList;
import java.util.ArrayList;
import java.util.List;

/** What the scripted servers and router were asked to do, in the order they were asked, from any thread. */
final class Journal {
  private final List<String> lines = new ArrayList<>();

  synchronized void add(String line) {
    lines.add(line);
  }

  synchronized ImmutableList<String> lines() {
    return ImmutableList.copyOf(lines);
  }

  /** The lines that start with {@code prefix}. */
  synchronized ImmutableList<String> starting(String prefix) {
    return lines.stream().filter(l -> l.startsWith(prefix)).collect(ImmutableList.toImmutableList());
  }

  @Override
  public synchronized String toString() {
    return String.join("\n", lines);
  }
}
