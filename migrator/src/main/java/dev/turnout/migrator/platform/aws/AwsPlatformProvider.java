package dev.turnout.migrator.platform.aws;

import dev.turnout.migrator.Platform;
import dev.turnout.migrator.Sleeper;
import dev.turnout.migrator.platform.postgres.PostgresPlatform;
import java.time.Clock;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * The AWS platform as a control plane finds it. The platform and the AWS SDK it needs are a module of their own,
 * {@code migrator-aws}, shipped as {@code turnout-aws.jar}, which registers one of these with {@link ServiceLoader}:
 * a control plane that runs no RDS-to-Aurora migration carries no SDK. {@link AwsSettings} (what turnout.yaml says
 * under {@code migrator.aws}) stays in this module, so the configuration is read and checked without it; the
 * package is therefore split between the two jars, which the class path allows.
 */
public interface AwsPlatformProvider {

  /** What an operator is told when {@code migrator.aws} is configured and the platform is not installed. */
  String NOT_INSTALLED = "migrator.aws is configured, but the AWS platform is not installed: put turnout-aws.jar"
      + " (module migrator-aws) beside turnout.jar, whose manifest names it, or on the class path";

  /** Aurora migrations' platforms; every other spec is refused (the control plane picks the platform). */
  Platform.Factory factory(PostgresPlatform.Credentials credentials, AwsSettings settings, Clock clock,
      Sleeper sleeper);

  /** The provider on the class path; empty when turnout-aws.jar is not there. */
  static Optional<AwsPlatformProvider> installed() {
    return ServiceLoader.load(AwsPlatformProvider.class, AwsPlatformProvider.class.getClassLoader()).findFirst();
  }
}
