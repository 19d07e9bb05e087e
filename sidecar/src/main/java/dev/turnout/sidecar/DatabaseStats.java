package dev.turnout.sidecar;

/**
 * Counters of one database's traffic through the sidecar, as read at one moment.
 *
 * @param holdNanosTotal the total time new connections spent held while the database had no endpoint
 */
public record DatabaseStats(String database, long active, long total, long bytesToServer, long bytesToClient,
    long heldNow, long heldTotal, long holdNanosTotal, long holdTimeouts, long staleClosed, long connectFailures) {}
