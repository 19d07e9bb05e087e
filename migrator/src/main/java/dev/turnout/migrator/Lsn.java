package dev.turnout.migrator;

/** A PostgreSQL WAL position ({@code pg_lsn}), written as {@code 16/B374D848}. */
public record Lsn(long value) implements Comparable<Lsn> {

  public static Lsn parse(String text) {
    int slash = text == null ? -1 : text.indexOf('/');
    if (slash < 1) {
      throw new IllegalArgumentException("'" + text + "' is not an LSN such as 16/B374D848");
    }
    long hi = Long.parseLong(text.substring(0, slash), 16);
    long lo = Long.parseLong(text.substring(slash + 1), 16);
    return new Lsn((hi << 32) | lo);
  }

  public long minus(Lsn other) {
    return value - other.value;
  }

  public boolean atLeast(Lsn other) {
    return value >= other.value;
  }

  @Override
  public int compareTo(Lsn o) {
    return Long.compareUnsigned(value, o.value);
  }

  @Override
  public String toString() {
    return Long.toHexString(value >>> 32).toUpperCase() + "/" + Long.toHexString(value & 0xFFFFFFFFL).toUpperCase();
  }
}
