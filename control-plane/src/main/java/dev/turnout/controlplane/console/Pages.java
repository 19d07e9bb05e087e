package dev.turnout.controlplane.console;

import static dev.turnout.controlplane.console.Html.esc;
import static dev.turnout.controlplane.console.Html.url;

import com.google.protobuf.Timestamp;
import dev.turnout.admin.v1.BakeSignal;
import dev.turnout.admin.v1.Campaign;
import dev.turnout.admin.v1.CampaignEvent;
import dev.turnout.admin.v1.CampaignMember;
import dev.turnout.admin.v1.Event;
import dev.turnout.admin.v1.Live;
import dev.turnout.admin.v1.Migration;
import dev.turnout.admin.v1.Slot;
import dev.turnout.migrator.Phase;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The console's HTML. Each page is a frame (navigation, the replica answering, the live indicator) around one
 * live part, {@code <div id="live">}, which htmx fetches again every two seconds (the server answers a poll with
 * that part only) and swaps in place: the page updates without a reload, and says so when the control plane
 * stops answering. Charts live outside the live part and fetch their points as JSON.
 */
final class Pages {
  /** WebJars on the class path (the versions in control-plane/pom.xml). */
  static final String HTMX = "/webjars/htmx.org/2.0.4/dist/htmx.min.js";
  static final String UPLOT_JS = "/webjars/uplot/1.6.30/dist/uPlot.iife.min.js";
  static final String UPLOT_CSS = "/webjars/uplot/1.6.30/dist/uPlot.min.css";
  static final String POLL = "every 2s";

  private final Clock clock;
  /** This replica's name, on every page. */
  private final String replica;

  Pages(Clock clock, String replica) {
    this.clock = clock;
    this.replica = replica;
  }

  /** A page as a whole (a browser's first request) and its live part alone (a poll's answer). */
  record Page(String whole, String live) {}

  private Page page(String title, String active, Console.Request r, String live, String beforeLive, String afterLive,
      boolean charts) {
    String self = r.path() + (r.query().isEmpty() ? "" : "?" + queryString(r.query()));
    String liveDiv = "<div id=\"live\" hx-get=\"" + esc(self) + "\" hx-trigger=\"" + POLL + "\" hx-swap=\"outerHTML\">"
        + live + "</div>";
    StringBuilder b = new StringBuilder(live.length() + 4096);
    b.append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .append("<title>").append(esc(title)).append(" · Turnout</title>")
        .append("<meta name=\"turnout-csrf\" content=\"").append(r.csrf() == null ? "" : esc(r.csrf())).append("\">")
        .append("<link rel=\"stylesheet\" href=\"/webjars/console/console.css\">");
    if (charts) {
      b.append("<link rel=\"stylesheet\" href=\"").append(UPLOT_CSS).append("\">")
          .append("<script src=\"").append(UPLOT_JS).append("\" defer></script>");
    }
    b.append("<script src=\"").append(HTMX).append("\" defer></script>")
        .append("<script src=\"/webjars/console/console.js\" defer></script>")
        .append("</head><body><header><a class=\"brand\" href=\"/console\">Turnout</a><nav>");
    for (String[] link : new String[][] {{"fleet", "/console", "Fleet"}, {"nodes", "/console/nodes", "Nodes"},
        {"migrations", "/console/migrations", "Migrations"}, {"campaigns", "/console/campaigns", "Campaigns"}}) {
      b.append("<a href=\"").append(link[1]).append("\"").append(link[0].equals(active) ? " class=\"on\"" : "")
          .append(">").append(link[2]).append("</a>");
    }
    b.append("</nav><span class=\"who\" id=\"who\">")
        .append(r.writer() ? "writer <b>" + esc(r.identity()) + "</b>"
            : r.identity() != null ? "<b>" + esc(r.identity()) + "</b>, read-only" : "read-only")
        .append("</span><span id=\"conn\" class=\"conn ok\" title=\"the page polls the control plane every 2 s\">")
        .append("live</span></header><main>")
        .append(beforeLive).append(liveDiv).append(afterLive)
        .append("</main></body></html>");
    return new Page(b.toString(), liveDiv);
  }

  private static String queryString(Map<String, String> q) {
    StringBuilder b = new StringBuilder();
    q.forEach((k, v) -> b.append(b.length() == 0 ? "" : "&").append(url(k)).append('=').append(url(v)));
    return b.toString();
  }

  /** The line every live part starts with: which replica answered, and when. */
  private String answered(String replica) {
    return "<p class=\"answered\">answered by replica <b class=\"replica\">" + esc(replica) + "</b> at <span class=\"at\">"
        + Html.clock(clock.instant()) + "</span></p>";
  }

  // ---- fleet

  Page fleet(Views.Fleet f, Console.Request r) {
    StringBuilder l = new StringBuilder(f.rows().size() * 600 + 1024);
    l.append(answered(f.replica()));
    l.append("<p class=\"summary\"><b>").append(f.databases()).append("</b> databases, routing version <b>")
        .append(f.version()).append("</b>");
    if (!f.q().isEmpty() || !f.status().isEmpty()) {
      l.append(", <b>").append(f.matching()).append("</b> matching");
    }
    l.append("; this page: ");
    f.byStatus().forEach((s, n) -> l.append("<span class=\"st ").append(cls(s)).append("\">").append(esc(s))
        .append(" ").append(n).append("</span> "));
    l.append("</p><table class=\"grid\" id=\"fleet\"><thead><tr><th>Database</th><th>Endpoint</th><th>Version</th>")
        .append("<th>Sidecars ACKed</th><th>Status</th><th>Migration</th><th>Campaign</th></tr></thead><tbody>");
    for (Views.FleetRow row : f.rows()) {
      Views.Acks a = row.acks();
      l.append("<tr data-database=\"").append(esc(row.name())).append("\"><td class=\"name\">").append(esc(row.name()))
          .append("</td><td class=\"endpoint\">").append(esc(row.endpoint()));
      if (!row.unresolved().isEmpty()) {
        l.append(" <span class=\"st NACKED\" title=\"").append(esc(row.unresolved())).append("\">UNRESOLVED</span>");
      }
      l.append("</td><td class=\"num\">").append(row.version()).append("</td><td class=\"acks\">")
          .append(bar(a.current(), a.connected())).append(" ").append(a.current()).append("/").append(a.connected())
          .append(a.gone() > 0 ? " <small>(" + a.gone() + " gone)</small>" : "")
          .append("</td><td><span class=\"st ").append(cls(a.status())).append("\"")
          .append(a.firstNackError().isEmpty() ? "" : " title=\"" + esc(a.firstNackError()) + "\"").append(">")
          .append(esc(a.status())).append("</span></td><td>");
      if (row.migration() != null) {
        l.append("<a href=\"/console/migrations/").append(url(row.migration().id())).append("\">")
            .append(esc(row.migration().phase())).append("</a>");
      }
      l.append("</td><td>");
      if (row.campaign() != null) {
        l.append("<a href=\"/console/campaigns/").append(url(row.campaign().id())).append("\">")
            .append(esc(row.campaign().name())).append("</a> wave ").append(row.campaign().wave());
      }
      l.append("</td></tr>");
    }
    l.append("</tbody></table>");
    l.append(pager(f.page(), f.pages(), r));
    String form = "<form class=\"filter\" method=\"get\" action=\"/console\"><input name=\"q\" placeholder=\""
        + "database or endpoint\" value=\"" + esc(f.q()) + "\"> <select name=\"status\">"
        + options(f.status(), "", "any state", "SYNCED", "STALE", "NACKED", "NO SIDECARS", "MIGRATING")
        + "</select> <button>Filter</button></form>";
    return page("Fleet", "fleet", r, l.toString(), "<h1>Fleet</h1>" + form, "", false);
  }

  private static String options(String selected, String... values) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < values.length; i++) {
      String v = values[i];
      String label = v;
      if (v.isEmpty()) {
        label = values[++i];
      }
      b.append("<option value=\"").append(esc(v)).append("\"").append(v.equals(selected) ? " selected" : "")
          .append(">").append(esc(label)).append("</option>");
    }
    return b.toString();
  }

  private static String pager(int page, int pages, Console.Request r) {
    if (pages <= 1) {
      return "";
    }
    StringBuilder b = new StringBuilder("<p class=\"pager\">page ").append(page).append(" of ").append(pages);
    Map<String, String> q = new java.util.LinkedHashMap<>(r.query());
    if (page > 1) {
      q.put("page", Integer.toString(page - 1));
      b.append(" <a rel=\"prev\" href=\"").append(esc(r.path() + "?" + queryString(q))).append("\">previous</a>");
    }
    if (page < pages) {
      q.put("page", Integer.toString(page + 1));
      b.append(" <a rel=\"next\" href=\"").append(esc(r.path() + "?" + queryString(q))).append("\">next</a>");
    }
    return b.append("</p>").toString();
  }

  private static String bar(int part, int whole) {
    int pct = whole == 0 ? 0 : part * 100 / whole;
    return "<span class=\"bar\" title=\"" + Html.percent(part, whole) + "\"><i style=\"width:" + pct + "%\"></i></span>";
  }

  private static String cls(String status) {
    return status.replace(' ', '_');
  }

  // ---- nodes

  Page nodes(Views.Nodes n, Console.Request r) {
    StringBuilder l = new StringBuilder(n.rows().size() * 500 + 1024);
    l.append(answered(n.replica()));
    l.append("<p class=\"summary\"><b>").append(n.total()).append("</b> sidecars: ");
    n.byStatus().forEach((s, c) -> l.append("<span class=\"st ").append(cls(s)).append("\">").append(esc(s))
        .append(" ").append(c).append("</span> "));
    l.append("</p><table class=\"grid\" id=\"nodes\"><thead><tr><th>Node</th><th>Service</th><th>Replica</th>")
        .append("<th>Status</th><th>LDS sent/ACKed</th><th>CDS sent/ACKed</th><th>EDS sent/ACKed</th>")
        .append("<th>Last NACK</th></tr></thead><tbody>");
    for (Views.NodeRow row : n.rows()) {
      l.append("<tr data-node=\"").append(esc(row.id())).append("\"><td class=\"name\">").append(esc(row.id()))
          .append("</td><td>").append(esc(row.service())).append("</td><td>")
          .append(esc(row.replica().isEmpty() ? n.replica() : row.replica())).append("</td><td><span class=\"st ")
          .append(cls(row.status())).append("\">").append(esc(row.status())).append("</span></td>");
      for (String type : List.of("LDS", "CDS", "EDS")) {
        Views.TypeRow t = row.types().stream().filter(x -> x.type().equals(type)).findFirst().orElse(null);
        l.append("<td class=\"num\">").append(t == null ? "–" : t.sent() + " / " + t.acked()).append("</td>");
      }
      l.append("<td class=\"nack\">").append(esc(row.lastNack())).append("</td></tr>");
    }
    l.append("</tbody></table>").append(pager(n.page(), n.pages(), r));
    String form = "<form class=\"filter\" method=\"get\" action=\"/console/nodes\"><input name=\"q\" placeholder=\""
        + "node or service\" value=\"" + esc(n.q()) + "\"> <select name=\"state\">"
        + options(n.state(), "", "any state", "SYNCED", "STALE", "NACKED", "DISCONNECTED")
        + "</select> <button>Filter</button></form>";
    return page("Nodes", "nodes", r, l.toString(), "<h1>Nodes</h1>" + form, "", false);
  }

  // ---- migrations

  Page migrations(List<Migration> list, Console.Request r) {
    StringBuilder l = new StringBuilder();
    l.append(answered(replica));
    l.append("<table class=\"grid\" id=\"migrations\"><thead><tr><th>Migration</th><th>Databases</th>")
        .append("<th>Source → target</th><th>Phase</th><th>Started</th></tr></thead><tbody>");
    for (Migration m : list) {
      l.append("<tr><td><a href=\"/console/migrations/").append(url(m.getId())).append("\">").append(esc(m.getId()))
          .append("</a></td><td>").append(esc(String.join(", ", m.getDatabasesList()))).append("</td><td>")
          .append(esc(m.getSource())).append(" → ").append(esc(m.getTarget())).append("</td><td><span class=\"ph ")
          .append(esc(m.getPhase())).append("\">").append(esc(m.getPhase())).append("</span></td><td>")
          .append(m.getHistoryCount() == 0 ? "" : Html.time(instant(m.getHistory(0).getAt()))).append("</td></tr>");
    }
    l.append("</tbody></table>");
    return page("Migrations", "migrations", r, l.toString(), "<h1>Migrations</h1>", "", false);
  }

  static Instant instant(Timestamp t) {
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }

  /** One phase of the timeline: when it began, how long it took (so far, for the current one). */
  record Step(String phase, Instant began, Duration took, boolean current) {}

  static List<Step> timeline(Migration m, Instant now) {
    List<Step> steps = new ArrayList<>();
    String last = null;
    Instant began = null;
    for (Event e : m.getHistoryList()) {
      if (!e.getPhase().equals(last)) {
        if (last != null) {
          steps.add(new Step(last, began, Duration.between(began, instant(e.getAt())), false));
        }
        last = e.getPhase();
        began = instant(e.getAt());
      }
    }
    if (last != null) {
      Phase p = Views.phase(last);
      boolean settled = p == null || p.isTerminal() || p == Phase.COMPLETED || p == Phase.HALTED;
      steps.add(new Step(last, began, settled ? Duration.ZERO : Duration.between(began, now), !settled));
    }
    return steps;
  }

  /**
   * The write-stop clock: from the drain (QUIESCING began) to the last ACK of the route to the target (SHIFTING
   * ended); still running while in between. Empty before the drain or when the migration rolled back before it.
   */
  static java.util.Optional<Duration> writeStop(Migration m, Instant now) {
    Instant drain = null;
    Instant shifted = null;
    for (Event e : m.getHistoryList()) {
      if (drain == null && e.getPhase().equals("QUIESCING")) {
        drain = instant(e.getAt());
      }
      Phase p = Views.phase(e.getPhase());
      if (drain != null && shifted == null && p != null && p.ordinal() > Phase.SHIFTING.ordinal()) {
        shifted = instant(e.getAt());
      }
    }
    if (drain == null) {
      return java.util.Optional.empty();
    }
    return java.util.Optional.of(Duration.between(drain, shifted != null ? shifted : now));
  }

  Page migration(Views.MigrationPage v, Console.Request r) {
    Migration m = v.migration();
    Instant now = v.now();
    Phase phase = Views.phase(m.getPhase());
    StringBuilder l = new StringBuilder(8192);
    l.append(answered(replica));
    l.append("<p class=\"route\">").append(esc(String.join(", ", m.getDatabasesList()))).append(": <b>")
        .append(esc(m.getSource())).append("</b> → <b>").append(esc(m.getTarget())).append("</b> · phase <span id=\"phase\" class=\"ph ")
        .append(esc(m.getPhase())).append("\">").append(esc(m.getPhase())).append("</span>");
    writeStop(m, now).ifPresent(d -> l.append(" · write stop <b id=\"write-stop\">").append(Html.duration(d))
        .append("</b>"));
    if (!m.getFinalLsn().isEmpty()) {
      l.append(" · final LSN <code>").append(esc(m.getFinalLsn())).append("</code>");
    }
    l.append("</p>");
    if (!m.getError().isEmpty()) {
      l.append("<p class=\"error\">").append(esc(m.getError())).append("</p>");
    }
    // Rollback: possible until finalized; lossless before promotion, and after it while the reverse replication made
    // at promotion is healthy (the migrator carries the target's writes back over it, consent or not).
    boolean canRollBack = phase != null && !phase.isTerminal() && phase != Phase.ROLLING_BACK;
    boolean promoted = m.getHistoryList().stream().anyMatch(e -> e.getPhase().equals("PROMOTING"));
    String reverse = m.getLive().getReversePath();
    boolean lossless = !promoted || reverse.equals("healthy");
    l.append("<p class=\"rollback\" id=\"rollback-state\">");
    if (!canRollBack) {
      l.append("Rollback: not possible (").append(esc(m.getPhase())).append(").");
    } else if (!promoted) {
      l.append("Rollback: <b>possible and lossless</b> until the promotion (PROMOTING): nothing has been written on the target.");
    } else if (lossless) {
      l.append("Rollback: <b>possible and lossless</b> until the migration is finalized, while the reverse replication"
          + " is healthy: the target's writes are carried back to the source (reverse lag ")
          .append(m.getLive().getReverseLagBytes() < 0 ? "not read" : Html.bytes(m.getLive().getReverseLagBytes()))
          .append(m.getLive().getReverseLagMillis() < 0 ? "" : ", " + m.getLive().getReverseLagMillis() + " ms")
          .append(").");
    } else if (reverse.startsWith("broken")) {
      l.append("Rollback: <b>possible, not lossless</b> until the migration is finalized: the reverse replication is ")
          .append(esc(reverse)).append("; writes made on the target since the cutover would be lost (the rollback"
              + " asks for that consent).");
    } else {
      l.append("Rollback: <b>possible</b> until the migration is finalized; lossless only while the reverse"
          + " replication is healthy, which this replica has not read (it is shown by the replica running the"
          + " migration). Without it, writes made on the target since the cutover would be lost.");
    }
    if (canRollBack && r.writer()) {
      l.append(" <button class=\"act danger\" id=\"rollback\" data-action=\"/v1/migrations/").append(url(m.getId()))
          .append("/rollback").append(lossless ? "" : "?consent_to_lose_writes=true").append("\" data-confirm=\"")
          .append(esc("Roll back migration " + m.getId() + " of " + String.join(", ", m.getDatabasesList())
              + " to " + m.getSource() + "?" + (lossless ? "" : " Writes made on " + m.getTarget()
              + " since the cutover will be LOST" + (reverse.isEmpty() ? " unless its reverse replication is healthy"
              : "") + ".")))
          .append("\">Roll back…</button>");
    }
    l.append("</p>");
    // Timeline.
    l.append("<h2>Timeline</h2><ol class=\"timeline\" id=\"timeline\">");
    for (Step s : timeline(m, now)) {
      l.append("<li class=\"phase ").append(esc(s.phase())).append(s.current() ? " current" : "").append("\"><b>")
          .append(esc(s.phase())).append("</b> <span>").append(Html.clock(s.began())).append("</span> <i>")
          .append(s.current() ? Html.duration(s.took()) + " so far" : s.took().isZero() ? "" : Html.duration(s.took()))
          .append("</i></li>");
    }
    l.append("</ol>");
    // Figures.
    Live live = m.getLive();
    l.append("<h2>Replication</h2><table class=\"kv\" id=\"figures\">");
    if (live.getSampled()) {
      kv(l, "lag", Html.bytes(live.getLagBytes()) + String.format(Locale.ROOT, ", %.2f s replay delay",
          live.getReplayDelaySeconds()));
      kv(l, "WAL generated / replayed", Html.bytes(live.getWalBytesPerSecond()) + "/s / "
          + Html.bytes(live.getReplayBytesPerSecond()) + "/s");
      kv(l, "slot lag", Html.bytes(live.getSlotLagBytes()));
    } else {
      kv(l, "lag", "not sampled on this replica (the leader samples while replicating)");
    }
    if (phase == Phase.REPLICATING) {
      kv(l, "validation window", String.format(Locale.ROOT, "%.0f of %.0f s", live.getWindowElapsedSeconds(),
          live.getWindowSeconds()));
    }
    kv(l, "sidecars on the current route", live.getNodesAcked() + " of " + live.getNodes());
    l.append("</table>");
    if (live.getBakeSignalsCount() > 0 || phase == Phase.BAKING) {
      l.append("<h2>Bake: the target against the baseline</h2>");
      l.append(String.format(Locale.ROOT, "<p>%.0f of %.0f s</p>", live.getBakeElapsedSeconds(),
          live.getBakeSeconds()));
      l.append("<table class=\"grid\"><thead><tr><th>Signal</th><th>Baseline</th><th>Now</th><th>Allowed</th>")
          .append("<th>Limit</th></tr></thead><tbody>");
      for (BakeSignal s : live.getBakeSignalsList()) {
        l.append("<tr").append(s.getBreached() ? " class=\"breach\"" : "").append("><td>").append(esc(s.getSignal()))
            .append(String.format(Locale.ROOT, "</td><td class=\"num\">%.2f</td><td class=\"num\">%.2f</td>"
                + "<td class=\"num\">%.2f</td>", s.getBaseline(), s.getNow(), s.getAllowed())).append("<td>")
            .append(esc(s.getLimit())).append("</td></tr>");
      }
      l.append("</tbody></table>");
    }
    l.append("<h2>Slots</h2>");
    if (m.getSlotsCount() == 0) {
      l.append("<p>No logical slot recorded.</p>");
    } else {
      l.append("<table class=\"grid\"><thead><tr><th>Slot</th><th>Plugin</th><th>Confirmed LSN</th></tr></thead><tbody>");
      for (Slot s : m.getSlotsList()) {
        l.append("<tr><td>").append(esc(s.getName())).append("</td><td>").append(esc(s.getPlugin()))
            .append("</td><td><code>").append(esc(s.getConfirmedLsn())).append("</code></td></tr>");
      }
      l.append("</tbody></table>");
    }
    l.append("<h2>History</h2><table class=\"grid history\" id=\"history\"><tbody>");
    for (Event e : m.getHistoryList()) {
      l.append("<tr><td>").append(Html.time(instant(e.getAt()))).append("</td><td><span class=\"ph ")
          .append(esc(e.getPhase())).append("\">").append(esc(e.getPhase())).append("</span></td><td>")
          .append(esc(e.getNote())).append("</td></tr>");
    }
    l.append("</tbody></table>");
    String charts = "<div class=\"charts\" data-series=\"/v1/migrations/" + esc(url(m.getId())) + "/series\">"
        + "<figure><figcaption>Replication lag</figcaption><div id=\"chart-lag\"></div></figure>"
        + "<figure><figcaption>WAL generated vs replayed (per second)</figcaption><div id=\"chart-wal\"></div></figure>"
        + "</div>";
    return page("Migration " + m.getId(), "migrations", r, l.toString(), "<h1>Migration <code>" + esc(m.getId())
        + "</code></h1>" + charts, "", true);
  }

  private static void kv(StringBuilder b, String k, String v) {
    b.append("<tr><th>").append(esc(k)).append("</th><td>").append(esc(v)).append("</td></tr>");
  }

  // ---- campaigns

  Page campaigns(List<Campaign> list, Console.Request r) {
    StringBuilder l = new StringBuilder();
    l.append(answered(replica));
    l.append("<table class=\"grid\" id=\"campaigns\"><thead><tr><th>Campaign</th><th>Name</th><th>Status</th>")
        .append("<th>Wave</th><th>Members</th><th>Failures</th><th>ETA</th></tr></thead><tbody>");
    for (Campaign c : list) {
      l.append("<tr><td><a href=\"/console/campaigns/").append(url(c.getId())).append("\">").append(esc(c.getId()))
          .append("</a></td><td>").append(esc(c.getName())).append("</td><td><span class=\"ph ")
          .append(esc(c.getStatus())).append("\">").append(esc(c.getStatus())).append("</span></td><td>")
          .append(c.getWave()).append(" of ").append(c.getWaves()).append("</td><td>").append(c.getMembersCount())
          .append("</td><td>").append(c.getFailures()).append(" / ").append(c.getMaxFailures()).append("</td><td>")
          .append(eta(c)).append("</td></tr>");
    }
    l.append("</tbody></table>");
    return page("Campaigns", "campaigns", r, l.toString(), "<h1>Campaigns</h1>", "", false);
  }

  private String eta(Campaign c) {
    if (c.getEtaSeconds() <= 0) {
      return "–";
    }
    Duration d = Duration.ofMillis((long) (c.getEtaSeconds() * 1000));
    return Html.duration(d) + " (" + Html.clock(clock.instant().plus(d)) + ")";
  }

  Page campaign(Campaign c, Console.Request r) {
    StringBuilder l = new StringBuilder(8192);
    l.append(answered(replica));
    l.append("<p class=\"route\">status <span id=\"status\" class=\"ph ").append(esc(c.getStatus())).append("\">")
        .append(esc(c.getStatus())).append("</span>");
    if (!c.getReason().isEmpty()) {
      l.append(" — ").append(esc(c.getReason()));
    }
    l.append(" · wave <b>").append(c.getWave()).append("</b> of ").append(c.getWaves()).append(" · failures <b")
        .append(c.getFailures() >= c.getMaxFailures() && c.getMaxFailures() > 0 ? " class=\"error\"" : "").append(">")
        .append(c.getFailures()).append("</b> of at most ").append(c.getMaxFailures()).append(" · ETA ")
        .append(eta(c)).append("</p>");
    if (r.writer()) {
      l.append("<p class=\"actions\">");
      boolean finished = c.getStatus().equals("COMPLETED") || c.getStatus().equals("ABORTED");
      if (!finished) {
        action(l, "pause", c, "Pause campaign " + c.getName() + "? Nothing new starts; running members go on.",
            !c.getStatus().equals("PAUSED"));
        action(l, "resume", c, "Resume campaign " + c.getName() + "?", c.getStatus().equals("PAUSED")
            || c.getStatus().equals("HALTED"));
        action(l, "approve", c, "Approve campaign " + c.getName() + " after its canary?",
            c.getStatus().equals("WAITING_APPROVAL"));
        action(l, "abort", c, "ABORT campaign " + c.getName() + "? Members not yet promoted roll back; the rest are"
            + " not started.", true);
      }
      l.append("</p>");
    }
    l.append("<h2>Members by phase</h2><p class=\"phases\">");
    c.getMembersByPhaseMap().entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> l
        .append("<span class=\"ph ").append(esc(e.getKey())).append("\">").append(esc(e.getKey())).append(" ")
        .append(e.getValue()).append("</span> "));
    l.append("</p>");
    // Maintenance windows: members whose cutover is held say until when.
    List<CampaignMember> held = c.getMembersList().stream().filter(m -> !m.getHeld().isEmpty()).toList();
    l.append("<h2>Maintenance windows</h2><p id=\"next-window\">");
    if (!c.hasNextWindow()) {
      l.append("No member waits for a maintenance window: each cuts over once it is validated.");
    } else {
      Instant opens = Instant.ofEpochSecond(c.getNextWindow().getSeconds(), c.getNextWindow().getNanos());
      Duration in = Duration.between(clock.instant(), opens);
      l.append(in.compareTo(Duration.ofSeconds(1)) <= 0 ? "A maintenance window is <b>open now</b>."
          : "The next maintenance window opens at <b>" + java.time.format.DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm'Z'")
              .withZone(java.time.ZoneOffset.UTC).format(opens) + "</b> (in " + Html.duration(in) + ").");
    }
    l.append("</p>");
    if (held.isEmpty()) {
      l.append("<p>No member is held by a window now.</p>");
    } else {
      l.append("<ul>");
      held.stream().limit(20).forEach(m -> l.append("<li>").append(esc(m.getServer())).append(": ")
          .append(esc(m.getHeld())).append("</li>"));
      l.append("</ul>");
    }
    l.append("<h2>Waves</h2><table class=\"grid\" id=\"members\"><thead><tr><th>Wave</th><th>Server</th>")
        .append("<th>Databases</th><th>Target</th><th>Status</th><th>Phase</th><th>Write gap</th><th>Lag</th>")
        .append("<th>Error</th></tr></thead><tbody>");
    for (CampaignMember m : c.getMembersList()) {
      l.append("<tr><td class=\"num\">").append(m.getWave() == 0 ? "canary" : Integer.toString(m.getWave()))
          .append("</td><td>").append(esc(m.getServer())).append("</td><td>")
          .append(esc(String.join(", ", m.getDatabasesList()))).append("</td><td>").append(esc(m.getTarget()))
          .append("</td><td>").append(esc(m.getStatus())).append("</td><td>");
      if (!m.getMigrationId().isEmpty()) {
        l.append("<a href=\"/console/migrations/").append(url(m.getMigrationId())).append("\"><span class=\"ph ")
            .append(esc(m.getPhase())).append("\">").append(esc(m.getPhase())).append("</span></a>");
      }
      l.append("</td><td class=\"num\">").append(m.getWriteGapMs() > 0 ? m.getWriteGapMs() + " ms" : "")
          .append("</td><td class=\"num\">").append(m.getLagBytes() > 0 ? Html.bytes(m.getLagBytes()) : "")
          .append("</td><td class=\"nack\">").append(esc(m.getError())).append("</td></tr>");
    }
    l.append("</tbody></table><h2>History</h2><table class=\"grid history\"><tbody>");
    for (CampaignEvent e : c.getHistoryList()) {
      l.append("<tr><td>").append(Html.time(instant(e.getAt()))).append("</td><td>").append(esc(e.getText()))
          .append("</td></tr>");
    }
    l.append("</tbody></table>");
    String policy = "<details><summary>Policy</summary><pre>" + esc(c.getPolicy()) + "</pre></details>";
    return page("Campaign " + c.getName(), "campaigns", r, l.toString(), "<h1>Campaign " + esc(c.getName())
        + " <code>" + esc(c.getId()) + "</code></h1>", policy, false);
  }

  private static void action(StringBuilder l, String verb, Campaign c, String confirm, boolean enabled) {
    l.append("<button class=\"act").append(verb.equals("abort") ? " danger" : "").append("\" id=\"").append(verb)
        .append("\" data-action=\"/v1/campaigns/").append(url(c.getId())).append("/").append(verb)
        .append("\" data-confirm=\"").append(esc(confirm)).append("\"").append(enabled ? "" : " disabled").append(">")
        .append(Character.toUpperCase(verb.charAt(0))).append(verb.substring(1)).append("…</button> ");
  }
}
