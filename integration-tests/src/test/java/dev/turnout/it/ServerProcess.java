package dev.turnout.it;

import dev.turnout.controlplane.cli.Turnout;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/** A real {@code turnout server} process in its own JVM, its output collected; for kill and pause tests. */
final class ServerProcess implements AutoCloseable {
  final Process process;
  final List<String> output;

  private ServerProcess(Process process, List<String> output) {
    this.process = process;
    this.output = output;
  }

  /** Starts {@code turnout server -c config}; returns once its admin API listens. */
  static ServerProcess start(Path config, String failpoint) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), Turnout.class.getName(), "server", "-c", config.toString())
        .redirectErrorStream(true);
    if (failpoint != null) {
      pb.environment().put("TURNOUT_TEST_FAILPOINT", failpoint);
    }
    Process p = pb.start();
    List<String> output = new CopyOnWriteArrayList<>();
    BufferedReader reader = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    CompletableFuture<Void> listening = new CompletableFuture<>();
    Thread pump = new Thread(() -> {
      try {
        String line;
        while ((line = reader.readLine()) != null) {
          output.add(line);
          if (line.contains("admin API")) {
            listening.complete(null);
          }
        }
      } catch (java.io.IOException e) {
        // the process died
      }
      listening.completeExceptionally(new AssertionError("server exited:\n" + String.join("\n", output)));
    }, "server-output");
    pump.setDaemon(true);
    pump.start();
    listening.get(60, TimeUnit.SECONDS);
    return new ServerProcess(p, output);
  }

  /** Sends {@code signal} (STOP, CONT) to the process. */
  void signal(String signal) throws Exception {
    Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).inheritIO().start();
    if (kill.waitFor() != 0) {
      throw new IllegalStateException("kill -" + signal + " " + process.pid() + " failed");
    }
  }

  /** SIGKILL: no shutdown hook, nothing more written. */
  void killNine() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }

  boolean said(String text) {
    return output.stream().anyMatch(l -> l.contains(text));
  }

  String output() {
    return "; server output:\n" + String.join("\n", output);
  }

  @Override
  public void close() throws InterruptedException {
    if (process.isAlive()) {
      try {
        signal("CONT"); // a paused process cannot die
      } catch (Exception ignored) {
        // gone already
      }
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
  }
}
