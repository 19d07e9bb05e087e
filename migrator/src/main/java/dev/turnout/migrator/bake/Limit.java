package dev.turnout.migrator.bake;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How far a signal may stray from its baseline during a bake: {@code factor × baseline + slack}, the most it may
 * reach (a floor for commits: the least). Written {@code 2x+1}, {@code 0.5x-1}; the slack keeps an idle baseline
 * from making any work a breach (and, below zero, keeps a floor from asking anything of an idle baseline).
 */
public record Limit(double factor, double slack) {
  private static final Pattern FORM = Pattern.compile("\\s*([0-9]+(?:\\.[0-9]+)?)\\s*x\\s*(?:([+-])\\s*([0-9]+(?:\\.[0-9]+)?))?\\s*");

  public Limit {
    if (!Double.isFinite(factor) || factor < 0 || !Double.isFinite(slack)) {
      throw new IllegalArgumentException("limit " + factor + "x" + slack + " is not a factor of zero or more and a"
          + " finite slack");
    }
  }

  /** {@code 2x+1}, {@code 0.5x-1}, {@code 3x}. */
  public static Limit parse(String text) {
    Matcher m = FORM.matcher(text);
    if (!m.matches()) {
      throw new IllegalArgumentException("limit '" + text + "' is not like 2x+1 (a factor of the baseline, then a"
          + " slack added or taken away)");
    }
    double slack = m.group(3) == null ? 0 : Double.parseDouble(m.group(3));
    return new Limit(Double.parseDouble(m.group(1)), "-".equals(m.group(2)) ? -slack : slack);
  }

  /** What the limit allows over {@code baseline}. */
  public double over(double baseline) {
    return factor * baseline + slack;
  }

  @Override
  public String toString() {
    return trim(factor) + "x" + (slack == 0 ? "" : (slack > 0 ? "+" : "-") + trim(Math.abs(slack)));
  }

  private static String trim(double d) {
    return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : String.format(Locale.ROOT, "%s", d);
  }
}
