package dev.turnout.controlplane.campaign;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import dev.turnout.controlplane.config.Durations;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.campaign.CampaignSpec;
import dev.turnout.migrator.campaign.InvalidSpecException;
import dev.turnout.migrator.campaign.MaintenanceWindow;
import dev.turnout.migrator.campaign.Member;
import dev.turnout.migrator.campaign.Policy;
import dev.turnout.migrator.campaign.Target;
import java.io.StringReader;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;

/**
 * Reads a campaign file the way {@code ConfigLoader} reads {@code turnout.yaml}: on SnakeYAML's node tree, whose
 * nodes carry their lines, collecting every problem before failing. The domain values check themselves; their
 * {@link InvalidSpecException}s are reported at the node their path names.
 */
final class CampaignFileParser {
  private static final List<String> TOP = List.of("name", "policy", "migration", "servers", "select");
  private static final List<String> POLICY = List.of("canary", "canary_bake", "wave_size", "wave_bake",
      "max_concurrent", "max_concurrent_per_host", "max_failures", "order", "windows");
  private static final List<String> WINDOW = List.of("cron", "duration", "zone");
  private static final List<String> MIGRATION = List.of("window", "deadline", "quiesce_grace",
      "rollback_prepared_transactions", "max_lag_bytes", "allow_unrouted_databases", "allow_dropping_stale_slots",
      "without_reverse_replication");
  private static final List<String> SERVER = List.of("server", "target", "aurora", "aurora_cluster", "host",
      "size_bytes", "windows");
  private static final List<String> SELECT = List.of("databases", "service", "aurora_cluster", "targets");
  /** The characters of database names, and the glob's two wildcards. */
  private static final Pattern GLOB = Pattern.compile("[a-z0-9_.*?-]+");

  private final String fileName;
  private final List<String> problems = new ArrayList<>();

  CampaignFileParser(String fileName) {
    this.fileName = fileName == null || fileName.isBlank() ? "the campaign file" : fileName;
  }

  CampaignFile parse(String yaml) {
    Node root;
    try {
      LoaderOptions options = new LoaderOptions();
      options.setAllowDuplicateKeys(false);
      root = new Yaml(options).compose(new StringReader(yaml == null ? "" : yaml));
    } catch (MarkedYAMLException e) {
      int line = e.getProblemMark() == null ? 0 : e.getProblemMark().getLine() + 1;
      throw invalid(List.of("line " + line + ": malformed YAML: " + e.getProblem()));
    } catch (YAMLException e) {
      throw invalid(List.of("malformed YAML: " + e.getMessage()));
    }
    if (!(root instanceof MappingNode top)) {
      throw invalid(List.of("the file must be a YAML mapping with 'name', 'policy', and 'servers' or 'select'"
          + " (see campaign.example.yaml)"));
    }
    Map<String, Node> f = fields(top, "", TOP);

    String name = string(f.get("name"), "name");
    if (name == null || name.isBlank()) {
      problem(f.getOrDefault("name", top), "name", "is required: what operators call the campaign");
    } else if (name.length() > 200) {
      problem(f.get("name"), "name", "is longer than 200 characters");
    }
    Policy policy = f.containsKey("policy") ? policy(f.get("policy")) : Policy.DEFAULT;
    Migration.Options migration = f.containsKey("migration") ? migration(f.get("migration"))
        : Migration.Options.defaults();

    List<Member> servers = new ArrayList<>();
    List<Map<String, Node>> serverFields = new ArrayList<>();
    SequenceNode serverList = sequence(f.get("servers"), "servers");
    if (serverList != null) {
      for (int i = 0; i < serverList.getValue().size(); i++) {
        Map<String, Node> sf = new HashMap<>();
        Member m = server(serverList.getValue().get(i), "servers[" + i + "]", sf);
        if (m != null) {
          servers.add(m);
          serverFields.add(sf);
        }
      }
    }
    List<CampaignFile.Selector> selectors = new ArrayList<>();
    SequenceNode selectList = sequence(f.get("select"), "select");
    if (selectList != null) {
      for (int i = 0; i < selectList.getValue().size(); i++) {
        CampaignFile.Selector s = selector(selectList.getValue().get(i), "select[" + i + "]");
        if (s != null) {
          selectors.add(s);
        }
      }
    }
    if ((serverList == null || serverList.getValue().isEmpty())
        && (selectList == null || selectList.getValue().isEmpty())) {
      problem(top, "servers", "list the servers to move, or select them from the routes (select:), or both");
    }
    if (problems.isEmpty() && !servers.isEmpty()) {
      checkListed(name, servers, serverFields, policy, migration);
    }
    if (!problems.isEmpty()) {
      throw invalid(problems);
    }
    return new CampaignFile(name, policy, migration, ImmutableList.copyOf(servers), ImmutableList.copyOf(selectors));
  }

  /**
   * The spec's checks across the listed servers (one named twice, a target named twice, a target that is a listed
   * server), reported at their lines now rather than at expansion. The canary is left out: the selectors may add
   * the members it needs.
   */
  private void checkListed(String name, List<Member> servers, List<Map<String, Node>> nodes, Policy policy,
      Migration.Options migration) {
    try {
      new CampaignSpec(name, ImmutableList.copyOf(servers), policy.withCanary(0, Optional.empty()), migration);
    } catch (InvalidSpecException e) {
      java.util.regex.Matcher m = Pattern.compile("members\\[(\\d+)]\\.(server|target)").matcher(e.path());
      if (!m.lookingAt()) {
        problems.add(e.getMessage());
        return;
      }
      int i = Integer.parseInt(m.group(1));
      Map<String, Node> f = nodes.get(i);
      String field = m.group(2).equals("server") ? (f.containsKey("server") ? "server" : "aurora") : "target";
      problem(f.get(field), "servers[" + i + "]." + field, quoted(e.value()) + " "
          + e.problem().replace("members[", "servers["));
    }
  }

  private Policy policy(Node node) {
    Map<String, Node> f = fields(mapping(node, "policy"), "policy", POLICY);
    Policy d = Policy.DEFAULT;
    Integer count = integer(f.get("canary"), "policy.canary");
    Duration canaryBake = duration(f.get("canary_bake"), "policy.canary_bake", true);
    if (count != null && count == 0 && canaryBake != null) {
      problem(f.get("canary_bake"), "policy.canary_bake", "there is no canary to bake (canary: 0); leave it out");
    }
    Policy.Canary canary = make(() -> new Policy.Canary(count == null ? d.canary().count() : count,
        Optional.ofNullable(canaryBake)), "policy", node,
        at("count", f.get("canary"), "bake", f.get("canary_bake")), Map.of("count", "canary", "bake", "canary_bake"));
    Integer size = integer(f.get("wave_size"), "policy.wave_size");
    Duration waveBake = duration(f.get("wave_bake"), "policy.wave_bake", true);
    Policy.Waves waves = make(() -> new Policy.Waves(size == null ? d.waves().size() : size,
        waveBake == null ? d.waves().bake() : waveBake), "policy", node,
        at("size", f.get("wave_size"), "bake", f.get("wave_bake")), Map.of("size", "wave_size", "bake", "wave_bake"));
    Integer concurrent = integer(f.get("max_concurrent"), "policy.max_concurrent");
    Integer perHost = integer(f.get("max_concurrent_per_host"), "policy.max_concurrent_per_host");
    Policy.FailureLimit failures = null;
    if (f.containsKey("max_failures")) {
      String text = string(f.get("max_failures"), "policy.max_failures");
      failures = text == null ? null : make(() -> Policy.FailureLimit.parse(text), "policy.max_failures",
          f.get("max_failures"), Map.of(), Map.of());
    }
    Policy.FailureLimit maxFailures = failures == null ? d.limits().maxFailures() : failures;
    int c = concurrent == null ? d.limits().maxConcurrent() : concurrent;
    int h = perHost == null ? d.limits().maxConcurrentPerHost() : perHost;
    // Limits checks its fields one at a time: each is tried with the other at its default, so both are reported.
    make(() -> new Policy.Limits(c, d.limits().maxConcurrentPerHost(), maxFailures), "policy", node,
        at("maxConcurrent", f.get("max_concurrent")), Map.of("maxConcurrent", "max_concurrent"));
    make(() -> new Policy.Limits(d.limits().maxConcurrent(), h, maxFailures), "policy", node,
        at("maxConcurrentPerHost", f.get("max_concurrent_per_host")),
        Map.of("maxConcurrentPerHost", "max_concurrent_per_host"));
    Policy.Order order = d.order();
    String orderText = string(f.get("order"), "policy.order");
    if (orderText != null) {
      switch (orderText.trim().toLowerCase(Locale.ROOT)) {
        case "given" -> order = Policy.Order.GIVEN;
        case "smallest_first" -> order = Policy.Order.SMALLEST_FIRST;
        default -> problem(f.get("order"), "policy.order", quoted(orderText) + " is not 'given' or 'smallest_first'");
      }
    }
    ImmutableList<MaintenanceWindow> windows = windows(f.get("windows"), "policy.windows");
    if (canary == null || waves == null || !problems.isEmpty()) {
      return d; // the problems are reported; nothing runs
    }
    return new Policy(canary, waves, new Policy.Limits(c, h, maxFailures), windows, order);
  }

  private ImmutableList<MaintenanceWindow> windows(Node node, String where) {
    SequenceNode list = sequence(node, where);
    if (list == null) {
      return ImmutableList.of();
    }
    if (list.getValue().isEmpty()) {
      problem(node, where, "is empty; leave it out to allow cutovers at any time");
    }
    ImmutableList.Builder<MaintenanceWindow> windows = ImmutableList.builder();
    for (int i = 0; i < list.getValue().size(); i++) {
      Node item = list.getValue().get(i);
      String at = where + "[" + i + "]";
      MappingNode map = mapping(item, at);
      if (map == null) {
        continue;
      }
      Map<String, Node> f = fields(map, at, WINDOW);
      String cron = string(f.get("cron"), at + ".cron");
      if (cron == null) {
        problem(item, at + ".cron", "is required: when the window opens, like \"0 2 * * 1-5\"");
      }
      Duration duration = duration(f.get("duration"), at + ".duration", false);
      if (duration == null && !f.containsKey("duration")) {
        problem(item, at + ".duration", "is required: how long each opening lasts, like 3h");
      }
      ZoneId zone = null;
      boolean zoneValid = true;
      String zoneText = string(f.get("zone"), at + ".zone");
      if (zoneText != null) {
        try {
          zone = ZoneId.of(zoneText.trim());
        } catch (DateTimeException e) {
          problem(f.get("zone"), at + ".zone", quoted(zoneText) + " is not a time zone (a region like Europe/Berlin,"
              + " or UTC)");
          zoneValid = false;
        }
      }
      if (cron == null || duration == null) {
        continue;
      }
      ZoneId z = zone; // with a bad zone, still checks the rest (in UTC)
      MaintenanceWindow w = make(() -> new MaintenanceWindow(cron, duration, z), at, item,
          at("cron", f.get("cron"), "duration", f.get("duration")), Map.of());
      if (w != null && zoneValid) {
        windows.add(w);
      }
    }
    return windows.build();
  }

  private Migration.Options migration(Node node) {
    Map<String, Node> f = fields(mapping(node, "migration"), "migration", MIGRATION);
    Migration.Options d = Migration.Options.defaults();
    Duration window = duration(f.get("window"), "migration.window", false);
    Duration deadline = duration(f.get("deadline"), "migration.deadline", false);
    Duration grace = duration(f.get("quiesce_grace"), "migration.quiesce_grace", true);
    Duration phaseDeadline = deadline == null ? d.phaseDeadline() : deadline;
    Duration quiesceGrace = grace == null ? d.cutover().quiesceGrace() : grace;
    if (quiesceGrace.compareTo(phaseDeadline) >= 0) {
      problem(f.getOrDefault("quiesce_grace", f.get("deadline")), "migration.quiesce_grace", "'" + show(quiesceGrace)
          + "' must be shorter than the phase deadline (" + show(phaseDeadline) + "), which QUIESCING must also meet");
    }
    Long maxLag = longValue(f.get("max_lag_bytes"), "migration.max_lag_bytes");
    if (maxLag != null && maxLag < 1) {
      problem(f.get("max_lag_bytes"), "migration.max_lag_bytes", "'" + maxLag + "' must be 1 or more");
    }
    return new Migration.Options(window == null ? d.validationWindow() : window,
        maxLag == null || maxLag < 1 ? d.maxLagBytes() : maxLag, phaseDeadline,
        bool(f.get("allow_dropping_stale_slots"), "migration.allow_dropping_stale_slots"))
        .withCutover(new Migration.Cutover(quiesceGrace,
            bool(f.get("rollback_prepared_transactions"), "migration.rollback_prepared_transactions")))
        .allowingUnroutedDatabases(bool(f.get("allow_unrouted_databases"), "migration.allow_unrouted_databases"))
        .withoutReverseReplication(bool(f.get("without_reverse_replication"), "migration.without_reverse_replication"));
  }

  /** One entry of {@code servers:}; {@code nodes} gets its fields, for problems found later. */
  private Member server(Node item, String where, Map<String, Node> nodes) {
    MappingNode map = mapping(item, where);
    if (map == null) {
      return null;
    }
    Map<String, Node> f = fields(map, where, SERVER);
    nodes.putAll(f);
    String server = string(f.get("server"), where + ".server");
    String aurora = string(f.get("aurora"), where + ".aurora");
    if (f.containsKey("server") == f.containsKey("aurora")) {
      problem(item, where, f.containsKey("server") ? "give server (HOST:PORT) or aurora (an RDS instance), not both"
          : "server: HOST:PORT (with target:) or aurora: INSTANCE (with aurora_cluster:) is required");
      return null;
    }
    String w = where + (server != null ? " ('" + server + "')" : aurora != null ? " ('aurora:" + aurora + "')" : "");
    Target target = null;
    if (f.containsKey("server")) {
      if (f.containsKey("aurora_cluster")) {
        problem(f.get("aurora_cluster"), w + ".aurora_cluster", "is for an RDS instance (aurora: INSTANCE); a"
            + " HOST:PORT server moves to its target");
      }
      String t = string(f.get("target"), w + ".target");
      if (t == null && !f.containsKey("target")) {
        problem(item, w + ".target", "is required: the server's streaming standby, HOST:PORT");
      } else if (t != null) {
        target = make(() -> Target.given(t.trim()), w + ".target", f.get("target"), Map.of(), Map.of());
      }
    } else {
      if (f.containsKey("target")) {
        problem(f.get("target"), w + ".target", "is for a HOST:PORT server; an RDS instance moves to a new Aurora"
            + " cluster: aurora_cluster: INSTANCE_CLASS");
      }
      String cls = string(f.get("aurora_cluster"), w + ".aurora_cluster");
      if (cls == null && !f.containsKey("aurora_cluster")) {
        problem(item, w + ".aurora_cluster", "is required: the instance class of the new cluster's writer, like"
            + " db.r6g.large");
      } else if (cls != null) {
        target = make(() -> Target.auroraCluster(cls.trim()), w + ".aurora_cluster", f.get("aurora_cluster"),
            Map.of(), Map.of());
      }
    }
    String host = string(f.get("host"), w + ".host");
    Long size = longValue(f.get("size_bytes"), w + ".size_bytes");
    ImmutableList<MaintenanceWindow> windows = windows(f.get("windows"), w + ".windows");
    String key = server != null ? server.trim() : aurora == null ? null : "aurora:" + aurora.trim();
    if (key == null || target == null) {
      return null;
    }
    Target t = target;
    Node keyNode = f.containsKey("server") ? f.get("server") : f.get("aurora");
    return make(() -> new Member(key, host, ImmutableList.of(), t, windows,
        size == null ? OptionalLong.empty() : OptionalLong.of(size)), w, item, at("server", keyNode,
            "target", f.containsKey("target") ? f.get("target") : f.get("aurora_cluster"), "sizeBytes",
            f.get("size_bytes")),
        Map.of("server", f.containsKey("server") ? "server" : "aurora",
            "target", f.containsKey("target") ? "target" : "aurora_cluster", "sizeBytes", "size_bytes"));
  }

  private CampaignFile.Selector selector(Node item, String where) {
    MappingNode map = mapping(item, where);
    if (map == null) {
      return null;
    }
    Map<String, Node> f = fields(map, where, SELECT);
    String glob = string(f.get("databases"), where + ".databases");
    if (glob == null && !f.containsKey("databases")) {
      problem(item, where + ".databases", "is required: a glob of database names, like \"orders-*\" (\"*\": every"
          + " database)");
    } else if (glob != null && !GLOB.matcher(glob).matches()) {
      problem(f.get("databases"), where + ".databases", quoted(glob) + " is not a glob of database names (a-z, 0-9,"
          + " '_', '.', '-', with '*' for any run of characters and '?' for one)");
      glob = null;
    }
    String service = string(f.get("service"), where + ".service");
    if (service != null && service.isBlank()) {
      problem(f.get("service"), where + ".service", "is blank; leave it out to select every service's databases");
    }
    Optional<Target> aurora = Optional.empty();
    String cls = string(f.get("aurora_cluster"), where + ".aurora_cluster");
    if (cls != null) {
      aurora = Optional.ofNullable(make(() -> Target.auroraCluster(cls.trim()), where + ".aurora_cluster",
          f.get("aurora_cluster"), Map.of(), Map.of()));
    }
    Map<String, Target> targets = new LinkedHashMap<>();
    MappingNode targetMap = f.containsKey("targets") ? mapping(f.get("targets"), where + ".targets") : null;
    if (targetMap != null) {
      for (NodeTuple t : targetMap.getValue()) {
        String server = string(t.getKeyNode(), where + ".targets");
        String standby = string(t.getValueNode(), where + ".targets['" + server + "']");
        if (server == null || standby == null) {
          continue;
        }
        try {
          Endpoint.parse(server);
        } catch (IllegalArgumentException e) {
          problem(t.getKeyNode(), where + ".targets", quoted(server) + " is not a server as routes name it (HOST:PORT):"
              + " " + e.getMessage());
          continue;
        }
        String at = where + ".targets['" + server.trim() + "']";
        if (server.trim().equals(standby.trim())) {
          problem(t.getValueNode(), at, quoted(standby) + " is the server itself");
          continue;
        }
        Target target = make(() -> Target.given(standby.trim()), at, t.getValueNode(), Map.of(), Map.of());
        if (target != null) {
          targets.put(server.trim(), target);
        }
      }
    }
    if (!f.containsKey("aurora_cluster") && !f.containsKey("targets")) {
      problem(item, where, "give aurora_cluster (for the RDS instances it finds) or targets (each PostgreSQL"
          + " server's standby), or both: without them no server it finds could move");
    }
    if (glob == null || (service != null && service.isBlank())) {
      return null;
    }
    return new CampaignFile.Selector(glob, Optional.ofNullable(service), aurora, ImmutableMap.copyOf(targets),
        line(item));
  }

  /**
   * Makes a domain value; an {@link InvalidSpecException} it throws becomes a problem at the node its path names.
   *
   * @param nodes by the first part of the domain's path ({@code count}), the node of the field it came from
   * @param names by that part, the field's name in the file ({@code canary}) when it differs from the path's
   * @return the value, or null after reporting why it could not be made
   */
  private <T> T make(Supplier<T> make, String where, Node fallback, Map<String, Node> nodes,
      Map<String, String> names) {
    try {
      return make.get();
    } catch (InvalidSpecException e) {
      String head = e.path().split("[.\\[]", 2)[0];
      Node node = nodes.get(head);
      String path = node == null ? where : where + "." + names.getOrDefault(head, head);
      problem(node == null ? fallback : node, path, quoted(e.value()) + " " + e.problem());
      return null;
    }
  }

  /** Domain path parts and the nodes they came from; a node may be null (the field was left out). */
  private static Map<String, Node> at(Object... partsAndNodes) {
    Map<String, Node> result = new HashMap<>();
    for (int i = 0; i < partsAndNodes.length; i += 2) {
      result.put((String) partsAndNodes[i], (Node) partsAndNodes[i + 1]);
    }
    return result;
  }

  private Map<String, Node> fields(MappingNode map, String where, List<String> known) {
    Map<String, Node> result = new HashMap<>();
    if (map == null) {
      return result;
    }
    Map<String, Integer> lines = new HashMap<>();
    for (NodeTuple tuple : map.getValue()) {
      String key = tuple.getKeyNode() instanceof ScalarNode s ? s.getValue() : String.valueOf(tuple.getKeyNode());
      Integer first = lines.putIfAbsent(key, line(tuple.getKeyNode()));
      if (first != null) {
        // SnakeYAML's composer keeps both (only its constructor refuses duplicates): the later would win silently.
        problem(tuple.getKeyNode(), where.isEmpty() ? key : where + "." + key, "is given twice (first at line "
            + first + ")");
        continue;
      }
      if (!known.contains(key)) {
        String near = known.stream().filter(k -> distance(k, key) <= 2).findFirst().map(k -> " (did you mean '" + k
            + "'?)").orElse("");
        problem(tuple.getKeyNode(), where.isEmpty() ? key : where + "." + key, "unknown field '" + key + "'" + near
            + "; known: " + String.join(", ", known));
        continue;
      }
      result.put(key, tuple.getValueNode());
    }
    return result;
  }

  /** The edit distance of two field names, to suggest the one a typo meant. */
  private static int distance(String a, String b) {
    int[] row = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      row[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      int diagonal = row[0];
      row[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int above = row[j];
        row[j] = Math.min(Math.min(row[j] + 1, row[j - 1] + 1), diagonal + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
        diagonal = above;
      }
    }
    return row[b.length()];
  }

  private MappingNode mapping(Node node, String where) {
    if (node instanceof MappingNode m) {
      return m;
    }
    problem(node, where, "must be a mapping of fields");
    return null;
  }

  /** A list, or null when absent or not a list (reported). */
  private SequenceNode sequence(Node node, String where) {
    if (node == null || isNull(node)) {
      return null;
    }
    if (node instanceof SequenceNode s) {
      return s;
    }
    problem(node, where, "must be a list");
    return null;
  }

  private String string(Node node, String where) {
    if (node == null) {
      return null;
    }
    if (node instanceof ScalarNode s && !isNull(s)) {
      return s.getValue();
    }
    problem(node, where, "must be a single value");
    return null;
  }

  private static boolean isNull(Node node) {
    return "tag:yaml.org,2002:null".equals(node.getTag().getValue());
  }

  private Integer integer(Node node, String where) {
    Long v = longValue(node, where);
    if (v != null && (v > Integer.MAX_VALUE || v < Integer.MIN_VALUE)) {
      problem(node, where, "'" + v + "' is too large");
      return null;
    }
    return v == null ? null : v.intValue();
  }

  private Long longValue(Node node, String where) {
    String text = string(node, where);
    if (text == null) {
      return null;
    }
    try {
      return Long.parseLong(text.trim().replace("_", ""));
    } catch (NumberFormatException e) {
      problem(node, where, quoted(text) + " is not a whole number");
      return null;
    }
  }

  private boolean bool(Node node, String where) {
    String text = string(node, where);
    if (text == null) {
      return false;
    }
    if (!text.equals("true") && !text.equals("false")) {
      problem(node, where, quoted(text) + " is not true or false");
      return false;
    }
    return text.equals("true");
  }

  /** A duration as {@code turnout.yaml} writes them (500ms, 30s, 10m, 3h); null when absent or wrong (reported). */
  private Duration duration(Node node, String where, boolean zeroAllowed) {
    String text = string(node, where);
    if (text == null) {
      return null;
    }
    try {
      Duration d = Durations.parse("", text);
      if (d.isZero() && !zeroAllowed) {
        problem(node, where, quoted(text) + " must be more than zero");
        return null;
      }
      return d;
    } catch (IllegalArgumentException e) {
      problem(node, where, e.getMessage().trim());
      return null;
    }
  }

  /** A duration as the file writes them. */
  private static String show(Duration d) {
    long ms = d.toMillis();
    return ms % 3_600_000 == 0 ? ms / 3_600_000 + "h" : ms % 60_000 == 0 ? ms / 60_000 + "m"
        : ms % 1000 == 0 ? ms / 1000 + "s" : ms + "ms";
  }

  private static String quoted(String value) {
    return value == null ? "missing" : "'" + value + "'";
  }

  private void problem(Node node, String path, String message) {
    problems.add((node == null ? "" : "line " + line(node) + ": ") + (path.isEmpty() ? "" : path + ": ") + message);
  }

  private static int line(Node node) {
    return node.getStartMark() == null ? 0 : node.getStartMark().getLine() + 1;
  }

  private InvalidCampaignFileException invalid(List<String> found) {
    return new InvalidCampaignFileException(fileName + " is not valid", found);
  }
}
