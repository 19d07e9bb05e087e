package dev.turnout.envoy;

import com.google.common.net.InetAddresses;
import com.google.common.net.InternetDomainName;

/**
 * The address of one PostgreSQL server: an IP literal or a DNS name, and a TCP port.
 *
 * <p>Written {@code host:port}, IPv6 literals in brackets ({@code [::1]:5432}).
 */
public record Endpoint(String host, int port) {

  public Endpoint {
    String problem = hostProblem(host);
    if (problem != null) {
      throw new IllegalArgumentException(problem);
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port " + port + " is out of range 1-65535");
    }
  }

  /** Parses {@code host:port}; the message of the exception says what is wrong with the text. */
  public static Endpoint parse(String text) {
    if (text == null || text.isBlank()) {
      throw new IllegalArgumentException("endpoint is empty; expected host:port such as 10.0.0.5:5432");
    }
    String trimmed = text.trim();
    String host;
    String portText;
    if (trimmed.startsWith("[")) {
      int close = trimmed.indexOf(']');
      if (close < 0 || close + 1 >= trimmed.length() || trimmed.charAt(close + 1) != ':') {
        throw new IllegalArgumentException(
            "endpoint '" + text + "' is not [ipv6]:port; expected for example [::1]:5432");
      }
      host = trimmed.substring(1, close);
      if (!host.contains(":") || !InetAddresses.isInetAddress(host)) {
        throw new IllegalArgumentException("endpoint '" + text + "': '" + host + "' is not an IPv6 address");
      }
      portText = trimmed.substring(close + 2);
    } else {
      int colon = trimmed.lastIndexOf(':');
      if (colon <= 0 || colon == trimmed.length() - 1) {
        throw new IllegalArgumentException("endpoint '" + text + "' has no port; expected host:port such as db1.internal:5432");
      }
      host = trimmed.substring(0, colon);
      if (host.contains(":")) {
        throw new IllegalArgumentException(
            "endpoint '" + text + "' looks like an IPv6 address without brackets; write [" + host + "]:port");
      }
      portText = trimmed.substring(colon + 1);
    }
    int port;
    try {
      port = Integer.parseInt(portText);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("endpoint '" + text + "': port '" + portText + "' is not a number");
    }
    try {
      return new Endpoint(host, port);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("endpoint '" + text + "': " + e.getMessage(), e);
    }
  }

  /** Whether the host is an IP literal (as Envoy's EDS requires) rather than a DNS name. */
  public boolean isIpLiteral() {
    return InetAddresses.isInetAddress(host);
  }

  private static String hostProblem(String host) {
    if (host == null || host.isEmpty()) {
      return "host is empty";
    }
    if (InetAddresses.isInetAddress(host)) {
      return null;
    }
    if (host.chars().allMatch(c -> Character.isDigit(c) || c == '.')) {
      return "'" + host + "' is not a valid IPv4 address";
    }
    if (!InternetDomainName.isValid(host)) {
      return "'" + host + "' is neither an IP address nor a valid DNS name";
    }
    return null;
  }

  @Override
  public String toString() {
    return host.contains(":") ? "[" + host + "]:" + port : host + ":" + port;
  }
}
