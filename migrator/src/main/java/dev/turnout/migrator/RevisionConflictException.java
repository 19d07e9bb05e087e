package dev.turnout.migrator;

import java.util.Optional;

/**
 * A save refused because the store no longer holds the revision the change was read at: another command, or
 * another process, saved the migration in between. Nothing was saved; the writer must read the migration again
 * (and a runner must stop acting on what it read). The admin API answers {@code ABORTED}.
 */
public final class RevisionConflictException extends MigrationConflictException {
  private static final long serialVersionUID = 1L;

  private final String migrationId;
  private final long readRevision;
  private final long storedRevision;

  /**
   * @param stored the migration as the store holds it, when it can tell (its phase goes in the message)
   */
  public RevisionConflictException(Migration attempted, long storedRevision, Optional<Phase> stored) {
    super(Kind.ABORTED, attempted + " changed meanwhile: this change to " + attempted.phase() + " was read at revision "
        + attempted.revision() + ", the store holds revision " + storedRevision
        + stored.map(p -> " (" + p + ")").orElse("") + "; nothing was saved, read it again");
    this.migrationId = attempted.id();
    this.readRevision = attempted.revision();
    this.storedRevision = storedRevision;
  }

  public String migrationId() {
    return migrationId;
  }

  public long readRevision() {
    return readRevision;
  }

  public long storedRevision() {
    return storedRevision;
  }
}
