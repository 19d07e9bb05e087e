package dev.turnout.migrator.platform.aws;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.turnout.migrator.MigrationConflictException;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.awscore.exception.AwsErrorDetails;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.http.SdkHttpResponse;

/**
 * What an operator reads when an AWS call fails, for each shape of answer the SDK can hand back: the line must
 * name the call and its resource, the HTTP status, AWS's code and request id or their absence, and the attempts.
 */
class AwsErrorsTest {
  private static final AwsApi.Call DESCRIBE = AwsApi.describeInstanceCall("orders-rds");

  private static AwsServiceException answer(int status, String code, String requestId, String contentType, String body,
      int attempts) {
    AwsErrorDetails.Builder details = AwsErrorDetails.builder().serviceName("Rds").errorCode(code)
        .rawResponse(body == null ? null : SdkBytes.fromUtf8String(body))
        .sdkHttpResponse(SdkHttpResponse.builder().statusCode(status).putHeader("Content-Type", contentType).build());
    if (code != null) {
      details.errorMessage("DBCluster orders-aurora is not a read replica in the available state");
    }
    return AwsServiceException.builder().statusCode(status).requestId(requestId).numAttempts(attempts)
        .awsErrorDetails(details.build()).build();
  }

  @Test
  void anHtmlPageFromAProxy_isNamedByItsStatusAndTitle_withTheAttempts() {
    var e = AwsApi.AwsCallException.of(DESCRIBE, answer(502, null, null, "text/html",
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body></html>", 8));

    assertThat(e.getMessage()).isEqualTo("AWS DescribeDBInstances DBInstanceIdentifier=orders-rds failed after 8"
        + " attempts: HTTP 502, no AWS error code, no request id: not an AWS error answer (text/html): \"502 Bad Gateway\"");
    assertThat(e.code()).isEmpty();
  }

  @Test
  void aBare404_andAnUnparseableBody_sayWhatCameBack() {
    assertThat(AwsApi.AwsCallException.of(DESCRIBE, answer(404, null, null, "text/plain", "<eof/>", 1)).getMessage())
        .isEqualTo("AWS DescribeDBInstances DBInstanceIdentifier=orders-rds failed: HTTP 404, no AWS error code, no"
            + " request id: not an AWS error answer (text/plain): empty body");
    String longBody = "{\"message\":\"" + "x".repeat(300) + "\"}";
    assertThat(AwsApi.AwsCallException.of(DESCRIBE, answer(403, "", "req-1", "application/json", longBody, 1))
        .getMessage()).startsWith("AWS DescribeDBInstances DBInstanceIdentifier=orders-rds failed: HTTP 403, no AWS"
            + " error code, request id req-1: not an AWS error answer (application/json): \"{\"message\":\"xxx")
        .endsWith("...\"").hasSizeLessThan(350);
  }

  @Test
  void aCodedRefusal_givesTheCodeRequestIdAndAwsMessage() {
    var e = AwsApi.AwsCallException.of(AwsApi.promoteCall("orders-aurora"),
        answer(400, "InvalidDBClusterStateFault", "4f9e", "text/xml", "<ErrorResponse/>", 1));

    assertThat(e.getMessage()).isEqualTo("AWS PromoteReadReplicaDBCluster DBClusterIdentifier=orders-aurora failed:"
        + " HTTP 400 InvalidDBClusterStateFault, request id 4f9e: DBCluster orders-aurora is not a read replica in the"
        + " available state");
    assertThat(e.code()).isEqualTo("InvalidDBClusterStateFault");
  }

  @Test
  void noAnswerAtAll_saysSo() {
    var e = AwsApi.AwsCallException.of(AwsApi.metricsCall("orders-rds", List.of("FreeStorageSpace"),
        java.time.Duration.ofMinutes(10)), SdkClientException.builder().message("Unable to execute HTTP request:"
        + " Connection refused").numAttempts(8).build());

    assertThat(e.getMessage()).isEqualTo("AWS GetMetricData DBInstanceIdentifier=orders-rds failed after 8 attempts:"
        + " no HTTP answer: Unable to execute HTTP request: Connection refused");
  }

  @Test
  void theCreateClusterCall_carriesTheSourcesPort() {
    assertThat(AwsApi.createClusterCall("orders-aurora", "15.4", "arn:aws:rds:us-east-1:1:db:orders-rds", "subnets",
        List.of("sg-1"), 5433, Optional.empty()).toString()).contains(" Port=5433");
  }

  @Test
  void theClusterEndpoint_sharesTheInstanceEndpointsSuffix() throws Exception {
    assertThat(AwsPlatform.clusterEndpoint("orders", "orders-rds.c9akciq32.us-east-1.rds.amazonaws.com", "orders-aurora"))
        .isEqualTo("orders-aurora.cluster-c9akciq32.us-east-1.rds.amazonaws.com");
    assertThat(AwsPlatform.clusterEndpoint("orders", "orders-rds.c9akciq32.cn-north-1.rds.amazonaws.com.cn", "o"))
        .isEqualTo("o.cluster-c9akciq32.cn-north-1.rds.amazonaws.com.cn");
    assertThatThrownBy(() -> AwsPlatform.clusterEndpoint("orders", "10.0.0.5", "orders-aurora"))
        .isInstanceOf(MigrationConflictException.class)
        .hasMessage("database 'orders': cannot derive the Aurora cluster endpoint from the RDS instance's endpoint"
            + " '10.0.0.5' (not an RDS endpoint name); give the target as host:port");
  }
}
