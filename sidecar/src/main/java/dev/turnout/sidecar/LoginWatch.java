package dev.turnout.sidecar;

import io.netty.buffer.ByteBuf;

/**
 * Follows one relayed connection's login far enough to tell when it is over: the server's first ReadyForQuery
 * (logged in) or ErrorResponse (refused). A drain waits for connections still logging in, so its ACK means
 * the server already has a session for each connection the sidecar sent it, visible to the migrator. The bytes
 * are only looked at, never changed. When the connection turns to TLS or GSS encryption nothing more can be
 * read, and the login counts as over at that point.
 *
 * <p>Confined to the connection's event loop (both directions of a relayed connection run on it).
 */
final class LoginWatch {
  private boolean classified;
  /** The client asked for encryption: the server's first byte answers it ('S', 'G' or 'N'), outside any message. */
  private boolean encryptionAnswerPending;
  private final byte[] header = new byte[5];
  private int headerLength;
  private long skip;
  private boolean over;

  /** The client's bytes before they go to the server: its first message says whether it asks for encryption. */
  void fromClient(ByteBuf bytes) {
    if (classified || bytes.readableBytes() < 8) {
      classified |= bytes.readableBytes() > 0;
      return;
    }
    classified = true;
    int length = bytes.getInt(bytes.readerIndex());
    int code = bytes.getInt(bytes.readerIndex() + 4);
    encryptionAnswerPending = length == 8 && (code == PgWire.SSL_REQUEST || code == PgWire.GSSENC_REQUEST);
  }

  /** The server's bytes before they go to the client; true when they end the login. */
  boolean fromServer(ByteBuf bytes) {
    int i = bytes.readerIndex();
    int end = bytes.writerIndex();
    while (i < end && !over) {
      if (encryptionAnswerPending) {
        encryptionAnswerPending = false;
        byte answer = bytes.getByte(i);
        if (answer == 'S' || answer == 'G') {
          over = true;
          return true;
        }
        if (answer == 'N') {
          i++;
          continue;
        }
        // anything else (an old server's error) is a message: read it as one
      }
      if (skip > 0) {
        long n = Math.min(skip, end - i);
        i += (int) n;
        skip -= n;
        continue;
      }
      header[headerLength++] = bytes.getByte(i++);
      if (headerLength == header.length) {
        headerLength = 0;
        int length = ((header[1] & 0xff) << 24) | ((header[2] & 0xff) << 16) | ((header[3] & 0xff) << 8)
            | (header[4] & 0xff);
        skip = length - 4L;
        if (header[0] == 'Z' || header[0] == 'E' || length < 4) {
          over = true;
          return true;
        }
      }
    }
    return false;
  }

  boolean over() {
    return over;
  }
}
