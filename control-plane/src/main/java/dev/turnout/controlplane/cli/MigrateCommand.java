package dev.turnout.controlplane.cli;

import com.google.protobuf.Duration;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.AuroraPlan;
import dev.turnout.admin.v1.FinalizeMigrationRequest;
import dev.turnout.admin.v1.GetMigrationRequest;
import dev.turnout.admin.v1.ListMigrationsRequest;
import dev.turnout.admin.v1.Migration;
import dev.turnout.admin.v1.MigrationOptions;
import dev.turnout.admin.v1.ReplicaPlan;
import dev.turnout.admin.v1.RollbackMigrationRequest;
import dev.turnout.admin.v1.StartMigrationRequest;
import dev.turnout.admin.v1.WatchMigrationRequest;
import dev.turnout.controlplane.config.Durations;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.io.PrintStream;
import java.time.Instant;
import java.util.Iterator;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code turnout migrate}: start, watch, roll back and finalize migrations through the admin API. */
@Command(name = "migrate", mixinStandardHelpOptions = true, description = "Move databases between servers.",
    subcommands = {MigrateCommand.Start.class, MigrateCommand.StatusCmd.class, MigrateCommand.Watch.class,
        MigrateCommand.Rollback.class, MigrateCommand.Resume.class, MigrateCommand.Finalize.class})
final class MigrateCommand {

  @Command(name = "start", mixinStandardHelpOptions = true,
      description = {"Start moving DATABASE's server to --target (a streaming standby of it): DATABASE and every"
          + " other database routed to the same server move together. Or name the server: --server HOST:PORT.",
          "From Amazon RDS to Aurora: --aurora-source INSTANCE --aurora-cluster CLUSTER [--aurora-create CLASS]"
              + " (--target defaults to the cluster's writer endpoint)."})
  static final class Start implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", arity = "0..1", paramLabel = "DATABASE") String database;
    @Option(names = "--server", paramLabel = "HOST:PORT", description = "Instead of DATABASE: the source server, with"
        + " every database routed to it") String server;
    @Option(names = "--allow-unrouted-databases", description = "Let preflight pass when the source holds databases no"
        + " route points to (their direct clients lose their writes at the fence)") boolean allowUnrouted;
    @Option(names = "--target", paramLabel = "HOST:PORT") String target;
    @Option(names = "--aurora-source", paramLabel = "INSTANCE", description = "The RDS instance the database is on")
    String auroraSource;
    @Option(names = "--aurora-cluster", paramLabel = "CLUSTER", description = "The Aurora cluster to move it to")
    String auroraCluster;
    @Option(names = "--aurora-create", paramLabel = "CLASS",
        description = "Create the cluster as a read replica of the source, with a writer of this class (db.r6g.large)")
    String auroraCreate;
    @Option(names = "--window", paramLabel = "DURATION", description = "Validation window (default 30s)") String window;
    @Option(names = "--deadline", paramLabel = "DURATION", description = "Deadline of each phase (default 2m)") String deadline;
    @Option(names = "--max-lag-bytes", description = "Lag that counts as keeping up (default 16 MiB)") long maxLag;
    @Option(names = "--allow-dropping-stale-slots", description = "Drop inactive slots that retain WAL") boolean dropStale;
    @Option(names = "--dry-run", description = "Print, in order, every action the real run would take; start nothing")
    boolean dryRun;
    @Option(names = "--create-replica", arity = "3", paramLabel = "DIR",
        description = "Make the target first: SOURCE_DATA_DIR TARGET_DATA_DIR BIN_DIR (same host)") String[] replica;
    @Option(names = "--quiesce-grace", paramLabel = "DURATION", description = "After the drain, how long transactions"
        + " in flight, connections accepted before it and prepared transactions on the source may finish before the"
        + " fence cuts them (default 2s)") String quiesceGrace;
    @Option(names = "--rollback-prepared-transactions", description = "Roll back transactions still prepared on the"
        + " source after the grace, recording their gids, instead of stopping the migration") boolean rollbackPrepared;
    @Option(names = "--bake", paramLabel = "DURATION", description = "After VERIFYING, hold the target's workload"
        + " against the baseline recorded from the source while validating (default 2m; 0 skips the bake)")
    String bake;
    @Option(names = "--no-auto-rollback", description = "A bake breach is a warning in the history and the bake goes"
        + " on; without it a breach rolls back by itself over the reverse replication (keeping the target's writes),"
        + " or halts for an operator when that is broken") boolean noAutoRollback;
    @Option(names = "--without-reverse-replication", description = "Make no reverse replication at promotion: a"
        + " rollback after promotion then needs --consent-to-lose-writes, and preflight lets tables without a primary"
        + " key or replica identity through") boolean withoutReverseReplication;
    @Option(names = "--bake-limit", paramLabel = "SIGNAL=LIMIT", description = "Replace a signal's default limit,"
        + " e.g. rollbacks=3x+2 or latency=2x+10 (commits, rollbacks, deadlocks, conflicts, connections, temp_bytes,"
        + " latency); repeatable") java.util.Map<String, String> bakeLimits;
    @Option(names = "--watch", description = "Then watch it until it settles (without it: until preflight is over)")
    boolean watch;

    @Override
    public Integer call() throws Exception {
      if ((database == null) == (server == null) && !(database == null && auroraSource != null)) {
        System.err.println("turnout migrate start: " + (database == null
            ? "name a DATABASE or --server HOST:PORT (or --aurora-source INSTANCE)"
            : "give DATABASE or --server, not both: a migration moves the database's whole server"));
        return 2;
      }
      MigrationOptions.Builder o = MigrationOptions.newBuilder().setDryRun(dryRun).setMaxLagBytes(maxLag)
          .setAllowDroppingStaleSlots(dropStale).setAllowUnroutedDatabases(allowUnrouted);
      try {
        if (window != null) {
          o.setValidationWindow(proto(Durations.parse("--window", window)));
        }
        if (deadline != null) {
          o.setPhaseDeadline(proto(Durations.parse("--deadline", deadline)));
        }
        if (quiesceGrace != null) {
          o.setQuiesceGrace(proto(Durations.parse("--quiesce-grace", quiesceGrace)));
        }
        o.setRollbackPreparedTransactions(rollbackPrepared);
        if (bake != null) {
          o.setBake(proto(bake.trim().equals("0") ? java.time.Duration.ZERO : Durations.parse("--bake", bake)));
        }
        o.setNoAutoRollback(noAutoRollback);
        o.setWithoutReverseReplication(withoutReverseReplication);
        if (bakeLimits != null) {
          o.putAllBakeLimits(bakeLimits);
        }
      } catch (IllegalArgumentException e) {
        System.err.println("turnout migrate start: " + e.getMessage());
        return 2;
      }
      if (auroraSource != null || auroraCluster != null || auroraCreate != null) {
        if (auroraSource == null || auroraCluster == null) {
          System.err.println("turnout migrate start: an Aurora migration needs both --aurora-source and --aurora-cluster");
          return 2;
        }
        o.setAurora(AuroraPlan.newBuilder().setSourceInstance(auroraSource).setTargetCluster(auroraCluster)
            .setCreateInstanceClass(auroraCreate == null ? "" : auroraCreate));
      } else if (target == null) {
        System.err.println("turnout migrate start: --target HOST:PORT is required (or --aurora-source and --aurora-cluster)");
        return 2;
      }
      if (replica != null) {
        o.setCreateReplica(ReplicaPlan.newBuilder().setSourceDataDir(replica[0]).setTargetDataDir(replica[1])
            .setBinDir(replica[2]));
      }
      return admin.call("migrate start", channel -> {
        Migration m = AdminOptions.stub(channel).startMigration(StartMigrationRequest.newBuilder()
            .setDatabase(database == null ? "" : database).setServer(server == null ? "" : server)
            .setTarget(target == null ? "" : target).setOptions(o).build());
        if (dryRun) {
          System.out.println("dry run: migration of " + databases(m) + " from " + m.getSource() + " to "
              + m.getTarget() + " would:");
          for (int i = 0; i < m.getPlannedActionsCount(); i++) {
            System.out.printf("%2d. %s%n", i + 1, m.getPlannedActions(i));
          }
          if (m.getPlannedActionsList().stream().noneMatch(l -> l.startsWith("COMPLETED"))) {
            // As a start that stops in preflight exits 3: a script can tell a plan that would not go through.
            System.err.println("dry run: the migration would not complete; it would roll back as listed above");
            return 3;
          }
          return 0;
        }
        System.out.println("migration " + m.getId() + " of " + databases(m) + " started: "
            + m.getSource() + " -> " + m.getTarget());
        try {
          return watch ? Watch.follow(channel, m.getId(), System.out) : throughPreflight(channel, m.getId());
        } catch (StatusRuntimeException e) {
          return AdminOptions.report("migrate start", e); // started: not to be started again on another replica
        }
      });
    }

    /**
     * {@code database 'orders'}, or {@code databases 'orders', 'billing' (the whole server)}.
     */
    static String databases(Migration m) {
      if (m.getDatabasesCount() <= 1) {
        return "database '" + m.getDatabase() + "'";
      }
      return "databases " + m.getDatabasesList().stream().map(d -> "'" + d + "'")
          .collect(java.util.stream.Collectors.joining(", ")) + " (every database routed to " + m.getSource() + ")";
    }

    /**
     * Follows the migration until preflight is over: 0 once it replicates, 3 (with each failed check and the
     * error) when it stopped there, 1 if the stream ended first.
     */
    static int throughPreflight(ManagedChannel channel, String id) {
      Iterator<Migration> updates = AdminGrpc.newBlockingStub(channel)
          .watchMigration(WatchMigrationRequest.newBuilder().setId(id).build());
      while (updates.hasNext()) {
        Migration m = updates.next();
        switch (m.getPhase()) {
          case "PLANNED", "PREFLIGHT" -> {
            continue;
          }
          case "ROLLING_BACK", "ROLLED_BACK", "HALTED" -> {
            System.err.println("migration " + id + " stopped in preflight:");
            m.getHistoryList().stream().filter(e -> e.getNote().startsWith("preflight FAIL"))
                .forEach(e -> System.err.println("  " + e.getNote().substring("preflight ".length())));
            System.err.println("error: " + m.getError());
            return 3;
          }
          default -> {
            System.out.println("preflight passed; the migration is " + m.getPhase() + ": turnout migrate watch " + id);
            return 0;
          }
        }
      }
      System.err.println("migration " + id + ": the control plane stopped answering during preflight;"
          + " see turnout migrate status " + id);
      return 1;
    }

    private static Duration proto(java.time.Duration d) {
      return Duration.newBuilder().setSeconds(d.getSeconds()).setNanos(d.getNano()).build();
    }
  }

  @Command(name = "status", mixinStandardHelpOptions = true, description = "One migration in detail, or all of them.")
  static final class StatusCmd implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", arity = "0..1", paramLabel = "ID") String id;

    @Override
    public Integer call() throws Exception {
      return admin.call("migrate status", channel -> {
        AdminGrpc.AdminBlockingStub stub = AdminOptions.stub(channel);
        if (id == null) {
          System.out.printf("%-10s %-16s %-14s %-22s %s%n", "ID", "DATABASE", "PHASE", "TARGET", "ERROR");
          for (Migration m : stub.listMigrations(ListMigrationsRequest.getDefaultInstance()).getMigrationsList()) {
            System.out.printf("%-10s %-16s %-14s %-22s %s%n", m.getId(), m.getDatabase()
                + (m.getDatabasesCount() > 1 ? " +" + (m.getDatabasesCount() - 1) : ""), m.getPhase(), m.getTarget(),
                m.getError());
          }
          return 0;
        }
        Migration m = stub.getMigration(GetMigrationRequest.newBuilder().setId(id).build());
        System.out.println("migration " + m.getId() + " of " + Start.databases(m) + ": " + m.getSource()
            + " -> " + m.getTarget() + ", " + m.getPhase());
        if (!m.getFinalLsn().isEmpty()) {
          System.out.println("final LSN " + m.getFinalLsn());
        }
        m.getSlotsList().forEach(s -> System.out.println("slot " + s.getName() + " (" + s.getPlugin() + ") at "
            + s.getConfirmedLsn()));
        m.getHistoryList().forEach(e -> System.out.println("  " + Instant.ofEpochSecond(e.getAt().getSeconds(),
            e.getAt().getNanos()) + " " + e.getPhase() + (e.getNote().isEmpty() ? "" : ": " + e.getNote())));
        if (!m.getError().isEmpty()) {
          System.out.println("error: " + m.getError());
        }
        if (m.getLive().getBakeSignalsCount() > 0) {
          System.out.printf("bake %.0f/%.0f s, the target since the bake began against the baseline:%n",
              m.getLive().getBakeElapsedSeconds(), m.getLive().getBakeSeconds());
          m.getLive().getBakeSignalsList().forEach(x -> System.out.println("  " + (x.getBreached() ? "BREACH " : "")
              + x.getText()));
        }
        if (!m.getLive().getReversePath().isEmpty()) {
          System.out.println("reverse replication (the way back after promotion): " + m.getLive().getReversePath()
              + (m.getLive().getReverseLagBytes() >= 0 ? ", the source " + m.getLive().getReverseLagBytes()
                  + " bytes behind the target" : "") + (m.getLive().getReverseLagMillis() >= 0 ? " (a commit takes "
                  + m.getLive().getReverseLagMillis() + " ms to reach it)" : "") + (m.getLive().getReversePath().equals("healthy")
                  ? "; a rollback keeps the target's writes" : "; a rollback needs --consent-to-lose-writes"));
        }
        System.out.println("now: " + Watch.progress(m));
        return 0;
      });
    }
  }

  @Command(name = "watch", mixinStandardHelpOptions = true,
      description = "Follow a migration until it settles: a live view on a terminal, one line per change when piped.")
  static final class Watch implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "ID") String id;

    @Override
    public Integer call() throws Exception {
      return admin.call("migrate watch", channel -> {
        return follow(channel, id, System.out);
      });
    }

    /** The live line: window progress, lag and rates, and how many sidecars have the current route. */
    static String progress(Migration m) {
      var l = m.getLive();
      StringBuilder b = new StringBuilder();
      if (m.getPhase().equals("REPLICATING")) {
        b.append(String.format("window %.1f/%.0f s  ", Math.min(l.getWindowElapsedSeconds(), l.getWindowSeconds()),
            l.getWindowSeconds()));
      }
      if (l.getSampled()) {
        b.append(String.format("lag %d B (%.2f s)  WAL %.0f kB/s, replayed %.0f kB/s  ", l.getLagBytes(),
            l.getReplayDelaySeconds(), l.getWalBytesPerSecond() / 1000, l.getReplayBytesPerSecond() / 1000));
      }
      if (!m.getFinalLsn().isEmpty()) {
        b.append("final LSN ").append(m.getFinalLsn()).append("  ");
      }
      if (m.getPhase().equals("BAKING")) {
        b.append(String.format("bake %.0f/%.0f s  ", Math.min(l.getBakeElapsedSeconds(), l.getBakeSeconds()),
            l.getBakeSeconds()));
        // Each signal as target/baseline; a breach marked.
        l.getBakeSignalsList().forEach(x -> b.append(String.format(java.util.Locale.ROOT, "%s %.4g/%.4g%s  ",
            x.getSignal(), x.getNow(), x.getBaseline(), x.getBreached() ? "!" : "")));
      }
      if (!l.getReversePath().isEmpty()) {
        b.append("way back ").append(l.getReversePath().equals("healthy") ? "healthy" + (l.getReverseLagBytes() >= 0
            ? " (reverse lag " + l.getReverseLagBytes() + " B" + (l.getReverseLagMillis() >= 0 ? ", "
                + l.getReverseLagMillis() + " ms" : "") + ")" : "") : "BROKEN (" + l.getReversePath()
                .substring("broken: ".length()) + ")").append("  ");
      }
      b.append("sidecars on the current route ").append(l.getNodesAcked()).append('/').append(l.getNodes());
      return b.toString();
    }

    /** Exit code: 0 when COMPLETED or FINALIZED, 3 when ROLLED_BACK or HALTED. */
    static int follow(ManagedChannel channel, String id, PrintStream out) {
      boolean live = System.console() != null;
      Iterator<Migration> updates = AdminGrpc.newBlockingStub(channel)
          .watchMigration(WatchMigrationRequest.newBuilder().setId(id).build());
      int printed = 0;
      Migration last = null;
      while (updates.hasNext()) {
        last = updates.next();
        if (last.getHistoryCount() == printed && !live) {
          continue; // a figures-only update: nothing new for a pipe
        }
        for (int i = printed; i < last.getHistoryCount(); i++) {
          var e = last.getHistory(i);
          String line = e.getPhase() + (e.getNote().isEmpty() ? "" : ": " + e.getNote());
          out.println(live ? "\r\033[K" + line : line);
        }
        printed = last.getHistoryCount();
        if (live) {
          out.print("\r\033[K\033[1m[" + last.getPhase() + "]\033[0m " + progress(last));
          out.flush();
        }
      }
      if (live) {
        out.println();
      }
      if (last == null) {
        return 1;
      }
      out.println("migration " + last.getId() + ": " + last.getPhase()
          + (last.getError().isEmpty() ? "" : " (" + last.getError() + ")"));
      return last.getPhase().equals("COMPLETED") || last.getPhase().equals("FINALIZED") ? 0 : 3;
    }
  }

  @Command(name = "rollback", mixinStandardHelpOptions = true,
      description = "Route back to the source and unfence it. After promotion it needs --consent-to-lose-writes.")
  static final class Rollback implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "ID") String id;
    @Option(names = "--consent-to-lose-writes",
        description = "Accept losing the writes made on the promoted target since cutover") boolean consent;

    @Override
    public Integer call() throws Exception {
      return admin.call("migrate rollback", channel -> {
        Migration m = AdminOptions.stub(channel).rollbackMigration(RollbackMigrationRequest.newBuilder().setId(id)
            .setConsentToLoseWrites(consent).build());
        System.out.println("rollback of migration " + m.getId() + " requested (was " + m.getPhase() + ")");
        return 0;
      });
    }
  }

  @Command(name = "resume", mixinStandardHelpOptions = true,
      description = "Resume a HALTED migration in the phase it halted in, once what halted it is fixed.")
  static final class Resume implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "ID") String id;
    @Option(names = "--watch", description = "Follow it until it settles; exit 0 when COMPLETED, 3 when it halts"
        + " or rolls back") boolean watch;

    @Override
    public Integer call() throws Exception {
      return admin.call("migrate resume", channel -> {
        Migration m = AdminOptions.stub(channel).resumeMigration(
            dev.turnout.admin.v1.ResumeMigrationRequest.newBuilder().setId(id).build());
        System.out.println("migration " + m.getId() + " resumed in " + m.getPhase());
        return watch ? Watch.follow(channel, m.getId(), System.out) : 0;
      });
    }
  }

  @Command(name = "finalize", mixinStandardHelpOptions = true,
      description = "Finalize a COMPLETED migration: the source stops being a way back.")
  static final class Finalize implements Callable<Integer> {
    @Mixin AdminOptions admin;
    @Parameters(index = "0", paramLabel = "ID") String id;

    @Override
    public Integer call() throws Exception {
      return admin.call("migrate finalize", channel -> {
        Migration m = AdminOptions.stub(channel).finalizeMigration(FinalizeMigrationRequest.newBuilder().setId(id).build());
        System.out.println("migration " + m.getId() + " " + m.getPhase());
        return 0;
      });
    }
  }
}
