package dev.turnout.it;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.belongToAnyOf;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import dev.turnout.migrator.platform.aws.AwsPlatformProvider;
import dev.turnout.migrator.platform.aws.AwsSettings;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The module arrows of DESIGN.md and rule 1 of CONVENTIONS.md, checked on the compiled main classes of every
 * module: a change that makes an arrow point back fails here, naming the class and the dependency.
 */
class ModuleBoundariesTest {
  private static JavaClasses main;

  @BeforeAll
  static void importMainClasses() {
    main = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
        .importPackages("dev.turnout.migrator", "dev.turnout.envoy", "dev.turnout.sidecar", "dev.turnout.controlplane");
  }

  @Test
  void theMigratorsCore_importsNoPlatformNoJdbcNoAwsNoGrpcNoEnvoy() {
    noClasses().that().resideInAPackage("dev.turnout.migrator")
        .should().dependOnClassesThat().resideInAnyPackage("dev.turnout.migrator.platform..", "java.sql..",
            "org.postgresql..", "software.amazon..", "io.grpc..", "io.envoyproxy..", "dev.turnout.envoy..",
            "dev.turnout.controlplane..")
        .check(main);
  }

  @Test
  void theMigratorAndEnvoyConfig_neverImportEachOtherOrTheControlPlane() {
    noClasses().that().resideInAPackage("dev.turnout.migrator..")
        .should().dependOnClassesThat().resideInAnyPackage("dev.turnout.envoy..", "dev.turnout.controlplane..",
            "dev.turnout.sidecar..", "io.grpc..")
        .check(main);
    noClasses().that().resideInAPackage("dev.turnout.envoy..")
        .should().dependOnClassesThat().resideInAnyPackage("dev.turnout.migrator..", "dev.turnout.controlplane..",
            "dev.turnout.sidecar..")
        .check(main);
  }

  @Test
  void theSidecar_knowsOnlyTheXdsProtocol_notTheControlPlane() {
    noClasses().that().resideInAPackage("dev.turnout.sidecar..")
        .should().dependOnClassesThat().resideInAnyPackage("dev.turnout.controlplane..", "dev.turnout.migrator..",
            "dev.turnout.envoy..")
        .check(main);
  }

  /** The one arrow DESIGN.md does not draw: the CLI ships {@code turnout sidecar}, and the demo runs one. */
  @Test
  void onlyTheCliAndTheDemo_startTheBuiltInSidecar() {
    noClasses().that().resideInAPackage("dev.turnout.controlplane..")
        .and().resideOutsideOfPackages("dev.turnout.controlplane.cli..", "dev.turnout.controlplane.demo..")
        .should().dependOnClassesThat().resideInAPackage("dev.turnout.sidecar..")
        .check(main);
  }

  /**
   * The demo is a module of its own (turnout-demo.jar, with its PostgreSQL archive) on top of the control plane:
   * nothing points back at it; the CLI finds {@code turnout demo} through ServiceLoader.
   */
  @Test
  void nothingDependsOnTheDemo() {
    noClasses().that().resideOutsideOfPackage("dev.turnout.controlplane.demo..")
        .should().dependOnClassesThat().resideInAPackage("dev.turnout.controlplane.demo..")
        .check(main);
  }

  /**
   * The AWS platform is a module of its own (migrator-aws, turnout-aws.jar), installed only where Aurora migrations
   * run: the control plane reaches it through the provider ServiceLoader finds and the settings turnout.yaml fills,
   * both in the migrator, and nothing but the platform touches the AWS SDK.
   */
  @Test
  void theAwsPlatform_isReachedOnlyThroughItsProvider_andAloneUsesTheAwsSdk() {
    noClasses().that().resideOutsideOfPackage("dev.turnout.migrator.platform.aws..")
        .should().dependOnClassesThat(resideInAPackage("dev.turnout.migrator.platform.aws..")
            .and(not(belongToAnyOf(AwsSettings.class, AwsPlatformProvider.class))))
        .orShould().dependOnClassesThat().resideInAPackage("software.amazon..")
        .check(main);
    noClasses().that().belongToAnyOf(AwsSettings.class, AwsPlatformProvider.class)
        .should().dependOnClassesThat().resideInAPackage("software.amazon..")
        .check(main);
  }

  /** Rule 7 of CONVENTIONS.md: the migrator's time is the injected Clock and Sleeper, so tests can run it fake. */
  @Test
  void theMigrator_readsNoWallClockAndSleepsOnlyThroughItsSleeper() {
    noClasses().that().resideInAPackage("dev.turnout.migrator..")
        .should().callMethod(Thread.class, "sleep", long.class)
        .orShould().callMethod(System.class, "nanoTime")
        .orShould().callMethod(System.class, "currentTimeMillis")
        .orShould().callMethod(java.time.Instant.class, "now")
        .orShould().callMethod(java.time.Clock.class, "systemUTC")
        .check(main);
  }

  /** Rule 8 of CONVENTIONS.md: the migrations and the stores say what went wrong; only the admin API speaks gRPC. */
  @Test
  void theControlPlanesMigrationsAndStores_throwDomainErrors_notGrpcStatuses() {
    noClasses().that().resideInAnyPackage("dev.turnout.controlplane.migration..", "dev.turnout.controlplane.store..")
        .should().dependOnClassesThat().resideInAPackage("io.grpc..")
        .check(main);
  }

  @Test
  void platformsStayInTheirOwnPackages() {
    noClasses().that().resideInAPackage("dev.turnout.migrator.platform.postgres..")
        .should().dependOnClassesThat().resideInAnyPackage("software.amazon..", "dev.turnout.migrator.platform.aws..")
        .check(main);
  }

  /** Checks belong to the domain: one pure package judges, on values alone, reading nothing. */
  @Test
  void theChecks_arePure_dependingOnNothingButTheJdkGuavaAndThemselves() {
    classes().that().resideInAPackage("dev.turnout.migrator.check..")
        .should().onlyDependOnClassesThat().resideInAnyPackage("java..", "com.google.common..",
            "dev.turnout.migrator.check..")
        .check(main);
  }

  /** Platforms gather facts; they never judge them (the checks' results are made in {@code migrator.check} only). */
  @Test
  void platforms_gatherFacts_andLeaveTheJudgingToTheChecks() {
    noClasses().that().resideInAPackage("dev.turnout.migrator.platform..")
        .should().dependOnClassesThat().haveFullyQualifiedName("dev.turnout.migrator.check.Check")
        .orShould().dependOnClassesThat().haveFullyQualifiedName("dev.turnout.migrator.check.Preflight")
        .check(main);
  }

  /** The SQL both platforms run is one class's: AWS reaches PostgreSQL through {@code PostgresSql}, not the other platform. */
  @Test
  void theAwsPlatform_runsSqlThroughPostgresSql_neverThroughThePostgresPlatform() {
    noClasses().that().resideInAPackage("dev.turnout.migrator.platform.aws..")
        .should().dependOnClassesThat().haveFullyQualifiedName("dev.turnout.migrator.platform.postgres.PostgresPlatform")
        .orShould().dependOnClassesThat().haveFullyQualifiedName("dev.turnout.migrator.platform.postgres.JdbcPostgresSql")
        .check(main);
  }
}
