package dev.turnout.migrator.campaign;

import dev.turnout.migrator.Migration;
import dev.turnout.migrator.Phase;
import java.util.Optional;

/**
 * What the policy needs to know of a member's migration.
 *
 * @param error why it rolled back or halted
 * @param pastPromotion whether its target may have taken writes (it reached PROMOTING): an abort leaves it to
 *     finish, since rolling it back would lose them
 */
public record MemberView(Phase phase, Optional<String> error, boolean pastPromotion) {
  public MemberView {
    if (phase == null) {
      throw new IllegalArgumentException("a member's view needs its migration's phase");
    }
    error = error == null ? Optional.empty() : error;
  }

  /** A view of a migration that is in {@code phase}, with no error, promoted only if the phase says so. */
  public static MemberView of(Phase phase) {
    return new MemberView(phase, Optional.empty(), phase.isPastPointOfNoReturn() || phase == Phase.FINALIZED);
  }

  /** The view of {@code m}: promoted when its phase says so, or when its history went through PROMOTING. */
  public static MemberView of(Migration m) {
    boolean promoted = m.phase().isPastPointOfNoReturn() || m.phase() == Phase.FINALIZED;
    for (int i = m.history().size() - 1; !promoted && i >= 0; i--) {
      promoted = m.history().get(i).phase() == Phase.PROMOTING;
    }
    return new MemberView(m.phase(), m.progress().error(), promoted);
  }
}
