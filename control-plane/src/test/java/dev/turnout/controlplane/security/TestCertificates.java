package dev.turnout.controlplane.security;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A throwaway CA and certificates made with the machine's openssl, for mTLS tests. */
public final class TestCertificates {
  final Path dir;

  public TestCertificates(Path dir) throws Exception {
    this.dir = dir;
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-subj", "/CN=turnout-test-ca", "-days", "2");
    issue("turnout-control-plane", "subjectAltName=IP:127.0.0.1,DNS:localhost");
  }

  /** Issues {@code name}.crt/.key with subject CN=name, signed by the CA. */
  public void issue(String name) throws Exception {
    issue(name, "subjectAltName=DNS:" + name);
  }

  private void issue(String name, String extension) throws Exception {
    Files.writeString(dir.resolve(name + ".ext"), extension + "\n");
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name);
    openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext");
  }

  public Path crt(String name) {
    return dir.resolve(name + ".crt");
  }

  public Path key(String name) {
    return dir.resolve(name + ".key");
  }

  public Path ca() {
    return dir.resolve("ca.crt");
  }

  private void openssl(String... args) throws IOException, InterruptedException {
    List<String> command = new java.util.ArrayList<>(List.of("openssl"));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IllegalStateException("openssl " + String.join(" ", args) + " failed:\n" + out);
    }
  }
}
