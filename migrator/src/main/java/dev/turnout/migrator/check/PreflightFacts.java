package dev.turnout.migrator.check;

import java.util.Optional;

/**
 * Everything a platform read for preflight, and nothing it judged.
 *
 * @param servers what SQL read from the source and target; empty only when {@code aws} says one of them does not
 *     exist, so there was nothing to connect to
 * @param aws present on the AWS platform
 */
public record PreflightFacts(Optional<ServerFacts> servers, Optional<AwsFacts> aws) {

  public static PreflightFacts of(ServerFacts servers) {
    return new PreflightFacts(Optional.of(servers), Optional.empty());
  }
}
