package dev.turnout.migrator.campaign;

import java.util.regex.Pattern;

/** The two ways a campaign names a source server: {@code HOST:PORT}, or {@code aurora:INSTANCE} (an RDS instance). */
final class Servers {
  static final String AURORA = "aurora:";
  private static final Pattern RDS_ID = Pattern.compile("[a-zA-Z][a-zA-Z0-9-]{0,62}");
  private static final Pattern HOST = Pattern.compile("[A-Za-z0-9._-]+");

  private Servers() {}

  /** Whether {@code server} names an RDS instance: {@code aurora:} then a letter (so {@code aurora:5432} is a port). */
  static boolean isAurora(String server) {
    return server.startsWith(AURORA) && server.length() > AURORA.length()
        && Character.isLetter(server.charAt(AURORA.length()));
  }

  static String auroraInstance(String server) {
    return server.substring(AURORA.length());
  }

  /** Checks a source server key. */
  static void checkServer(String path, String server) {
    if (server != null && isAurora(server)) {
      String id = auroraInstance(server);
      if (!RDS_ID.matcher(id).matches() || id.endsWith("-") || id.contains("--")) {
        throw new InvalidSpecException(path, server, "does not name an RDS instance (a letter, then up to 62"
            + " letters, digits or single hyphens, not ending in a hyphen)");
      }
      return;
    }
    checkAddress(path, server);
  }

  /** Checks a {@code HOST:PORT} address ({@code [v6]:PORT} for an IPv6 address). */
  static void checkAddress(String path, String address) {
    if (address == null || address.isBlank()) {
      throw new InvalidSpecException(path, address, "is required (HOST:PORT)");
    }
    int colon = address.lastIndexOf(':');
    String host = colon < 0 ? "" : address.substring(0, colon);
    String port = colon < 0 ? "" : address.substring(colon + 1);
    boolean bracketed = host.startsWith("[") && host.endsWith("]") && host.length() > 2;
    if (colon < 0 || !(bracketed || HOST.matcher(host).matches())) {
      throw new InvalidSpecException(path, address, "is not HOST:PORT (or aurora:INSTANCE for a source)");
    }
    int p = -1;
    if (!port.isEmpty() && port.length() <= 5 && port.chars().allMatch(Character::isDigit)) {
      p = Integer.parseInt(port);
    }
    if (p < 1 || p > 65535) {
      throw new InvalidSpecException(path, address, "has port '" + port + "', not one of 1-65535");
    }
  }

  /** The host a server runs on: the part before the port; an RDS instance is a host of its own. */
  static String hostOf(String server) {
    if (isAurora(server)) {
      return server;
    }
    String host = server.substring(0, server.lastIndexOf(':'));
    return host.startsWith("[") ? host.substring(1, host.length() - 1) : host;
  }
}
