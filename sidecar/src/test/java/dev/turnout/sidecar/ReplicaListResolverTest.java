package dev.turnout.sidecar;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverRegistry;
import io.grpc.Status;
import io.grpc.SynchronizationContext;
import java.net.InetSocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ReplicaListResolverTest {

  private static List<EquivalentAddressGroup> resolve(String target) throws Exception {
    NameResolver.Args args = NameResolver.Args.newBuilder()
        .setDefaultPort(443)
        .setProxyDetector(address -> null)
        .setSynchronizationContext(new SynchronizationContext((t, e) -> { throw new AssertionError(e); }))
        .setServiceConfigParser(new NameResolver.ServiceConfigParser() {
          @Override
          public NameResolver.ConfigOrError parseServiceConfig(java.util.Map<String, ?> rawServiceConfig) {
            return NameResolver.ConfigOrError.fromConfig(rawServiceConfig);
          }
        })
        .build();
    NameResolver resolver = NameResolverRegistry.getDefaultRegistry().asFactory()
        .newNameResolver(URI.create(target), args);
    assertThat(resolver).as("a resolver for " + target).isNotNull();
    CompletableFuture<List<EquivalentAddressGroup>> result = new CompletableFuture<>();
    resolver.start(new NameResolver.Listener2() {
      @Override
      public void onResult(NameResolver.ResolutionResult r) {
        result.complete(r.getAddresses());
      }

      @Override
      public void onError(Status error) {
        result.completeExceptionally(error.asException());
      }
    });
    return result.get(10, TimeUnit.SECONDS);
  }

  @Test
  void aListOfReplicas_resolvesToOneGroupPerReplica_inTheOrderGiven_eachCheckedUnderItsOwnName() throws Exception {
    List<XdsAddress> replicas = List.of(new XdsAddress("127.0.0.2", 18000), new XdsAddress("::1", 18001),
        new XdsAddress("localhost", 18002));

    String target = ReplicaListResolver.target(replicas);
    List<EquivalentAddressGroup> groups = resolve(target);

    List<String> authorities = new ArrayList<>();
    for (EquivalentAddressGroup group : groups) {
      authorities.add(group.getAttributes().get(EquivalentAddressGroup.ATTR_AUTHORITY_OVERRIDE));
    }
    assertThat(authorities).containsExactly("127.0.0.2:18000", "[::1]:18001", "localhost:18002");
    assertThat(groups.get(0).getAddresses()).containsExactly(new InetSocketAddress("127.0.0.2", 18000));
    assertThat(groups.get(1).getAddresses()).containsExactly(new InetSocketAddress("::1", 18001));
    assertThat(groups.get(2).getAddresses()).isNotEmpty()
        .allSatisfy(a -> assertThat(((InetSocketAddress) a).getPort()).isEqualTo(18002));
  }

  @Test
  void aPlainHostAndPort_isStillResolvedByDns() {
    assertThat(NameResolverRegistry.getDefaultRegistry().getDefaultScheme()).isEqualTo("dns");
    ReplicaListResolver.target(List.of(new XdsAddress("127.0.0.1", 1))); // registers the provider
    assertThat(NameResolverRegistry.getDefaultRegistry().getDefaultScheme()).isEqualTo("dns");
  }
}
