package dev.turnout.controlplane.admin;

import static dev.turnout.controlplane.TestConfigs.database;
import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.controlplane.ControlPlane;
import dev.turnout.controlplane.TestConfigs;
import dev.turnout.controlplane.xds.AdsTestClientAccess;
import dev.turnout.envoy.Endpoint;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a probe, Prometheus and an SRE's curl get from the HTTP port. */
class HttpEndpointTest {
  @TempDir Path dir;

  private static HttpResponse<String> get(int port, String path) throws Exception {
    return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void healthReadinessMetricsAndRoutes() throws Exception {
    try (ControlPlane plane = ControlPlane.start(TestConfigs.config(dir, java.time.Duration.ofSeconds(5),
        List.of(database("orders", 15432, "10.0.0.5:5432"))));
         var node = AdsTestClientAccess.connect(plane.xdsPort(), "checkout-1", "checkout")) {
      node.awaitEndpoints("orders");
      plane.routing().route("orders", Endpoint.parse("10.0.0.6:5432")).get(5, TimeUnit.SECONDS);
      int port = plane.httpPort();

      assertThat(get(port, "/healthz").statusCode()).isEqualTo(200);
      assertThat(get(port, "/readyz").statusCode()).isEqualTo(200);

      HttpResponse<String> metrics = get(port, "/metrics");
      assertThat(metrics.statusCode()).isEqualTo(200);
      assertThat(metrics.body())
          .contains("turnout_xds_connected_nodes 1.0")
          .containsPattern("turnout_database_endpoint_version\\{database=\"orders\"} \\d+\\.0")
          .contains("turnout_database_nodes_current{database=\"orders\"} 1.0")
          .contains("turnout_route_ack_seconds_count 1");

      HttpResponse<String> routes = get(port, "/v1/routes");
      assertThat(routes.headers().firstValue("Content-Type")).contains("application/json");
      assertThat(routes.body()).contains("\"endpoint\": \"10.0.0.6:5432\"").contains("\"nodesCurrent\": 1");
      assertThat(get(port, "/v1/routes?all=true&database=orders").body()).contains("\"nodeId\": \"checkout-1\"")
          .contains("\"current\": true");
      assertThat(get(port, "/v1/routes?node=nope").statusCode()).isEqualTo(404);
      assertThat(get(port, "/v1/routes?state=sad").statusCode()).isEqualTo(400);
      assertThat(get(port, "/v1/routes?colour=blue").body()).contains("unknown parameter 'colour'");
    }
  }
}
