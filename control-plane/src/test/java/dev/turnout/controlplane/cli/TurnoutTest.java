package dev.turnout.controlplane.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The command line of a control plane installed without the demo's jar (this module's class path has none). */
class TurnoutTest {

  @Test
  void theDemo_withoutItsJar_saysWhichJarToPutWhere() {
    PrintStream err = System.err;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    int exit;
    try {
      System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
      exit = Turnout.run("demo", "--keep");
    } finally {
      System.setErr(err);
    }

    assertThat(exit).isEqualTo(1);
    assertThat(captured.toString(StandardCharsets.UTF_8)).isEqualTo("turnout: the demo is not installed: put"
        + " turnout-demo.jar (module demo) beside turnout.jar, whose manifest names it; or run ./turnout demo in the"
        + " source tree" + System.lineSeparator());
  }
}
