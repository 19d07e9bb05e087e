package dev.turnout.controlplane.store;

/** The store could not durably record a change; nothing was published. */
public class StoreException extends Exception {
  private static final long serialVersionUID = 1L;

  public StoreException(String message, Throwable cause) {
    super(message, cause);
  }

  public StoreException(String message) {
    super(message);
  }
}
