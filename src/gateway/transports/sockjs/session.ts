import type { IncomingHttpHeaders } from 'node:http';
import {
  ANOTHER_CONNECTION_OPEN,
  closeFrame,
  DISCONNECT_DELAY_EXPIRED,
  encodeMessage,
  GO_AWAY,
  messageFrame,
  NORMAL_CLOSURE,
  OPEN_FRAME,
  type CloseReason,
} from './framing.js';
import type { Receiver, ReceiverOwner } from './receiver.js';
import type { SockJSConnection, SockJSConnectionTransport } from './types.js';

/** Something with queued output that the scheduler flushes once per turn of the event loop. */
export interface Flushable {
  flush(): void;
}

/**
 * Batches writes: whatever is queued during one turn of the event loop is written at its end, in
 * one write per connection. One `setImmediate` serves every connection of a server, so there is
 * no timer per message.
 */
export class FlushScheduler {
  #pending: Flushable[] = [];
  #immediate: NodeJS.Immediate | undefined;

  schedule(target: Flushable): void {
    this.#pending.push(target);
    this.#immediate ??= setImmediate(this.#run);
  }

  cancel(): void {
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    this.#pending = [];
  }

  readonly #run = (): void => {
    this.#immediate = undefined;
    const batch = this.#pending;
    this.#pending = [];
    for (const target of batch) target.flush();
  };
}

/** What a session needs from the server that owns it. */
export interface SessionHost {
  readonly heartbeatDelay: number;
  readonly disconnectDelay: number;
  readonly scheduler: FlushScheduler;
  /** The open frame is out: hand the connection to the application. */
  sessionOpened(connection: SockJSConnection): void;
  /** The session is over: forget it. */
  sessionFinished(session: SockJSSession): void;
  /** An application callback threw; the host logs it and closes the session. */
  applicationFailed(connection: SockJSConnection, error: unknown): void;
}

/**
 * - `new`: created by its first receiver, open frame not yet sent.
 * - `open`: messages flow both ways.
 * - `closing`: closed for the application; receivers that come back are served the close frame
 *   ("until the timeout occurs, the server must constantly serve the close message").
 * - `closed`: forgotten by the server.
 */
type SessionState = 'new' | 'open' | 'closing' | 'closed';

/**
 * A SockJS session (sockjs-node `lib/session.js`): it outlives the HTTP requests that carry it,
 * queues messages while no receiver is attached, allows one receiver at a time, and ends when no
 * receiver comes back within the disconnect delay. A SockJS WebSocket session instead lives exactly
 * as long as its one WebSocket ("The lifetime of SockJS WebSocket session is defined by a lifetime
 * of underlying WebSocket connection").
 */
export class SockJSSession implements SockJSConnection, ReceiverOwner, Flushable {
  readonly id: string;
  readonly transport: SockJSConnectionTransport;
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string | undefined;
  onmessage: ((message: string) => void) | null = null;
  onclose: ((code: number, reason: string) => void) | null = null;

  readonly #host: SessionHost;
  readonly #boundToReceiver: boolean;
  #state: SessionState = 'new';
  #receiver: Receiver | null = null;
  /** JSON-encoded messages waiting for a writable receiver. */
  #queue: string[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;
  #closeReason: CloseReason | undefined;
  /** The `c[...]` frame to serve; absent when the session ended abruptly (broken WebSocket JSON). */
  #closeFrame: string | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #disconnectTimer: NodeJS.Timeout | undefined;

  constructor(id: string, firstReceiver: Receiver, host: SessionHost, boundToReceiver: boolean) {
    this.id = id;
    this.transport = firstReceiver.transport;
    this.headers = firstReceiver.request.headers;
    this.remoteAddress = firstReceiver.request.socket.remoteAddress;
    this.#host = host;
    this.#boundToReceiver = boundToReceiver;
  }

  get bufferedBytes(): number {
    return this.#queuedBytes;
  }

  get closed(): boolean {
    return this.#state === 'closing' || this.#state === 'closed';
  }

  send(message: string): boolean {
    return this.sendEncoded(encodeMessage(message));
  }

  sendEncoded(encoded: string): boolean {
    if (this.#state !== 'open') return false;
    this.#queue.push(encoded);
    this.#queuedBytes += Buffer.byteLength(encoded);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      this.#host.scheduler.schedule(this);
    }
    return true;
  }

  close(code: number = GO_AWAY.code, reason: string = GO_AWAY.reason): void {
    if (this.#state !== 'open') return;
    this.#beginClosing({ code, reason }, true);
  }

  /**
   * Ends the session without a close frame: "When user sends broken data - broken JSON for
   * example, the server must abruptly terminate the ws connection."
   */
  abort(reason: CloseReason): void {
    if (this.#state !== 'open') return;
    this.#beginClosing(reason, false);
  }

  /** Server shutdown: a close frame to whoever listens, then the session is gone at once. */
  shutdown(reason: CloseReason): void {
    if (this.#state === 'open') this.#beginClosing(reason, true);
    this.#finish(reason);
  }

  /** Messages the client sent, in order. Dropped once the session is no longer open. */
  deliver(messages: readonly string[]): void {
    try {
      for (const message of messages) {
        if (this.#state !== 'open') return;
        this.onmessage?.(message);
      }
    } catch (error) {
      this.#host.applicationFailed(this, error);
    }
  }

  /** A new receiving request (or the session's WebSocket) arrives. */
  attach(receiver: Receiver): void {
    if (this.#receiver !== null) {
      // "The server must not allow two receiving connections to wait on a single session. In
      // such case the server must send a close frame to the new connection."
      receiver.write([closeFrame(ANOTHER_CONNECTION_OPEN)]);
      receiver.end();
      return;
    }
    if (this.#state === 'closed') {
      receiver.write([closeFrame(this.#closeReason ?? DISCONNECT_DELAY_EXPIRED)]);
      receiver.end();
      return;
    }
    clearTimeout(this.#disconnectTimer);
    this.#receiver = receiver;
    receiver.bind(this);
    if (this.#state === 'new') {
      this.#state = 'open';
      receiver.write([OPEN_FRAME]);
      // The application may send or close right here; a polling receiver is already done.
      this.#host.sessionOpened(this);
    } else {
      this.flush();
    }
    if (this.#receiver === receiver) this.#startHeartbeat();
  }

  /** Writes what is queued, and the close frame when closing, in one write. */
  flush(): void {
    this.#flushScheduled = false;
    const receiver = this.#receiver;
    if (receiver === null || !receiver.writable) return;
    const frames: string[] = [];
    if (this.#queue.length > 0) {
      frames.push(messageFrame(this.#queue));
      this.#queue = [];
      this.#queuedBytes = 0;
    }
    // A poll carries one frame: pending messages go first and the close frame on the next poll.
    const closeFrameNow =
      this.#state === 'closing' && (frames.length === 0 || receiver.streaming)
        ? this.#closeFrame
        : undefined;
    if (closeFrameNow !== undefined) frames.push(closeFrameNow);
    if (frames.length === 0) return;
    receiver.write(frames);
    if (closeFrameNow !== undefined) receiver.end(this.#closeReason);
  }

  receiverEnded(receiver: Receiver, interruption: CloseReason | undefined): void {
    if (receiver !== this.#receiver) return;
    this.#receiver = null;
    clearTimeout(this.#heartbeatTimer);
    if (this.#boundToReceiver) {
      this.#finish(interruption ?? this.#closeReason ?? NORMAL_CLOSURE);
      return;
    }
    if (interruption !== undefined && this.#state === 'open') {
      // "When a polling request is closed by a network error - not by server, the session should
      // be automatically closed." Later requests get c[1002,"Connection interrupted"].
      this.#beginClosing(interruption, true);
    }
    if (this.#state !== 'closed') this.#startDisconnectTimer();
  }

  receiverDrained(receiver: Receiver): void {
    if (receiver === this.#receiver) this.flush();
  }

  #beginClosing(reason: CloseReason, withCloseFrame: boolean): void {
    this.#state = 'closing';
    this.#closeReason = reason;
    this.#closeFrame = withCloseFrame ? closeFrame(reason) : undefined;
    const receiver = this.#receiver;
    if (receiver !== null) {
      // Messages queued before close() still go first (a STOMP ERROR frame before the close).
      if (withCloseFrame) this.flush();
      else receiver.end(reason);
    }
    this.#notifyClosed(reason);
  }

  #finish(reason: CloseReason): void {
    if (this.#state === 'closed') return;
    const notify = this.#state !== 'closing';
    this.#state = 'closed';
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#disconnectTimer);
    this.#queue = [];
    this.#queuedBytes = 0;
    const receiver = this.#receiver;
    this.#receiver = null;
    receiver?.end(reason);
    this.#host.sessionFinished(this);
    if (notify) this.#notifyClosed(reason);
  }

  #notifyClosed({ code, reason }: CloseReason): void {
    const onclose = this.onclose;
    this.onclose = null;
    try {
      onclose?.(code, reason);
    } catch (error) {
      this.#host.applicationFailed(this, error);
    }
  }

  #startHeartbeat(): void {
    this.#heartbeatTimer = setTimeout(this.#onHeartbeatDue, this.#host.heartbeatDelay);
    this.#heartbeatTimer.unref();
  }

  readonly #onHeartbeatDue = (): void => {
    const receiver = this.#receiver;
    if (receiver === null) return;
    if (receiver.writable) receiver.heartbeat();
    // A poll ends with its heartbeat; a stream keeps beating.
    if (this.#receiver === receiver) this.#heartbeatTimer?.refresh();
  };

  #startDisconnectTimer(): void {
    clearTimeout(this.#disconnectTimer);
    this.#disconnectTimer = setTimeout(this.#onDisconnectDelay, this.#host.disconnectDelay);
    this.#disconnectTimer.unref();
  }

  readonly #onDisconnectDelay = (): void => {
    this.#finish(this.#closeReason ?? DISCONNECT_DELAY_EXPIRED);
  };
}
