package dev.turnout.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.turnout.controlplane.cli.Turnout;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** {@code turnout demo}, the README's first command, runs to completion and reports a clean migration. */
class DemoTest {
  @Test
  void theDemo_migratesUnderLoad_withNoLostCommitAndUnbrokenCdc() {
    PrintStream out = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    int exit;
    try {
      System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
      exit = Turnout.run("demo", "--load-seconds", "1", "--window", "1");
    } finally {
      System.setOut(out);
    }
    String text = captured.toString(StandardCharsets.UTF_8);
    System.out.println(text);
    assertThat(exit).as(text).isZero();
    assertThat(text).contains("migration:                     COMPLETED")
        .containsPattern("lost commits:\\s+0\n")
        .contains("0 acknowledged commits missed, 0 seen twice")
        .contains("== cleaning up");
  }
}
