package dev.turnout.controlplane.cli;

import com.google.protobuf.util.JsonFormat;
import dev.turnout.admin.v1.AuditEntry;
import dev.turnout.admin.v1.AuditField;
import dev.turnout.admin.v1.AuditPage;
import dev.turnout.admin.v1.ListAuditRequest;
import dev.turnout.controlplane.Printable;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code turnout audit}: the admin API's writes, refused ones included, newest first. */
@Command(name = "audit", mixinStandardHelpOptions = true,
    description = {"The admin API's writes (migrate start but dry runs, rollback, finalize, route set/drain),"
        + " refused ones included, newest first: who (certificate CN, or anonymous), from where, what, when, and"
        + " the result.", "Text the callers sent is shown with control characters escaped."})
final class AuditCommand implements Callable<Integer> {
  private static final DateTimeFormatter WHEN =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss'Z'").withZone(ZoneOffset.UTC);
  private static final String ROW = "%-6s %-20s %-16s %-22s %-17s %-14s %-10s %-19s %s%n";

  @Mixin AdminOptions admin;
  @Option(names = "--limit", paramLabel = "N", description = "At most N entries (default 20, at most 500)") int limit;
  @Option(names = "--before", paramLabel = "ID", description = "Only entries older than ID") long before;
  @Option(names = "--json", description = "The page as JSON (text as sent, unescaped, in JSON strings)") boolean json;

  @Override
  public Integer call() throws Exception {
    return admin.call("audit", channel -> {
      AuditPage page = AdminOptions.stub(channel).listAudit(ListAuditRequest.newBuilder().setPageSize(limit)
          .setBeforeId(before).build());
      if (json) {
        System.out.println(JsonFormat.printer().print(page));
        return 0;
      }
      System.out.printf(ROW, "ID", "WHEN", "WHO", "FROM", "CALL", "DATABASE", "MIGRATION", "RESULT", "DETAILS");
      for (AuditEntry e : page.getEntriesList()) {
        System.out.printf(ROW, e.getId(), WHEN.format(Instant.ofEpochSecond(e.getAt().getSeconds())),
            Printable.of(e.getWho()), orDash(e.getPeer()), e.getCall(), orDash(Printable.of(e.getDatabase())),
            orDash(Printable.of(e.getMigrationId())), e.getCode(), details(e));
      }
      if (page.getEntriesCount() == 0) {
        System.out.println("(no entries" + (before == 0 ? ")" : " before " + before + ")"));
      }
      if (page.getNextBeforeId() != 0) {
        System.out.println("older: turnout audit --before " + page.getNextBeforeId()
            + (limit == 0 ? "" : " --limit " + limit));
      }
      return 0;
    });
  }

  /** The fields as {@code name=value} (quoted when they hold a space), then why it was refused. */
  private static String details(AuditEntry e) {
    StringBuilder out = new StringBuilder();
    for (AuditField f : e.getDetailsList()) {
      String value = Printable.of(f.getValue());
      out.append(out.length() == 0 ? "" : " ").append(f.getName()).append('=')
          .append(value.isEmpty() || value.contains(" ") || value.contains("\"")
              ? '"' + value.replace("\"", "\\\"") + '"' : value);
    }
    if (!e.getDescription().isEmpty()) {
      out.append(out.length() == 0 ? "" : " | ").append(Printable.of(e.getDescription()));
    }
    return out.toString();
  }

  private static String orDash(String s) {
    return s.isEmpty() ? "-" : s;
  }
}
