package dev.turnout.sidecar;

/** An xDS resource the sidecar cannot apply; its message goes back to the control plane in a NACK. */
final class InvalidResourceException extends Exception {
  private static final long serialVersionUID = 1L;

  InvalidResourceException(String message) {
    super(message);
  }
}
