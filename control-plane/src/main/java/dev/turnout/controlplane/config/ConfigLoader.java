package dev.turnout.controlplane.config;

import com.google.common.collect.ImmutableList;
import dev.turnout.envoy.DatabaseRoute;
import dev.turnout.envoy.Endpoint;
import dev.turnout.migrator.platform.aws.AwsSettings;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
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
 * Reads {@code turnout.yaml} and validates every field, collecting all problems (each with its line) before
 * failing, so an operator fixes the file in one pass.
 *
 * <p>Works on SnakeYAML's node tree rather than a data binding because the nodes carry line numbers.
 */
public final class ConfigLoader {

  private final String source;
  private final Path baseDirectory;
  private final List<String> problems = new ArrayList<>();

  private ConfigLoader(String source, Path baseDirectory) {
    this.source = source;
    this.baseDirectory = baseDirectory;
  }

  /** Loads a file; a relative store directory is resolved against the file's directory. */
  public static TurnoutConfig load(Path file) throws ConfigException {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new ConfigException(file.toString(), List.of("cannot read: " + e));
    }
    Path dir = file.toAbsolutePath().getParent();
    return parse(text, file.toString(), dir);
  }

  /** Parses YAML text; {@code baseDirectory} resolves a relative store directory. */
  public static TurnoutConfig parse(String yaml, String source, Path baseDirectory) throws ConfigException {
    return new ConfigLoader(source, baseDirectory).parse(yaml);
  }

  private TurnoutConfig parse(String yaml) throws ConfigException {
    Node root;
    try {
      LoaderOptions options = new LoaderOptions();
      options.setAllowDuplicateKeys(false);
      root = new Yaml(options).compose(new java.io.StringReader(yaml));
    } catch (MarkedYAMLException e) {
      int line = e.getProblemMark() == null ? 0 : e.getProblemMark().getLine() + 1;
      throw new ConfigException(source, List.of("line " + line + ": malformed YAML: " + e.getProblem()));
    } catch (YAMLException e) {
      throw new ConfigException(source, List.of("malformed YAML: " + e.getMessage()));
    }
    if (!(root instanceof MappingNode top)) {
      throw new ConfigException(source, List.of("the file must be a YAML mapping with 'server', 'store' and 'databases'"));
    }
    Map<String, Node> fields = fields(top, "", Set.of("server", "store", "xds", "databases", "migrator"));

    TurnoutConfig.Servers servers = servers(fields.get("server"));
    Path store = baseDirectory.resolve("turnout-data");
    Optional<TurnoutConfig.SharedStore> shared = Optional.empty();
    if (fields.containsKey("store")) {
      Map<String, Node> storeFields = fields(mapping(fields.get("store"), "store"), "store",
          Set.of("directory", "postgres"));
      String dir = string(storeFields.get("directory"), "store.directory");
      if (dir != null) {
        store = baseDirectory.resolve(dir).normalize();
      }
      if (storeFields.containsKey("postgres")) {
        shared = sharedStore(storeFields.get("postgres"));
      }
    }
    Duration ackTimeout = TurnoutConfig.DEFAULT_ACK_TIMEOUT;
    Duration grace = TurnoutConfig.DEFAULT_RECONNECT_GRACE;
    Duration dnsRefresh = TurnoutConfig.DEFAULT_DNS_REFRESH;
    Duration forgetNodesAfter = TurnoutConfig.DEFAULT_FORGET_NODES_AFTER;
    if (fields.containsKey("xds")) {
      Map<String, Node> xds = fields(mapping(fields.get("xds"), "xds"), "xds",
          Set.of("ack_timeout", "reconnect_grace", "dns_refresh", "forget_nodes_after"));
      Duration forget = duration(xds.get("forget_nodes_after"), "xds.forget_nodes_after");
      if (forget != null) {
        forgetNodesAfter = forget;
      }
      Duration refresh = duration(xds.get("dns_refresh"), "xds.dns_refresh");
      if (refresh != null) {
        dnsRefresh = refresh;
      }
      Duration parsed = duration(xds.get("ack_timeout"), "xds.ack_timeout");
      if (parsed != null) {
        ackTimeout = parsed;
      }
      if (xds.containsKey("reconnect_grace")) {
        String text = string(xds.get("reconnect_grace"), "xds.reconnect_grace");
        try {
          grace = text == null ? grace : Durations.parse("xds.reconnect_grace:", text);
        } catch (IllegalArgumentException e) {
          problem(xds.get("reconnect_grace"), e.getMessage());
        }
      }
    }
    List<DatabaseRoute> databases = databases(fields.get("databases"), servers);
    TurnoutConfig.MigratorSettings migrator = TurnoutConfig.MigratorSettings.DEFAULT;
    if (fields.containsKey("migrator")) {
      Map<String, Node> m = fields(mapping(fields.get("migrator"), "migrator"), "migrator",
          Set.of("user", "password_env", "aws"));
      String user = string(m.get("user"), "migrator.user");
      String env = string(m.get("password_env"), "migrator.password_env");
      if (env != null && !env.matches("[A-Za-z_][A-Za-z0-9_]*")) {
        problem(m.get("password_env"), "migrator.password_env: '" + env + "' is not an environment variable name");
      }
      migrator = new TurnoutConfig.MigratorSettings(user == null ? "postgres" : user, Optional.ofNullable(env),
          m.containsKey("aws") ? aws(m.get("aws")) : Optional.empty());
    }
    if (!problems.isEmpty()) {
      throw new ConfigException(source, problems);
    }
    return new TurnoutConfig(servers, new TurnoutConfig.Store(store, shared),
        new TurnoutConfig.Xds(ackTimeout, grace, dnsRefresh, forgetNodesAfter), ImmutableList.copyOf(databases), migrator);
  }

  /** {@code store.postgres}: the metadata database several replicas share. */
  private Optional<TurnoutConfig.SharedStore> sharedStore(Node node) {
    Map<String, Node> p = fields(mapping(node, "store.postgres"), "store.postgres",
        Set.of("url", "user", "password_env", "replica_id", "lease"));
    String url = string(p.get("url"), "store.postgres.url");
    if (url == null) {
      problem(node, "store.postgres.url is required: the jdbc:postgresql://host:port/database of the metadata database");
    } else if (!url.startsWith("jdbc:postgresql://")) {
      problem(p.get("url"), "store.postgres.url: '" + url + "' is not a jdbc:postgresql:// URL");
    }
    String user = string(p.get("user"), "store.postgres.user");
    String env = string(p.get("password_env"), "store.postgres.password_env");
    if (env != null && !env.matches("[A-Za-z_][A-Za-z0-9_]*")) {
      problem(p.get("password_env"), "store.postgres.password_env: '" + env + "' is not an environment variable name");
    }
    String replica = string(p.get("replica_id"), "store.postgres.replica_id");
    if (replica != null && !replica.matches("[A-Za-z0-9._:-]{1,100}")) {
      problem(p.get("replica_id"), "store.postgres.replica_id: '" + replica + "' must be 1-100 letters, digits or . _ : -");
    }
    if (replica == null) {
      String host;
      try {
        host = java.net.InetAddress.getLocalHost().getHostName();
      } catch (java.net.UnknownHostException e) {
        host = "localhost";
      }
      replica = host + "-" + ProcessHandle.current().pid();
    }
    Duration lease = duration(p.get("lease"), "store.postgres.lease");
    if (lease != null && lease.compareTo(Duration.ofSeconds(1)) < 0) {
      problem(p.get("lease"), "store.postgres.lease: at least 1s (the leader renews it five times per lease)");
    }
    return Optional.of(new TurnoutConfig.SharedStore(url == null ? "" : url, user == null ? "turnout" : user,
        Optional.ofNullable(env), replica, lease == null ? TurnoutConfig.SharedStore.DEFAULT_LEASE : lease));
  }

  /** {@code migrator.aws}: region and credentials are the SDK's default chains, never this file. */
  private Optional<AwsSettings> aws(Node node) {
    Map<String, Node> a = fields(mapping(node, "migrator.aws"), "migrator.aws", Set.of("fence_security_group",
        "endpoint", "replica_deadline", "operation_deadline", "poll_interval"));
    AwsSettings d = AwsSettings.defaults("sg-0");
    String group = string(a.get("fence_security_group"), "migrator.aws.fence_security_group");
    if (group == null) {
      problem(node, "migrator.aws.fence_security_group is required: the security group the fence gives the source"
          + " (it must admit the control plane and no application)");
      return Optional.empty();
    }
    Optional<URI> endpoint = Optional.empty();
    String url = string(a.get("endpoint"), "migrator.aws.endpoint");
    if (url != null) {
      try {
        URI uri = new URI(url);
        if (!"https".equals(uri.getScheme()) && !"http".equals(uri.getScheme()) || uri.getHost() == null) {
          throw new URISyntaxException(url, "not an http(s) URL with a host");
        }
        endpoint = Optional.of(uri);
      } catch (URISyntaxException e) {
        problem(a.get("endpoint"), "migrator.aws.endpoint: '" + url + "' is not an http(s) URL with a host");
      }
    }
    Duration replica = Optional.ofNullable(duration(a.get("replica_deadline"), "migrator.aws.replica_deadline"))
        .orElse(d.replicaDeadline());
    Duration operation = Optional.ofNullable(duration(a.get("operation_deadline"), "migrator.aws.operation_deadline"))
        .orElse(d.operationDeadline());
    Duration poll = Optional.ofNullable(duration(a.get("poll_interval"), "migrator.aws.poll_interval"))
        .orElse(d.pollInterval());
    try {
      return Optional.of(new AwsSettings(endpoint, group, replica, operation, poll, d.retryBackoff()));
    } catch (IllegalArgumentException e) {
      problem(a.get("fence_security_group"), "migrator.aws: " + e.getMessage());
      return Optional.empty();
    }
  }

  private TurnoutConfig.Servers servers(Node node) {
    int xds = TurnoutConfig.DEFAULT_XDS_PORT;
    int admin = TurnoutConfig.DEFAULT_ADMIN_PORT;
    int http = TurnoutConfig.DEFAULT_HTTP_PORT;
    String bind = "0.0.0.0";
    Optional<TurnoutConfig.Tls> tls = Optional.empty();
    if (node == null) {
      return new TurnoutConfig.Servers(bind, xds, admin, http, tls);
    }
    Map<String, Node> f = fields(mapping(node, "server"), "server",
        Set.of("bind_address", "admin_bind_address", "insecure", "xds_port", "admin_port", "http_port", "tls"));
    xds = port(f.get("xds_port"), "server.xds_port", xds);
    admin = port(f.get("admin_port"), "server.admin_port", admin);
    http = port(f.get("http_port"), "server.http_port", http);
    if (f.containsKey("tls")) {
      tls = tls(f.get("tls"));
    }
    String b = string(f.get("bind_address"), "server.bind_address");
    if (b != null) {
      bind = b;
    }
    Map<Integer, String> used = new HashMap<>();
    for (var e : Map.of("server.xds_port", xds, "server.admin_port", admin, "server.http_port", http).entrySet()) {
      String other = used.putIfAbsent(e.getValue(), e.getKey());
      if (other != null && e.getValue() != 0) {
        problem(node, "server: " + e.getKey() + " and " + other + " are both " + e.getValue());
      }
    }
    // With server.tls present but broken, tls is empty: its own problems are reported, not an admin one besides.
    boolean withTls = f.containsKey("tls");
    boolean insecure = bool(f.get("insecure"), "server.insecure");
    if (insecure && withTls) {
      problem(f.get("insecure"), "server.insecure: remove it: with server.tls the admin API requires client"
          + " certificates, and a leftover 'insecure: true' would open it to anyone the day server.tls is removed");
    }
    String adminBind = string(f.get("admin_bind_address"), "server.admin_bind_address");
    TurnoutConfig.Servers servers = new TurnoutConfig.Servers(bind, xds, new TurnoutConfig.Admin(
        adminBind != null ? adminBind : TurnoutConfig.Admin.defaultAddress(bind, withTls), admin, insecure && !withTls),
        http, tls);
    if (!withTls) {
      servers.adminProblem().ifPresent(p -> problem(f.getOrDefault("admin_bind_address", node),
          "server.admin_bind_address: " + p));
    }
    return servers;
  }

  /** A YAML boolean written as {@code true} or {@code false}; absent is false. */
  private boolean bool(Node node, String where) {
    String text = string(node, where);
    if (text == null) {
      return false;
    }
    if (!text.equals("true") && !text.equals("false")) {
      problem(node, where + ": '" + text + "' is not true or false");
      return false;
    }
    return text.equals("true");
  }

  private Optional<TurnoutConfig.Tls> tls(Node node) {
    Map<String, Node> f = fields(mapping(node, "server.tls"), "server.tls",
        Set.of("cert_chain", "private_key", "client_ca", "admin_writers", "admin_readers", "console_port"));
    Path cert = file(f, node, "cert_chain");
    Path key = file(f, node, "private_key");
    Path ca = file(f, node, "client_ca");
    Set<String> writers = names(f.get("admin_writers"), "server.tls.admin_writers");
    Set<String> readers = names(f.get("admin_readers"), "server.tls.admin_readers");
    if (cert == null || key == null || ca == null) {
      return Optional.empty();
    }
    int consolePort = port(f.get("console_port"), "server.tls.console_port", TurnoutConfig.DEFAULT_CONSOLE_PORT);
    return Optional.of(new TurnoutConfig.Tls(cert, key, ca, writers, readers, consolePort));
  }

  private Path file(Map<String, Node> fields, Node parent, String name) {
    String where = "server.tls." + name;
    String text = string(fields.get(name), where);
    if (text == null) {
      problem(parent, where + ": is required (a PEM file)");
      return null;
    }
    Path path = baseDirectory.resolve(text).normalize();
    if (!Files.isReadable(path)) {
      problem(fields.get(name), where + ": " + path + " is not a readable file");
      return null;
    }
    return path;
  }

  private Set<String> names(Node node, String where) {
    Set<String> names = new LinkedHashSet<>();
    if (node == null) {
      return names;
    }
    if (!(node instanceof SequenceNode list)) {
      problem(node, where + ": must be a list of certificate common names");
      return names;
    }
    for (Node item : list.getValue()) {
      String s = string(item, where + "[]");
      if (s != null && !s.isBlank()) {
        names.add(s);
      }
    }
    return names;
  }

  private List<DatabaseRoute> databases(Node node, TurnoutConfig.Servers servers) {
    List<DatabaseRoute> result = new ArrayList<>();
    if (node == null) {
      return result;
    }
    if (!(node instanceof SequenceNode list)) {
      problem(node, "databases: must be a list of databases");
      return result;
    }
    Map<String, Integer> nameLines = new HashMap<>();
    Map<Integer, String> portOwners = new HashMap<>();
    for (int i = 0; i < list.getValue().size(); i++) {
      Node item = list.getValue().get(i);
      String where = "databases[" + i + "]";
      MappingNode map = mapping(item, where);
      if (map == null) {
        continue;
      }
      Map<String, Node> f = fields(map, where, Set.of("name", "port", "endpoint", "services"));
      String name = string(f.get("name"), where + ".name");
      if (name == null) {
        problem(item, where + ".name: is required");
        continue;
      }
      where = "databases[" + i + "] ('" + name + "')";
      String nameProblem = DatabaseRoute.nameProblem(name);
      if (nameProblem != null) {
        problem(f.get("name"), where + ".name: " + nameProblem);
      }
      Integer firstLine = nameLines.putIfAbsent(name, line(item));
      if (firstLine != null) {
        problem(f.get("name"), where + ".name: duplicate database name, first defined at line " + firstLine);
      }
      if (!f.containsKey("port")) {
        problem(item, where + ".port: is required (the local port sidecars listen on for this database)");
      }
      int port = port(f.get("port"), where + ".port", -1);
      if (port == 0) {
        problem(f.get("port"), where + ".port: must be a fixed port, not 0");
      }
      if (port > 0) {
        String owner = portOwners.putIfAbsent(port, name);
        if (owner != null) {
          problem(f.get("port"), where + ".port: " + port + " is already the port of database '" + owner + "'");
        }
        if (port == servers.xdsPort() || port == servers.adminPort() || port == servers.httpPort()) {
          problem(f.get("port"), where + ".port: " + port + " is one of the control plane's own ports");
        }
      }
      Optional<Endpoint> endpoint = Optional.empty();
      String endpointText = string(f.get("endpoint"), where + ".endpoint");
      if (endpointText == null && !f.containsKey("endpoint")) {
        problem(item, where + ".endpoint: is required (host:port of the server the database lives on)");
      } else if (endpointText != null) {
        try {
          endpoint = Optional.of(Endpoint.parse(endpointText));
        } catch (IllegalArgumentException e) {
          problem(f.get("endpoint"), where + ".endpoint: " + e.getMessage());
        }
      }
      Set<String> services = services(f.get("services"), where + ".services");
      if (nameProblem == null && port > 0 && endpoint.isPresent()) {
        result.add(new DatabaseRoute(name, port, endpoint, services));
      }
    }
    return result;
  }

  private Set<String> services(Node node, String where) {
    Set<String> services = new LinkedHashSet<>();
    if (node == null) {
      return services;
    }
    if (!(node instanceof SequenceNode list)) {
      problem(node, where + ": must be a list of service names (Envoy node.cluster values)");
      return services;
    }
    if (list.getValue().isEmpty()) {
      problem(node, where + ": is empty, so no service could reach the database; leave it out to allow every service");
    }
    for (Node item : list.getValue()) {
      String s = string(item, where + "[]");
      if (s != null && (s.isBlank() || !services.add(s))) {
        problem(item, where + ": '" + s + "' is blank or listed twice");
      }
    }
    return services;
  }

  private Map<String, Node> fields(MappingNode map, String where, Set<String> allowed) {
    Map<String, Node> result = new HashMap<>();
    if (map == null) {
      return result;
    }
    Map<String, Integer> lines = new HashMap<>();
    for (NodeTuple tuple : map.getValue()) {
      String key = tuple.getKeyNode() instanceof ScalarNode s ? s.getValue() : String.valueOf(tuple.getKeyNode());
      String path = where.isEmpty() ? key : where + "." + key;
      Integer first = lines.putIfAbsent(key, line(tuple.getKeyNode()));
      if (first != null) {
        // SnakeYAML's composer keeps both (only its constructor refuses duplicates): the later would win silently.
        problem(tuple.getKeyNode(), path + ": given twice (first at line " + first + ")");
        continue;
      }
      if (!allowed.contains(key)) {
        problem(tuple.getKeyNode(), path + ": unknown field (expected one of " + new java.util.TreeSet<>(allowed) + ")");
        continue;
      }
      result.put(key, tuple.getValueNode());
    }
    return result;
  }

  private MappingNode mapping(Node node, String where) {
    if (node instanceof MappingNode m) {
      return m;
    }
    problem(node, where + ": must be a mapping");
    return null;
  }

  private String string(Node node, String where) {
    if (node == null) {
      return null;
    }
    if (node instanceof ScalarNode s && !"tag:yaml.org,2002:null".equals(s.getTag().getValue())) {
      return s.getValue();
    }
    problem(node, where + ": must be a single value");
    return null;
  }

  private int port(Node node, String where, int defaultValue) {
    String text = string(node, where);
    if (text == null) {
      return defaultValue;
    }
    try {
      int port = Integer.parseInt(text.trim());
      if (port < 0 || port > 65535) {
        problem(node, where + ": " + port + " is out of range 1-65535");
        return -1;
      }
      return port;
    } catch (NumberFormatException e) {
      problem(node, where + ": '" + text + "' is not a port number");
      return -1;
    }
  }

  private Duration duration(Node node, String where) {
    String text = string(node, where);
    if (text == null) {
      return null;
    }
    try {
      Duration d = Durations.parse(where + ":", text);
      if (d.isZero()) {
        problem(node, where + ": must be positive");
        return null;
      }
      return d;
    } catch (IllegalArgumentException e) {
      problem(node, e.getMessage());
      return null;
    }
  }

  private void problem(Node node, String message) {
    problems.add(node == null ? message : "line " + line(node) + ": " + message);
  }

  private static int line(Node node) {
    return node.getStartMark() == null ? 0 : node.getStartMark().getLine() + 1;
  }
}
