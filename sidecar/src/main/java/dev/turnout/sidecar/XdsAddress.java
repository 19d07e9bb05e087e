package dev.turnout.sidecar;

/**
 * One address of the control plane's xDS server: a host (IP literal or DNS name, which may name several
 * replicas) and a port.
 */
public record XdsAddress(String host, int port) {

  public XdsAddress {
    if (host == null || host.isBlank()) {
      throw new IllegalArgumentException("xDS host is empty");
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("xDS port " + port + " is out of range 1-65535");
    }
  }

  /** {@code host:port}, an IPv6 literal in brackets. */
  public String authority() {
    return host.contains(":") ? "[" + host + "]:" + port : host + ":" + port;
  }

  /** The inverse of {@link #authority}; callers that parse user input give better messages first. */
  static XdsAddress parse(String authority) {
    int colon = authority.lastIndexOf(':');
    if (colon <= 0) {
      throw new IllegalArgumentException("xDS address '" + authority + "' is not host:port");
    }
    String host = authority.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    try {
      return new XdsAddress(host, Integer.parseInt(authority.substring(colon + 1)));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("xDS address '" + authority + "' has no numeric port");
    }
  }

  @Override
  public String toString() {
    return authority();
  }
}
