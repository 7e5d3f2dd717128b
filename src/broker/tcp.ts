import type { Socket } from 'node:net';
import { PerigeeError } from '../errors.js';
import {
  encodeFrame,
  encodeUtf8,
  FrameParser,
  heartBeatDeadline,
  negotiateHeartBeat,
  type Frame,
  type HeartBeat,
  type StompVersion,
} from '../protocol/index.js';
import type { BrokerCore } from './core.js';
import type { StoredMessage } from './message.js';
import { BrokerSession } from './session.js';
import type { Subscription } from './subscription.js';

/** How long a closing connection may take to flush before it is cut. */
const CLOSE_GRACE_MS = 5000;
const HEART_BEAT_EOL = encodeUtf8('\n');
/** Queued bytes past which a connection writes at once instead of at the end of the turn. */
const EAGER_FLUSH_BYTES = 64 * 1024;

/**
 * Collects the sessions that have bytes to write and writes each one's bytes in a single
 * `socket.write` per turn of the event loop, however many frames were queued in that turn.
 */
export class WriteBatcher {
  private pending: TcpSession[] = [];
  private scheduled = false;

  schedule(session: TcpSession): void {
    this.pending.push(session);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushAll);
    }
  }

  private readonly flushAll = (): void => {
    this.scheduled = false;
    const sessions = this.pending;
    this.pending = [];
    for (const session of sessions) session.flush();
  };
}

/** A STOMP client on a TCP socket. */
export class TcpSession extends BrokerSession {
  private readonly socket: Socket;
  private readonly parser: FrameParser;
  private readonly batcher: WriteBatcher;
  private outgoing: Uint8Array[] = [];
  private outgoingBytes = 0;
  private flushScheduled = false;
  private lastReadAt = Date.now();
  private lastWriteAt = Date.now();
  private heartBeatTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  /** Reading stops while a login check runs… */
  private pausedForLogin = false;
  /** …and while the replies to this client exceed its cap: see {@link onData}. */
  private pausedForOutput = false;

  constructor(core: BrokerCore, socket: Socket, batcher: WriteBatcher) {
    super(core);
    this.socket = socket;
    this.batcher = batcher;
    this.parser = new FrameParser((frame) => this.handleFrame(frame), {
      limits: core.options.limits,
      version: '1.0',
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.resumeIfOutputLeft();
      this.drained();
    });
    socket.on('error', (error) => {
      core.log.debug({ session: this.id, err: error }, 'STOMP connection error');
    });
    socket.on('close', () => {
      this.clearTimers();
      this.end(false);
    });
    socket.on('end', () => {
      // The peer half-closed: it will send nothing more. Finish what is queued, then close.
      this.end(true);
    });
  }

  override get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  queuedBytes(): number {
    return this.outgoingBytes + this.socket.writableLength;
  }

  /** Writes everything queued in one call. Called by the batcher. */
  flush(): void {
    this.flushScheduled = false;
    if (this.outgoingBytes === 0 || this.socket.destroyed) return;
    const chunks = this.outgoing;
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.outgoingBytes);
    this.outgoing = [];
    this.outgoingBytes = 0;
    this.lastWriteAt = Date.now();
    this.socket.write(data);
    // The kernel may take it all at once, in which case no 'drain' follows.
    this.resumeIfOutputLeft();
  }

  protected writeFrame(frame: Frame): void {
    this.enqueue(encodeFrame(frame, this.version));
  }

  protected writeMessage(
    subscription: Subscription,
    message: StoredMessage,
    ackId: string | undefined,
  ): void {
    this.enqueue(subscription.ownHeaders.prefixBytes(this.version));
    if (ackId !== undefined) this.enqueue(encodeUtf8(`ack:${ackId}\n`));
    this.enqueue(message.shared.tail(this.version));
  }

  protected override onVersionNegotiated(version: StompVersion): void {
    this.parser.version = version;
  }

  protected override onAuthenticating(): void {
    // What the client pipelined behind CONNECT waits in the kernel until the check ends; only
    // the rest of the current chunk is parsed and held meanwhile.
    this.pausedForLogin = true;
    this.socket.pause();
  }

  protected override onConnected(clientHeartBeat: HeartBeat): void {
    this.pausedForLogin = false;
    this.resumeReading();
    const { outgoing, incoming } = negotiateHeartBeat(this.core.options.heartBeat, clientHeartBeat);
    if (outgoing === 0 && incoming === 0) return;
    // One timer serves both directions: it ticks at the shorter interval that matters.
    const deadline = incoming === 0 ? 0 : heartBeatDeadline(incoming);
    const tick = Math.min(outgoing || Infinity, incoming || Infinity);
    this.heartBeatTimer = setInterval(
      () => {
        const now = Date.now();
        // While reading is paused the client's bytes wait unread: its silence proves nothing.
        const reading = !this.pausedForOutput && !this.pausedForLogin;
        if (reading && deadline !== 0 && now - this.lastReadAt > deadline) {
          this.fail(
            new PerigeeError(
              'HEARTBEAT_TIMEOUT',
              `nothing received for ${now - this.lastReadAt} ms; the client promised a heart-beat every ${incoming} ms`,
            ),
          );
          return;
        }
        // STOMP 1.2 §Heart-beating: "the sender MUST send new data over the network connection at
        // least every <n> milliseconds"; an EOL is enough.
        if (
          outgoing !== 0 &&
          now - this.lastWriteAt >= outgoing * 0.8 &&
          this.outgoingBytes === 0
        ) {
          this.lastWriteAt = now;
          this.socket.write(HEART_BEAT_EOL);
        }
      },
      Math.max(50, Math.floor(tick / 2)),
    );
    this.heartBeatTimer.unref();
  }

  protected terminate(graceful: boolean): void {
    this.clearTimers();
    this.parser.stop();
    if (!graceful || this.socket.destroyed) {
      this.socket.destroy();
      return;
    }
    this.flush();
    this.socket.end();
    // A peer that stops reading would keep the socket (and its buffered bytes) forever.
    this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    this.closeTimer.unref();
    this.socket.once('close', () => clearTimeout(this.closeTimer));
  }

  private enqueue(bytes: Uint8Array): void {
    this.outgoing.push(bytes);
    this.outgoingBytes += bytes.length;
    // A burst (a pipeline of SENDs parsed in one turn) writes as it goes, in large batches: what
    // the kernel accepts then no longer counts against this connection's cap, which should
    // measure a reader that falls behind, not the length of one turn of the event loop.
    if (this.outgoingBytes >= EAGER_FLUSH_BYTES) {
      this.flush();
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.batcher.schedule(this);
    }
  }

  private onData(chunk: Buffer): void {
    this.lastReadAt = Date.now();
    if (this.isClosed) return;
    try {
      this.parser.push(chunk);
    } catch (error) {
      this.fail(error);
      return;
    }
    // A client that sends frames with receipts (or anything that gets a reply) and never reads
    // would make the replies pile up here without end. Past the cap, stop reading until they
    // drain: TCP flow control then holds the client back, and this connection's cost stays at
    // about the cap plus one chunk.
    if (
      !this.isClosed &&
      !this.pausedForOutput &&
      this.queuedBytes() > this.core.options.maxQueuedBytes
    ) {
      this.pausedForOutput = true;
      this.socket.pause();
    }
  }

  private resumeIfOutputLeft(): void {
    if (this.pausedForOutput && this.queuedBytes() < this.core.options.maxQueuedBytes) {
      this.pausedForOutput = false;
      this.resumeReading();
    }
  }

  private resumeReading(): void {
    if (this.pausedForLogin || this.pausedForOutput || this.isClosed) return;
    this.lastReadAt = Date.now();
    this.socket.resume();
  }

  private clearTimers(): void {
    if (this.heartBeatTimer) clearInterval(this.heartBeatTimer);
    this.heartBeatTimer = undefined;
  }
}
