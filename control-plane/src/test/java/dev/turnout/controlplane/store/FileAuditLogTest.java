package dev.turnout.controlplane.store;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.collect.ImmutableMap;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The embedded store's audit journal: durable, paged newest first, bounded, and whole after a torn write. */
class FileAuditLogTest {
  @TempDir Path dir;
  private final Clock clock = Clock.fixed(Instant.parse("2025-11-02T09:30:00Z"), ZoneOffset.UTC);

  private static AuditLog.Request setRoute(String reason) {
    return new AuditLog.Request("SetRoute", "orders", "", ImmutableMap.of("endpoint", "10.0.0.9:5432",
        "reason", reason));
  }

  private static final AuditLog.Caller OPS = new AuditLog.Caller("ops-admin", "10.1.0.7:51234");

  @Test
  void entriesSurviveAReopen_inOrder_withTheirFieldsAndIds_andIdsKeepRising() throws Exception {
    try (FileAuditLog audit = FileAuditLog.open(dir, clock)) {
      audit.append(OPS, setRoute("db1 replaced"), AuditLog.Outcome.OK);
      audit.append(new AuditLog.Caller("anonymous", "127.0.0.1:4000"), new AuditLog.Request("RollbackMigration",
          "orders", "3533eee6", ImmutableMap.of("consent_to_lose_writes", "true")),
          new AuditLog.Outcome("FAILED_PRECONDITION", "migration 3533eee6 is FINALIZED"));
    }
    try (FileAuditLog audit = FileAuditLog.open(dir, clock)) {
      var entries = audit.list(Long.MAX_VALUE, 10);
      assertThat(entries).extracting(AuditLog.Entry::id).containsExactly(2L, 1L);
      assertThat(entries.get(1)).isEqualTo(new AuditLog.Entry(1, clock.instant(), OPS, setRoute("db1 replaced"),
          AuditLog.Outcome.OK));
      assertThat(entries.get(0).request().details().keySet()).containsExactly("consent_to_lose_writes");
      assertThat(entries.get(0).outcome().code()).isEqualTo("FAILED_PRECONDITION");
      assertThat(audit.list(2, 10)).extracting(AuditLog.Entry::id).as("older than 2").containsExactly(1L);
      assertThat(audit.list(Long.MAX_VALUE, 1)).extracting(AuditLog.Entry::id).containsExactly(2L);
      assertThat(audit.append(OPS, setRoute("again"), AuditLog.Outcome.OK).id()).isEqualTo(3);
    }
  }

  @Test
  void theJournalIsBounded_keepingTheNewestEntries_whileRunningAndAcrossReopens() throws Exception {
    try (FileAuditLog audit = FileAuditLog.open(dir, clock, 5)) {
      for (int i = 1; i <= 9; i++) {
        audit.append(OPS, setRoute("change " + i), AuditLog.Outcome.OK);
      }
      assertThat(lines()).as("9 lines: below twice the 5 kept").hasSize(9);
      audit.append(OPS, setRoute("change 10"), AuditLog.Outcome.OK);
      assertThat(lines()).as("rewritten at 10 lines with the newest 5").hasSize(5);
      assertThat(audit.list(Long.MAX_VALUE, 100)).extracting(AuditLog.Entry::id).containsExactly(10L, 9L, 8L, 7L, 6L);
      audit.append(OPS, setRoute("change 11"), AuditLog.Outcome.OK);
      assertThat(lines()).hasSize(6);
    }
    try (FileAuditLog audit = FileAuditLog.open(dir, clock, 3)) {
      assertThat(lines()).as("6 lines are twice the 3 kept: rewritten at open").hasSize(3);
      assertThat(audit.list(Long.MAX_VALUE, 100)).extracting(AuditLog.Entry::id).containsExactly(11L, 10L, 9L);
      assertThat(audit.append(OPS, setRoute("change 12"), AuditLog.Outcome.OK).id()).as("ids never reused")
          .isEqualTo(12);
    }
  }

  @Test
  void aLineTornByACrash_isCutOff_andTheNextEntryFollowsTheLastWholeOne() throws Exception {
    try (FileAuditLog audit = FileAuditLog.open(dir, clock)) {
      audit.append(OPS, setRoute("whole"), AuditLog.Outcome.OK);
    }
    Path journal = dir.resolve(FileAuditLog.JOURNAL);
    Files.writeString(journal, "0badc0de {\"id\":2,\"who\":\"ops-a", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
    try (FileAuditLog audit = FileAuditLog.open(dir, clock)) {
      assertThat(lines()).hasSize(1);
      assertThat(audit.append(OPS, setRoute("next"), AuditLog.Outcome.OK).id()).isEqualTo(2);
      assertThat(audit.list(Long.MAX_VALUE, 10)).extracting(e -> e.request().details().get("reason"))
          .containsExactly("next", "whole");
    }
  }

  @Test
  void theFileStoreKeepsItsAuditLogBesideTheRoutingJournal_andClosesItWithTheStore() throws Exception {
    try (FileRouteStore store = FileRouteStore.open(dir, clock)) {
      store.load();
      store.audit().append(OPS, setRoute("beside"), AuditLog.Outcome.OK);
    }
    assertThat(dir.resolve(FileAuditLog.JOURNAL)).exists();
    try (FileRouteStore store = FileRouteStore.open(dir, clock)) {
      store.load();
      assertThat(store.audit().list(Long.MAX_VALUE, 10)).singleElement()
          .satisfies(e -> assertThat(e.caller()).isEqualTo(OPS));
    }
  }

  private java.util.List<String> lines() throws Exception {
    return Files.readAllLines(dir.resolve(FileAuditLog.JOURNAL));
  }
}
