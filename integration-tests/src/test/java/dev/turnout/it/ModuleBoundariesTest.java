package dev.turnout.it;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.belongToAnyOf;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
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

  @Test
  void platformsStayInTheirOwnPackages() {
    noClasses().that().resideInAPackage("dev.turnout.migrator.platform.postgres..")
        .should().dependOnClassesThat().resideInAnyPackage("software.amazon..", "dev.turnout.migrator.platform.aws..")
        .check(main);
  }
}
