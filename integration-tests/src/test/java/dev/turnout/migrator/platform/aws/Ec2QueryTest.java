package dev.turnout.migrator.platform.aws;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.turnout.it.aws.FakeAws;
import java.net.ServerSocket;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.retries.api.BackoffStrategy;
import software.amazon.awssdk.services.ec2.Ec2Client;

/**
 * The AWS platform's one EC2 call goes through {@link Ec2Query}, not the SDK's EC2 client (81 MB of model). Held
 * to that client, against the same fake: the same groups, and for every shape of failure the same line for the
 * operator (status, AWS's code, request id, the answer, the attempts) and the same calls made.
 */
class Ec2QueryTest {
  private static final String CALL = "DescribeSecurityGroups GroupId.1=";
  private FakeAws fake;

  @BeforeAll
  static void credentials() {
    // The SDK's default chains read these; nothing here is a real credential.
    System.setProperty("aws.accessKeyId", "AKIAFAKEFAKEFAKEFAKE");
    System.setProperty("aws.secretAccessKey", "fake-secret-for-the-fake");
    System.setProperty("aws.region", "us-east-1");
  }

  @BeforeEach
  void start() throws Exception {
    fake = FakeAws.start();
    fake.addSecurityGroup("sg-0fe4ce", "vpc-1", List.of("10.9.0.10/32", "10.9.0.11/32"));
  }

  @AfterEach
  void stop() {
    fake.close();
  }

  @Test
  void aGroup_readsAsTheSdkClientReadsIt() throws Exception {
    var sdk = sdkClient(fake.endpoint()).describeSecurityGroups(r -> r.groupIds("sg-0fe4ce")).securityGroups();
    List<SecurityGroup> ours;
    try (AwsApi api = AwsApi.connect(settings(fake.endpoint()))) {
      ours = api.securityGroups(List.of("sg-0fe4ce"));
    }

    assertThat(ours).hasSameSizeAs(sdk).singleElement().satisfies(g -> {
      var s = sdk.get(0);
      assertThat(g.groupId()).isEqualTo(s.groupId()).isEqualTo("sg-0fe4ce");
      assertThat(g.vpcId()).isEqualTo(s.vpcId()).isEqualTo("vpc-1");
      assertThat(g.ipPermissions()).singleElement().satisfies(p -> {
        var sp = s.ipPermissions().get(0);
        assertThat(p.ipProtocol()).isEqualTo(sp.ipProtocol()).isEqualTo("tcp");
        assertThat(p.fromPort()).isEqualTo(sp.fromPort()).isEqualTo(5432);
        assertThat(p.toPort()).isEqualTo(sp.toPort()).isEqualTo(5432);
        assertThat(p.ipRanges()).extracting(SecurityGroup.IpRange::cidrIp)
            .containsExactlyElementsOf(sp.ipRanges().stream().map(r -> r.cidrIp()).toList());
      });
    });
    assertThat(fake.calls()).containsExactly(CALL + "sg-0fe4ce", CALL + "sg-0fe4ce");
  }

  @Test
  void anUnknownGroup_isAwssOwnRefusal() throws Exception {
    assertSameFailure(fake.endpoint(), "sg-0bad", "AWS DescribeSecurityGroups GroupIds=sg-0bad failed: HTTP 400"
        + " InvalidGroup.NotFound, request id REQUEST_ID: The security group 'sg-0bad' does not exist");
  }

  @Test
  void throttling_isRetried_untilAnAnswer() throws Exception {
    fake.throttle("DescribeSecurityGroups", 2);
    try (AwsApi api = AwsApi.connect(settings(fake.endpoint()))) {
      assertThat(api.securityGroups(List.of("sg-0fe4ce"))).extracting(SecurityGroup::groupId).containsExactly("sg-0fe4ce");
    }
    assertThat(fake.calls()).containsExactly(CALL + "sg-0fe4ce -> Throttling", CALL + "sg-0fe4ce -> Throttling",
        CALL + "sg-0fe4ce");
  }

  @Test
  void answersFromInFrontOfAws_andNoAnswer_readAsTheSdkClientsDo() throws Exception {
    fake.fault("DescribeSecurityGroups", 16, FakeAws.Fault.HTML_500);
    assertSameFailure(fake.endpoint(), "sg-0fe4ce", "AWS DescribeSecurityGroups GroupIds=sg-0fe4ce failed after 8"
        + " attempts: HTTP 500, no AWS error code, no request id: not an AWS error answer (text/html): \"500 Internal"
        + " Server Error\"");
    fake.fault("DescribeSecurityGroups", 2, FakeAws.Fault.NOT_FOUND_404);
    assertSameFailure(fake.endpoint(), "sg-0fe4ce", "AWS DescribeSecurityGroups GroupIds=sg-0fe4ce failed: HTTP 404,"
        + " no AWS error code, no request id: not an AWS error answer (text/plain): empty body");
    fake.fault("DescribeSecurityGroups", 2, FakeAws.Fault.AUTH_403);
    assertSameFailure(fake.endpoint(), "sg-0fe4ce", "AWS DescribeSecurityGroups GroupIds=sg-0fe4ce failed: HTTP 403,"
        + " no AWS error code, request id REQUEST_ID: not an AWS error answer (application/json): \"{\"message\":\"The"
        + " security token included in the request is invalid.\"}\"");
    fake.throttle("DescribeSecurityGroups", 16);
    assertSameFailure(fake.endpoint(), "sg-0fe4ce", "AWS DescribeSecurityGroups GroupIds=sg-0fe4ce failed after 8"
        + " attempts: HTTP 400 Throttling, request id REQUEST_ID: Rate exceeded");
    assertThat(fake.calls()).as("each client made the same calls").hasSize(2 * (8 + 1 + 1 + 8));

    URI nobody;
    try (ServerSocket s = new ServerSocket(0)) {
      nobody = URI.create("http://127.0.0.1:" + s.getLocalPort());
    }
    assertSameFailure(nobody, "sg-0fe4ce", "AWS DescribeSecurityGroups GroupIds=sg-0fe4ce failed after 8 attempts: no"
        + " HTTP answer: Unable to execute HTTP request: Connection refused");
  }

  /** Both clients fail alike: the same operator's line (request ids aside) and AWS error code. */
  private static void assertSameFailure(URI endpoint, String group, String expected) throws Exception {
    AwsApi.Call call = AwsApi.describeSecurityGroupsCall(List.of(group));
    SdkException sdkFailure = catchThrowableOfType(SdkException.class,
        () -> sdkClient(endpoint).describeSecurityGroups(r -> r.groupIds(group)));
    AwsApi.AwsCallException sdk = AwsApi.AwsCallException.of(call, sdkFailure);
    AwsApi.AwsCallException ours;
    try (AwsApi api = AwsApi.connect(settings(endpoint))) {
      ours = catchThrowableOfType(AwsApi.AwsCallException.class, () -> api.securityGroups(List.of(group)));
    }

    assertThat(withoutIds(ours.getMessage())).isEqualTo(withoutIds(sdk.getMessage())).isEqualTo(expected);
    assertThat(ours.code()).isEqualTo(sdk.code());
  }

  private static String withoutIds(String message) {
    return message.replaceAll("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "REQUEST_ID");
  }

  private static AwsSettings settings(URI endpoint) {
    return new AwsSettings(Optional.of(endpoint), "sg-0fe4ce", Duration.ofMinutes(1), Duration.ofMinutes(1),
        Duration.ofMillis(20), Duration.ofMillis(10));
  }

  /** The SDK's own EC2 client, with the retries AwsApi gives its clients (without their pauses). */
  private static Ec2Client sdkClient(URI endpoint) {
    return Ec2Client.builder().endpointOverride(endpoint).region(Region.US_EAST_1)
        .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create("AKIDFAKE", "fake-secret")))
        .httpClient(UrlConnectionHttpClient.create())
        .overrideConfiguration(o -> o.retryStrategy(AwsRetryStrategy.standardRetryStrategy().toBuilder()
            .maxAttempts(AwsApi.MAX_ATTEMPTS).backoffStrategy(BackoffStrategy.retryImmediately())
            .throttlingBackoffStrategy(BackoffStrategy.retryImmediately()).build()))
        .build();
  }
}
