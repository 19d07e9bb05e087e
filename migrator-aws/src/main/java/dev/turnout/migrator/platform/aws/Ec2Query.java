package dev.turnout.migrator.platform.aws;

import dev.turnout.migrator.Sleeper;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.xml.sax.SAXException;
import org.xml.sax.helpers.DefaultHandler;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.awscore.exception.AwsErrorDetails;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.core.exception.AbortedException;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.ContentStreamProvider;
import software.amazon.awssdk.http.HttpExecuteRequest;
import software.amazon.awssdk.http.HttpExecuteResponse;
import software.amazon.awssdk.http.SdkHttpClient;
import software.amazon.awssdk.http.SdkHttpFullRequest;
import software.amazon.awssdk.http.SdkHttpMethod;
import software.amazon.awssdk.http.SdkHttpRequest;
import software.amazon.awssdk.http.SdkHttpResponse;
import software.amazon.awssdk.http.auth.aws.signer.AwsV4HttpSigner;
import software.amazon.awssdk.http.auth.spi.signer.SignedRequest;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.ServiceMetadata;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.retries.api.AcquireInitialTokenRequest;
import software.amazon.awssdk.retries.api.AcquireInitialTokenResponse;
import software.amazon.awssdk.retries.api.RecordSuccessRequest;
import software.amazon.awssdk.retries.api.RefreshRetryTokenRequest;
import software.amazon.awssdk.retries.api.RefreshRetryTokenResponse;
import software.amazon.awssdk.retries.api.RetryStrategy;
import software.amazon.awssdk.retries.api.RetryToken;
import software.amazon.awssdk.retries.api.TokenAcquisitionFailedException;

/**
 * EC2's Query API for the one EC2 call the AWS platform makes, DescribeSecurityGroups, on the parts of the AWS SDK
 * the RDS and CloudWatch clients bring anyway: its HTTP client, SigV4 signer, default credential and region chains
 * and retry strategy. The SDK's EC2 client would add its model of the whole EC2 API, 81 MB unpacked, for one call.
 * A failure comes out as that client's would: an {@link AwsServiceException} with the status, AWS's code, the
 * request id, the raw answer and the attempts, or an {@link SdkClientException} when nothing came back; so
 * {@link AwsApi.AwsCallException} words both the same (Ec2QueryTest holds the two clients to each other against
 * the same fake). Unlike the SDK's client it knows no FIPS or dual-stack endpoints: give one as the endpoint
 * override when you need it.
 */
final class Ec2Query implements AutoCloseable {
  /** The EC2 API version the SDK's client speaks too. */
  static final String API_VERSION = "2016-11-15";
  private static final String SERVICE = "ec2";

  private final SdkHttpClient http;
  private final URI endpoint;
  private final Region region;
  private final AwsCredentialsProvider credentials;
  private final RetryStrategy retries;
  private final Sleeper sleeper;
  private final AwsV4HttpSigner signer = AwsV4HttpSigner.create();

  private Ec2Query(SdkHttpClient http, URI endpoint, Region region, AwsCredentialsProvider credentials,
      RetryStrategy retries, Sleeper sleeper) {
    this.http = http;
    this.endpoint = endpoint;
    this.region = region;
    this.credentials = credentials;
    this.retries = retries;
    this.sleeper = sleeper;
  }

  /**
   * The region is resolved now, as the SDK's client builders do (an {@link SdkClientException} without one);
   * credentials at each call. Without an override the endpoint is the region's, as the SDK names it.
   */
  static Ec2Query connect(Optional<URI> endpointOverride, RetryStrategy retries, Sleeper sleeper) {
    Region region = new DefaultAwsRegionProviderChain().getRegion();
    URI endpoint = endpointOverride
        .orElseGet(() -> URI.create("https://" + ServiceMetadata.of(SERVICE).endpointFor(region)));
    if (endpoint.getRawPath() == null || endpoint.getRawPath().isEmpty()) {
      endpoint = endpoint.resolve("/");
    }
    return new Ec2Query(UrlConnectionHttpClient.create(), endpoint, region, DefaultCredentialsProvider.builder().build(),
        retries, sleeper);
  }

  /** The groups with these ids; AWS answers InvalidGroup.NotFound for an id it does not know. */
  List<SecurityGroup> describeSecurityGroups(List<String> ids) {
    Map<String, String> form = new LinkedHashMap<>();
    form.put("Action", "DescribeSecurityGroups");
    form.put("Version", API_VERSION);
    for (int i = 0; i < ids.size(); i++) {
      form.put("GroupId." + (i + 1), ids.get(i));
    }
    Element answer = call(form);
    List<SecurityGroup> groups = new ArrayList<>();
    for (Element group : items(child(answer, "securityGroupInfo"))) {
      List<SecurityGroup.IpPermission> permissions = new ArrayList<>();
      for (Element p : items(child(group, "ipPermissions"))) {
        permissions.add(new SecurityGroup.IpPermission(text(p, "ipProtocol"), integer(p, "fromPort"),
            integer(p, "toPort"), items(child(p, "ipRanges")).stream()
                .map(r -> new SecurityGroup.IpRange(text(r, "cidrIp"))).toList()));
      }
      groups.add(new SecurityGroup(text(group, "groupId"), text(group, "vpcId"), List.copyOf(permissions)));
    }
    return List.copyOf(groups);
  }

  /** One call, retried as the strategy says; the failure thrown carries the attempts made. */
  private Element call(Map<String, String> form) {
    AcquireInitialTokenResponse first = retries.acquireInitialToken(AcquireInitialTokenRequest.create(SERVICE));
    RetryToken token = first.token();
    pause(first.delay());
    for (int attempt = 1; ; attempt++) {
      SdkException failure;
      try {
        Element answer = attempt(form);
        retries.recordSuccess(RecordSuccessRequest.create(token));
        return answer;
      } catch (SdkException e) {
        failure = e.toBuilder().numAttempts(attempt).build();
      }
      try {
        RefreshRetryTokenResponse next = retries.refreshRetryToken(RefreshRetryTokenRequest.builder().token(token)
            .failure(failure).build());
        token = next.token();
        pause(next.delay());
      } catch (TokenAcquisitionFailedException e) {
        throw failure; // not retryable, or out of attempts
      }
    }
  }

  private void pause(Duration delay) {
    if (delay.isZero()) {
      return;
    }
    try {
      sleeper.sleep(delay);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw AbortedException.builder().message("interrupted while waiting to retry").cause(e).build();
    }
  }

  /** POST of the form, signed (SigV4, service ec2), as the SDK's Query protocol sends it. */
  private Element attempt(Map<String, String> form) {
    byte[] body = form.entrySet().stream()
        .map(e -> encode(e.getKey()) + "=" + encode(e.getValue())).collect(Collectors.joining("&"))
        .getBytes(StandardCharsets.UTF_8);
    SdkHttpRequest request = SdkHttpFullRequest.builder().method(SdkHttpMethod.POST).uri(endpoint)
        .putHeader("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        .putHeader("Content-Length", Integer.toString(body.length)).build();
    ContentStreamProvider payload = ContentStreamProvider.fromByteArrayUnsafe(body);
    SignedRequest signed = signer.sign(r -> r.identity(credentials.resolveCredentials()).request(request)
        .payload(payload).putProperty(AwsV4HttpSigner.SERVICE_SIGNING_NAME, SERVICE)
        .putProperty(AwsV4HttpSigner.REGION_NAME, region.id()));
    SdkHttpResponse response;
    byte[] answer;
    try {
      HttpExecuteResponse executed = http.prepareRequest(HttpExecuteRequest.builder().request(signed.request())
          .contentStreamProvider(signed.payload().orElse(payload)).build()).call();
      response = executed.httpResponse();
      try (InputStream in = executed.responseBody().map(InputStream.class::cast).orElse(InputStream.nullInputStream())) {
        answer = in.readAllBytes();
      }
    } catch (IOException e) {
      throw SdkClientException.builder().message("Unable to execute HTTP request: " + e.getMessage()).cause(e).build();
    }
    Optional<Element> xml = parse(answer);
    if (!response.isSuccessful()) {
      throw error(response, answer, xml);
    }
    return xml.orElseThrow(() -> SdkClientException.builder().message("Unable to unmarshall response: HTTP "
        + response.statusCode() + " without an XML body").build());
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
  }

  /**
   * EC2's error answer is {@code <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>};
   * anything else (a proxy's page, a bare status) has no code, and its request id, if any, in a header.
   */
  private static AwsServiceException error(SdkHttpResponse response, byte[] body, Optional<Element> xml) {
    Optional<Element> error = xml.filter(r -> r.getTagName().equals("Response"))
        .map(r -> child(child(r, "Errors"), "Error"));
    String code = error.map(e -> text(e, "Code")).orElse(null);
    String message = error.map(e -> text(e, "Message")).orElse(null);
    String requestId = xml.map(r -> text(r, "RequestID"))
        .or(() -> response.firstMatchingHeader("x-amzn-RequestId"))
        .or(() -> response.firstMatchingHeader("x-amz-request-id")).orElse(null);
    AwsErrorDetails details = AwsErrorDetails.builder().serviceName("Ec2").errorCode(code).errorMessage(message)
        .sdkHttpResponse(response).rawResponse(SdkBytes.fromByteArray(body)).build();
    return AwsServiceException.builder().statusCode(response.statusCode()).requestId(requestId)
        .awsErrorDetails(details).message(message).build();
  }

  /** The document's root element; empty for an empty body or one that is not XML. Entities and DTDs are refused. */
  private static Optional<Element> parse(byte[] body) {
    if (body.length == 0) {
      return Optional.empty();
    }
    try {
      DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
      factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
      factory.setExpandEntityReferences(false);
      DocumentBuilder builder = factory.newDocumentBuilder();
      builder.setErrorHandler(new DefaultHandler()); // throws on fatal errors instead of printing them
      return Optional.of(builder.parse(new ByteArrayInputStream(body)).getDocumentElement());
    } catch (SAXException | IOException e) {
      return Optional.empty();
    } catch (ParserConfigurationException e) {
      throw new IllegalStateException("the JDK's XML parser cannot refuse DTDs", e);
    }
  }

  private static Element child(Element parent, String name) {
    if (parent == null) {
      return null;
    }
    for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
      if (n instanceof Element e && e.getTagName().equals(name)) {
        return e;
      }
    }
    return null;
  }

  /** The {@code <item>} elements of an EC2 list. */
  private static List<Element> items(Element list) {
    List<Element> out = new ArrayList<>();
    if (list != null) {
      for (Node n = list.getFirstChild(); n != null; n = n.getNextSibling()) {
        if (n instanceof Element e && e.getTagName().equals("item")) {
          out.add(e);
        }
      }
    }
    return out;
  }

  private static String text(Element parent, String name) {
    Element e = child(parent, name);
    return e == null ? null : e.getTextContent().strip();
  }

  private static Integer integer(Element parent, String name) {
    String t = text(parent, name);
    return t == null || t.isEmpty() ? null : Integer.valueOf(t);
  }

  @Override
  public void close() {
    http.close();
    if (credentials instanceof AutoCloseable c) {
      try {
        c.close();
      } catch (Exception e) {
        // closing the credential chain's refresh threads; nothing to report
      }
    }
  }
}
