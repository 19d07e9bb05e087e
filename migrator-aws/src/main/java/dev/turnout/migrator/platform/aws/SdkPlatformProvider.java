package dev.turnout.migrator.platform.aws;

import dev.turnout.migrator.Platform;
import dev.turnout.migrator.Sleeper;
import dev.turnout.migrator.platform.postgres.PostgresPlatform;
import java.time.Clock;

/** The AWS platform, on the AWS SDK v2, as {@link AwsPlatformProvider#installed()} finds it (META-INF/services). */
public final class SdkPlatformProvider implements AwsPlatformProvider {

  @Override
  public Platform.Factory factory(PostgresPlatform.Credentials credentials, AwsSettings settings, Clock clock,
      Sleeper sleeper) {
    return AwsPlatform.factory(credentials, settings, clock, sleeper);
  }
}
