package dev.turnout.migrator.campaign;

import java.util.regex.Pattern;

/**
 * Where a member's server moves to: an address given in the campaign file, or a rule the control plane resolves
 * when the member starts.
 *
 * <p>A kind and a value rather than a sealed interface: the stores write records by reflection, which cannot
 * tell the implementations of an interface apart without annotations this module does not carry, and on Java 17 a
 * switch over the enum is the one that the compiler checks for exhaustiveness.
 *
 * @param value the address ({@code HOST:PORT}) for {@link Kind#GIVEN} and {@link Kind#STANDBY}; the instance
 *     class ({@code db.r6g.large}) for {@link Kind#AURORA_CLUSTER}
 */
public record Target(Kind kind, String value) {
  private static final Pattern INSTANCE_CLASS = Pattern.compile("db\\.[a-z0-9]+\\.[a-z0-9]+");

  /** How the target is found or made. */
  public enum Kind {
    /** An existing streaming standby of the source, at {@code value}. */
    GIVEN,
    /** A standby of the source that the control plane makes (or attaches) to listen at {@code value}. */
    STANDBY,
    /**
     * An Aurora PostgreSQL cluster named {@code <instance>-aurora}, created as a replica of the source RDS instance
     * with a writer of instance class {@code value}; only for {@code aurora:INSTANCE} members.
     */
    AURORA_CLUSTER
  }

  public Target {
    if (kind == null) {
      throw new InvalidSpecException("kind", null, "must be one of GIVEN, STANDBY, AURORA_CLUSTER");
    }
    if (kind == Kind.AURORA_CLUSTER) {
      if (value == null || !INSTANCE_CLASS.matcher(value).matches()) {
        throw new InvalidSpecException("value", value, "is not an RDS instance class like db.r6g.large");
      }
    } else {
      Servers.checkAddress("value", value);
    }
  }

  public static Target given(String address) {
    return new Target(Kind.GIVEN, address);
  }

  public static Target standby(String address) {
    return new Target(Kind.STANDBY, address);
  }

  public static Target auroraCluster(String instanceClass) {
    return new Target(Kind.AURORA_CLUSTER, instanceClass);
  }

  /** The Aurora cluster a member of {@code server} moves to under this rule ({@code <instance>-aurora}). */
  static String clusterOf(String server) {
    return Servers.auroraInstance(server) + "-aurora";
  }

  /** How the plan shows this target for a member of {@code server}. */
  public String describe(String server) {
    return switch (kind) {
      case GIVEN -> value;
      case STANDBY -> value + " (new standby)";
      case AURORA_CLUSTER -> clusterOf(server) + " (new Aurora cluster, " + value + ")";
    };
  }
}
