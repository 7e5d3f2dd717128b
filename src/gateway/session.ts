import { unguessableId } from '../ids.js';
import type { BackendChannel, Principal } from '../backend.js';
import { PerigeeError } from '../errors.js';
import {
  EMPTY_BODY,
  getHeader,
  MessageDelivery,
  validateDestinationName,
  validatePattern,
  type Frame,
  type Header,
  type StompVersion,
} from '../protocol/index.js';
import type { GatewayContext } from './context.js';
import type { Connection } from './connection.js';

/** How many receipt ids a session remembers, to answer a frame the client repeats after a resume. */
const REMEMBERED_RECEIPTS = 256;

/** Unguessable ids: the STOMP `session` header is what a browser presents to resume. */
export function newGatewaySessionId(): string {
  return unguessableId(18);
}

/**
 * One browser's STOMP session. It outlives transports (DESIGN.md §5): when a connection drops it
 * is detached, keeps its subscriptions and its MESSAGEs for `session.timeout`, and a CONNECT with
 * `x-perigee-session` and `x-perigee-last-seq` resumes it on any transport, replaying what the
 * browser did not get. Every MESSAGE carries `x-perigee-seq`.
 *
 * It checks every SUBSCRIBE and SEND against the access rules before the backend sees it.
 */
export class GatewaySession {
  readonly id: string;
  readonly principal: Principal;
  readonly channel: BackendChannel;
  version: StompVersion;
  connection: Connection | undefined;
  /** When the session lost its connection (0 while attached). */
  detachedAt = 0;
  /**
   * Whether the client said it resumes sessions (`x-perigee-resume: true`). Sessions of other
   * clients (stompjs, sockjs-client) end with their connection: nobody would come back for them.
   */
  resumable = false;
  closed = false;

  /** The last sequence number given to a MESSAGE. */
  private seq = 0;
  /**
   * The MESSAGEs kept for replay, from `retainedHead` on, and their sizes in a parallel array: an
   * entry object per delivery would be one more allocation on the fan-out path. Their sequence
   * numbers need no array: every MESSAGE is numbered as it is kept, so the last one is `seq`
   * and the others count down from it.
   */
  private readonly retained: Frame[] = [];
  private readonly retainedSizes: number[] = [];
  private retainedHead = 0;
  private retainedBytes = 0;
  /** Client subscription id → destination, to keep SUBSCRIBE/UNSUBSCRIBE idempotent across resumes. */
  private readonly subscriptions = new Map<string, string>();
  /** Receipt ids forwarded to the backend: true once their RECEIPT came back. */
  private receipts: Map<string, boolean> | undefined;
  private readonly context: GatewayContext;

  constructor(init: {
    id: string;
    principal: Principal;
    channel: BackendChannel;
    version: StompVersion;
    context: GatewayContext;
  }) {
    this.id = init.id;
    this.principal = init.principal;
    this.channel = init.channel;
    this.version = init.version;
    this.context = init.context;
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** Whether every MESSAGE after `lastSeq` is still held, so a resume loses nothing. */
  canResumeFrom(lastSeq: number): boolean {
    if (!Number.isSafeInteger(lastSeq) || lastSeq < 0 || lastSeq > this.seq) return false;
    const held = this.retained.length - this.retainedHead;
    // The oldest held is seq - held + 1; nothing held means nothing may be missing.
    return held === 0 ? lastSeq === this.seq : this.seq - held <= lastSeq;
  }

  /** Binds a connection; the previous one, if still open, is replaced at once (DESIGN.md §3). */
  attach(connection: Connection, version: StompVersion): void {
    const previous = this.connection;
    this.connection = connection;
    this.version = version;
    this.detachedAt = 0;
    this.context.registry.markAttached(this);
    if (previous && previous !== connection) previous.replaced();
  }

  /** The connection went away; the session waits for a resume. */
  detach(connection: Connection): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    if (!this.resumable) {
      this.end('the connection closed, and the client does not resume');
      return;
    }
    this.detachedAt = Date.now();
    this.context.registry.markDetached(this);
  }

  /** Sends the retained MESSAGEs after `lastSeq` to the (new) connection. */
  replayAfter(lastSeq: number): void {
    // The one at index i has sequence number seq - (length - 1 - i).
    const first = Math.max(this.retainedHead, this.retained.length - (this.seq - lastSeq));
    for (let i = first; i < this.retained.length; i++) this.connection?.enqueue(this.retained[i]!);
  }

  /** A frame from the browser, after CONNECT. */
  fromClient(frame: Frame): void {
    switch (frame.command) {
      case 'SUBSCRIBE':
        this.subscribe(frame);
        return;
      case 'UNSUBSCRIBE':
        this.unsubscribe(frame);
        return;
      case 'SEND':
        this.send(frame);
        return;
      case 'ACK':
      case 'NACK':
      case 'BEGIN':
      case 'COMMIT':
      case 'ABORT':
        this.forward(frame);
        return;
      case 'DISCONNECT':
        this.forward(frame);
        // The backend answers the receipt, then closes; the session ends with it (no resume).
        if (getHeader(frame, 'receipt') === undefined) this.end('the client disconnected');
        return;
      case 'CONNECT':
      case 'STOMP':
        throw new PerigeeError('ALREADY_CONNECTED', 'this connection already sent CONNECT');
      default:
        throw new PerigeeError('UNKNOWN_COMMAND', `${frame.command} is not a STOMP client command`);
    }
  }

  /** A frame from the backend. Must not throw: it runs on the broker's delivery path. */
  fromBackend(frame: Frame): void {
    if (this.closed) return;
    switch (frame.command) {
      case 'MESSAGE':
        this.deliverMessage(frame);
        return;
      case 'RECEIPT': {
        const id = getHeader(frame, 'receipt-id');
        if (id !== undefined && this.receipts?.has(id) === true) this.receipts.set(id, true);
        this.connection?.enqueue(frame);
        return;
      }
      case 'ERROR':
        // STOMP 1.2 §ERROR: the server closes after an ERROR; the session cannot be resumed.
        this.connection?.enqueue(frame);
        this.end(getHeader(frame, 'message') ?? 'the broker sent an ERROR', true);
        return;
      default:
        return;
    }
  }

  /** Ends the session for good: closes the backend channel and the connection. */
  end(reason: string, afterFlush = false): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
    this.context.registry.remove(this);
    const connection = this.connection;
    this.connection = undefined;
    connection?.closeAfter(afterFlush, reason);
    this.context.registry.retainedBytes -= this.retainedBytes;
    this.retained.length = 0;
    this.retainedSizes.length = 0;
    this.retainedHead = 0;
    this.retainedBytes = 0;
  }

  private deliverMessage(frame: Frame): void {
    const seq = ++this.seq;
    const numbered: Frame =
      frame instanceof MessageDelivery
        ? frame.withSequence(seq)
        : {
            command: 'MESSAGE',
            headers: [['x-perigee-seq', String(seq)], ...frame.headers],
            body: frame.body,
          };
    // What it will take on the wire: the shared part plus this delivery's own headers.
    const size =
      (frame instanceof MessageDelivery ? frame.shared.approximateSize : frame.body.length + 200) +
      64;
    this.retained.push(numbered);
    this.retainedSizes.push(size);
    this.retainedBytes += size;
    this.context.registry.retainedBytes += size;
    const limit = this.context.options.maxQueuedBytes;
    if (this.connection) {
      // While attached, only what may still be in flight needs keeping (half the cap): the rest
      // is room for what arrives while the browser reconnects.
      const replayWindow = limit / 2;
      while (this.retainedBytes > replayWindow && this.retainedHead < this.retained.length - 1) {
        this.dropOldest();
      }
      this.connection.enqueue(numbered);
    } else if (this.retainedBytes > limit) {
      // Detached and over the cap: a resume could no longer be lossless, so stop holding memory.
      // The browser will learn resumed:false and recover from destination history instead.
      this.end('too many messages waited for a detached session');
      return;
    }
    this.context.registry.enforceBudget(this.context.options.maxRetainedBytes);
  }

  private dropOldest(): void {
    const size = this.retainedSizes[this.retainedHead]!;
    this.retainedBytes -= size;
    this.context.registry.retainedBytes -= size;
    this.retainedHead++;
    // Compact now and then, so the array does not grow without bound.
    if (this.retainedHead > 1024 && this.retainedHead * 2 > this.retained.length) {
      this.retained.splice(0, this.retainedHead);
      this.retainedSizes.splice(0, this.retainedHead);
      this.retainedHead = 0;
    }
  }

  private subscribe(frame: Frame): void {
    const destination = getHeader(frame, 'destination');
    if (destination === undefined)
      throw new PerigeeError('MISSING_HEADER', 'SUBSCRIBE frame has no destination header');
    validatePattern(destination);
    const id = getHeader(frame, 'id') ?? (this.version === '1.0' ? destination : undefined);
    if (id === undefined)
      throw new PerigeeError('MISSING_HEADER', 'SUBSCRIBE frame has no id header');
    const decision = this.context.authorizer.authorize(this.principal, 'subscribe', destination);
    if (!decision.allowed) throw new PerigeeError('FORBIDDEN', decision.reason);
    if (this.subscriptions.get(id) === destination) {
      // The same SUBSCRIBE again, as a client repeats it after a resume: already in place.
      this.answerReceipt(frame);
      return;
    }
    this.subscriptions.set(id, destination);
    this.forward(frame, (name) => name === 'x-perigee-since');
  }

  private unsubscribe(frame: Frame): void {
    const id = getHeader(frame, 'id') ?? getHeader(frame, 'destination');
    if (id !== undefined && !this.subscriptions.has(id)) {
      // Unknown here means already gone (a repeat after a resume): nothing to undo.
      this.answerReceipt(frame);
      return;
    }
    if (id !== undefined) this.subscriptions.delete(id);
    this.forward(frame);
  }

  private send(frame: Frame): void {
    const destination = getHeader(frame, 'destination');
    if (destination === undefined)
      throw new PerigeeError('MISSING_HEADER', 'SEND frame has no destination header');
    validateDestinationName(destination);
    const decision = this.context.authorizer.authorize(this.principal, 'send', destination);
    if (!decision.allowed) throw new PerigeeError('FORBIDDEN', decision.reason);
    this.forward(frame);
  }

  /**
   * Passes a client frame to the backend, without the client's own `x-perigee-*` headers (they
   * are the gateway's and the broker's to set; `keep` lets a few through). A frame whose receipt
   * id was already forwarded is a repeat after a resume: it is answered, not applied twice.
   */
  private forward(frame: Frame, keep: (name: string) => boolean = () => false): void {
    const receipt = getHeader(frame, 'receipt');
    if (receipt !== undefined) {
      const done = this.receipts?.get(receipt);
      if (done !== undefined) {
        if (done) this.answerReceipt(frame);
        return;
      }
      this.rememberReceipt(receipt);
    }
    let headers: readonly Header[] = frame.headers;
    if (headers.some(([name]) => name.startsWith('x-perigee-') && !keep(name))) {
      headers = headers.filter(([name]) => !name.startsWith('x-perigee-') || keep(name));
    }
    this.channel.send(
      headers === frame.headers ? frame : { command: frame.command, headers, body: frame.body },
    );
  }

  private rememberReceipt(id: string): void {
    const receipts = (this.receipts ??= new Map());
    receipts.set(id, false);
    if (receipts.size > REMEMBERED_RECEIPTS) {
      const oldest = receipts.keys().next().value as string;
      receipts.delete(oldest);
    }
  }

  private answerReceipt(frame: Frame): void {
    const receipt = getHeader(frame, 'receipt');
    if (receipt === undefined) return;
    this.connection?.enqueue({
      command: 'RECEIPT',
      headers: [['receipt-id', receipt]],
      body: EMPTY_BODY,
    });
  }
}
