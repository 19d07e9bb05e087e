package dev.turnout.it;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

/**
 * A fake network in front of a PostgreSQL server on loopback: it passes bytes both ways, but drops every connection
 * whose startup packet's parameters {@code refuse} matches, as a firewall or a pg_hba.conf that lets some clients in
 * and not others would. It reads PostgreSQL's wire protocol only up to the startup packet: an SSLRequest or
 * GSSENCRequest first (libpq's and the JDBC driver's) is passed on with the server's one-byte answer (the test servers
 * have SSL off, so they answer 'N' and the startup packet follows in the clear).
 */
final class FakeNetwork implements AutoCloseable {
  private static final int SSL_REQUEST = 80877103;
  private static final int GSSENC_REQUEST = 80877104;

  private final int serverPort;
  private final Predicate<Map<String, String>> refuse;
  private final ServerSocket listener;
  /** Every socket open through the network, closed with it; accepted on its thread, closed on the test's. */
  private final List<Socket> open = new CopyOnWriteArrayList<>();
  /** Startup parameters of each connection refused, in order. */
  final List<Map<String, String>> refused = new CopyOnWriteArrayList<>();

  /** A logical walsender's connection (a subscription's): {@code replication=database} in its startup packet. */
  static final Predicate<Map<String, String>> LOGICAL_REPLICATION = p -> "database".equals(p.get("replication"));

  private FakeNetwork(int serverPort, Predicate<Map<String, String>> refuse) throws IOException {
    this.serverPort = serverPort;
    this.refuse = refuse;
    this.listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread accept = new Thread(this::accept, "fake-network-" + serverPort);
    accept.setDaemon(true);
    accept.start();
  }

  static FakeNetwork inFrontOf(int serverPort, Predicate<Map<String, String>> refuse) throws IOException {
    return new FakeNetwork(serverPort, refuse);
  }

  /** The port clients reach the server at through this network. */
  int port() {
    return listener.getLocalPort();
  }

  private void accept() {
    while (!listener.isClosed()) {
      try {
        Socket client = listener.accept();
        open.add(client);
        Thread t = new Thread(() -> connect(client), "fake-network-connection");
        t.setDaemon(true);
        t.start();
      } catch (IOException closed) {
        return;
      }
    }
  }

  private void connect(Socket client) {
    Socket server = null;
    try (client) {
      server = new Socket(InetAddress.getLoopbackAddress(), serverPort);
      open.add(server);
      DataInputStream in = new DataInputStream(client.getInputStream());
      OutputStream toServer = server.getOutputStream();
      byte[] packet = packet(in);
      int code = ByteBuffer.wrap(packet, 4, 4).getInt();
      while (code == SSL_REQUEST || code == GSSENC_REQUEST) {
        toServer.write(packet);
        int answer = server.getInputStream().read();
        if (answer < 0) {
          return;
        }
        client.getOutputStream().write(answer);
        packet = packet(in);
        code = ByteBuffer.wrap(packet, 4, 4).getInt();
      }
      Map<String, String> parameters = parameters(packet);
      if (refuse.test(parameters)) {
        refused.add(parameters);
        return; // both sockets closed: the client sees the server close the connection
      }
      toServer.write(packet);
      Socket s = server;
      Thread back = new Thread(() -> pump(s, client), "fake-network-back");
      back.setDaemon(true);
      back.start();
      pump(client, server);
      back.join();
    } catch (IOException | InterruptedException e) {
      // a connection ended by either side, or the network closed
    } finally {
      open.remove(client);
      if (server != null) {
        open.remove(server);
        try {
          server.close();
        } catch (IOException ignored) {
          // already closed
        }
      }
    }
  }

  /** A length-prefixed packet of the startup phase, its length included. */
  private static byte[] packet(DataInputStream in) throws IOException {
    int length = in.readInt();
    byte[] packet = new byte[length];
    ByteBuffer.wrap(packet).putInt(length);
    in.readFully(packet, 4, length - 4);
    return packet;
  }

  /** A startup packet's parameters: after the length and the protocol version, name and value C strings, then 0. */
  private static Map<String, String> parameters(byte[] packet) {
    Map<String, String> parameters = new HashMap<>();
    int at = 8;
    while (at < packet.length && packet[at] != 0) {
      int nameEnd = end(packet, at);
      int valueEnd = end(packet, nameEnd + 1);
      parameters.put(new String(packet, at, nameEnd - at, StandardCharsets.UTF_8),
          new String(packet, nameEnd + 1, valueEnd - nameEnd - 1, StandardCharsets.UTF_8));
      at = valueEnd + 1;
    }
    return parameters;
  }

  private static int end(byte[] packet, int from) {
    int at = from;
    while (packet[at] != 0) {
      at++;
    }
    return at;
  }

  private static void pump(Socket from, Socket to) {
    try {
      InputStream in = from.getInputStream();
      OutputStream out = to.getOutputStream();
      byte[] buffer = new byte[16384];
      for (int n; (n = in.read(buffer)) >= 0; ) {
        out.write(buffer, 0, n);
        out.flush();
      }
    } catch (IOException e) {
      // closed
    } finally {
      try {
        from.close();
        to.close();
      } catch (IOException ignored) {
        // already closed
      }
    }
  }

  @Override
  public void close() throws IOException {
    listener.close();
    for (Socket s : open) {
      s.close();
    }
  }
}
