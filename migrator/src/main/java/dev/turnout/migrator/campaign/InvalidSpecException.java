package dev.turnout.migrator.campaign;

import java.util.function.Supplier;

/**
 * A campaign file or request that cannot be run, naming the field by its path in the spec
 * ({@code members[3].target.value}), the value found there and what is wrong with it. The admin API answers
 * {@code INVALID_ARGUMENT}.
 *
 * <p>Each value checks its own fields when made, with paths from itself ({@code server}); a reader that builds a
 * spec bottom-up adds where it was with {@link #within}: {@code within("members[3]", () -> new Member(...))}.
 */
public final class InvalidSpecException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final String path;
  private final String value;
  private final String problem;

  public InvalidSpecException(String path, Object value, String problem) {
    super((path.isEmpty() ? "" : path + ": ") + (value == null ? "missing" : "'" + shown(value) + "'") + " " + problem);
    this.path = path;
    this.value = value == null ? null : shown(value);
    this.problem = problem;
  }

  /** As an operator writes it: a duration as {@code 25s}, not {@code PT25S}. */
  private static String shown(Object value) {
    return value instanceof java.time.Duration d ? Durations.format(d) : String.valueOf(value);
  }

  /** Where in the spec, like {@code policy.canary.count}. */
  public String path() {
    return path;
  }

  /** The value found there, or null when it was missing. */
  public String value() {
    return value;
  }

  /** What is wrong with it. */
  public String problem() {
    return problem;
  }

  /** The same error, found under {@code prefix} ({@code members[3]}). */
  public InvalidSpecException under(String prefix) {
    String joined = path.isEmpty() ? prefix : prefix + (path.startsWith("[") ? "" : ".") + path;
    InvalidSpecException e = new InvalidSpecException(joined, value, problem);
    e.setStackTrace(getStackTrace());
    return e;
  }

  /** Makes a part of a spec, saying that its errors are under {@code prefix}. */
  public static <T> T within(String prefix, Supplier<T> make) {
    try {
      return make.get();
    } catch (InvalidSpecException e) {
      throw e.under(prefix);
    }
  }
}
