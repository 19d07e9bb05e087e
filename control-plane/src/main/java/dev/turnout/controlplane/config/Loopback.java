package dev.turnout.controlplane.config;

import com.google.common.net.InetAddresses;
import java.net.InetAddress;
import java.net.UnknownHostException;

/** Whether a listening address keeps a server on this machine. */
final class Loopback {
  private Loopback() {}

  /**
   * True for a loopback address ({@code 127.0.0.0/8}, {@code ::1}) or a name all of whose addresses are loopback
   * ({@code localhost}); false for the wildcard ({@code 0.0.0.0}, {@code ::}), any other address, and a name that
   * does not resolve (it may resolve to anything later).
   */
  static boolean is(String host) {
    if (host == null || host.isBlank()) {
      return false;
    }
    String bare = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
    if (InetAddresses.isInetAddress(bare)) {
      return InetAddresses.forString(bare).isLoopbackAddress();
    }
    try {
      InetAddress[] all = InetAddress.getAllByName(bare);
      for (InetAddress a : all) {
        if (!a.isLoopbackAddress()) {
          return false;
        }
      }
      return all.length > 0;
    } catch (UnknownHostException e) {
      return false;
    }
  }
}
