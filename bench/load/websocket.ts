/**
 * Just enough of a WebSocket client (RFC 6455) for the load generator: the opening handshake over
 * a plain net.Socket, unmasked server frames parsed in place, masked client frames, pings
 * answered. A full client (ws) would cost more per message than some servers under test do.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { trackSocket } from './meter.js';

const OPCODE_CONTINUATION = 0x0;
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
/** Longest handshake answer we wait for; longer is not a WebSocket server. */
const MAX_HANDSHAKE_BYTES = 16_384;

export interface WebSocketHandlers {
  onOpen(): void;
  /** One whole message, in `data[start, end)`; valid only during the call. */
  onMessage(data: Buffer, start: number, end: number): void;
  /** The connection ended; `reason` says why (an error, a close frame, the peer hanging up). */
  onClose(reason: string): void;
  /** Called before each chunk of data is parsed. */
  onChunk?(): void;
}

export class WebSocketClient {
  readonly socket: Socket;
  private open = false;
  private closed = false;
  private pending: Buffer | undefined;
  private fragments: Buffer[] = [];

  constructor(
    host: string,
    port: number,
    private readonly path: string,
    private readonly subprotocol: string | undefined,
    private readonly handlers: WebSocketHandlers,
  ) {
    this.socket = connect({ host, port, noDelay: true });
    trackSocket(this.socket);
    this.socket.on('connect', () => this.sendHandshake(host, port));
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (error: NodeJS.ErrnoException) =>
      this.finish(`socket error: ${error.code ?? error.message}`),
    );
    this.socket.on('close', () => this.finish('the server closed the connection'));
  }

  /** Sends one text message, masked as a client must. */
  send(text: string): void {
    this.writeFrame(OPCODE_TEXT, Buffer.from(text, 'utf8'));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
  }

  private sendHandshake(host: string, port: number): void {
    const key = randomBytes(16).toString('base64');
    let request =
      `GET ${this.path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
    if (this.subprotocol !== undefined)
      request += `Sec-WebSocket-Protocol: ${this.subprotocol}\r\n`;
    this.socket.write(`${request}\r\n`);
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.handlers.onClose(reason);
  }

  private onData(chunk: Buffer): void {
    this.handlers.onChunk?.();
    let data = chunk;
    if (this.pending) {
      data = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let offset = 0;
    if (!this.open) {
      const end = data.indexOf(HEADER_END);
      if (end < 0) {
        if (data.length > MAX_HANDSHAKE_BYTES) this.finish('no handshake answer');
        else this.pending = Buffer.from(data);
        return;
      }
      const statusLine = data.toString('latin1', 0, data.indexOf('\r\n'));
      if (!/^HTTP\/1\.1 101 /.test(statusLine)) {
        this.finish(`handshake refused: ${statusLine}`);
        return;
      }
      this.open = true;
      offset = end + HEADER_END.length;
      this.handlers.onOpen();
      if (this.closed) return;
    }
    offset = this.parseFrames(data, offset);
    if (offset < data.length && !this.closed) this.pending = Buffer.from(data.subarray(offset));
  }

  /** Parses whole frames from `offset`; returns where the first incomplete one starts. */
  private parseFrames(data: Buffer, start: number): number {
    let offset = start;
    while (offset + 2 <= data.length && !this.closed) {
      const first = data[offset]!;
      const second = data[offset + 1]!;
      let length = second & 0x7f;
      let header = 2;
      if (length === 126) {
        if (offset + 4 > data.length) break;
        length = data.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (offset + 10 > data.length) break;
        length = Number(data.readBigUInt64BE(offset + 2));
        header = 10;
      }
      const masked = (second & 0x80) !== 0;
      if (masked) header += 4;
      const end = offset + header + length;
      if (end > data.length) break;
      const payloadStart = offset + header;
      if (masked) {
        const mask = data.subarray(offset + header - 4, offset + header);
        for (let index = 0; index < length; index++)
          data[payloadStart + index]! ^= mask[index & 3]!;
      }
      this.onFrame(first & 0x80, first & 0x0f, data, payloadStart, end);
      offset = end;
    }
    return offset;
  }

  private onFrame(fin: number, opcode: number, data: Buffer, start: number, end: number): void {
    if (opcode === OPCODE_TEXT || opcode === OPCODE_BINARY || opcode === OPCODE_CONTINUATION) {
      if (fin !== 0 && this.fragments.length === 0) {
        this.handlers.onMessage(data, start, end);
        return;
      }
      this.fragments.push(Buffer.from(data.subarray(start, end)));
      if (fin === 0) return;
      const whole = Buffer.concat(this.fragments);
      this.fragments = [];
      this.handlers.onMessage(whole, 0, whole.length);
    } else if (opcode === OPCODE_PING) {
      this.writeFrame(0xa, Buffer.from(data.subarray(start, end)));
    } else if (opcode === OPCODE_CLOSE) {
      const code = end - start >= 2 ? data.readUInt16BE(start) : 1005;
      const reason = data.toString('utf8', Math.min(end, start + 2), end);
      this.finish(`close frame ${code}${reason ? ` "${reason}"` : ''}`);
    }
  }

  private writeFrame(opcode: number, payload: Buffer): void {
    if (this.closed) return;
    const length = payload.length;
    const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(header + 4 + length);
    frame[0] = 0x80 | opcode;
    if (header === 2) frame[1] = 0x80 | length;
    else if (header === 4) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(length), 2);
    }
    const mask = randomBytes(4);
    mask.copy(frame, header);
    for (let index = 0; index < length; index++) {
      frame[header + 4 + index] = payload[index]! ^ mask[index & 3]!;
    }
    this.socket.write(frame);
  }
}
