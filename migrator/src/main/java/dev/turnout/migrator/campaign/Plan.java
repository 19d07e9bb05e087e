package dev.turnout.migrator.campaign;

import com.google.common.collect.ImmutableList;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A campaign's members in the order they run, each with its wave: what {@code turnout campaign plan} prints
 * ({@link #render}) and what a new {@link Campaign} starts from.
 *
 * @param spec the spec with its members in the order they run
 * @param entries one per member, in that order; their waves never decrease
 * @param waves how many waves there are
 */
public record Plan(CampaignSpec spec, ImmutableList<Entry> entries, int waves) {
  private static final DateTimeFormatter AT = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm'Z'")
      .withZone(ZoneOffset.UTC);

  /** A member and its wave. */
  public record Entry(int wave, Member member) {}

  /** Whether {@code wave} is the canary's. */
  public boolean canary(int wave) {
    return wave == 0 && spec.policy().canary().count() > 0;
  }

  /** The members of {@code wave}, in order. */
  public List<Member> wave(int wave) {
    List<Member> result = new ArrayList<>();
    for (Entry e : entries) {
      if (e.wave() == wave) {
        result.add(e.member());
      }
    }
    return result;
  }

  /**
   * The plan as a table: wave, server, host, databases, target, size, and when the member could cut over as seen
   * at {@code now}. What would block a member (routes, preflight) is the control plane's to add.
   */
  public String render(Instant now) {
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"WAVE", "SERVER", "HOST", "DATABASES", "TARGET", "SIZE", "CUTOVER"});
    for (Entry e : entries) {
      Member m = e.member();
      rows.add(new String[] {
          e.wave() + (canary(e.wave()) ? " canary" : ""),
          m.server(),
          m.host(),
          m.databases().isEmpty() ? "(listed at start)" : String.join(",", m.databases()),
          m.target().describe(m.server()),
          m.sizeBytes().isPresent() ? bytes(m.sizeBytes().getAsLong()) : "-",
          cutover(m.windows().isEmpty() ? spec.policy().windows() : m.windows(), now)});
    }
    int[] widths = new int[rows.get(0).length];
    for (String[] row : rows) {
      for (int i = 0; i < row.length; i++) {
        widths[i] = Math.max(widths[i], row[i].length());
      }
    }
    StringBuilder out = new StringBuilder();
    out.append("campaign '").append(spec.name()).append("': ").append(entries.size())
        .append(entries.size() == 1 ? " server" : " servers").append(" in ").append(waves)
        .append(waves == 1 ? " wave" : " waves").append("; ").append(spec.policy().describe()).append('\n');
    for (String[] row : rows) {
      for (int i = 0; i < row.length; i++) {
        out.append(row[i]);
        if (i < row.length - 1) {
          out.append(" ".repeat(widths[i] - row[i].length() + 2));
        }
      }
      out.append('\n');
    }
    return out.toString();
  }

  private static String cutover(List<MaintenanceWindow> windows, Instant now) {
    if (windows.isEmpty()) {
      return "any time";
    }
    Instant until = null;
    Instant next = null;
    for (MaintenanceWindow w : windows) {
      Optional<Instant> open = w.openUntil(now);
      if (open.isPresent()) {
        until = until == null || open.get().isAfter(until) ? open.get() : until;
      } else {
        Optional<Instant> n = w.nextOpening(now);
        if (n.isPresent() && (next == null || n.get().isBefore(next))) {
          next = n.get();
        }
      }
    }
    if (until != null) {
      return "open now, until " + AT.format(until);
    }
    return next == null ? "never (no window opens)" : "from " + AT.format(next);
  }

  private static String bytes(long n) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = n;
    int u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u == 0 ? n + " B" : String.format(java.util.Locale.ROOT, "%.1f %s", v, units[u]);
  }
}
