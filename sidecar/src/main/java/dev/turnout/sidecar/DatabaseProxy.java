package dev.turnout.sidecar;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One database's listener: accepts application connections on its port and relays each to the endpoint the
 * database's current ClusterLoadAssignment names. With no endpoint (drained, or not yet known) new connections
 * are held, unread, until one arrives or the hold timeout passes; then they are refused with a PostgreSQL
 * ErrorResponse. Connections to an endpoint that is no longer assigned are closed after a grace period.
 */
final class DatabaseProxy {
  private static final Logger log = LoggerFactory.getLogger(DatabaseProxy.class);

  private final String name;
  private final InetSocketAddress listenAddress;
  private final Transport transport;
  private final EventLoopGroup group;
  private final Duration holdTimeout;
  private final Duration staleGrace;
  private Channel serverChannel;

  @GuardedBy("this")
  private Optional<InetSocketAddress> endpoint = Optional.empty();

  @GuardedBy("this")
  private final Map<Channel, Held> held = new HashMap<>();

  /** Open client connections and the endpoint each was relayed to. */
  @GuardedBy("this")
  private final Map<Channel, InetSocketAddress> relayed = new HashMap<>();

  /**
   * Connections sent to an endpoint whose login is not over yet (still connecting, or the server has not
   * answered the startup with ReadyForQuery or an error): completed when it is, or when the connection closes.
   */
  @GuardedBy("this")
  private final Map<Channel, CompletableFuture<Void>> loggingIn = new HashMap<>();

  /** How long a drain waits for connections still logging in before it lets the ACK go anyway. */
  static final Duration LOGIN_WAIT = Duration.ofSeconds(5);

  private final AtomicLong active = new AtomicLong();
  private final AtomicLong total = new AtomicLong();
  private final AtomicLong bytesToServer = new AtomicLong();
  private final AtomicLong bytesToClient = new AtomicLong();
  private final AtomicLong heldTotal = new AtomicLong();
  private final AtomicLong holdNanos = new AtomicLong();
  private final AtomicLong holdTimeouts = new AtomicLong();
  private final AtomicLong staleClosed = new AtomicLong();
  private final AtomicLong connectFailures = new AtomicLong();

  private record Held(long since, ScheduledFuture<?> timeout) {}

  DatabaseProxy(String name, InetSocketAddress listenAddress, Transport transport, Duration holdTimeout,
      Duration staleGrace) {
    this.name = name;
    this.listenAddress = listenAddress;
    this.transport = transport;
    this.group = transport.group();
    this.holdTimeout = holdTimeout;
    this.staleGrace = staleGrace;
  }

  String name() {
    return name;
  }

  InetSocketAddress listenAddress() {
    return listenAddress;
  }

  /** Binds the listening socket; the future fails when the port cannot be taken. */
  ChannelFuture bind() {
    ServerBootstrap bootstrap = new ServerBootstrap()
        .group(group)
        .channel(transport.serverChannel())
        .option(ChannelOption.SO_REUSEADDR, true)
        // Nothing is read from a client until its upstream is connected: that is what makes holding possible.
        .childOption(ChannelOption.AUTO_READ, false)
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childHandler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            ch.pipeline().addLast("client", new ClientHandler());
          }
        });
    ChannelFuture future = bootstrap.bind(listenAddress);
    serverChannel = future.channel();
    return future;
  }

  /** Stops listening and closes every connection. */
  void close() {
    if (serverChannel != null) {
      serverChannel.close();
    }
    List<Channel> all;
    synchronized (this) {
      all = new ArrayList<>(relayed.keySet());
      all.addAll(held.keySet());
    }
    all.forEach(Channel::close);
  }

  /**
   * The endpoint new connections go to; empty holds them. Connections elsewhere close after the grace.
   *
   * <p>A drain returns only once every connection sent to the old endpoint before it has finished logging in
   * (bounded by {@link #LOGIN_WAIT}): the xDS client ACKs after this returns, so a drain ACK means no connection
   * accepted before the drain is still choosing an endpoint, connecting or logging in. The migrator then sees
   * each of them as a session, lets its work finish, and fences only after: a connection-per-transaction client
   * is never refused by a fence that came between its connect and its login.
   */
  void setEndpoint(Optional<InetSocketAddress> newEndpoint) {
    List<Channel> release = new ArrayList<>();
    List<CompletableFuture<Void>> logins = new ArrayList<>();
    boolean staleExists;
    synchronized (this) {
      if (endpoint.equals(newEndpoint)) {
        return;
      }
      log.info("database {}: endpoint {} -> {}", name, describe(endpoint), describe(newEndpoint));
      endpoint = newEndpoint;
      if (newEndpoint.isPresent()) {
        release.addAll(held.keySet());
      } else {
        logins.addAll(loggingIn.values());
      }
      // Draining stops new connections only: open ones (a CDC consumer confirming its last changes, say) live on
      // until another endpoint is assigned. Ending client sessions is the migrator's fence, not the sidecar's.
      staleExists = newEndpoint.isPresent()
          && relayed.values().stream().anyMatch(e -> !newEndpoint.equals(Optional.of(e)));
    }
    release.forEach(ch -> ch.eventLoop().execute(() -> releaseHeld(ch)));
    if (staleExists) {
      group.schedule(this::closeStale, staleGrace.toMillis(), TimeUnit.MILLISECONDS);
    }
    awaitLogins(logins);
  }

  private void awaitLogins(List<CompletableFuture<Void>> logins) {
    if (logins.isEmpty()) {
      return;
    }
    for (io.netty.util.concurrent.EventExecutor loop : group) {
      if (loop.inEventLoop()) {
        return; // never block an event loop: the logins themselves complete on it
      }
    }
    long start = System.nanoTime();
    try {
      CompletableFuture.allOf(logins.toArray(CompletableFuture[]::new)).get(LOGIN_WAIT.toMillis(), TimeUnit.MILLISECONDS);
      log.info("database {}: drained after {} connection(s) accepted before it logged in ({} ms)", name,
          logins.size(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
    } catch (TimeoutException e) {
      log.warn("database {}: drained while {} connection(s) accepted before it are still logging in after {} ms",
          name, logins.stream().filter(f -> !f.isDone()).count(), LOGIN_WAIT.toMillis());
    } catch (ExecutionException e) {
      // completed exceptionally: not done by this class
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void loginOver(Channel client) {
    CompletableFuture<Void> f;
    synchronized (this) {
      f = loggingIn.remove(client);
    }
    if (f != null) {
      f.complete(null);
    }
  }

  private void closeStale() {
    List<Channel> stale = new ArrayList<>();
    synchronized (this) {
      if (endpoint.isEmpty()) {
        return; // drained again: nothing is stale while no endpoint is assigned
      }
      relayed.forEach((ch, e) -> {
        if (!endpoint.equals(Optional.of(e))) {
          stale.add(ch);
        }
      });
    }
    if (!stale.isEmpty()) {
      log.info("database {}: closing {} connection(s) to an endpoint no longer assigned", name, stale.size());
    }
    for (Channel ch : stale) {
      staleClosed.incrementAndGet();
      ch.close();
    }
  }

  DatabaseStats stats() {
    long heldNow;
    synchronized (this) {
      heldNow = held.size();
    }
    return new DatabaseStats(name, active.get(), total.get(), bytesToServer.get(), bytesToClient.get(), heldNow,
        heldTotal.get(), holdNanos.get(), holdTimeouts.get(), staleClosed.get(), connectFailures.get());
  }

  private void admit(Channel client) {
    total.incrementAndGet();
    active.incrementAndGet();
    Optional<InetSocketAddress> target;
    synchronized (this) {
      target = endpoint;
      if (target.isEmpty()) {
        heldTotal.incrementAndGet();
        ScheduledFuture<?> timeout =
            client.eventLoop().schedule(() -> expire(client), holdTimeout.toMillis(), TimeUnit.MILLISECONDS);
        held.put(client, new Held(System.nanoTime(), timeout));
        return;
      }
      loggingIn.put(client, new CompletableFuture<>());
    }
    connect(client, target.get());
  }

  private void releaseHeld(Channel client) {
    Held h;
    InetSocketAddress target;
    synchronized (this) {
      if (endpoint.isEmpty()) {
        return; // drained again before the release ran: keep holding, same deadline
      }
      target = endpoint.get();
      h = held.remove(client);
      if (h != null) {
        loggingIn.put(client, new CompletableFuture<>());
      }
    }
    if (h == null) {
      return;
    }
    h.timeout.cancel(false);
    holdNanos.addAndGet(System.nanoTime() - h.since);
    connect(client, target);
  }

  private void expire(Channel client) {
    Held h;
    synchronized (this) {
      h = held.remove(client);
    }
    if (h == null) {
      return;
    }
    holdNanos.addAndGet(System.nanoTime() - h.since);
    holdTimeouts.incrementAndGet();
    refuse(client, "turnout sidecar: database \"" + name + "\" has no endpoint (it is being moved or drained);"
        + " waited " + holdTimeout.toMillis() + " ms");
  }

  private void refuse(Channel client, String message) {
    client.pipeline().replace("client", "refuse", new PgWire.Refuse(message));
    client.config().setAutoRead(true);
  }

  private void connect(Channel client, InetSocketAddress target) {
    LoginWatch login = new LoginWatch();
    client.attr(ClientHandler.LOGIN).set(login);
    Bootstrap bootstrap = new Bootstrap()
        .group(client.eventLoop())
        .channel(transport.clientChannel())
        .option(ChannelOption.AUTO_READ, false)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 5000)
        .handler(new ServerHandler(client, login));
    ChannelFuture connecting = bootstrap.connect(target);
    client.attr(ClientHandler.UPSTREAM).set(connecting.channel());
    connecting.addListener((ChannelFutureListener) f -> {
      if (f.isSuccess()) {
        synchronized (this) {
          relayed.put(client, target);
        }
        if (!client.isActive()) {
          f.channel().close();
          return;
        }
        client.config().setAutoRead(true);
      } else {
        connectFailures.incrementAndGet();
        loginOver(client);
        log.warn("database {}: cannot connect to {}: {}", name, target, f.cause().getMessage());
        refuse(client, "turnout sidecar: cannot connect to the server of database \"" + name + "\": "
            + f.cause().getMessage());
      }
    });
  }

  private void closed(Channel client) {
    active.decrementAndGet();
    loginOver(client);
    Held h;
    synchronized (this) {
      relayed.remove(client);
      h = held.remove(client);
    }
    if (h != null) {
      h.timeout.cancel(false);
      holdNanos.addAndGet(System.nanoTime() - h.since);
    }
  }

  /**
   * Writes without a per-message listener (the void promise reports failures to the pipeline) and stops
   * reading the source while the destination's buffer is full; writability events resume it.
   */
  private static void relay(Object msg, Channel from, Channel to) {
    to.writeAndFlush(msg, to.voidPromise());
    if (!to.isWritable()) {
      from.config().setAutoRead(false);
    }
  }

  private static void closeOnFlush(Channel ch) {
    if (ch != null && ch.isActive()) {
      ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
    }
  }

  private static String describe(Optional<InetSocketAddress> e) {
    return e.map(a -> a.getHostString() + ":" + a.getPort()).orElse("(none: holding new connections)");
  }

  /** Application side: relays bytes to the server one read at a time, so a slow server slows the client. */
  private final class ClientHandler extends ChannelInboundHandlerAdapter {
    static final io.netty.util.AttributeKey<Channel> UPSTREAM = io.netty.util.AttributeKey.valueOf("upstream");
    static final io.netty.util.AttributeKey<LoginWatch> LOGIN = io.netty.util.AttributeKey.valueOf("login");

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      admit(ctx.channel());
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      Channel upstream = ctx.channel().attr(UPSTREAM).get();
      if (upstream == null || !upstream.isActive()) {
        io.netty.util.ReferenceCountUtil.release(msg);
        return;
      }
      LoginWatch login = ctx.channel().attr(LOGIN).get();
      if (login != null && !login.over()) {
        login.fromClient((ByteBuf) msg);
      }
      bytesToServer.addAndGet(((ByteBuf) msg).readableBytes());
      relay(msg, ctx.channel(), upstream);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      Channel upstream = ctx.channel().attr(UPSTREAM).get();
      if (upstream != null) {
        upstream.config().setAutoRead(ctx.channel().isWritable());
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      closed(ctx.channel());
      closeOnFlush(ctx.channel().attr(UPSTREAM).get());
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      closeOnFlush(ctx.channel());
    }
  }

  /** Server side: relays the server's bytes back to the application. */
  private final class ServerHandler extends ChannelInboundHandlerAdapter {
    private final Channel client;
    private final LoginWatch login;

    ServerHandler(Channel client, LoginWatch login) {
      this.client = client;
      this.login = login;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      ctx.channel().config().setAutoRead(true);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!login.over() && login.fromServer((ByteBuf) msg)) {
        loginOver(client);
      }
      bytesToClient.addAndGet(((ByteBuf) msg).readableBytes());
      relay(msg, ctx.channel(), client);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      client.config().setAutoRead(ctx.channel().isWritable());
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      closeOnFlush(client);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      closeOnFlush(ctx.channel());
    }
  }
}
