package dev.turnout.migrator.check;

/**
 * One preflight finding: passed, a warning the operator should read, or (blocking) a reason the migration must
 * not start.
 */
public record Check(String name, boolean ok, boolean blocking, String detail) {

  static Check of(String name, boolean ok, String detail) {
    return new Check(name, ok, true, detail);
  }

  /** A finding that warns when it does not hold, and never stops the migration. */
  static Check advice(String name, boolean ok, String detail) {
    return new Check(name, ok, false, detail);
  }

  /** Whether this finding stops the migration. */
  public boolean blocks() {
    return !ok && blocking;
  }

  @Override
  public String toString() {
    return (ok ? "ok   " : blocking ? "FAIL " : "warn ") + name + ": " + detail;
  }
}
