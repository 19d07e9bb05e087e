package dev.turnout.sidecar;

import com.google.common.util.concurrent.ThreadFactoryBuilder;
import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.util.concurrent.ThreadFactory;

/** Netty's native epoll transport where the platform has it, NIO elsewhere. */
record Transport(String name, EventLoopGroup group, Class<? extends ServerChannel> serverChannel,
    Class<? extends Channel> clientChannel) {

  static Transport create(int threads) {
    ThreadFactory factory = new ThreadFactoryBuilder().setNameFormat("sidecar-io-%d").setDaemon(true).build();
    if (Epoll.isAvailable()) {
      return new Transport("epoll", new EpollEventLoopGroup(threads, factory), EpollServerSocketChannel.class,
          EpollSocketChannel.class);
    }
    return new Transport("nio", new NioEventLoopGroup(threads, factory), NioServerSocketChannel.class,
        NioSocketChannel.class);
  }
}
