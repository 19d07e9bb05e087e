package dev.turnout.it.bench;

import java.lang.management.ManagementFactory;

/** What every benchmark's main needs: its command-line options, and a heap settled before it is measured. */
final class BenchSupport {
  private BenchSupport() {}

  /**
   * A fresh directory under the system's temporary one, deleted with everything in it when the JVM exits (a
   * migration-bench run leaves 2 GB of PostgreSQL data directories there otherwise). {@code --keep} keeps it.
   */
  static java.nio.file.Path tempDirectory(String prefix, String[] args) throws java.io.IOException {
    java.nio.file.Path dir = java.nio.file.Files.createTempDirectory(prefix);
    if (!java.util.Arrays.asList(args).contains("--keep")) {
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        try {
          com.google.common.io.MoreFiles.deleteRecursively(dir,
              com.google.common.io.RecursiveDeleteOption.ALLOW_INSECURE);
        } catch (java.io.IOException | RuntimeException e) {
          System.err.println("could not delete " + dir + ": " + e);
        }
      }, "delete-" + prefix));
    }
    return dir;
  }

  /** The value after {@code name} in {@code args}, or {@code defaultValue}. */
  static String arg(String[] args, String name, String defaultValue) {
    for (int i = 0; i < args.length - 1; i++) {
      if (args[i].equals(name)) {
        return args[i + 1];
      }
    }
    return defaultValue;
  }

  static int intArg(String[] args, String name, int defaultValue) {
    String v = arg(args, name, null);
    return v == null ? defaultValue : Integer.parseInt(v);
  }

  /** Collects until the used heap stops shrinking, so before/after differences are not garbage. */
  static void settleHeap() throws InterruptedException {
    long last = Long.MAX_VALUE;
    for (int i = 0; i < 5; i++) {
      System.gc();
      Thread.sleep(100);
      long used = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
      if (used >= last) {
        return;
      }
      last = used;
    }
  }

  /** The {@code p}th percentile of {@code values} (nearest rank). */
  static double pct(java.util.List<Double> values, int p) {
    java.util.List<Double> sorted = new java.util.ArrayList<>(values);
    java.util.Collections.sort(sorted);
    return sorted.get((int) Math.min(sorted.size() - 1, Math.ceil(sorted.size() * p / 100.0) - 1));
  }
}
