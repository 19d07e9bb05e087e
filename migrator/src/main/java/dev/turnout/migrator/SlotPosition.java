package dev.turnout.migrator;

/** A logical replication slot as recorded at cutover: its consumers resume from {@code confirmedLsn}. */
public record SlotPosition(String name, String plugin, Lsn confirmedLsn) {}
