package dev.turnout.it.console;

import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * A loopback port that forwards each connection, byte for byte, to the console's HTTPS port over TLS presenting
 * one operator's client certificate: the browser talks HTTP to it, the control plane sees that operator's
 * certificate (an SRE's authenticating proxy, or stunnel, does the same). Headless chromium cannot be handed a
 * client certificate without a system-wide policy file and an NSS database, which a test should not write.
 */
public final class CertificateTunnel implements AutoCloseable {
  private final ServerSocket listener;
  private final SSLContext tls;
  private final int target;
  /** Every connection open now, closed with the tunnel (a console behind it then sees the control plane go away). */
  private final java.util.Set<Socket> open = java.util.concurrent.ConcurrentHashMap.newKeySet();

  public CertificateTunnel(int consoleHttpsPort, Path crt, Path key, Path ca) throws IOException {
    this.target = consoleHttpsPort;
    this.tls = ((JdkSslContext) SslContextBuilder.forClient().keyManager(crt.toFile(), key.toFile())
        .trustManager(ca.toFile()).sslProvider(SslProvider.JDK).build()).context();
    listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread accept = new Thread(this::accept, "console-tunnel-" + listener.getLocalPort());
    accept.setDaemon(true);
    accept.start();
  }

  public int port() {
    return listener.getLocalPort();
  }

  private void accept() {
    while (!listener.isClosed()) {
      try {
        Socket browser = listener.accept();
        SSLSocket console = (SSLSocket) tls.getSocketFactory().createSocket("127.0.0.1", target);
        console.startHandshake();
        open.add(browser);
        open.add(console);
        pump(browser.getInputStream(), console.getOutputStream(), browser, console);
        pump(console.getInputStream(), browser.getOutputStream(), browser, console);
      } catch (IOException e) {
        // closed, or one connection failed: the browser sees it fail
      }
    }
  }

  private static void pump(InputStream in, OutputStream out, Socket a, Socket b) {
    Thread t = new Thread(() -> {
      byte[] buffer = new byte[16384];
      try {
        for (int n; (n = in.read(buffer)) >= 0; ) {
          out.write(buffer, 0, n);
          out.flush();
        }
      } catch (IOException e) {
        // the other side went away
      } finally {
        try {
          a.close();
          b.close();
        } catch (IOException ignored) {
          // closing
        }
      }
    }, "console-tunnel-pump");
    t.setDaemon(true);
    t.start();
  }

  @Override
  public void close() throws IOException {
    listener.close();
    for (Socket s : open) {
      s.close();
    }
  }
}
