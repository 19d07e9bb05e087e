package dev.turnout.controlplane.campaign;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import com.google.common.net.InetAddresses;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.Migration;
import dev.turnout.migrator.campaign.CampaignSpec;
import dev.turnout.migrator.campaign.InvalidSpecException;
import dev.turnout.migrator.campaign.Member;
import dev.turnout.migrator.campaign.Policy;
import dev.turnout.migrator.campaign.Target;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A campaign file as an operator wrote it (see {@code campaign.example.yaml}): its policy, the options of every
 * member's migration, the servers it lists and the selectors that find more in the routes. {@link #expand} turns it
 * into a {@link CampaignSpec} against the routes the control plane holds when the campaign is planned or started.
 *
 * @param servers the servers listed, in order, with no databases yet: {@link #expand} fills them in
 * @param selectors the {@code select:} entries, in order
 */
public record CampaignFile(String name, Policy policy, Migration.Options migration, ImmutableList<Member> servers,
    ImmutableList<Selector> selectors) {

  /**
   * An RDS instance's endpoint name: {@code <instance>.<account suffix>.<region>.rds.amazonaws.com}. An Aurora
   * cluster's ({@code <cluster>.cluster-<suffix>...}) has a hyphen in the suffix, so it is not taken for one.
   */
  private static final Pattern RDS_HOST =
      Pattern.compile("([a-z][a-z0-9-]*)\\.[a-z0-9]+\\.[a-z0-9-]+\\.rds\\.amazonaws\\.com(\\.cn)?");
  /** How many database names a message lists before it says how many more there are. */
  private static final int NAMED = 5;

  public CampaignFile {
    servers = servers == null ? ImmutableList.of() : servers;
    selectors = selectors == null ? ImmutableList.of() : selectors;
  }

  /** Parses the campaign file; InvalidCampaignFileException (extends IllegalArgumentException) lists every problem with its line. */
  public static CampaignFile parse(String yaml, String fileName) {
    return new CampaignFileParser(fileName).parse(yaml);
  }

  /**
   * A route as the control plane holds it: database name, endpoint HOST:PORT (empty when drained), the DNS name it
   * was routed by (empty for an address), the services allowed to reach it (empty: every service).
   */
  public record Route(String database, Optional<String> endpoint, Optional<String> hostname, Set<String> services) {
    public Route {
      endpoint = endpoint == null ? Optional.empty() : endpoint;
      hostname = hostname == null ? Optional.empty() : hostname;
      services = services == null ? Set.of() : ImmutableSet.copyOf(services);
    }
  }

  /**
   * Finds servers in the routes: the server of every database whose name matches {@code databases} (a glob: {@code *}
   * any run of characters, {@code ?} one) and that {@code service}, when given, may reach (a route open to every
   * service included). The member it makes moves every database on that server, matching or not.
   *
   * @param auroraCluster the target rule for the RDS instances it finds (databases routed by the instance's endpoint
   *     name): a new Aurora cluster {@code <instance>-aurora} with a writer of this class
   * @param targets for the PostgreSQL servers it finds, each one's streaming standby; a server is named as its
   *     routes name it: {@code HOST:PORT}, or the DNS name and port it was routed by. The member is named by its key
   * @param line where the selector is in its file, for messages (0 when it was not read from one)
   */
  public record Selector(String databases, Optional<String> service, Optional<Target> auroraCluster,
      ImmutableMap<String, Target> targets, int line) {
    public Selector {
      service = service == null ? Optional.empty() : service;
      auroraCluster = auroraCluster == null ? Optional.empty() : auroraCluster;
      targets = targets == null ? ImmutableMap.of() : targets;
      if (databases == null || databases.isBlank()) {
        throw new IllegalArgumentException("a selector needs a glob of database names");
      }
    }

    /** The database-name glob as a pattern. */
    Pattern glob() {
      StringBuilder regex = new StringBuilder();
      for (char c : databases.toCharArray()) {
        regex.append(c == '*' ? ".*" : c == '?' ? "." : Pattern.quote(String.valueOf(c)));
      }
      return Pattern.compile(regex.toString());
    }

    boolean matches(Pattern glob, Route r) {
      return glob.matcher(r.database()).matches()
          && (service.isEmpty() || r.services().isEmpty() || r.services().contains(service.get()));
    }

    /** {@code select[1] (line 40: databases 'orders-*', service checkout)}. */
    String describe(int index) {
      return "select[" + index + "] (" + (line > 0 ? "line " + line + ": " : "") + "databases '" + databases + "'"
          + service.map(s -> ", service " + s).orElse("") + ")";
    }
  }

  /**
   * The members: the listed servers, then every server the selectors find in routes (in database-name order, each
   * once; a server already listed is not added again), each with the databases routed to it filled in. Throws
   * InvalidCampaignFileException naming what does not resolve (a listed server no route points to; a selector that
   * matches nothing; a PostgreSQL server found by a selector with no target for it).
   *
   * <p>A server is an endpoint the routes point at: a database routed by a DNS name belongs to the server its name
   * resolved to, with the databases routed to that address, so they move together.
   */
  public CampaignSpec expand(List<Route> routes) {
    List<String> problems = new ArrayList<>();
    Servers fleet = new Servers(routes);

    List<Member> members = new ArrayList<>();
    List<String> origins = new ArrayList<>(); // how messages name members[i]
    Map<Endpoint, Integer> listedAt = new HashMap<>();
    for (int i = 0; i < servers.size(); i++) {
      Member m = servers.get(i);
      String origin = "servers[" + i + "] '" + m.server() + "'";
      Set<Endpoint> at = fleet.endpointsOf(m.server());
      if (at.isEmpty()) {
        problems.add(origin + ": " + (m.server().startsWith(AURORA)
            ? "no database is routed to RDS instance '" + m.server().substring(AURORA.length()) + "' by its endpoint"
                + " name (" + m.server().substring(AURORA.length()) + ".<suffix>.<region>.rds.amazonaws.com)"
            : "no route points to it (by address, or by a DNS name and port)"));
      }
      for (Endpoint e : at) {
        Integer other = listedAt.putIfAbsent(e, i);
        if (other != null && other != i) {
          problems.add(origin + ": is the server of servers[" + other + "] '" + servers.get(other).server()
              + "' (both reach " + e + ", holding " + names(fleet.databasesAt(e)) + "): a server moves once");
        }
      }
      members.add(m.withDatabases(fleet.databasesAt(at)));
      origins.add(origin);
    }

    // Every server the selectors find, each with the selectors (in file order) that found it.
    Map<Endpoint, Set<Integer>> found = new LinkedHashMap<>();
    List<Set<String>> nameable = new ArrayList<>(); // per selector: every name of the servers it matched
    for (int j = 0; j < selectors.size(); j++) {
      Selector s = selectors.get(j);
      Pattern glob = s.glob();
      List<Route> matched = routes.stream().filter(r -> s.matches(glob, r))
          .sorted(Comparator.comparing(Route::database)).toList();
      Set<String> names = new HashSet<>();
      nameable.add(names);
      if (matched.isEmpty()) {
        problems.add(s.describe(j) + ": matches no database"
            + (s.service().isPresent() ? " that service " + s.service().get() + " may reach" : ""));
        continue;
      }
      List<Route> routed = matched.stream().filter(r -> r.endpoint().isPresent()).toList();
      if (routed.isEmpty()) {
        problems.add(s.describe(j) + ": matches only drained databases (" + names(matched.stream()
            .map(Route::database).toList()) + "): their server cannot be known until they are routed");
        continue;
      }
      for (Route r : routed) {
        Endpoint e = Servers.endpoint(r.endpoint().get());
        names.addAll(fleet.namesOf(e));
        if (!listedAt.containsKey(e)) {
          found.computeIfAbsent(e, x -> new LinkedHashSet<>()).add(j);
        }
      }
    }

    List<Endpoint> order = new ArrayList<>(found.keySet());
    order.sort(Comparator.comparing(e -> fleet.databasesAt(e).get(0)));
    Map<Integer, Set<String>> keysUsed = new HashMap<>();
    for (Endpoint e : order) {
      Set<Integer> by = found.get(e);
      String finder = selectors.get(by.iterator().next()).describe(by.iterator().next());
      ImmutableList<String> dbs = fleet.databasesAt(e);
      Optional<String> instance = fleet.rdsInstanceAt(e);
      if (instance.isPresent()) {
        Optional<Target> rule = by.stream().map(j -> selectors.get(j).auroraCluster()).flatMap(Optional::stream)
            .findFirst();
        if (rule.isEmpty()) {
          problems.add(finder + ": found RDS instance '" + instance.get() + "' (" + names(dbs) + ") but has no"
              + " aurora_cluster to move it to");
          continue;
        }
        members.add(Member.of(AURORA + instance.get(), rule.get()).withDatabases(dbs));
        origins.add("'" + AURORA + instance.get() + "' found by " + finder);
        continue;
      }
      Set<String> serverNames = fleet.namesOf(e);
      Optional<Map.Entry<Integer, String>> key = by.stream().flatMap(j -> selectors.get(j).targets().keySet().stream()
          .filter(k -> serverNames.contains(Servers.name(k))).map(k -> Map.entry(j, k))).findFirst();
      if (key.isEmpty()) {
        problems.add(finder + ": found PostgreSQL server " + e + " (" + names(dbs) + ") but has no target for it:"
            + " add its standby to targets (\"" + e + "\": HOST:PORT)");
        continue;
      }
      keysUsed.computeIfAbsent(key.get().getKey(), j -> new HashSet<>()).add(key.get().getValue());
      members.add(Member.of(key.get().getValue(), selectors.get(key.get().getKey()).targets().get(key.get().getValue()))
          .withDatabases(dbs));
      origins.add("'" + key.get().getValue() + "' found by " + finder);
    }
    for (int j = 0; j < selectors.size(); j++) {
      for (String k : selectors.get(j).targets().keySet()) {
        if (!nameable.get(j).contains(Servers.name(k))) {
          problems.add(selectors.get(j).describe(j) + ".targets: '" + k + "' is not the server of a database this"
              + " selector matches");
        }
      }
    }
    if (!problems.isEmpty()) {
      throw new InvalidCampaignFileException("campaign '" + name + "' does not resolve against the routes", problems);
    }
    try {
      return new CampaignSpec(name, ImmutableList.copyOf(members), policy, migration);
    } catch (InvalidSpecException e) {
      // The spec's checks across members (a server or a target twice, a target that is a member): named as the
      // file names them.
      String where = e.path().equals("policy.canary.count") ? "policy.canary" : memberNames(e.path(), origins)
          .replaceFirst("\\.(server|target\\.value|target)$", "");
      throw new InvalidCampaignFileException("campaign '" + name + "' does not resolve against the routes",
          List.of(where + ": " + (e.value() == null ? "missing" : "'" + e.value() + "'") + " "
              + memberNames(e.problem(), origins)));
    }
  }

  /** {@code text} with each {@code members[i]} in it named as the file names that member. */
  private static String memberNames(String text, List<String> origins) {
    return MEMBER.matcher(text).replaceAll(m -> Matcher.quoteReplacement(origins.get(Integer.parseInt(m.group(1)))));
  }

  private static final String AURORA = "aurora:";
  private static final Pattern MEMBER = Pattern.compile("members\\[(\\d+)]");

  /** {@code 'a', 'b', 'c'} or {@code 'a', 'b', ... and 7 more}. */
  private static String names(List<String> databases) {
    StringBuilder b = new StringBuilder(databases.size() == 1 ? "database " : "databases ");
    for (int i = 0; i < Math.min(NAMED, databases.size()); i++) {
      b.append(i == 0 ? "" : ", ").append('\'').append(databases.get(i)).append('\'');
    }
    return databases.size() > NAMED ? b + " and " + (databases.size() - NAMED) + " more" : b.toString();
  }

  /** The servers the routes point at: for each endpoint, the databases on it and the names it was routed by. */
  private static final class Servers {
    private final Map<Endpoint, TreeSet<String>> databases = new HashMap<>();
    private final Map<Endpoint, Set<String>> names = new HashMap<>();
    private final Map<String, Set<Endpoint>> byName = new HashMap<>();
    private final Map<Endpoint, String> rdsInstances = new HashMap<>();
    private final Map<String, Set<Endpoint>> byRdsInstance = new HashMap<>();

    Servers(List<Route> routes) {
      for (Route r : routes) {
        if (r.endpoint().isEmpty()) {
          continue; // drained: no server to count it on
        }
        Endpoint e = endpoint(r.endpoint().get());
        databases.computeIfAbsent(e, x -> new TreeSet<>()).add(r.database());
        Set<String> n = names.computeIfAbsent(e, x -> new HashSet<>());
        n.add(e.toString());
        byName.computeIfAbsent(e.toString(), x -> new HashSet<>()).add(e);
        if (r.hostname().isPresent()) {
          String host = r.hostname().get().toLowerCase(Locale.ROOT);
          String name = host + ":" + e.port();
          n.add(name);
          byName.computeIfAbsent(name, x -> new HashSet<>()).add(e);
          Matcher rds = RDS_HOST.matcher(host);
          if (rds.matches()) {
            rdsInstances.putIfAbsent(e, rds.group(1));
            byRdsInstance.computeIfAbsent(rds.group(1), x -> new HashSet<>()).add(e);
          }
        }
      }
    }

    /** The endpoint a route's {@code HOST:PORT} names, written one way (host in lower case, IPv6 compressed). */
    static Endpoint endpoint(String text) {
      Endpoint e = Endpoint.parse(text);
      String host = e.host().toLowerCase(Locale.ROOT);
      return new Endpoint(InetAddresses.isInetAddress(host)
          ? InetAddresses.toAddrString(InetAddresses.forString(host)) : host, e.port());
    }

    /** A server's name as {@link #names} holds it; the text itself when it is not {@code HOST:PORT}. */
    static String name(String text) {
      try {
        return endpoint(text).toString();
      } catch (IllegalArgumentException e) {
        return text;
      }
    }

    /** The endpoints a campaign's server key leads to: by address, by DNS name, or by RDS instance. */
    Set<Endpoint> endpointsOf(String server) {
      if (server.startsWith(AURORA)) {
        return byRdsInstance.getOrDefault(server.substring(AURORA.length()).toLowerCase(Locale.ROOT), Set.of());
      }
      return byName.getOrDefault(name(server), Set.of());
    }

    /** Every name the routes reach {@code e} by. */
    Set<String> namesOf(Endpoint e) {
      return names.getOrDefault(e, Set.of());
    }

    ImmutableList<String> databasesAt(Endpoint e) {
      return ImmutableList.copyOf(databases.getOrDefault(e, new TreeSet<>()));
    }

    ImmutableList<String> databasesAt(Set<Endpoint> endpoints) {
      TreeSet<String> all = new TreeSet<>();
      endpoints.forEach(e -> all.addAll(databases.getOrDefault(e, new TreeSet<>())));
      return ImmutableList.copyOf(all);
    }

    Optional<String> rdsInstanceAt(Endpoint e) {
      return Optional.ofNullable(rdsInstances.get(e));
    }
  }
}
