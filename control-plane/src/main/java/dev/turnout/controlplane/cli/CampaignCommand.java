package dev.turnout.controlplane.cli;

import com.google.protobuf.Timestamp;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.Campaign;
import dev.turnout.admin.v1.CampaignEvent;
import dev.turnout.admin.v1.CampaignId;
import dev.turnout.admin.v1.CampaignMember;
import dev.turnout.admin.v1.CampaignPlan;
import dev.turnout.admin.v1.CampaignRequest;
import dev.turnout.admin.v1.ListCampaignsRequest;
import dev.turnout.admin.v1.PlannedMember;
import dev.turnout.controlplane.campaign.CampaignFile;
import dev.turnout.controlplane.campaign.InvalidCampaignFileException;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code turnout campaign}: plan, start, follow and steer campaigns (many servers moved by a canary, waves, limits
 * and maintenance windows) through the admin API. Exit codes as {@code turnout migrate}'s: 0 done, 2 bad input or
 * refused (nothing changed), 1 the control plane unreachable, 3 blocked, halted or aborted.
 */
@Command(name = "campaign", mixinStandardHelpOptions = true,
    description = "Move many servers by a plan: a canary, waves, concurrency limits, maintenance windows.",
    subcommands = {CampaignCommand.Plan.class, CampaignCommand.Start.class, CampaignCommand.StatusCmd.class,
        CampaignCommand.Watch.class, CampaignCommand.Pause.class, CampaignCommand.Resume.class,
        CampaignCommand.Approve.class, CampaignCommand.Abort.class})
final class CampaignCommand {
  private static final DateTimeFormatter AT = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm'Z'")
      .withZone(ZoneOffset.UTC);
  private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss'Z'").withZone(ZoneOffset.UTC);
  /** How many databases a table cell names before it counts the rest. */
  private static final int DATABASES_SHOWN = 3;

  @Command(name = "plan", mixinStandardHelpOptions = true,
      description = {"The dry run of a campaign file (see campaign.example.yaml): every server, its databases,"
          + " target, wave and maintenance window, and what would block it now. Starts nothing.",
          "Exit 0 when nothing blocks, 3 when something does, 2 when the file is not valid."})
  static final class Plan implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "FILE", description = "The campaign file (YAML)") Path file;

    @Override
    public Integer call() throws Exception {
      CampaignRequest request = request("campaign plan", file);
      if (request == null) {
        return 2;
      }
      return admin.call("campaign plan", channel -> {
        CampaignPlan plan = AdminOptions.stub(channel).planCampaign(request);
        System.out.print(renderPlan(plan, Instant.now()));
        return blocked(plan) ? 3 : 0;
      });
    }
  }

  @Command(name = "start", mixinStandardHelpOptions = true,
      description = "Start a campaign file's campaign (refused, changing nothing, when its plan is blocked).")
  static final class Start implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "FILE", description = "The campaign file (YAML)") Path file;
    @Option(names = "--watch", description = "Then watch it until it completes, halts or is aborted") boolean watch;

    @Override
    public Integer call() throws Exception {
      CampaignRequest request = request("campaign start", file);
      if (request == null) {
        return 2;
      }
      return admin.call("campaign start", channel -> {
        Campaign c = AdminOptions.stub(channel).startCampaign(request);
        System.out.println("campaign " + c.getId() + " '" + c.getName() + "' started: " + c.getMembersCount()
            + (c.getMembersCount() == 1 ? " server" : " servers") + " in " + c.getWaves()
            + (c.getWaves() == 1 ? " wave" : " waves") + (c.getPolicy().isEmpty() ? "" : "; " + c.getPolicy()));
        if (!watch) {
          System.out.println("follow it: turnout campaign watch " + c.getId());
          return 0;
        }
        try {
          return Watch.follow(channel, c.getId(), System.out, System.console() != null);
        } catch (StatusRuntimeException e) {
          return AdminOptions.report("campaign watch", e); // started: not to be started again on another replica
        }
      });
    }
  }

  @Command(name = "status", mixinStandardHelpOptions = true,
      description = "Every campaign, one line each; or one campaign and its members.")
  static final class StatusCmd implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", arity = "0..1", paramLabel = "ID") String id;

    @Override
    public Integer call() throws Exception {
      return admin.call("campaign status", channel -> {
        AdminGrpc.AdminBlockingStub stub = AdminOptions.stub(channel);
        if (id == null) {
          System.out.print(renderList(stub.listCampaigns(ListCampaignsRequest.getDefaultInstance())
              .getCampaignsList()));
          return 0;
        }
        System.out.print(renderStatus(stub.getCampaign(CampaignId.newBuilder().setId(id).build())));
        return 0;
      });
    }
  }

  @Command(name = "watch", mixinStandardHelpOptions = true,
      description = {"Follow a campaign: a live view on a terminal, one line per change when piped.",
          "Exit 0 when it completes, 3 when it halts (an operator must decide) or is aborted."})
  static final class Watch implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "ID") String id;

    @Override
    public Integer call() throws Exception {
      return admin.call("campaign watch", channel -> follow(channel, id, System.out, System.console() != null));
    }

    /**
     * Follows the campaign until it completes (0), halts or is aborted (3), or the stream ends first (1). A halted
     * campaign ends the watch: nothing more starts until an operator resumes or aborts it.
     */
    static int follow(ManagedChannel channel, String id, PrintStream out, boolean live) {
      Iterator<Campaign> updates = AdminGrpc.newBlockingStub(channel)
          .watchCampaign(CampaignId.newBuilder().setId(id).build());
      Campaign last = null;
      while (updates.hasNext()) {
        Campaign next = updates.next();
        if (live) {
          out.print("\033[H\033[2J" + renderLive(next, Instant.now()));
          out.flush();
        } else {
          changes(last, next).forEach(out::println);
        }
        last = next;
        if (ended(last)) {
          break;
        }
      }
      if (last == null || !ended(last)) {
        System.err.println("campaign " + id + ": the control plane stopped answering; see turnout campaign status "
            + id);
        return 1;
      }
      out.println("campaign " + last.getId() + " '" + last.getName() + "': " + last.getStatus()
          + (last.getReason().isEmpty() ? "" : " (" + last.getReason() + ")"));
      return last.getStatus().equals("COMPLETED") ? 0 : 3;
    }

    private static boolean ended(Campaign c) {
      return switch (c.getStatus()) {
        case "COMPLETED", "ABORTED", "HALTED" -> true;
        default -> false;
      };
    }
  }

  @Command(name = "pause", mixinStandardHelpOptions = true,
      description = "Start no more members; running ones go on, cutting over in their windows.")
  static final class Pause implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "ID") String id;

    @Override
    public Integer call() throws Exception {
      return decide(admin, "campaign pause", id, AdminGrpc.AdminBlockingStub::pauseCampaign);
    }
  }

  @Command(name = "resume", mixinStandardHelpOptions = true,
      description = "Go on after a pause, or after a halt (you have decided what to do about the failure).")
  static final class Resume implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "ID") String id;

    @Override
    public Integer call() throws Exception {
      return decide(admin, "campaign resume", id, AdminGrpc.AdminBlockingStub::resumeCampaign);
    }
  }

  @Command(name = "approve", mixinStandardHelpOptions = true,
      description = "Let the waves start after the canary (also cuts a canary bake short).")
  static final class Approve implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "ID") String id;

    @Override
    public Integer call() throws Exception {
      return decide(admin, "campaign approve", id, AdminGrpc.AdminBlockingStub::approveCampaign);
    }
  }

  @Command(name = "abort", mixinStandardHelpOptions = true,
      description = "Stop the campaign: members not yet promoted roll back, promoted ones finish, the rest never start.")
  static final class Abort implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "ID") String id;

    @Override
    public Integer call() throws Exception {
      return decide(admin, "campaign abort", id, AdminGrpc.AdminBlockingStub::abortCampaign);
    }
  }

  /** An operator's decision on a campaign: prints where it now is. */
  private static int decide(AdminOptions admin, String command, String id,
      java.util.function.BiFunction<AdminGrpc.AdminBlockingStub, CampaignId, Campaign> rpc) throws Exception {
    return admin.call(command, channel -> {
      Campaign c = rpc.apply(AdminOptions.stub(channel), CampaignId.newBuilder().setId(id).build());
      System.out.println("campaign " + c.getId() + " '" + c.getName() + "': " + c.getStatus()
          + (c.getReason().isEmpty() ? "" : " (" + c.getReason() + ")"));
      return 0;
    });
  }

  /**
   * The request for a campaign file, or null after saying why there is none: the file cannot be read, or it is not
   * valid (checked here first, so its problems are listed, each with its line, without a control plane).
   */
  static CampaignRequest request(String command, Path file) {
    String yaml;
    try {
      yaml = StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(Files.readAllBytes(file))).toString();
    } catch (NoSuchFileException e) {
      System.err.println("turnout " + command + ": cannot read " + file + ": no such file");
      return null;
    } catch (AccessDeniedException e) {
      System.err.println("turnout " + command + ": cannot read " + file + ": permission denied");
      return null;
    } catch (CharacterCodingException e) {
      System.err.println("turnout " + command + ": cannot read " + file + ": not UTF-8 text");
      return null;
    } catch (IOException e) {
      System.err.println("turnout " + command + ": cannot read " + file + ": "
          + (Files.isDirectory(file) ? "a directory, not a campaign file" : e.getMessage()));
      return null;
    }
    try {
      CampaignFile.parse(yaml, file.toString());
    } catch (InvalidCampaignFileException e) {
      System.err.println("turnout " + command + ": " + e.getMessage());
      return null;
    }
    return CampaignRequest.newBuilder().setYaml(yaml).setFileName(file.toString()).build();
  }

  /** Whether anything blocks the plan: the campaign as a whole, or one of its servers. */
  static boolean blocked(CampaignPlan plan) {
    return plan.getBlockingCount() > 0 || plan.getMembersList().stream().anyMatch(m -> m.getBlockingCount() > 0);
  }

  /** What {@code campaign plan} prints: the policy, a table of the servers in the order they run, what blocks. */
  static String renderPlan(CampaignPlan plan, Instant now) {
    int waves = plan.getMembersList().stream().mapToInt(PlannedMember::getWave).max().orElse(-1) + 1;
    StringBuilder out = new StringBuilder();
    out.append("campaign '").append(plan.getName()).append("': ").append(count(plan.getMembersCount(), "server"))
        .append(" in ").append(count(waves, "wave")).append('\n');
    out.append("policy: ").append(plan.getPolicy()).append('\n');
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"WAVE", "SERVER", "DATABASES", "TARGET", "CUTOVER WINDOW", "BLOCKING"});
    // The policy in words says whether wave 0 is a canary ("no canary, waves of 10, ...").
    boolean canary = !plan.getPolicy().isEmpty() && !plan.getPolicy().startsWith("no canary");
    for (PlannedMember m : plan.getMembersList()) {
      rows.add(new String[] {
          m.getWave() + (canary && m.getWave() == 0 ? " canary" : ""),
          m.getServer(),
          databases(m.getDatabasesList()),
          m.getTarget(),
          window(m.getWindows(), m.hasNextWindow() ? Instant.ofEpochSecond(m.getNextWindow().getSeconds(),
              m.getNextWindow().getNanos()) : null, now),
          m.getBlockingCount() == 0 ? "-" : String.join("; ", m.getBlockingList())});
    }
    out.append(table(rows));
    if (plan.getBlockingCount() > 0) {
      out.append("blocking the campaign:\n");
      plan.getBlockingList().forEach(b -> out.append("  ").append(b).append('\n'));
    }
    long blockedServers = plan.getMembersList().stream().filter(m -> m.getBlockingCount() > 0).count();
    if (blocked(plan)) {
      out.append("blocked: ").append(plan.getBlockingCount() > 0 ? count(plan.getBlockingCount(), "problem")
          + " of the campaign" + (blockedServers > 0 ? ", " : "") : "")
          .append(blockedServers > 0 ? count((int) blockedServers, "server") + " blocked" : "")
          .append("; start would be refused\n");
    } else {
      out.append("nothing blocks: turnout campaign start FILE\n");
    }
    return out.toString();
  }

  /** The windows a cutover waits for, and when the next opens: {@code any time}, {@code open now (...)}. */
  private static String window(String windows, Instant next, Instant now) {
    if (windows.isEmpty()) {
      return "any time";
    }
    if (next == null) {
      return windows + ", never opens";
    }
    return windows + (next.isAfter(now) ? ", next " + AT.format(next) : ", open now");
  }

  /** What {@code campaign status} prints for every campaign: one line each. */
  static String renderList(List<Campaign> campaigns) {
    if (campaigns.isEmpty()) {
      return "no campaigns\n";
    }
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"ID", "NAME", "STATUS", "WAVE", "SERVERS DONE", "FAILURES", "REASON"});
    for (Campaign c : campaigns) {
      rows.add(new String[] {c.getId(), c.getName(), c.getStatus(), wave(c), settled(c) + "/" + c.getMembersCount(),
          c.getFailures() + "/" + c.getMaxFailures(), c.getReason().isEmpty() ? "-" : c.getReason()});
    }
    return table(rows);
  }

  /** What {@code campaign status ID} prints: a header, then every member. */
  static String renderStatus(Campaign c) {
    return header(c) + table(memberRows(c.getMembersList()));
  }

  /**
   * The live view of {@code campaign watch} on a terminal: the header, the members that run or failed (all of them
   * in a small campaign), a count of the others, and the latest events.
   */
  static String renderLive(Campaign c, Instant now) {
    StringBuilder out = new StringBuilder(header(c));
    List<CampaignMember> shown = c.getMembersCount() <= 20 ? c.getMembersList() : c.getMembersList().stream()
        .filter(m -> !m.getStatus().equals("PENDING") && !m.getStatus().equals("SUCCEEDED")
            && !m.getStatus().equals("SKIPPED") && !m.getStatus().equals("ROLLED_BACK")).toList();
    out.append(table(memberRows(shown)));
    if (shown.size() < c.getMembersCount()) {
      Map<String, Integer> others = new TreeMap<>();
      c.getMembersList().stream().filter(m -> !shown.contains(m)).forEach(m -> others.merge(m.getStatus(), 1, Integer::sum));
      out.append("(not shown: ").append(join(others)).append(")\n");
    }
    int from = Math.max(0, c.getHistoryCount() - 5);
    for (CampaignEvent e : c.getHistoryList().subList(from, c.getHistoryCount())) {
      out.append(event(e)).append('\n');
    }
    out.append("as of ").append(CLOCK.format(now)).append('\n');
    return out.toString();
  }

  private static String header(Campaign c) {
    StringBuilder out = new StringBuilder();
    out.append("campaign ").append(c.getId()).append(" '").append(c.getName()).append("': ").append(c.getStatus())
        .append(", wave ").append(wave(c)).append(", ").append(c.getFailures())
        .append(c.getFailures() == 1 ? " failure" : " failures").append(" (halts at ").append(c.getMaxFailures())
        .append(")");
    if (!c.getStatus().equals("COMPLETED") && !c.getStatus().equals("ABORTED")) {
      out.append(", ETA ").append(c.getEtaSeconds() > 0 ? duration((long) Math.ceil(c.getEtaSeconds())) : "unknown");
    }
    out.append('\n');
    if (!c.getReason().isEmpty()) {
      out.append("reason: ").append(c.getReason()).append('\n');
    }
    if (c.getStatus().equals("WAITING_APPROVAL")) {
      out.append("the canary is done: turnout campaign approve ").append(c.getId()).append('\n');
    }
    if (!c.getPolicy().isEmpty()) {
      out.append("policy: ").append(c.getPolicy()).append('\n');
    }
    if (c.getMembersByPhaseCount() > 0) {
      out.append("members by phase: ").append(join(new TreeMap<>(c.getMembersByPhaseMap()))).append('\n');
    }
    return out.toString();
  }

  private static List<String[]> memberRows(List<CampaignMember> members) {
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"SERVER", "DATABASES", "WAVE", "STATUS", "PHASE", "WRITE GAP", "LAG", "ERROR", "HELD"});
    for (CampaignMember m : members) {
      rows.add(new String[] {m.getServer(), databases(m.getDatabasesList()), String.valueOf(m.getWave()),
          m.getStatus(), m.getPhase().isEmpty() ? "-" : m.getPhase(),
          m.getWriteGapMs() > 0 ? m.getWriteGapMs() + " ms" : "-",
          m.getStatus().equals("STARTED") && m.getWriteGapMs() == 0 ? bytes(m.getLagBytes()) : "-",
          m.getError().isEmpty() ? "-" : m.getError(), m.getHeld().isEmpty() ? "-" : m.getHeld()});
    }
    return rows;
  }

  /**
   * What changed from {@code before} to {@code after}, one line each, for {@code campaign watch} into a pipe: new
   * events, the campaign's status, each member whose status, phase, error or hold changed.
   */
  static List<String> changes(Campaign before, Campaign after) {
    List<String> lines = new ArrayList<>();
    int seen = before == null ? 0 : Math.min(before.getHistoryCount(), after.getHistoryCount());
    for (CampaignEvent e : after.getHistoryList().subList(seen, after.getHistoryCount())) {
      lines.add(event(e));
    }
    if (before == null || !before.getStatus().equals(after.getStatus())
        || !before.getReason().equals(after.getReason())) {
      lines.add("campaign " + after.getStatus() + (after.getReason().isEmpty() ? "" : ": " + after.getReason())
          + (after.getStatus().equals("WAITING_APPROVAL") ? " (turnout campaign approve " + after.getId() + ")" : ""));
    }
    Map<String, CampaignMember> earlier = new TreeMap<>();
    if (before != null) {
      before.getMembersList().forEach(m -> earlier.put(m.getServer(), m));
    }
    for (CampaignMember m : after.getMembersList()) {
      CampaignMember was = earlier.get(m.getServer());
      if (was == null ? before == null && m.getStatus().equals("PENDING") : Objects.equals(key(was), key(m))) {
        continue; // at the start, the pending members are the plan: not changes
      }
      lines.add(m.getServer() + ": " + m.getStatus() + (m.getPhase().isEmpty() ? "" : " " + m.getPhase())
          + (m.getWriteGapMs() > 0 ? ", write gap " + m.getWriteGapMs() + " ms" : "")
          + (m.getHeld().isEmpty() ? "" : ", held: " + m.getHeld())
          + (m.getError().isEmpty() ? "" : ", error: " + m.getError()));
    }
    return lines;
  }

  private static List<String> key(CampaignMember m) {
    return List.of(m.getStatus(), m.getPhase(), m.getError(), m.getHeld());
  }

  private static String event(CampaignEvent e) {
    return (e.hasAt() ? CLOCK.format(time(e.getAt())) + " " : "") + e.getText();
  }

  private static Instant time(Timestamp t) {
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }

  /** {@code 1 of 0-2} (waves count from 0, the canary's when there is one). */
  private static String wave(Campaign c) {
    return c.getWave() + " of 0-" + Math.max(0, c.getWaves() - 1);
  }

  private static long settled(Campaign c) {
    return c.getMembersList().stream().filter(m -> switch (m.getStatus()) {
      case "SUCCEEDED", "FAILED", "ROLLED_BACK", "SKIPPED" -> true;
      default -> false;
    }).count();
  }

  /** {@code orders,billing,stock +4}. */
  private static String databases(List<String> names) {
    if (names.isEmpty()) {
      return "-";
    }
    String shown = String.join(",", names.subList(0, Math.min(DATABASES_SHOWN, names.size())));
    return names.size() > DATABASES_SHOWN ? shown + " +" + (names.size() - DATABASES_SHOWN) : shown;
  }

  private static String join(Map<String, Integer> counts) {
    return counts.entrySet().stream().map(e -> e.getKey() + " " + e.getValue())
        .collect(java.util.stream.Collectors.joining(", "));
  }

  private static String count(int n, String noun) {
    return n + " " + noun + (n == 1 ? "" : "s");
  }

  /** {@code 1h20m}, {@code 45s}. */
  static String duration(long seconds) {
    long h = seconds / 3600;
    long m = seconds % 3600 / 60;
    long s = seconds % 60;
    return h > 0 ? h + "h" + (m > 0 ? m + "m" : "") : m > 0 ? m + "m" + (s > 0 ? s + "s" : "") : s + "s";
  }

  static String bytes(long n) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = n;
    int u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u == 0 ? n + " B" : String.format(Locale.ROOT, "%.1f %s", v, units[u]);
  }

  /** Rows as columns two spaces apart, each as wide as its widest cell; the last column is not padded. */
  static String table(List<String[]> rows) {
    int[] widths = new int[rows.get(0).length];
    for (String[] row : rows) {
      for (int i = 0; i < row.length; i++) {
        widths[i] = Math.max(widths[i], row[i].length());
      }
    }
    StringBuilder out = new StringBuilder();
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
}
