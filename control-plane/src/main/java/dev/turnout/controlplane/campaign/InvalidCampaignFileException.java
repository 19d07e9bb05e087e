package dev.turnout.controlplane.campaign;

import com.google.common.collect.ImmutableList;
import java.util.List;

/**
 * A campaign file that cannot be run, with every problem found in it, each naming its line and field
 * ({@code line 7: policy.wave_size: '0' must be 1 or more}) so an operator fixes the file in one pass. The admin
 * API answers {@code INVALID_ARGUMENT}.
 */
public final class InvalidCampaignFileException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;
  private final ImmutableList<String> problems;

  /**
   * @param headline what is wrong as a whole: {@code campaign.yaml is not valid}, or {@code campaign 'wave-1' does
   *     not resolve against the routes}
   */
  public InvalidCampaignFileException(String headline, List<String> problems) {
    super(headline + ":\n  " + String.join("\n  ", problems));
    this.problems = ImmutableList.copyOf(problems);
  }

  /** Each problem, in the order of the file. */
  public ImmutableList<String> problems() {
    return problems;
  }
}
