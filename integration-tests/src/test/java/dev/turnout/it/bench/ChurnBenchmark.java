package dev.turnout.it.bench;

import static dev.turnout.it.bench.BenchSupport.arg;
import static dev.turnout.it.bench.BenchSupport.settleHeap;

import com.google.common.collect.ImmutableList;
import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.config.TurnoutConfig;
import dev.turnout.controlplane.config.Durations;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.it.SimulatedSidecar;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Benchmark: a fleet that churns. N ADS streams (state of the world, ACKing like Envoy) from a second JVM, R of
 * them replaced every second by sidecars with new node ids (what Kubernetes does on every deploy; with
 * --distinct-services each new one also has a service name of its own), while one database's endpoint moves
 * every second. Every minute it prints the control plane's resident memory, live heap, threads, open
 * descriptors, the sidecars it lists and has forgotten, the p99 of the moves' ACK times, and the stack traces
 * it has logged. Asserts nothing: it reports.
 *
 * <pre>mvn -q -pl integration-tests exec:java@churn-bench -Dexec.args="--streams 1000 --rate 50 --minutes 10"</pre>
 * Options: --databases N (default 20), --forget DURATION (xds.forget_nodes_after, default 1m),
 * --distinct-services.
 */
public final class ChurnBenchmark {

  public static void main(String[] args) throws Exception {
    if (args.length > 0 && args[0].equals("--client-process")) {
      clientProcess(Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]),
          Boolean.parseBoolean(args[4]));
      return;
    }
    int streams = Integer.parseInt(arg(args, "--streams", "1000"));
    int rate = Integer.parseInt(arg(args, "--rate", "50"));
    int minutes = Integer.parseInt(arg(args, "--minutes", "10"));
    int databases = Integer.parseInt(arg(args, "--databases", "20"));
    Duration forget = Durations.parse("--forget", arg(args, "--forget", "1m"));
    boolean distinct = List.of(args).contains("--distinct-services");
    Path dir = BenchSupport.tempDirectory("turnout-churn", args);
    // The control plane logs to stderr: count the stack-trace lines it prints, keep the rest in a file.
    AtomicLong stackLines = new AtomicLong();
    PrintStream log = new PrintStream(Files.newOutputStream(dir.resolve("control-plane.log")), true);
    System.setErr(new PrintStream(new LineCounter(log, stackLines), true));

    List<DatabaseRoute> routes = new ArrayList<>();
    for (int i = 0; i < databases; i++) {
      routes.add(new DatabaseRoute("db" + i, 20000 + i, Optional.of(new Endpoint("10.1.0." + (i + 1), 5432)),
          Set.of()));
    }
    TurnoutConfig config = new TurnoutConfig(new TurnoutConfig.Servers("127.0.0.1", 0, 0, 0),
        dir.resolve("store"),
        new TurnoutConfig.Xds(Duration.ofSeconds(10), Duration.ZERO, TurnoutConfig.DEFAULT_DNS_REFRESH, forget),
        ImmutableList.copyOf(routes), TurnoutConfig.MigratorSettings.DEFAULT);
    System.out.printf(Locale.ROOT, "%nchurn: %d streams, %d replaced per second%s, %d databases, one endpoint move"
        + " per second, %d minutes, xds.forget_nodes_after %s, %d cores; log in %s%n", streams, rate,
        distinct ? " (each with a service of its own)" : "", databases, minutes, forget,
        Runtime.getRuntime().availableProcessors(), dir.resolve("control-plane.log"));
    System.out.printf(Locale.ROOT, "%6s %9s %10s %8s %6s %8s %10s %10s %12s %8s%n", "minute", "RSS MiB",
        "heap MiB", "threads", "fds", "listed", "connected", "forgotten", "ACK p99 ms", "stacks");
    try (ControlPlane plane = ControlPlane.start(config)) {
      Process clients = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-Xss512k", "-cp", XdsFanoutBenchmark.classPath(), ChurnBenchmark.class.getName(), "--client-process",
          Integer.toString(plane.xdsPort()), Integer.toString(streams), Integer.toString(rate),
          Boolean.toString(distinct))
          .redirectErrorStream(true).redirectOutput(dir.resolve("clients.log").toFile()).start();
      try {
        long start = System.nanoTime();
        int move = 0;
        for (int minute = 1; minute <= minutes; minute++) {
          List<Long> acks = new ArrayList<>();
          long minuteEnd = start + TimeUnit.MINUTES.toNanos(minute);
          while (System.nanoTime() < minuteEnd) {
            long t0 = System.nanoTime();
            try {
              var result = plane.routing().route("db" + (move % databases),
                  new Endpoint("10.2." + (move / 250 % 250) + "." + (move % 250 + 1), 5432)).get(30, TimeUnit.SECONDS);
              acks.add(result.ack().elapsed().toMillis());
            } catch (java.util.concurrent.ExecutionException e) {
              acks.add(Long.MAX_VALUE); // not ACKed by every sidecar within the deadline: counts as the worst
            }
            move++;
            long left = TimeUnit.SECONDS.toNanos(1) - (System.nanoTime() - t0);
            if (left > 0) {
              TimeUnit.NANOSECONDS.sleep(left);
            }
          }
          settleHeap();
          long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
          var counts = plane.tracker().counts();
          Collections.sort(acks);
          long p99 = acks.isEmpty() ? 0 : acks.get((int) Math.min(acks.size() - 1, Math.ceil(acks.size() * 0.99) - 1));
          System.out.printf(Locale.ROOT, "%6d %9.1f %10.1f %8d %6d %8d %10d %10d %12s %8d%n", minute,
              rssKib() / 1024.0, heap / 1048576.0, ManagementFactory.getThreadMXBean().getThreadCount(),
              descriptors(), plane.tracker().nodes().size(), counts.connected(), counts.forgotten(),
              p99 == Long.MAX_VALUE ? "timeout" : Long.toString(p99), stackLines.get());
        }
      } finally {
        clients.getOutputStream().close();
        if (!clients.waitFor(60, TimeUnit.SECONDS)) {
          clients.destroyForcibly();
        }
      }
    }
    System.out.println("goal: 1,000 streams, 50 replaced per second, 10 minutes: every figure flat, 0 stack traces");
    System.exit(0);
  }

  /** The load: {@code streams} sidecars, {@code rate} replaced each second, until stdin closes. */
  private static void clientProcess(int port, int streams, int rate, boolean distinct) throws Exception {
    List<ManagedChannel> channels = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      channels.add(NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build());
    }
    Random random = new Random(42);
    long[] next = {0};
    java.util.function.Supplier<SimulatedSidecar> open = () -> {
      long id = next[0]++;
      return new SimulatedSidecar(channels.get((int) (id % channels.size())), "pod-" + id,
          distinct ? "svc-" + id : "app");
    };
    List<SimulatedSidecar> live = new ArrayList<>();
    for (int i = 0; i < streams; i++) {
      live.add(open.get());
    }
    Thread replacer = new Thread(() -> {
      try {
        while (true) {
          long t0 = System.nanoTime();
          for (int i = 0; i < rate; i++) {
            int victim = random.nextInt(live.size());
            live.get(victim).close();
            live.set(victim, open.get());
          }
          long left = TimeUnit.SECONDS.toNanos(1) - (System.nanoTime() - t0);
          if (left > 0) {
            TimeUnit.NANOSECONDS.sleep(left);
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
    replacer.setDaemon(true);
    replacer.start();
    while (System.in.read() != -1) {
      // until the benchmark closes our stdin
    }
    System.exit(0);
  }

  private static long rssKib() throws Exception {
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    return -1;
  }

  private static long descriptors() throws Exception {
    try (var fds = Files.list(Path.of("/proc/self/fd"))) {
      return fds.count();
    }
  }

  /** Passes every byte on, counting the lines that are stack-trace frames. */
  private static final class LineCounter extends OutputStream {
    private final OutputStream out;
    private final AtomicLong frames;
    private final StringBuilder line = new StringBuilder();

    LineCounter(OutputStream out, AtomicLong frames) {
      this.out = out;
      this.frames = frames;
    }

    @Override
    public synchronized void write(int b) throws java.io.IOException {
      out.write(b);
      if (b == '\n') {
        if (line.toString().startsWith("\tat ")) {
          frames.incrementAndGet();
        }
        line.setLength(0);
      } else if (line.length() < 8) {
        line.append((char) b);
      }
    }
  }
}
