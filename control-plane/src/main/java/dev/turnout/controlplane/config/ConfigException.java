package dev.turnout.controlplane.config;

import com.google.common.collect.ImmutableList;
import java.util.List;

/** Everything wrong with a configuration file, each problem naming the field and line. */
public final class ConfigException extends Exception {
  private static final long serialVersionUID = 1L;
  private final ImmutableList<String> problems;

  public ConfigException(String source, List<String> problems) {
    super(source + " is not valid:\n  " + String.join("\n  ", problems));
    this.problems = ImmutableList.copyOf(problems);
  }

  public ImmutableList<String> problems() {
    return problems;
  }
}
