import { errorTable, PerigeeError, type ErrorCode } from '../errors.js';
import {
  createFrame,
  decodeUtf8,
  encodeFrame,
  encodeUtf8,
  FrameParser,
  getHeader,
  heartBeatDeadline,
  isWildcardPattern,
  negotiateHeartBeat,
  parseHeartBeat,
  type Frame,
  type Header,
  type HeartBeat,
  type ParserLimits,
  type StompVersion,
} from '../protocol/index.js';
import { Emitter } from './emitter.js';
import type { ClientSocket, SocketFactory } from './socket.js';

export type AckMode = 'auto' | 'client' | 'client-individual';

export interface ReconnectOptions {
  /** First delay after a lost connection, in ms. Default 500. */
  initialDelay?: number;
  /** Ceiling for the delay, in ms. Default 30000. */
  maxDelay?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
}

export type HeaderSource =
  | Readonly<Record<string, string>>
  | (() => Readonly<Record<string, string>> | Promise<Readonly<Record<string, string>>>);

export interface ClientOptions {
  /** Opens one connection; called again for each reconnect. */
  socket: SocketFactory;
  login?: string;
  passcode?: string;
  /** The CONNECT `host` header (a virtual host). */
  host?: string;
  /**
   * More CONNECT headers. A function is called before every connect and reconnect, so a token
   * can be fetched fresh each time (an expired one is never sent again).
   */
  connectHeaders?: HeaderSource;
  /** [send every ms, want every ms]; default 10000,10000. [0, 0] turns heart-beats off. */
  heartBeat?: HeartBeat;
  /** Reconnect after a lost connection (default), with exponential backoff and jitter. */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Keep trying when the very first connection fails, instead of rejecting `connect()` (browsers
   * want this; a command-line publisher wants to hear about a wrong address at once).
   */
  retryFirstConnect?: boolean;
  /** Overrides the backoff: return a delay in ms, or undefined for the default. */
  nextDelay?: (attempt: number, reason: PerigeeError, wasConnected: boolean) => number | undefined;
  /**
   * Resume the same server session after a reconnect when the server offers it (Perigee's gateway:
   * DESIGN.md §5), so that nothing sent meanwhile is lost. Default true.
   */
  resume?: boolean;
  /** How long to wait for CONNECTED, in ms. Default 10000. */
  connectTimeout?: number;
  /** How long to wait for a RECEIPT, in ms. Default 30000. */
  receiptTimeout?: number;
  /** Bytes of frames that may wait while disconnected. Default 1 MiB. */
  maxQueuedBytes?: number;
  limits?: Partial<ParserLimits>;
}

export interface StompMessage {
  readonly destination: string;
  readonly messageId: string;
  readonly subscription: string;
  readonly body: Uint8Array;
  /** The body as UTF-8 text. */
  readonly text: string;
  /** The first value of each header (STOMP 1.2: the first entry wins). */
  readonly headers: Readonly<Record<string, string>>;
  readonly frame: Frame;
  /** Whether the broker says this message was delivered before. */
  readonly redelivered: boolean;
  json<T = unknown>(): T;
  ack(transaction?: Transaction): void;
  nack(transaction?: Transaction): void;
}

export interface SubscribeOptions {
  ack?: AckMode;
  /** Extra SUBSCRIBE headers (e.g. `prefetch-count`, `selector`). */
  headers?: Readonly<Record<string, string>>;
  /** Start a Perigee topic from a known position (DESIGN.md §5): what followed it is replayed. */
  since?: { epoch: string; offset: number };
  /**
   * Called after each resubscription: true when nothing can have been missed (the session was
   * resumed, or the topic's history covered the gap); false when messages may be lost and the
   * app should reload its state.
   */
  onRecovery?: (recovered: boolean) => void;
}

export interface Subscription {
  readonly id: string;
  readonly destination: string;
  /** Resolves when the broker has confirmed the SUBSCRIBE. `recovered` is set when `since` was. */
  readonly ready: Promise<{ recovered?: boolean }>;
  /** The last recovery answer (see SubscribeOptions.onRecovery); undefined before any reconnect. */
  readonly recovered: boolean | undefined;
  unsubscribe(): Promise<void>;
}

export interface PublishOptions {
  headers?: Readonly<Record<string, string>>;
  /** Wait for the broker's RECEIPT (resent after a reconnect until it comes). Default false. */
  receipt?: boolean;
  transaction?: Transaction;
}

export interface Transaction {
  readonly id: string;
  publish(
    destination: string,
    body: string | Uint8Array,
    options?: Omit<PublishOptions, 'transaction'>,
  ): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export type ClientState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface ConnectInfo {
  readonly headers: Readonly<Record<string, string>>;
  /** Whether the server resumed the previous session (nothing was lost). */
  readonly resumed: boolean;
}

type ClientEvents = {
  /** CONNECTED arrived (first connect and every reconnect). */
  connect: (info: ConnectInfo) => void;
  /** The connection was lost or closed. */
  disconnect: (reason: PerigeeError) => void;
  /** The broker sent an ERROR, or something failed outside any call's promise. */
  error: (error: PerigeeError) => void;
  /** A reconnect is scheduled in `delay` ms. */
  reconnecting: (attempt: number, delay: number, reason: PerigeeError) => void;
  /** The client is done for good: disconnected, or refused in a way retrying cannot fix. */
  close: (reason: PerigeeError) => void;
};

interface PendingReceipt {
  resolve: (frame: Frame) => void;
  reject: (error: PerigeeError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The frame with its receipt header, to send again after a reconnect. */
  readonly frame: Frame;
  /** A publish: resent after any reconnect (at least once). Other frames only after a resume. */
  readonly isPublish: boolean;
  /** Whether the frame went out on a connection (as opposed to waiting in the queue). */
  inFlight: boolean;
  /** Connections that an ERROR naming no receipt ended while this publish was in flight. */
  errorsSuffered?: number;
}

/**
 * A publish in flight when this many connections in a row end with an ERROR that names no
 * receipt is taken to be what the broker refuses (RabbitMQ's ERROR for an unknown destination
 * carries no `receipt-id`), and fails with that ERROR instead of being sent again forever.
 */
const PUBLISH_ERROR_LIMIT = 3;

/**
 * A connection must last this long before the backoff starts again from its first step: one that
 * a server ends right after CONNECTED, again and again, must not be retried at full speed.
 */
const STABLE_CONNECTION_MS = 5000;

interface QueuedFrame {
  readonly frame: Frame;
  readonly receipt: PendingReceipt | undefined;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: PerigeeError): void;
  settled: boolean;
}

interface SubscriptionState {
  readonly id: string;
  readonly destination: string;
  readonly handler: (message: StompMessage) => void;
  readonly ack: AckMode;
  readonly headers: readonly Header[];
  readonly onRecovery: ((recovered: boolean) => void) | undefined;
  /** The newest topic position seen, to resubscribe from after a reconnect. */
  position: { epoch: string; offset: number } | undefined;
  recovered: boolean | undefined;
  /** Settled by the first RECEIPT for this subscription's SUBSCRIBE. */
  readonly ready: Deferred<{ recovered?: boolean }>;
}

const ACCEPT_VERSION = '1.2,1.1,1.0';

/**
 * A STOMP 1.0/1.1/1.2 client over an injected socket. After a lost connection it reconnects with
 * backoff. With Perigee's gateway it resumes the same session and gets what it missed, with
 * duplicates dropped by sequence number; elsewhere it resubscribes, resends publishes that
 * awaited a receipt, and resumes Perigee topics from the last offset it saw.
 */
export class StompClient extends Emitter<ClientEvents> {
  state: ClientState = 'idle';
  /** The negotiated STOMP version. */
  version: StompVersion = '1.2';
  /** The CONNECTED `session` header. */
  sessionId: string | undefined;
  /** The CONNECTED `server` header. */
  server: string | undefined;
  /** Server clock minus this clock, in ms, estimated at CONNECTED (0 if the server did not say). */
  serverTimeOffset = 0;

  readonly #options: ClientOptions;
  readonly #reconnectOptions: Required<ReconnectOptions> | undefined;
  #socket: ClientSocket | undefined;
  #parser: FrameParser | undefined;
  readonly #subscriptions = new Map<string, SubscriptionState>();
  readonly #receipts = new Map<string, PendingReceipt>();
  /** Open transactions and the connection generation they began in. */
  readonly #transactions = new Map<string, number>();
  /** Frames that wait for CONNECTED; encoded then, with the negotiated version's escaping. */
  #queued: QueuedFrame[] = [];
  #queuedBytes = 0;
  /** Counts server sessions lost: the broker forgets transactions then. */
  #generation = 0;
  #counter = 0;
  #attempt = 0;
  #connectedAt = 0;
  #everConnected = false;
  /** The session to resume, when the server offers resumption. */
  #resumableSession: string | undefined;
  /** The highest `x-perigee-seq` received in the current server session. */
  #lastSeq = 0;
  #connectSentAt = 0;
  #connectWaiters: { resolve: () => void; reject: (error: PerigeeError) => void }[] = [];
  #lastReceivedAt = 0;
  #lastSentAt = 0;
  #heartBeatTimer: ReturnType<typeof setInterval> | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #serverError: PerigeeError | undefined;
  /** DISCONNECT was sent: the connection's end is expected, not a reason to reconnect. */
  #disconnecting = false;

  constructor(options: ClientOptions) {
    super();
    this.#options = options;
    const reconnect = options.reconnect ?? true;
    this.#reconnectOptions =
      reconnect === false
        ? undefined
        : {
            initialDelay: 500,
            maxDelay: 30_000,
            factor: 2,
            ...(reconnect === true ? {} : reconnect),
          };
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** The last `x-perigee-seq` received in the current server session (0 without a gateway). */
  get lastSequence(): number {
    return this.#lastSeq;
  }

  /** This clock corrected by the server's: what time it is on the server, in ms since 1970. */
  serverNow(): number {
    return Date.now() + this.serverTimeOffset;
  }

  /**
   * Connects. Resolves on CONNECTED. Unless `retryFirstConnect`, rejects if the first attempt
   * fails (a wrong address or login should be reported, not retried forever); later losses
   * reconnect on their own.
   */
  connect(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closed') {
      return Promise.reject(clientClosed());
    }
    const waiting = new Promise<void>((resolve, reject) =>
      this.#connectWaiters.push({ resolve, reject }),
    );
    if (this.state === 'idle') this.#open();
    return waiting;
  }

  /** Skips the backoff wait and reconnects now (browsers: on `online`, or a tab made visible). */
  reconnectNow(): void {
    if (this.state !== 'reconnecting' || this.#socket) return;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#open();
  }

  /** Drops the current connection as if the network had failed; the client reconnects. */
  dropConnection(reason = 'dropped on purpose'): void {
    this.#abandon(new PerigeeError('CONNECTION_CLOSED', reason));
  }

  publish(
    destination: string,
    body: string | Uint8Array,
    options: PublishOptions = {},
  ): Promise<void> {
    const bytes = typeof body === 'string' ? encodeUtf8(body) : body;
    const headers: Header[] = [['destination', destination]];
    if (options.headers) {
      for (const [name, value] of Object.entries(options.headers)) headers.push([name, value]);
    }
    if (options.transaction) headers.push(['transaction', options.transaction.id]);
    headers.push(['content-length', String(bytes.length)]);
    const frame = createFrame('SEND', headers, bytes);
    try {
      if (options.transaction) this.#checkTransaction(options.transaction);
      if (!options.receipt) {
        this.#transmit(frame);
        return Promise.resolve();
      }
    } catch (error) {
      return Promise.reject(asPerigeeError(error));
    }
    return this.#withReceipt(frame, !options.transaction).then(() => undefined);
  }

  subscribe(
    destination: string,
    handler: (message: StompMessage) => void,
    options: SubscribeOptions = {},
  ): Subscription {
    const id = `sub-${++this.#counter}`;
    const headers: Header[] = [];
    if (options.headers) {
      for (const [name, value] of Object.entries(options.headers)) headers.push([name, value]);
    }
    const state: SubscriptionState = {
      id,
      destination,
      handler,
      ack: options.ack ?? 'auto',
      headers,
      onRecovery: options.onRecovery,
      position: options.since,
      recovered: undefined,
      ready: deferred(),
    };
    this.#subscriptions.set(id, state);
    // Subscribed now if connected; otherwise on CONNECTED, with every other subscription.
    if (this.state === 'connected') this.#sendSubscribe(state, false);
    else if (this.state === 'idle') this.#open();
    return {
      id,
      destination,
      ready: state.ready.promise,
      get recovered() {
        return state.recovered;
      },
      unsubscribe: () => this.#unsubscribe(id),
    };
  }

  /** Starts a transaction; its sends and acks take effect at `commit`. */
  begin(): Transaction {
    const id = `tx-${++this.#counter}`;
    this.#transmit(createFrame('BEGIN', [['transaction', id]]));
    const generation = this.#generation;
    const end = (command: 'COMMIT' | 'ABORT'): Promise<void> => {
      try {
        this.#checkTransaction(transaction);
      } catch (error) {
        return Promise.reject(asPerigeeError(error));
      }
      this.#transactions.delete(id);
      return this.#withReceipt(createFrame(command, [['transaction', id]]), false).then(
        () => undefined,
      );
    };
    const transaction: Transaction = {
      id,
      publish: (destination, body, options = {}) =>
        this.publish(destination, body, { ...options, transaction }),
      commit: () => end('COMMIT'),
      abort: () => end('ABORT'),
    };
    this.#transactions.set(id, generation);
    return transaction;
  }

  /**
   * Disconnects gracefully: DISCONNECT with a receipt, so that everything sent before it has been
   * processed when this resolves (STOMP 1.2 §"Graceful Disconnect").
   */
  async disconnect(): Promise<void> {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.#stopReconnecting();
    this.#disconnecting = true;
    if (wasConnected) {
      try {
        await this.#withReceipt(
          createFrame('DISCONNECT'),
          false,
          Math.min(this.#receiptTimeout, 5000),
        );
      } catch {
        // The connection is going away either way.
      }
    }
    this.#shutdown(clientClosed());
  }

  /** Throws unless `transaction` is open on the broker's side of the current session. */
  #checkTransaction(transaction: Transaction): void {
    if (this.#transactions.get(transaction.id) !== this.#generation) {
      throw new PerigeeError(
        'CONNECTION_CLOSED',
        `transaction ${transaction.id} is over: it was committed, aborted or lost with its connection`,
      );
    }
  }

  get #receiptTimeout(): number {
    return this.#options.receiptTimeout ?? 30_000;
  }

  #open(): void {
    this.state = this.#everConnected ? 'reconnecting' : 'connecting';
    this.#serverError = undefined;
    let socket: ClientSocket;
    try {
      socket = this.#options.socket();
    } catch (error) {
      this.#onSocketClosed(new PerigeeError('CONNECT_FAILED', describe(error), { cause: error }));
      return;
    }
    this.#socket = socket;
    const parser = new FrameParser(
      (frame) => {
        // Frames behind an ERROR in the same chunk belong to a connection already given up.
        if (this.#parser === parser) this.#onFrame(frame);
      },
      {
        limits: this.#options.limits,
        version: '1.2',
      },
    );
    this.#parser = parser;
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      if (this.#socket !== socket) return;
      this.#sendConnect(socket).catch((error: unknown) => {
        if (this.#socket !== socket) return;
        this.#serverError = asPerigeeError(error);
        this.#abandon(this.#serverError);
      });
    };
    socket.onmessage = (event) => {
      if (this.#socket !== socket) return;
      this.#lastReceivedAt = Date.now();
      try {
        parser.push(toBytes(event.data));
      } catch (error) {
        const malformed =
          error instanceof PerigeeError
            ? error
            : new PerigeeError('MALFORMED_FRAME', describe(error));
        this.#report(malformed);
        this.#abandon(malformed);
      }
    };
    socket.onerror = () => {};
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      const reason =
        this.#serverError ??
        new PerigeeError(
          this.#everConnected || this.state === 'connected'
            ? 'CONNECTION_CLOSED'
            : 'CONNECT_FAILED',
          `the connection closed${event.code ? ` (code ${event.code}${event.reason ? `, ${event.reason}` : ''})` : ''}`,
        );
      this.#onSocketClosed(reason);
    };
    const timeout = this.#options.connectTimeout ?? 10_000;
    this.#connectTimer = setTimeout(() => {
      if (this.#socket === socket && this.state !== 'connected') {
        this.#serverError = new PerigeeError('TIMEOUT', `no CONNECTED within ${timeout} ms`);
        this.#abandon(this.#serverError);
      }
    }, timeout);
    unref(this.#connectTimer);
  }

  async #sendConnect(socket: ClientSocket): Promise<void> {
    const [send, receive] = this.#options.heartBeat ?? [10_000, 10_000];
    const headers: Header[] = [
      ['accept-version', ACCEPT_VERSION],
      ['host', this.#options.host ?? '/'],
      ['heart-beat', `${send},${receive}`],
    ];
    if (this.#options.login !== undefined) headers.push(['login', this.#options.login]);
    if (this.#options.passcode !== undefined) headers.push(['passcode', this.#options.passcode]);
    const source = this.#options.connectHeaders;
    const extra = typeof source === 'function' ? await source() : source;
    if (this.#socket !== socket) return;
    for (const [name, value] of Object.entries(extra ?? {})) headers.push([name, value]);
    if (this.#options.resume !== false) {
      // Tells a Perigee gateway to keep the session for a while if the connection drops.
      headers.push(['x-perigee-resume', 'true']);
      if (this.#resumableSession !== undefined) {
        headers.push(['x-perigee-session', this.#resumableSession]);
        headers.push(['x-perigee-last-seq', String(this.#lastSeq)]);
      }
    }
    this.#connectSentAt = Date.now();
    this.#write(encodeFrame(createFrame('CONNECT', headers), '1.2'));
  }

  #onFrame(frame: Frame): void {
    switch (frame.command) {
      case 'CONNECTED':
        this.#onConnected(frame);
        break;
      case 'MESSAGE':
        this.#onMessage(frame);
        break;
      case 'RECEIPT':
        this.#onReceipt(frame);
        break;
      case 'ERROR':
        this.#onError(frame);
        break;
      default:
        this.#report(new PerigeeError('UNKNOWN_COMMAND', `the server sent ${frame.command}`));
    }
  }

  #onConnected(frame: Frame): void {
    clearTimeout(this.#connectTimer);
    const version = getHeader(frame, 'version') ?? '1.0';
    this.version = version === '1.2' || version === '1.1' ? version : '1.0';
    this.#parser!.version = this.version;
    const sessionId = getHeader(frame, 'session');
    const resumedHeader = getHeader(frame, 'x-perigee-resumed');
    const resumed = resumedHeader === 'true' && sessionId === this.#resumableSession;
    this.sessionId = sessionId;
    // Only a server that speaks of resuming can resume; for others, every reconnect is new.
    this.#resumableSession = resumedHeader === undefined ? undefined : sessionId;
    this.server = getHeader(frame, 'server');
    const serverTime = Number(getHeader(frame, 'x-perigee-time'));
    if (Number.isFinite(serverTime) && serverTime > 0) {
      // Half the round trip is the usual estimate of when the server stamped its clock.
      const now = Date.now();
      this.serverTimeOffset = serverTime - (this.#connectSentAt + now) / 2;
    }
    this.state = 'connected';
    const firstConnect = !this.#everConnected;
    this.#everConnected = true;
    this.#connectedAt = Date.now();
    this.#startHeartBeats(frame);
    if (resumed) this.#afterResume();
    else this.#afterNewSession(firstConnect);
    const queued = this.#queued;
    this.#queued = [];
    this.#queuedBytes = 0;
    for (const entry of queued) {
      this.#write(encodeFrame(entry.frame, this.version));
      if (entry.receipt) entry.receipt.inFlight = true;
    }
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const waiter of waiters) waiter.resolve();
    this.emit('connect', { headers: headerRecord(frame.headers), resumed });
  }

  /**
   * The server kept the session: subscriptions stand and the missed MESSAGEs are being replayed.
   * Frames whose receipt never came are sent again; the gateway recognises their receipt ids
   * and answers instead of applying them twice.
   */
  #afterResume(): void {
    for (const pending of this.#receipts.values()) {
      if (pending.inFlight) this.#write(encodeFrame(pending.frame, this.version));
    }
    for (const subscription of this.#subscriptions.values()) {
      if (!subscription.ready.settled) continue;
      subscription.recovered = true;
      subscription.onRecovery?.(true);
    }
  }

  /** A new server session: nothing of the old one survives on the server's side. */
  #afterNewSession(firstConnect: boolean): void {
    this.#lastSeq = 0;
    if (!firstConnect) {
      this.#generation++;
      for (const [id, pending] of this.#receipts) {
        if (!pending.inFlight) continue;
        if (pending.isPublish) {
          this.#write(encodeFrame(pending.frame, this.version));
        } else {
          this.#receipts.delete(id);
          clearTimeout(pending.timer);
          pending.reject(lostBefore(pending.frame));
        }
      }
    }
    for (const subscription of this.#subscriptions.values())
      this.#sendSubscribe(subscription, !firstConnect);
  }

  #onMessage(frame: Frame): void {
    const seqText = getHeader(frame, 'x-perigee-seq');
    if (seqText !== undefined) {
      const seq = Number(seqText);
      // A resumed session replays from our last sequence; anything at or before it is a
      // duplicate (DESIGN.md §5: "the client de-duplicates by sequence and offset").
      if (seq <= this.#lastSeq) return;
      if (seq !== this.#lastSeq + 1) {
        // A gap: frames were lost on the way (a connection that died with data in flight, on a
        // transport that carried on). Resuming from the last one received gets them replayed.
        this.#abandon(
          new PerigeeError(
            'CONNECTION_CLOSED',
            `message ${this.#lastSeq + 1} of the session went missing; resuming`,
          ),
        );
        return;
      }
      this.#lastSeq = seq;
    }
    const subscriptionId = getHeader(frame, 'subscription') ?? '';
    const subscription = this.#subscriptions.get(subscriptionId);
    if (!subscription) return; // a late message for a subscription already cancelled
    const epoch = getHeader(frame, 'x-perigee-epoch');
    const offsetText = getHeader(frame, 'x-perigee-offset');
    if (
      epoch !== undefined &&
      offsetText !== undefined &&
      !isWildcardPattern(subscription.destination)
    ) {
      const offset = Number(offsetText);
      const last = subscription.position;
      if (last && last.epoch === epoch && offset <= last.offset) return;
      subscription.position = { epoch, offset };
    }
    subscription.handler(this.#toMessage(frame, subscription));
  }

  #toMessage(frame: Frame, subscription: SubscriptionState): StompMessage {
    const headers = headerRecord(frame.headers);
    let text: string | undefined;
    const settle = (command: 'ACK' | 'NACK', transaction?: Transaction): void => {
      if (subscription.ack === 'auto') return;
      const ackHeaders: Header[] =
        this.version === '1.2'
          ? [['id', headers.ack ?? headers['message-id'] ?? '']]
          : [
              ['message-id', headers['message-id'] ?? ''],
              ['subscription', subscription.id],
            ];
      if (transaction) ackHeaders.push(['transaction', transaction.id]);
      // An ACK for a message from a lost connection means nothing to the new one: the broker
      // redelivers unacknowledged messages by itself.
      if (this.state === 'connected') {
        this.#write(encodeFrame(createFrame(command, ackHeaders), this.version));
      }
    };
    return {
      destination: headers.destination ?? subscription.destination,
      messageId: headers['message-id'] ?? '',
      subscription: subscription.id,
      body: frame.body,
      get text() {
        return (text ??= new TextDecoder().decode(frame.body));
      },
      headers,
      frame,
      redelivered: headers.redelivered === 'true',
      json<T>(): T {
        return JSON.parse(this.text) as T;
      },
      ack: (transaction) => settle('ACK', transaction),
      nack: (transaction) => settle('NACK', transaction),
    };
  }

  #onReceipt(frame: Frame): void {
    const id = getHeader(frame, 'receipt-id');
    if (id === undefined) return;
    const pending = this.#receipts.get(id);
    if (!pending) return;
    this.#receipts.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(frame);
  }

  #onError(frame: Frame): void {
    const message = getHeader(frame, 'message') ?? 'no message header';
    const bodyText = frame.body.length > 0 ? safeText(frame.body).trim() : '';
    // Perigee names its error codes; those a client acts on keep their code (and retry advice).
    const named = getHeader(frame, 'x-perigee-code');
    const code: ErrorCode =
      named === 'SHUTTING_DOWN' ||
      named === 'UNAUTHENTICATED' ||
      named === 'FORBIDDEN' ||
      named === 'SLOW_CONSUMER'
        ? named
        : 'SERVER_ERROR';
    const prefix = `${errorTable[code].message}: `;
    const detail = message.startsWith(prefix) ? message.slice(prefix.length) : message;
    // The body may repeat the message; keep only what it adds.
    const extra = bodyText.replace(message, '').trim().slice(0, 200);
    const error = new PerigeeError(code, extra ? `${detail} ${extra}` : detail);
    this.#serverError = error;
    // An ERROR ends the server session (STOMP 1.2 §ERROR): there is nothing left to resume.
    this.#resumableSession = undefined;
    const receiptId = getHeader(frame, 'receipt-id');
    const pending = receiptId === undefined ? undefined : this.#receipts.get(receiptId);
    if (pending) {
      this.#receipts.delete(receiptId!);
      clearTimeout(pending.timer);
      pending.reject(error);
    } else {
      for (const [id, publish] of this.#receipts) {
        if (!publish.isPublish || !publish.inFlight) continue;
        publish.errorsSuffered = (publish.errorsSuffered ?? 0) + 1;
        if (publish.errorsSuffered < PUBLISH_ERROR_LIMIT) continue;
        this.#receipts.delete(id);
        clearTimeout(publish.timer);
        publish.reject(error);
      }
    }
    this.#report(error);
    // "The server MUST then close the connection just after sending the ERROR frame" (STOMP 1.2
    // §ERROR). Over polling transports that close only shows at the next poll; the connection is
    // over now, so the client leaves 'connected' (and plans its reconnect) at once.
    this.#abandon(error);
  }

  #report(error: PerigeeError): void {
    this.emit('error', error);
  }

  #sendSubscribe(subscription: SubscriptionState, afterReconnect: boolean): void {
    const headers: Header[] = [
      ['id', subscription.id],
      ['destination', subscription.destination],
      ['ack', subscription.ack],
      ...subscription.headers,
    ];
    const since = subscription.position;
    if (since) headers.push(['x-perigee-since', `${since.epoch}:${since.offset}`]);
    const ready = subscription.ready;
    this.#withReceipt(createFrame('SUBSCRIBE', headers), false).then(
      (receipt) => {
        const recoveredHeader = getHeader(receipt, 'x-perigee-recovered');
        let recovered: boolean | undefined;
        if (recoveredHeader !== undefined) recovered = recoveredHeader === 'true';
        const position = parsePosition(getHeader(receipt, 'x-perigee-position'));
        if (recovered === false) subscription.position = undefined;
        if (
          position &&
          (!subscription.position ||
            subscription.position.epoch !== position.epoch ||
            subscription.position.offset < position.offset)
        ) {
          subscription.position = position;
        }
        if (afterReconnect) {
          // Without a position to resume from, nobody can say what was missed, except on a queue,
          // where messages wait for their consumer.
          const answer = recovered ?? subscription.destination.startsWith('/queue/');
          subscription.recovered = answer;
          subscription.onRecovery?.(answer);
        } else if (recovered !== undefined) {
          subscription.recovered = recovered;
          subscription.onRecovery?.(recovered);
        }
        if (!ready.settled) ready.resolve(recovered === undefined ? {} : { recovered });
      },
      (error: PerigeeError) => {
        // A lost connection resubscribes on the next CONNECTED; anything else is final, and the
        // subscription is dropped, or every reconnect would be refused again.
        if (this.state !== 'closed' && error.retryable && error.code !== 'SERVER_ERROR') return;
        this.#subscriptions.delete(subscription.id);
        if (!ready.settled) ready.reject(error);
        else this.#report(error);
      },
    );
  }

  async #unsubscribe(id: string): Promise<void> {
    if (!this.#subscriptions.delete(id)) return;
    if (this.state === 'closed') return;
    if (this.state !== 'connected' && this.#resumableSession === undefined) return;
    // While reconnecting to a resumable session the UNSUBSCRIBE waits for CONNECTED: the server
    // still holds the subscription.
    await this.#withReceipt(createFrame('UNSUBSCRIBE', [['id', id]]), false);
  }

  /** Sends `frame` with a receipt header and resolves with the RECEIPT. */
  #withReceipt(frame: Frame, isPublish: boolean, timeout = this.#receiptTimeout): Promise<Frame> {
    if (this.state === 'closed') {
      return Promise.reject(clientClosed());
    }
    const id = `r-${++this.#counter}`;
    const framed = withReceiptHeader(frame, id);
    return new Promise<Frame>((resolve, reject) => {
      const pending: PendingReceipt = {
        resolve,
        reject,
        timer: undefined,
        frame: framed,
        isPublish,
        inFlight: false,
      };
      try {
        this.#transmit(framed, pending);
      } catch (error) {
        reject(asPerigeeError(error));
        return;
      }
      pending.timer = setTimeout(() => {
        this.#receipts.delete(id);
        reject(new PerigeeError('TIMEOUT', `no RECEIPT for ${frame.command} within ${timeout} ms`));
      }, timeout);
      unref(pending.timer);
      this.#receipts.set(id, pending);
    });
  }

  /** Sends now if connected, or queues (bounded) until the next CONNECTED. */
  #transmit(frame: Frame, receipt?: PendingReceipt): void {
    if (this.state === 'closed') {
      throw clientClosed();
    }
    if (this.state === 'connected') {
      this.#write(encodeFrame(frame, this.version));
      if (receipt) receipt.inFlight = true;
      return;
    }
    const limit = this.#options.maxQueuedBytes ?? 1_048_576;
    const size = frame.body.length + 64 * (frame.headers.length + 1);
    if (this.#queuedBytes + size > limit) {
      throw new PerigeeError('LIMIT_EXCEEDED', `more than ${limit} bytes wait for the connection`);
    }
    this.#queued.push({ frame, receipt });
    this.#queuedBytes += size;
    if (this.state === 'idle') this.#open();
  }

  #write(bytes: Uint8Array): void {
    this.#lastSentAt = Date.now();
    this.#socket?.send(bytes);
  }

  #startHeartBeats(connected: Frame): void {
    this.#stopHeartBeats();
    const local = this.#options.heartBeat ?? [10_000, 10_000];
    let remote: HeartBeat;
    try {
      remote = parseHeartBeat(getHeader(connected, 'heart-beat'));
    } catch {
      remote = [0, 0];
    }
    const { outgoing, incoming } = negotiateHeartBeat(local, remote);
    if (outgoing === 0 && incoming === 0) return;
    const deadline = incoming === 0 ? 0 : heartBeatDeadline(incoming);
    const tick = Math.min(outgoing || Infinity, incoming || Infinity);
    this.#lastReceivedAt = Date.now();
    const eol = encodeUtf8('\n');
    this.#heartBeatTimer = setInterval(
      () => {
        const now = Date.now();
        if (deadline !== 0 && now - this.#lastReceivedAt > deadline) {
          this.#serverError = new PerigeeError(
            'HEARTBEAT_TIMEOUT',
            `nothing from the server for ${now - this.#lastReceivedAt} ms`,
          );
          this.#abandon(this.#serverError);
          return;
        }
        if (outgoing !== 0 && now - this.#lastSentAt >= outgoing * 0.8) this.#write(eol);
      },
      Math.max(50, Math.floor(tick / 2)),
    );
    unref(this.#heartBeatTimer);
  }

  #stopHeartBeats(): void {
    if (this.#heartBeatTimer !== undefined) clearInterval(this.#heartBeatTimer);
    this.#heartBeatTimer = undefined;
  }

  /**
   * Gives up the current socket: its handlers are detached first, so that a socket whose close()
   * reports synchronously cannot run the reconnect logic a second time.
   */
  #abandon(reason: PerigeeError): void {
    const socket = this.#socket;
    if (!socket) return;
    this.#onSocketClosed(reason);
    socket.close();
  }

  #onSocketClosed(reason: PerigeeError): void {
    if (this.#socket) {
      this.#socket.onopen = this.#socket.onmessage = this.#socket.onclose = null;
    }
    this.#socket = undefined;
    this.#parser = undefined;
    clearTimeout(this.#connectTimer);
    this.#stopHeartBeats();
    if (this.state === 'closed') return;
    if (this.#disconnecting) {
      this.#shutdown(clientClosed());
      return;
    }
    const wasConnected = this.state === 'connected';
    if (wasConnected && Date.now() - this.#connectedAt >= STABLE_CONNECTION_MS) this.#attempt = 0;
    if (this.#resumableSession === undefined) {
      // Nothing can be resumed: receipts for frames that went out on this connection cannot come
      // any more, except for publishes, which are resent. Queued frames wait for the next one.
      if (wasConnected) this.#generation++;
      for (const [id, pending] of this.#receipts) {
        if (pending.isPublish || !pending.inFlight) continue;
        this.#receipts.delete(id);
        clearTimeout(pending.timer);
        // The connection's end, not this frame, failed it: an ERROR about another frame must
        // not read as this one's refusal (a lost SUBSCRIBE is made again on the next CONNECTED).
        pending.reject(lostBefore(pending.frame));
      }
    }
    if (wasConnected) this.emit('disconnect', reason);
    const mayRetry = this.#everConnected || this.#options.retryFirstConnect === true;
    // An ERROR that refused the CONNECT itself (a broker nobody may reach, a protocol mismatch)
    // comes back on every attempt; so does a refused login, unless credentials are fetched anew.
    const refusedConnect =
      !wasConnected &&
      !reason.retryable &&
      reason === this.#serverError &&
      !(reason.code === 'UNAUTHENTICATED' && typeof this.#options.connectHeaders === 'function');
    if (!mayRetry || !this.#reconnectOptions || refusedConnect) {
      this.#shutdown(reason);
      return;
    }
    const override = this.#options.nextDelay?.(this.#attempt, reason, wasConnected);
    let delay: number;
    if (override !== undefined) {
      delay = override;
    } else {
      const { initialDelay, maxDelay, factor } = this.#reconnectOptions;
      const ceiling = Math.min(maxDelay, initialDelay * factor ** this.#attempt);
      // "Equal jitter": at least half the backoff, so a crowd of clients does not come back at once.
      delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      this.#attempt++;
    }
    this.state = 'reconnecting';
    this.emit('reconnecting', this.#attempt, delay, reason);
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#open();
    }, delay);
  }

  #stopReconnecting(): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
  }

  #shutdown(reason: PerigeeError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.emit('close', reason);
    this.#stopReconnecting();
    this.#stopHeartBeats();
    clearTimeout(this.#connectTimer);
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      socket.close();
    }
    for (const pending of this.#receipts.values()) {
      clearTimeout(pending.timer);
      pending.reject(reason);
    }
    this.#receipts.clear();
    this.#queued = [];
    this.#queuedBytes = 0;
    this.#transactions.clear();
    for (const subscription of this.#subscriptions.values()) {
      if (!subscription.ready.settled) subscription.ready.reject(reason);
    }
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const waiter of waiters) waiter.reject(reason);
  }
}

function lostBefore(frame: Frame): PerigeeError {
  return new PerigeeError(
    'CONNECTION_CLOSED',
    `the connection was lost before the RECEIPT for ${frame.command}`,
  );
}

/** The error every call gets once the client was disconnected. */
function clientClosed(): PerigeeError {
  return new PerigeeError('CONNECTION_CLOSED', 'the client was disconnected');
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: PerigeeError) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Rejections are the caller's to observe through `ready`; an unobserved one is not a crash.
  promise.catch(() => {});
  const result: Deferred<T> = {
    promise,
    settled: false,
    resolve(value) {
      result.settled = true;
      resolve(value);
    },
    reject(error) {
      result.settled = true;
      reject(error);
    },
  };
  return result;
}

function parsePosition(value: string | undefined): { epoch: string; offset: number } | undefined {
  if (value === undefined) return undefined;
  const colon = value.lastIndexOf(':');
  const offset = Number(value.slice(colon + 1));
  return colon > 0 && Number.isSafeInteger(offset)
    ? { epoch: value.slice(0, colon), offset }
    : undefined;
}

function withReceiptHeader(frame: Frame, id: string): Frame {
  return {
    command: frame.command,
    headers: [...frame.headers, ['receipt', id]],
    body: frame.body,
  };
}

function headerRecord(headers: readonly Header[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [name, value] of headers) if (!(name in record)) record[name] = value;
  return record;
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof data === 'string') return encodeUtf8(data);
  throw new PerigeeError(
    'MALFORMED_FRAME',
    'the socket delivered data that is neither text nor bytes',
  );
}

function safeText(bytes: Uint8Array): string {
  try {
    return decodeUtf8(bytes);
  } catch {
    return '';
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function asPerigeeError(error: unknown): PerigeeError {
  return error instanceof PerigeeError ? error : new PerigeeError('INTERNAL', describe(error));
}

function unref(timer: unknown): void {
  (timer as { unref?: () => void }).unref?.();
}
