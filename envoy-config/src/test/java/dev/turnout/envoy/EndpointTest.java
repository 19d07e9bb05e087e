package dev.turnout.envoy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class EndpointTest {
  @Test
  void parsesIpv4Ipv6AndDnsNames() {
    assertThat(Endpoint.parse("10.0.0.5:5432")).isEqualTo(new Endpoint("10.0.0.5", 5432));
    assertThat(Endpoint.parse("[::1]:6432")).isEqualTo(new Endpoint("::1", 6432));
    assertThat(Endpoint.parse("db-1.prod.internal:5432").host()).isEqualTo("db-1.prod.internal");
    assertThat(Endpoint.parse("[::1]:6432").toString()).isEqualTo("[::1]:6432");
  }

  @Test
  void saysWhatIsWrongWithABadEndpoint() {
    assertThatThrownBy(() -> Endpoint.parse("10.0.0.5")).hasMessageContaining("has no port");
    assertThatThrownBy(() -> Endpoint.parse("10.0.0.300:5432")).hasMessageContaining("not a valid IPv4 address");
    assertThatThrownBy(() -> Endpoint.parse("db_1!:5432")).hasMessageContaining("neither an IP address nor a valid DNS name");
    assertThatThrownBy(() -> Endpoint.parse("::1:5432")).hasMessageContaining("without brackets");
    assertThatThrownBy(() -> Endpoint.parse("db:99999")).hasMessageContaining("out of range");
    assertThatThrownBy(() -> Endpoint.parse("db:pg")).hasMessageContaining("not a number");
  }
}
