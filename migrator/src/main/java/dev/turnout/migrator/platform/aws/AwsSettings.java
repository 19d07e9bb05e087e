package dev.turnout.migrator.platform.aws;

import java.net.URI;
import java.time.Duration;
import java.util.Optional;

/**
 * How the AWS platform reaches AWS and how long it waits. Credentials and region come from the SDK's default
 * provider chains (environment, system properties, profile, container or instance role), never from here.
 *
 * @param endpointOverride one endpoint for RDS, EC2 and CloudWatch instead of AWS's (a fake in tests, a VPC
 *     endpoint in production)
 * @param fenceSecurityGroup the VPC security group the fence puts on the source instead of its own: it must
 *     admit the control plane (the migrator keeps a session to record the final LSN) and no application
 * @param replicaDeadline how long creating the Aurora replica cluster and its writer may take
 * @param operationDeadline how long one modification, reboot or promotion may take
 * @param pollInterval the first pause between status polls; it doubles up to 60 s
 * @param retryBackoff the first pause before retrying a throttled call (a 5xx answer or a network error: a tenth
 *     of it); it doubles, with jitter, up to 20 s, for at most 8 attempts. Production: 1 s, as the SDK's own.
 */
public record AwsSettings(Optional<URI> endpointOverride, String fenceSecurityGroup, Duration replicaDeadline,
    Duration operationDeadline, Duration pollInterval, Duration retryBackoff) {

  public AwsSettings {
    endpointOverride = endpointOverride == null ? Optional.empty() : endpointOverride;
    if (fenceSecurityGroup == null || !fenceSecurityGroup.matches("sg-[0-9a-f]{1,17}")) {
      throw new IllegalArgumentException("fence security group '" + fenceSecurityGroup
          + "' is not a security group id like sg-0123456789abcdef0");
    }
    positive(replicaDeadline, "replica deadline");
    positive(operationDeadline, "operation deadline");
    positive(pollInterval, "poll interval");
    positive(retryBackoff, "retry backoff");
  }

  private static void positive(Duration d, String what) {
    if (d == null || d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException(what + " must be positive, not " + d);
    }
  }

  /** Production waits: creating a replica cluster takes tens of minutes, a reboot a few. */
  public static AwsSettings defaults(String fenceSecurityGroup) {
    return new AwsSettings(Optional.empty(), fenceSecurityGroup, Duration.ofHours(2), Duration.ofMinutes(30),
        Duration.ofSeconds(5), Duration.ofSeconds(1));
  }
}
