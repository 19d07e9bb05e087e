package dev.turnout.migrator;

/** A migration step failed; the message names the database and migration. */
public class MigrationException extends Exception {
  private static final long serialVersionUID = 1L;

  public MigrationException(String message) {
    super(message);
  }

  public MigrationException(String message, Throwable cause) {
    super(message, cause);
  }
}
