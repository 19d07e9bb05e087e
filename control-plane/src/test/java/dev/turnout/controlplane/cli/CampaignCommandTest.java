package dev.turnout.controlplane.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Timestamp;
import dev.turnout.admin.v1.AdminGrpc;
import dev.turnout.admin.v1.Campaign;
import dev.turnout.admin.v1.CampaignEvent;
import dev.turnout.admin.v1.CampaignId;
import dev.turnout.admin.v1.CampaignMember;
import dev.turnout.admin.v1.CampaignPlan;
import dev.turnout.admin.v1.CampaignRequest;
import dev.turnout.admin.v1.PlannedMember;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code turnout campaign} as an operator runs it, against a fake admin API where one is needed. */
class CampaignCommandTest {
  @TempDir Path dir;
  private Server server;
  private final List<CampaignRequest> requests = new CopyOnWriteArrayList<>();
  private final List<String> decisions = new CopyOnWriteArrayList<>();

  private static final String VALID = """
      name: wave-1
      servers:
        - server: 10.0.0.5:5432
          target: 10.0.0.6:5432
      """;

  /** What a run printed and returned. */
  record Run(int exit, String out, String err) {}

  private static Run turnout(String... args) {
    PrintStream out = System.out;
    PrintStream err = System.err;
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
      int exit = Turnout.run(args);
      return new Run(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(out);
      System.setErr(err);
    }
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.shutdownNow();
    }
  }

  private static Timestamp at(String instant) {
    Instant i = Instant.parse(instant);
    return Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
  }

  private static CampaignMember member(String server, String status, String phase) {
    return CampaignMember.newBuilder().setServer(server).addDatabases("db-" + server.charAt(7)).setTarget("t")
        .setStatus(status).setPhase(phase).build();
  }

  private static Campaign campaign(String status, String reason, CampaignMember... members) {
    return Campaign.newBuilder().setId("c-1").setName("wave-1").setStatus(status).setReason(reason).setWave(1)
        .setWaves(3).setMaxFailures(1).addAllMembers(List.of(members)).setPolicy("canary 1 (then approve), waves of 2")
        .build();
  }

  /** Starts a fake admin API answering the campaign RPCs; {@code watch} is what WatchCampaign streams. */
  private String fakeAdmin(CampaignPlan plan, List<Campaign> watch) throws Exception {
    server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)).addService(new AdminGrpc.AdminImplBase() {
      @Override
      public void planCampaign(CampaignRequest request, StreamObserver<CampaignPlan> response) {
        requests.add(request);
        response.onNext(plan);
        response.onCompleted();
      }

      @Override
      public void startCampaign(CampaignRequest request, StreamObserver<Campaign> response) {
        requests.add(request);
        response.onNext(watch.get(0));
        response.onCompleted();
      }

      @Override
      public void watchCampaign(CampaignId request, StreamObserver<Campaign> response) {
        watch.forEach(response::onNext);
        response.onCompleted();
      }

      @Override
      public void getCampaign(CampaignId request, StreamObserver<Campaign> response) {
        response.onError(Status.NOT_FOUND.withDescription("no campaign with id '" + request.getId() + "'")
            .asRuntimeException());
      }

      @Override
      public void approveCampaign(CampaignId request, StreamObserver<Campaign> response) {
        decisions.add("approve " + request.getId());
        response.onNext(campaign("RUNNING", ""));
        response.onCompleted();
      }

      @Override
      public void abortCampaign(CampaignId request, StreamObserver<Campaign> response) {
        response.onError(Status.FAILED_PRECONDITION.withDescription("campaign 'wave-1' is COMPLETED: nothing to"
            + " abort").asRuntimeException());
      }
    }).build().start();
    return "127.0.0.1:" + server.getPort();
  }

  @Test
  void aMissingFile_exitsWith2_namingIt() {
    Path missing = dir.resolve("wave-1.yaml");
    for (String command : List.of("plan", "start")) {
      Run run = turnout("campaign", command, missing.toString(), "--admin", "127.0.0.1:1");
      assertThat(run.exit()).isEqualTo(2);
      assertThat(run.err()).isEqualTo("turnout campaign " + command + ": cannot read " + missing + ": no such file"
          + System.lineSeparator());
    }
    Run directory = turnout("campaign", "plan", dir.toString());
    assertThat(directory.exit()).isEqualTo(2);
    assertThat(directory.err()).contains("cannot read " + dir + ": a directory, not a campaign file");
  }

  @Test
  void anInvalidFile_exitsWith2_listingEveryProblemWithItsLine_withoutAControlPlane() throws Exception {
    Path file = Files.writeString(dir.resolve("wave-1.yaml"), """
        name: wave-1
        policy:
          wave_size: 0
        servers:
          - server: 10.0.0.5:5432
        """);
    Run run = turnout("campaign", "plan", file.toString(), "--admin", "127.0.0.1:1");

    assertThat(run.exit()).isEqualTo(2);
    assertThat(run.err()).isEqualTo("turnout campaign plan: " + file + " is not valid:\n"
        + "  line 3: policy.wave_size: '0' must be 1 or more\n"
        + "  line 5: servers[0] ('10.0.0.5:5432').target: is required: the server's streaming standby, HOST:PORT"
        + System.lineSeparator());
  }

  @Test
  void argumentErrors_exitWith2() {
    Run noId = turnout("campaign", "pause");
    assertThat(noId.exit()).isEqualTo(2);
    assertThat(noId.err()).contains("Missing required parameter: 'ID'");
    Run noFile = turnout("campaign", "plan");
    assertThat(noFile.exit()).isEqualTo(2);
    assertThat(noFile.err()).contains("Missing required parameter: 'FILE'");
    assertThat(turnout("campaign", "launch", "x").exit()).isEqualTo(2);
    Run badAdmin = turnout("campaign", "status", "--admin", "nowhere");
    assertThat(badAdmin.exit()).isEqualTo(2);
    assertThat(badAdmin.err()).startsWith("turnout campaign status: --admin: 'nowhere' is not HOST:PORT");
  }

  @Test
  void anUnreachableControlPlane_exitsWith1() throws Exception {
    Path file = Files.writeString(dir.resolve("wave-1.yaml"), VALID);
    Run run = turnout("campaign", "plan", file.toString(), "--admin", "127.0.0.1:1");
    assertThat(run.exit()).isEqualTo(1);
    assertThat(run.err()).contains("cannot reach the control plane at 127.0.0.1:1");
  }

  @Test
  void plan_sendsTheFileAsWritten_printsTheTable_andExits3WhenSomethingBlocks() throws Exception {
    Path file = Files.writeString(dir.resolve("wave-1.yaml"), VALID);
    CampaignPlan blocked = CampaignPlan.newBuilder().setName("wave-1").setPolicy("canary 1 (then approve)")
        .addMembers(PlannedMember.newBuilder().setServer("10.0.0.5:5432").addDatabases("orders").setTarget("t")
            .addBlocking("10.0.0.5:5432 is also the source of migration m-7"))
        .build();
    String admin = fakeAdmin(blocked, List.of());

    Run run = turnout("campaign", "plan", file.toString(), "--admin", admin);

    assertThat(run.exit()).isEqualTo(3);
    assertThat(requests).containsExactly(CampaignRequest.newBuilder().setYaml(VALID).setFileName(file.toString())
        .build());
    assertThat(run.out()).contains("10.0.0.5:5432 is also the source of migration m-7")
        .endsWith("blocked: 1 server blocked; start would be refused\n");

    server.shutdownNow();
    fakeAdmin(blocked.toBuilder().setMembers(0, blocked.getMembers(0).toBuilder().clearBlocking()).build(), List.of());
    Run clear = turnout("campaign", "plan", file.toString(), "--admin", "127.0.0.1:" + server.getPort());
    assertThat(clear.exit()).isEqualTo(0);
    assertThat(clear.out()).endsWith("nothing blocks: turnout campaign start FILE\n");
  }

  @Test
  void startWithWatch_followsTheCampaign_oneLinePerChange_andExits3WhenItHalts() throws Exception {
    Path file = Files.writeString(dir.resolve("wave-1.yaml"), VALID);
    Campaign started = campaign("RUNNING", "", member("10.0.0.5:5432", "PENDING", ""),
        member("10.0.0.7:5432", "PENDING", ""));
    Campaign replicating = campaign("RUNNING", "", member("10.0.0.5:5432", "STARTED", "REPLICATING"),
        member("10.0.0.7:5432", "PENDING", ""));
    Campaign halted = campaign("HALTED", "1 failure reached max_failures 1",
        member("10.0.0.5:5432", "FAILED", "ROLLED_BACK").toBuilder().setError("standby stopped replicating").build(),
        member("10.0.0.7:5432", "PENDING", "")).toBuilder().setFailures(1)
        .addHistory(CampaignEvent.newBuilder().setAt(at("2026-12-02T14:00:05Z")).setText("member 10.0.0.5:5432"
            + " failed")).build();
    String admin = fakeAdmin(CampaignPlan.getDefaultInstance(), List.of(started, replicating, replicating, halted));

    Run run = turnout("campaign", "start", file.toString(), "--watch", "--admin", admin);

    assertThat(run.exit()).isEqualTo(3);
    assertThat(run.out()).isEqualTo("""
        campaign c-1 'wave-1' started: 2 servers in 3 waves; canary 1 (then approve), waves of 2
        campaign RUNNING
        10.0.0.5:5432: STARTED REPLICATING
        14:00:05Z member 10.0.0.5:5432 failed
        campaign HALTED: 1 failure reached max_failures 1
        10.0.0.5:5432: FAILED ROLLED_BACK, error: standby stopped replicating
        campaign c-1 'wave-1': HALTED (1 failure reached max_failures 1)
        """);
  }

  @Test
  void watch_ofACompletedCampaign_exits0_andOfAnAbortedOne_3() throws Exception {
    String admin = fakeAdmin(CampaignPlan.getDefaultInstance(), List.of(campaign("COMPLETED", "")));
    assertThat(turnout("campaign", "watch", "c-1", "--admin", admin).exit()).isEqualTo(0);
    server.shutdownNow();
    fakeAdmin(CampaignPlan.getDefaultInstance(), List.of(campaign("ABORTING", ""), campaign("ABORTED", "")));
    assertThat(turnout("campaign", "watch", "c-1", "--admin", "127.0.0.1:" + server.getPort()).exit()).isEqualTo(3);
    server.shutdownNow();
    fakeAdmin(CampaignPlan.getDefaultInstance(), List.of(campaign("RUNNING", "")));
    Run cut = turnout("campaign", "watch", "c-1", "--admin", "127.0.0.1:" + server.getPort());
    assertThat(cut.exit()).as("the stream ended before the campaign did").isEqualTo(1);
    assertThat(cut.err()).contains("the control plane stopped answering; see turnout campaign status c-1");
  }

  @Test
  void decisions_printWhereTheCampaignIsNow_andARefusalExits2WithItsStatusAndReason() throws Exception {
    String admin = fakeAdmin(CampaignPlan.getDefaultInstance(), List.of());

    Run approve = turnout("campaign", "approve", "c-1", "--admin", admin);
    assertThat(approve.exit()).isEqualTo(0);
    assertThat(approve.out()).isEqualTo("campaign c-1 'wave-1': RUNNING\n");
    assertThat(decisions).containsExactly("approve c-1");

    Run abort = turnout("campaign", "abort", "c-1", "--admin", admin);
    assertThat(abort.exit()).isEqualTo(2);
    assertThat(abort.err()).isEqualTo("turnout campaign abort: FAILED_PRECONDITION: campaign 'wave-1' is COMPLETED:"
        + " nothing to abort" + System.lineSeparator());
    Run status = turnout("campaign", "status", "c-9", "--admin", admin);
    assertThat(status.exit()).isEqualTo(2);
    assertThat(status.err()).contains("NOT_FOUND: no campaign with id 'c-9'");
  }

  @Test
  void thePlanTable_showsWavesWindowsAndWhatBlocks() {
    CampaignPlan plan = CampaignPlan.newBuilder().setName("wave-1")
        .setPolicy("canary 1 (then approve), waves of 2, cutovers in ['0 2 * * 1-5' Europe/Berlin for 3h]")
        .addMembers(PlannedMember.newBuilder().setServer("10.0.0.5:5432").addAllDatabases(List.of("billing",
            "orders")).setTarget("10.0.0.6:5432").setWave(0).setWindows("'0 2 * * 1-5' Europe/Berlin for 3h")
            .setNextWindow(at("2026-12-03T01:00:00Z")))
        .addMembers(PlannedMember.newBuilder().setServer("aurora:orders-rds").addAllDatabases(List.of("a", "b", "c",
            "d", "e")).setTarget("orders-rds-aurora (new Aurora cluster, db.r6g.large)").setWave(1)
            .setWindows("'0 2 * * 1-5' Europe/Berlin for 3h").setNextWindow(at("2026-12-02T01:00:00Z")))
        .addMembers(PlannedMember.newBuilder().setServer("10.0.0.7:5432").addDatabases("stock")
            .setTarget("10.0.0.8:5432").setWave(1).addBlocking("10.0.0.8:5432 is not a standby of 10.0.0.7:5432")
            .addBlocking("database 'stock' is drained"))
        .addBlocking("a campaign named 'wave-1' is RUNNING (c-0)")
        .build();

    assertThat(CampaignCommand.renderPlan(plan, Instant.parse("2026-12-02T02:00:00Z"))).isEqualTo("""
        campaign 'wave-1': 3 servers in 2 waves
        policy: canary 1 (then approve), waves of 2, cutovers in ['0 2 * * 1-5' Europe/Berlin for 3h]
        WAVE      SERVER             DATABASES       TARGET                                                \
        CUTOVER WINDOW                                              BLOCKING
        0 canary  10.0.0.5:5432      billing,orders  10.0.0.6:5432                                         \
        '0 2 * * 1-5' Europe/Berlin for 3h, next 2026-12-03 01:00Z  -
        1         aurora:orders-rds  a,b,c +2        orders-rds-aurora (new Aurora cluster, db.r6g.large)  \
        '0 2 * * 1-5' Europe/Berlin for 3h, open now                -
        1         10.0.0.7:5432      stock           10.0.0.8:5432                                         \
        any time                                                    10.0.0.8:5432 is not a standby of 10.0.0.7:5432; \
        database 'stock' is drained
        blocking the campaign:
          a campaign named 'wave-1' is RUNNING (c-0)
        blocked: 1 problem of the campaign, 1 server blocked; start would be refused
        """);
  }

  @Test
  void theStatusTable_andTheListLine() {
    Campaign c = campaign("RUNNING", "", member("10.0.0.5:5432", "SUCCEEDED", "COMPLETED").toBuilder()
        .setWriteGapMs(850).build(), member("10.0.0.7:5432", "STARTED", "VALIDATED").toBuilder()
        .setLagBytes(3 * 1024 * 1024).setHeld("outside its window until 2026-12-03 01:00Z").build(),
        member("10.0.0.9:5432", "PENDING", "")).toBuilder().setEtaSeconds(4830).putMembersByPhase("PENDING", 1)
        .putMembersByPhase("VALIDATED", 1).putMembersByPhase("COMPLETED", 1).build();

    assertThat(CampaignCommand.renderStatus(c)).isEqualTo("""
        campaign c-1 'wave-1': RUNNING, wave 1 of 0-2, 0 failures (halts at 1), ETA 1h20m
        policy: canary 1 (then approve), waves of 2
        members by phase: COMPLETED 1, PENDING 1, VALIDATED 1
        SERVER         DATABASES  WAVE  STATUS     PHASE      WRITE GAP  LAG      ERROR  HELD
        10.0.0.5:5432  db-5       0     SUCCEEDED  COMPLETED  850 ms     -        -      -
        10.0.0.7:5432  db-7       0     STARTED    VALIDATED  -          3.0 MiB  -      outside its window until \
        2026-12-03 01:00Z
        10.0.0.9:5432  db-9       0     PENDING    -          -          -        -      -
        """);
    assertThat(CampaignCommand.renderList(List.of(c, campaign("HALTED", "member 10.0.0.5:5432 halted"))))
        .isEqualTo("""
            ID   NAME    STATUS   WAVE      SERVERS DONE  FAILURES  REASON
            c-1  wave-1  RUNNING  1 of 0-2  1/3           0/1       -
            c-1  wave-1  HALTED   1 of 0-2  0/0           0/1       member 10.0.0.5:5432 halted
            """);
    assertThat(CampaignCommand.renderList(List.of())).isEqualTo("no campaigns\n");
  }

  @Test
  void changes_areNewEvents_theCampaignsStatus_andEachMemberThatMoved() {
    Campaign before = campaign("BAKING", "canary done; waves start at 14:30Z",
        member("10.0.0.5:5432", "SUCCEEDED", "COMPLETED"), member("10.0.0.7:5432", "PENDING", ""));
    Campaign after = campaign("WAITING_APPROVAL", "", member("10.0.0.5:5432", "SUCCEEDED", "COMPLETED"),
        member("10.0.0.7:5432", "PENDING", "")).toBuilder()
        .addHistory(CampaignEvent.newBuilder().setAt(at("2026-12-02T14:30:00Z")).setText("canary baked")).build();

    assertThat(CampaignCommand.changes(before, after)).containsExactly("14:30:00Z canary baked",
        "campaign WAITING_APPROVAL (turnout campaign approve c-1)");
    assertThat(CampaignCommand.changes(after, after)).isEmpty();
    assertThat(CampaignCommand.changes(null, before)).as("the first view: the status and the members under way")
        .containsExactly("campaign BAKING: canary done; waves start at 14:30Z", "10.0.0.5:5432: SUCCEEDED COMPLETED");
  }

  @Test
  void figures() {
    assertThat(CampaignCommand.duration(45)).isEqualTo("45s");
    assertThat(CampaignCommand.duration(125)).isEqualTo("2m5s");
    assertThat(CampaignCommand.duration(7200)).isEqualTo("2h");
    assertThat(CampaignCommand.bytes(0)).isEqualTo("0 B");
    assertThat(CampaignCommand.bytes(16L * 1024 * 1024)).isEqualTo("16.0 MiB");
  }
}
