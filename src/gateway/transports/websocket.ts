import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Frame, StompVersion } from '../../protocol/index.js';
import { encodeBatch, type BatchFraming } from '../encode.js';
import type { Transport } from '../transport.js';

/**
 * The header of an unmasked server data frame (RFC 6455 §5.2), written in front of a batch: FIN
 * and the opcode (0x1 text, UTF-8 only, §5.6; 0x2 binary), then the payload length in 7 bits, or
 * 126 and 16 bits, or 127 and 64 bits.
 */
const WEBSOCKET_FRAMING: BatchFraming = {
  headerLength(payloadLength) {
    return payloadLength < 126 ? 2 : payloadLength < 0x10000 ? 4 : 10;
  },
  writeHeader(bytes, payloadLength, isText) {
    bytes[0] = isText ? 0x81 : 0x82;
    if (payloadLength < 126) {
      bytes[1] = payloadLength;
    } else if (payloadLength < 0x10000) {
      bytes[1] = 126;
      bytes.writeUInt16BE(payloadLength, 2);
    } else {
      bytes[1] = 127;
      bytes.writeUInt32BE(Math.floor(payloadLength / 0x100000000), 2);
      bytes.writeUInt32BE(payloadLength >>> 0, 6);
    }
  },
};

/** A text message holding one end-of-line: FIN + text opcode, length 1, unmasked (§5.2). */
const HEART_BEAT_MESSAGE = Buffer.from([0x81, 0x01, 0x0a]);

/** The subprotocols of STOMP over WebSocket, best first. */
const STOMP_SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

/**
 * `/stomp`: STOMP frames straight over WebSocket, as @stomp/stompjs and RabbitMQ Web-STOMP speak
 * it. A batch of frames goes out as one WebSocket message: STOMP parsers read a stream, so
 * several frames in one message are fine, and it saves a message per frame.
 */
export class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  readonly unidirectional = false;
  readonly remoteAddress: string | undefined;
  onData: ((data: string | Uint8Array) => void) | null = null;
  onClose: ((reason: string) => void) | null = null;
  private readonly socket: WebSocket;
  private request: IncomingMessage | undefined;
  /** The upgraded TCP (or TLS) stream under `socket`. */
  private readonly stream: Duplex;

  constructor(socket: WebSocket, stream: Duplex, request: IncomingMessage) {
    this.socket = socket;
    this.stream = stream;
    this.request = request;
    this.remoteAddress = request.socket.remoteAddress;
    socket.on('message', (data: Buffer) => this.onData?.(data));
    socket.on('close', (code, reason) => this.onClose?.(`${code} ${reason.toString()}`));
    socket.on('error', () => {
      // 'close' follows; protocol errors (a frame over maxPayload, bad UTF-8) end up there.
    });
  }

  get requestHeaders(): Readonly<Record<string, string | string[] | undefined>> {
    return this.request?.headers ?? {};
  }

  releaseRequest(): void {
    this.request = undefined;
  }

  /**
   * What waits in the TCP stream: everything this transport writes goes there directly, and so
   * does what `ws` writes itself (its sender queues only while compressing, which is off). Read
   * from the stream the write just touched rather than through `ws`'s objects: this runs once
   * per connection per flush.
   */
  get bufferedBytes(): number {
    return this.stream.writableLength;
  }

  writeHeartBeat(): boolean {
    if (this.socket.readyState === this.socket.OPEN) this.stream.write(HEART_BEAT_MESSAGE);
    return true;
  }

  /**
   * The fan-out path: the batch is framed in place and leaves in one `write` of one buffer, as
   * pre-framed raw sockets do; `ws.send` would build a header buffer and write two buffers per
   * message. Writing beside `ws` is safe because its sender writes synchronously without
   * permessage-deflate (off here) and a data frame is never split: control frames it sends
   * (pong, close) fall between whole frames.
   */
  writeFrames(frames: readonly Frame[], version: StompVersion): boolean {
    if (this.socket.readyState !== this.socket.OPEN) return true;
    this.stream.write(encodeBatch(frames, version, WEBSOCKET_FRAMING));
    return true;
  }

  close(code: number, reason: string): void {
    // Close codes 1004-1006 and 1015 are reserved and may not be sent (RFC 6455 §7.4.1).
    const sendable =
      code === 1000 ||
      (code >= 1001 && code <= 1003) ||
      (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999);
    this.socket.close(sendable ? code : 1011, reason.slice(0, 120));
    // A peer that never answers the close handshake would hold the socket open.
    setTimeout(() => this.socket.terminate(), 2000).unref();
  }
}

export interface WebSocketEndpointOptions {
  /** Largest WebSocket message accepted; larger ones close the socket with 1009. */
  maxPayload: number;
  onTransport: (transport: WebSocketTransport) => void;
}

/** Accepts `/stomp` upgrades and negotiates the STOMP subprotocol. */
export class WebSocketEndpoint {
  private readonly server: WebSocketServer;
  private readonly onTransport: (transport: WebSocketTransport) => void;

  constructor(options: WebSocketEndpointOptions) {
    this.onTransport = options.onTransport;
    this.server = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayload,
      perMessageDeflate: false,
      handleProtocols: (offered) =>
        STOMP_SUBPROTOCOLS.find((protocol) => offered.has(protocol)) ?? false,
    });
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.server.handleUpgrade(request, socket, head, (websocket) => {
      this.onTransport(new WebSocketTransport(websocket, socket, request));
    });
  }

  close(): void {
    this.server.close();
  }
}
