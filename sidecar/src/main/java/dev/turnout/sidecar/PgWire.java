package dev.turnout.sidecar;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.nio.charset.StandardCharsets;
import java.util.List;

/** The little of the PostgreSQL wire protocol the sidecar speaks itself: refusing a connection politely. */
final class PgWire {
  static final int SSL_REQUEST = 80877103;
  static final int GSSENC_REQUEST = 80877104;
  static final int CANCEL_REQUEST = 80877102;

  /** PostgreSQL's own code for "the server is not accepting connections now": clients and pools retry it. */
  static final String CANNOT_CONNECT_NOW = "57P03";

  private PgWire() {}

  /** An ErrorResponse message with severity FATAL. */
  static ByteBuf errorResponse(String sqlState, String message) {
    ByteBuf body = Unpooled.buffer();
    field(body, 'S', "FATAL");
    field(body, 'V', "FATAL");
    field(body, 'C', sqlState);
    field(body, 'M', message);
    body.writeByte(0);
    ByteBuf out = Unpooled.buffer(5 + body.readableBytes());
    out.writeByte('E');
    out.writeInt(4 + body.readableBytes());
    out.writeBytes(body);
    body.release();
    return out;
  }

  private static void field(ByteBuf buf, char code, String value) {
    buf.writeByte(code);
    buf.writeBytes(value.getBytes(StandardCharsets.UTF_8));
    buf.writeByte(0);
  }

  /**
   * Answers a client that is still negotiating: declines SSL/GSS encryption (one byte 'N', as a server without
   * it does) so the client sends its startup message, then sends the error and closes. Writing the error
   * straight after an SSLRequest would be read as a garbled answer to it.
   */
  static final class Refuse extends ByteToMessageDecoder {
    private final String message;

    Refuse(String message) {
      this.message = message;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
      while (in.readableBytes() >= 8) {
        int length = in.getInt(in.readerIndex());
        int code = in.getInt(in.readerIndex() + 4);
        if (length < 8 || length > 10_000) {
          refuse(ctx);
          return;
        }
        if (in.readableBytes() < length) {
          return;
        }
        in.skipBytes(length);
        if (code == SSL_REQUEST || code == GSSENC_REQUEST) {
          ctx.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {'N'}));
        } else if (code == CANCEL_REQUEST) {
          ctx.close();
          return;
        } else {
          refuse(ctx);
          return;
        }
      }
    }

    private void refuse(ChannelHandlerContext ctx) {
      ctx.writeAndFlush(errorResponse(CANNOT_CONNECT_NOW, message)).addListener(ChannelFutureListener.CLOSE);
    }
  }
}
