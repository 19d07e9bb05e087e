package dev.turnout.migrator;

/** The request conflicts with the state of a migration (already running, already finalized, consent missing). */
public class MigrationConflictException extends MigrationException {
  private static final long serialVersionUID = 1L;

  /**
   * What kind of conflict, so the admin API can choose its status code. UNAVAILABLE: this control-plane replica
   * does not run migrations now (another replica leads); retry there. ABORTED: the migration changed between the
   * read a command decided on and its save, which was refused ({@link RevisionConflictException}); read again.
   */
  public enum Kind { ALREADY_EXISTS, FAILED_PRECONDITION, NOT_FOUND, UNAVAILABLE, ABORTED, INVALID_ARGUMENT }

  private final Kind kind;

  public MigrationConflictException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }
}
