package dev.turnout.controlplane;

/**
 * Text that came from a client (a sidecar's node id or NACK, a reason) as a terminal may show it: every control
 * character written as {@code \\uXXXX}, so a name with a newline or an ANSI escape cannot forge a line or recolour
 * the table.
 */
public final class Printable {
  private Printable() {}

  public static String of(String text) {
    StringBuilder out = null;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isISOControl(c)) {
        if (out == null) {
          out = new StringBuilder(text.length() + 16).append(text, 0, i);
        }
        out.append(String.format("\\u%04x", (int) c));
      } else if (out != null) {
        out.append(c);
      }
    }
    return out == null ? text : out.toString();
  }
}
