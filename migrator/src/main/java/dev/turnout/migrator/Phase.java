package dev.turnout.migrator;

import com.google.common.collect.ImmutableSet;
import java.util.Set;

/** Where a migration is. One enum, one transition rule: {@link #checkTransition}. */
public enum Phase {
  /** Recorded, nothing checked or touched yet. */
  PLANNED,
  /** Checking the target is a streaming standby of the source, parameters, extensions and logical slots. */
  PREFLIGHT,
  /** Sampling replication lag and rates over the validation window, under the real load. */
  REPLICATING,
  /** The target kept up for the whole window; cutover may start. */
  VALIDATED,
  /**
   * Draining the route, letting the work in flight on the source finish within the grace, fencing the source
   * against every role and session but the migrator's, and recording its final WAL position.
   */
  QUIESCING,
  /**
   * Waiting for logical-slot consumers and the target's replay to reach the final position, then proving from
   * the source's WAL that nothing committed after it.
   */
  CATCHING_UP,
  /**
   * Promoting the target, recreating the slots on it, making the reverse replication back to the source, then
   * admitting writes. The point of no return for data, unless the reverse replication carries them back.
   */
  PROMOTING,
  /** Routing sidecars to the target and waiting for every subscribed one to ACK. */
  SHIFTING,
  /** Write probe on the target through its new role; the source's WAL proved again. */
  VERIFYING,
  /**
   * Holding the target's workload against the baseline recorded from the source while validating, signal by
   * signal, for the bake the migration asked for ({@code --bake}; zero skips this phase: VERIFYING goes straight to
   * COMPLETED). A breach rolls back by itself, naming the signal and both figures, when the reverse replication made
   * at promotion is healthy (the rollback keeps the target's writes); without a healthy one it halts for an operator.
   */
  BAKING,
  /** Traffic is on the target; the source stays intact and fenced until finalized. */
  COMPLETED,
  /** The operator finalized: the source is no longer a way back. */
  FINALIZED,
  /**
   * Undoing: route back to the source, unfence it. After promotion with a healthy reverse path, first drain, fence
   * the target and wait until the source has applied its last commit, so no write is lost.
   */
  ROLLING_BACK,
  /** Undone: the source is routed and writable. */
  ROLLED_BACK,
  /**
   * Stopped where automatic action would be unsafe (a failure after promotion, or a source that died while
   * quiescing): the error says what an operator must decide (resume, or roll back with consent).
   */
  HALTED;

  private static final Set<Phase> TERMINAL = ImmutableSet.of(FINALIZED, ROLLED_BACK);

  public boolean isTerminal() {
    return TERMINAL.contains(this);
  }

  /**
   * Whether the target may have accepted writes: rolling back from here loses them, so it needs consent, unless the
   * migration's reverse replication is healthy ({@link Migration.Progress#wayBack}).
   */
  public boolean isPastPointOfNoReturn() {
    return this == PROMOTING || this == SHIFTING || this == VERIFYING || this == BAKING || this == COMPLETED;
  }

  /** The phase the forward path goes to after this one. */
  public Phase next() {
    return switch (this) {
      case PLANNED -> PREFLIGHT;
      case PREFLIGHT -> REPLICATING;
      case REPLICATING -> VALIDATED;
      case VALIDATED -> QUIESCING;
      case QUIESCING -> CATCHING_UP;
      case CATCHING_UP -> PROMOTING;
      case PROMOTING -> SHIFTING;
      case SHIFTING -> VERIFYING;
      case VERIFYING -> BAKING;
      case BAKING -> COMPLETED;
      case COMPLETED -> FINALIZED;
      case ROLLING_BACK -> ROLLED_BACK;
      default -> throw new IllegalStateException("Phase " + this + " has no next phase");
    };
  }

  /** Throws with a message like {@code "Cannot go to PROMOTING when migration is REPLICATING"}. */
  public void checkTransition(Phase to) {
    boolean allowed;
    if (isTerminal()) {
      allowed = false;
    } else if (to == ROLLING_BACK) {
      allowed = this != ROLLING_BACK && this != FINALIZED; // after promotion, the migrator asks for consent
    } else if (to == HALTED) {
      allowed = this != HALTED;
    } else if (this == HALTED) {
      allowed = to != PLANNED && to != ROLLED_BACK; // resume where it stopped
    } else if (this == VALIDATED && to == REPLICATING) {
      allowed = true; // the target fell behind again before cutover started
    } else if (this == VERIFYING && to == COMPLETED) {
      allowed = true; // no bake asked for (--bake 0)
    } else {
      allowed = this != ROLLED_BACK && next() == to;
    }
    if (!allowed) {
      throw new IllegalStateException("Cannot go to " + to + " when migration is " + this);
    }
  }
}
