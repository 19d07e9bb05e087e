package dev.turnout.sidecar;

import io.grpc.Attributes;
import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.NameResolverRegistry;
import io.grpc.Status;
import io.grpc.SynchronizationContext;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.stream.Collectors;

/**
 * Resolves a list of control-plane replicas ({@code --xds a:18000,b:18000}) for one gRPC channel: every address
 * of every entry, in the order given, so pick_first connects to the first replica that answers and, when that
 * one dies, walks the list again from the top.
 *
 * <p>Each entry is its own address group carrying its own authority, so with TLS every replica's certificate is
 * checked against the name it was listed under. Entries that are DNS names are resolved again whenever the
 * channel asks (after a connection is lost), through the JVM's resolver and its cache.
 */
final class ReplicaListResolver extends NameResolver {
  static final String SCHEME = "turnout-replicas";

  private final List<XdsAddress> replicas;
  private final Executor offload;
  private final SynchronizationContext sync;

  // Confined to the channel's synchronization context, where gRPC calls start, refresh and shutdown.
  private Listener2 listener;
  private boolean resolving;
  private boolean shutdown;

  private ReplicaListResolver(List<XdsAddress> replicas, Args args) {
    this.replicas = List.copyOf(replicas);
    this.offload = args.getOffloadExecutor() != null ? args.getOffloadExecutor() : Runnable::run;
    this.sync = args.getSynchronizationContext();
  }

  /** The channel target naming these replicas; the provider is registered on first use. */
  static String target(List<XdsAddress> replicas) {
    Provider.registerOnce();
    String list = replicas.stream().map(XdsAddress::authority).collect(Collectors.joining(","));
    return SCHEME + ":///" + URLEncoder.encode(list, StandardCharsets.UTF_8);
  }

  @Override
  public String getServiceAuthority() {
    return replicas.get(0).authority();
  }

  @Override
  public void start(Listener2 listener) {
    this.listener = listener;
    resolve();
  }

  @Override
  public void refresh() {
    resolve();
  }

  @Override
  public void shutdown() {
    shutdown = true;
  }

  private void resolve() {
    if (resolving || shutdown) {
      return;
    }
    resolving = true;
    // A DNS name may block; gRPC's offload executor is there for that.
    offload.execute(() -> {
      List<EquivalentAddressGroup> groups = new ArrayList<>();
      List<String> unresolved = new ArrayList<>();
      for (XdsAddress replica : replicas) {
        try {
          List<SocketAddress> addresses = new ArrayList<>();
          for (InetAddress ip : InetAddress.getAllByName(replica.host())) {
            addresses.add(new InetSocketAddress(ip, replica.port()));
          }
          groups.add(new EquivalentAddressGroup(addresses, Attributes.newBuilder()
              .set(EquivalentAddressGroup.ATTR_AUTHORITY_OVERRIDE, replica.authority()).build()));
        } catch (UnknownHostException e) {
          unresolved.add(replica.authority());
        }
      }
      sync.execute(() -> {
        resolving = false;
        if (shutdown) {
          return;
        }
        if (groups.isEmpty()) {
          listener.onError(Status.UNAVAILABLE.withDescription("no xDS replica resolves: " + unresolved));
        } else {
          // Unresolvable entries are left out until a later resolution finds them.
          listener.onResult(ResolutionResult.newBuilder().setAddresses(groups).build());
        }
      });
    });
  }

  /** Makes {@code turnout-replicas:///a%3A1%2Cb%3A2} targets resolvable; the list travels in the target. */
  static final class Provider extends NameResolverProvider {
    private static boolean registered; // guarded by Provider.class

    static synchronized void registerOnce() {
      if (!registered) {
        NameResolverRegistry.getDefaultRegistry().register(new Provider());
        registered = true;
      }
    }

    @Override
    public NameResolver newNameResolver(URI target, Args args) {
      if (!SCHEME.equals(target.getScheme())) {
        return null;
      }
      String list = target.getPath().startsWith("/") ? target.getPath().substring(1) : target.getPath();
      List<XdsAddress> replicas = new ArrayList<>();
      for (String entry : list.split(",")) {
        replicas.add(XdsAddress.parse(entry));
      }
      return new ReplicaListResolver(replicas, args);
    }

    @Override
    public String getDefaultScheme() {
      return SCHEME;
    }

    @Override
    protected boolean isAvailable() {
      return true;
    }

    /** Below DNS's 5, so that plain {@code host:port} targets keep resolving by DNS. */
    @Override
    protected int priority() {
      return 1;
    }
  }
}
