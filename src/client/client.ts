import { PerigeeError } from '../errors.js';
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

export interface ClientOptions {
  /** Opens one connection; called again for each reconnect. */
  socket: SocketFactory;
  login?: string;
  passcode?: string;
  /** The CONNECT `host` header (a virtual host). */
  host?: string;
  /** More CONNECT headers, for brokers that want them. */
  connectHeaders?: Readonly<Record<string, string>>;
  /** [send every ms, want every ms]; default 10000,10000. [0, 0] turns heart-beats off. */
  heartBeat?: HeartBeat;
  /** Reconnect after a lost connection (default), with exponential backoff and jitter. */
  reconnect?: boolean | ReconnectOptions;
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
  /** Resume a Perigee topic from a known position (DESIGN.md §5). */
  since?: { epoch: string; offset: number };
  /**
   * Called after each (re)subscription with a `since` position: whether the broker's history
   * covered the gap. When false, messages were missed and the app should reload its state.
   */
  onRecovery?: (recovered: boolean) => void;
}

export interface Subscription {
  readonly id: string;
  readonly destination: string;
  /** Resolves when the broker has confirmed the SUBSCRIBE. `recovered` is set when `since` was. */
  readonly ready: Promise<{ recovered?: boolean }>;
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

type ClientEvents = {
  /** CONNECTED arrived (first connect and every reconnect). */
  connect: (headers: Readonly<Record<string, string>>) => void;
  /** The connection was lost or closed. */
  disconnect: (reason: PerigeeError) => void;
  /** The broker sent an ERROR, or something failed outside any call's promise. */
  error: (error: PerigeeError) => void;
  /** A reconnect is scheduled in `delay` ms. */
  reconnecting: (attempt: number, delay: number) => void;
};

interface PendingReceipt {
  resolve: (frame: Frame) => void;
  reject: (error: PerigeeError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The frame (with its receipt header) to send again after a reconnect: at-least-once publishing. */
  resend: Frame | undefined;
  /** Whether the frame went out on a connection (as opposed to waiting in the queue). */
  inFlight: boolean;
}

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
  /** Settled by the first RECEIPT for this subscription's SUBSCRIBE. */
  readonly ready: Deferred<{ recovered?: boolean }>;
}

const ACCEPT_VERSION = '1.2,1.1,1.0';

/**
 * A STOMP 1.0/1.1/1.2 client over an injected socket. It reconnects with backoff, resubscribes,
 * resends unconfirmed publishes that asked for a receipt, and resumes Perigee topics from the
 * last offset it saw, dropping duplicates.
 */
export class StompClient extends Emitter<ClientEvents> {
  state: ClientState = 'idle';
  /** The negotiated STOMP version. */
  version: StompVersion = '1.2';
  /** The CONNECTED `session` header. */
  sessionId: string | undefined;
  /** The CONNECTED `server` header. */
  server: string | undefined;

  private readonly options: ClientOptions;
  private readonly reconnectOptions: Required<ReconnectOptions> | undefined;
  private socket: ClientSocket | undefined;
  private parser: FrameParser | undefined;
  private readonly subscriptions = new Map<string, SubscriptionState>();
  private readonly receipts = new Map<string, PendingReceipt>();
  /** Open transactions and the connection generation they began in. */
  private readonly transactions = new Map<string, number>();
  /** Frames that wait for CONNECTED; encoded then, with the negotiated version's escaping. */
  private queued: QueuedFrame[] = [];
  private queuedBytes = 0;
  /** Counts connections that were lost after CONNECTED: the broker forgets transactions then. */
  private generation = 0;
  private counter = 0;
  private attempt = 0;
  private everConnected = false;
  private connectWaiters: { resolve: () => void; reject: (error: PerigeeError) => void }[] = [];
  private lastReceivedAt = 0;
  private lastSentAt = 0;
  private heartBeatTimer: ReturnType<typeof setInterval> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private serverError: PerigeeError | undefined;

  constructor(options: ClientOptions) {
    super();
    this.options = options;
    const reconnect = options.reconnect ?? true;
    this.reconnectOptions =
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

  /**
   * Connects. Resolves on CONNECTED; rejects if the first attempt fails (a wrong address or
   * login should be reported, not retried forever). Later losses reconnect on their own.
   */
  connect(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closed') {
      return Promise.reject(new PerigeeError('CONNECTION_CLOSED', 'the client was disconnected'));
    }
    const waiting = new Promise<void>((resolve, reject) =>
      this.connectWaiters.push({ resolve, reject }),
    );
    if (this.state === 'idle') this.open();
    return waiting;
  }

  publish(
    destination: string,
    body: string | Uint8Array,
    options: PublishOptions = {},
  ): Promise<void> {
    const bytes = typeof body === 'string' ? encodeUtf8(body) : body;
    const headers: Header[] = [['destination', destination]];
    if (options.headers)
      for (const [name, value] of Object.entries(options.headers)) headers.push([name, value]);
    if (options.transaction) headers.push(['transaction', options.transaction.id]);
    headers.push(['content-length', String(bytes.length)]);
    const frame = createFrame('SEND', headers, bytes);
    try {
      if (options.transaction) this.checkTransaction(options.transaction);
      if (!options.receipt) {
        this.transmit(frame);
        return Promise.resolve();
      }
    } catch (error) {
      return Promise.reject(asPerigeeError(error));
    }
    return this.withReceipt(frame, !options.transaction).then(() => undefined);
  }

  subscribe(
    destination: string,
    handler: (message: StompMessage) => void,
    options: SubscribeOptions = {},
  ): Subscription {
    const id = `sub-${++this.counter}`;
    const headers: Header[] = [];
    if (options.headers)
      for (const [name, value] of Object.entries(options.headers)) headers.push([name, value]);
    const state: SubscriptionState = {
      id,
      destination,
      handler,
      ack: options.ack ?? 'auto',
      headers,
      onRecovery: options.onRecovery,
      position: options.since,
      ready: deferred(),
    };
    this.subscriptions.set(id, state);
    // Subscribed now if connected; otherwise on CONNECTED, with every other subscription.
    if (this.state === 'connected') this.sendSubscribe(state);
    else if (this.state === 'idle') this.open();
    return {
      id,
      destination,
      ready: state.ready.promise,
      unsubscribe: () => this.unsubscribe(id),
    };
  }

  /** Starts a transaction; its sends and acks take effect at `commit`. */
  begin(): Transaction {
    const id = `tx-${++this.counter}`;
    this.transmit(createFrame('BEGIN', [['transaction', id]]));
    const generation = this.generation;
    const end = (command: 'COMMIT' | 'ABORT'): Promise<void> => {
      try {
        this.checkTransaction(transaction);
      } catch (error) {
        return Promise.reject(asPerigeeError(error));
      }
      this.transactions.delete(id);
      return this.withReceipt(createFrame(command, [['transaction', id]]), false).then(
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
    this.transactions.set(id, generation);
    return transaction;
  }

  /**
   * Disconnects gracefully: DISCONNECT with a receipt, so that everything sent before it has been
   * processed when this resolves (STOMP 1.2 §"Graceful Disconnect").
   */
  async disconnect(): Promise<void> {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.stopReconnecting();
    if (wasConnected) {
      try {
        await this.withReceipt(
          createFrame('DISCONNECT'),
          false,
          Math.min(this.receiptTimeout, 5000),
        );
      } catch {
        // The connection is going away either way.
      }
    }
    this.shutdown(new PerigeeError('CONNECTION_CLOSED', 'the client disconnected'));
  }

  /** Throws unless `transaction` is open on the broker's side of the current connection. */
  private checkTransaction(transaction: Transaction): void {
    if (this.transactions.get(transaction.id) !== this.generation) {
      throw new PerigeeError(
        'CONNECTION_CLOSED',
        `transaction ${transaction.id} is over: it was committed, aborted or lost with its connection`,
      );
    }
  }

  private get receiptTimeout(): number {
    return this.options.receiptTimeout ?? 30_000;
  }

  private open(): void {
    this.state = this.everConnected ? 'reconnecting' : 'connecting';
    this.serverError = undefined;
    let socket: ClientSocket;
    try {
      socket = this.options.socket();
    } catch (error) {
      this.onSocketClosed(new PerigeeError('CONNECT_FAILED', describe(error), { cause: error }));
      return;
    }
    this.socket = socket;
    const parser = new FrameParser((frame) => this.onFrame(frame), {
      limits: this.options.limits,
      version: '1.2',
    });
    this.parser = parser;
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.sendConnect();
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.lastReceivedAt = Date.now();
      try {
        parser.push(toBytes(event.data));
      } catch (error) {
        this.report(
          error instanceof PerigeeError
            ? error
            : new PerigeeError('MALFORMED_FRAME', describe(error)),
        );
        socket.close();
      }
    };
    socket.onerror = () => {};
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      const reason =
        this.serverError ??
        new PerigeeError(
          this.everConnected || this.state === 'connected' ? 'CONNECTION_CLOSED' : 'CONNECT_FAILED',
          `the connection closed${event.code ? ` (code ${event.code}${event.reason ? `, ${event.reason}` : ''})` : ''}`,
        );
      this.onSocketClosed(reason);
    };
    this.connectTimer = setTimeout(() => {
      if (this.socket === socket && this.state !== 'connected') {
        this.serverError = new PerigeeError(
          'TIMEOUT',
          `no CONNECTED within ${this.options.connectTimeout ?? 10_000} ms`,
        );
        socket.close();
        this.onSocketClosed(this.serverError);
      }
    }, this.options.connectTimeout ?? 10_000);
    unref(this.connectTimer);
  }

  private sendConnect(): void {
    const [send, receive] = this.options.heartBeat ?? [10_000, 10_000];
    const headers: Header[] = [
      ['accept-version', ACCEPT_VERSION],
      ['host', this.options.host ?? '/'],
      ['heart-beat', `${send},${receive}`],
    ];
    if (this.options.login !== undefined) headers.push(['login', this.options.login]);
    if (this.options.passcode !== undefined) headers.push(['passcode', this.options.passcode]);
    for (const [name, value] of Object.entries(this.options.connectHeaders ?? {}))
      headers.push([name, value]);
    this.write(encodeFrame(createFrame('CONNECT', headers), '1.2'));
  }

  private onFrame(frame: Frame): void {
    switch (frame.command) {
      case 'CONNECTED':
        this.onConnected(frame);
        break;
      case 'MESSAGE':
        this.onMessage(frame);
        break;
      case 'RECEIPT':
        this.onReceipt(frame);
        break;
      case 'ERROR':
        this.onError(frame);
        break;
      default:
        this.report(new PerigeeError('UNKNOWN_COMMAND', `the server sent ${frame.command}`));
    }
  }

  private onConnected(frame: Frame): void {
    clearTimeout(this.connectTimer);
    const version = getHeader(frame, 'version') ?? '1.0';
    this.version = version === '1.2' || version === '1.1' ? version : '1.0';
    this.parser!.version = this.version;
    this.sessionId = getHeader(frame, 'session');
    this.server = getHeader(frame, 'server');
    this.state = 'connected';
    this.everConnected = true;
    this.attempt = 0;
    this.startHeartBeats(frame);
    // Resubscribe and resend before anything queued, so that the broker sees them in order.
    for (const subscription of this.subscriptions.values()) this.sendSubscribe(subscription);
    for (const pending of this.receipts.values()) {
      if (pending.resend && pending.inFlight) this.write(encodeFrame(pending.resend, this.version));
    }
    const queued = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    for (const entry of queued) {
      this.write(encodeFrame(entry.frame, this.version));
      if (entry.receipt) entry.receipt.inFlight = true;
    }
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const waiter of waiters) waiter.resolve();
    this.emit('connect', headerRecord(frame.headers));
  }

  private onMessage(frame: Frame): void {
    const subscriptionId = getHeader(frame, 'subscription') ?? '';
    const subscription = this.subscriptions.get(subscriptionId);
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
      // After a resume the broker replays from the last offset seen; anything at or before it is
      // a duplicate (DESIGN.md §5: "the client de-duplicates by sequence and offset").
      if (last && last.epoch === epoch && offset <= last.offset) return;
      subscription.position = { epoch, offset };
    }
    subscription.handler(this.toMessage(frame, subscription));
  }

  private toMessage(frame: Frame, subscription: SubscriptionState): StompMessage {
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
      if (this.state === 'connected')
        this.write(encodeFrame(createFrame(command, ackHeaders), this.version));
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

  private onReceipt(frame: Frame): void {
    const id = getHeader(frame, 'receipt-id');
    if (id === undefined) return;
    const pending = this.receipts.get(id);
    if (!pending) return;
    this.receipts.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(frame);
  }

  private onError(frame: Frame): void {
    const message = getHeader(frame, 'message') ?? 'no message header';
    const bodyText = frame.body.length > 0 ? safeText(frame.body).trim() : '';
    const error = new PerigeeError(
      'SERVER_ERROR',
      bodyText && !message.includes(bodyText) ? `${message} (${bodyText.slice(0, 200)})` : message,
    );
    this.serverError = error;
    const receiptId = getHeader(frame, 'receipt-id');
    const pending = receiptId === undefined ? undefined : this.receipts.get(receiptId);
    if (pending) {
      this.receipts.delete(receiptId!);
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.report(error);
  }

  private report(error: PerigeeError): void {
    this.emit('error', error);
  }

  private sendSubscribe(subscription: SubscriptionState): void {
    const headers: Header[] = [
      ['id', subscription.id],
      ['destination', subscription.destination],
      ['ack', subscription.ack],
      ...subscription.headers,
    ];
    const since = subscription.position;
    if (since) headers.push(['x-perigee-since', `${since.epoch}:${since.offset}`]);
    const ready = subscription.ready;
    this.withReceipt(createFrame('SUBSCRIBE', headers), false).then(
      (receipt) => {
        const recoveredHeader = getHeader(receipt, 'x-perigee-recovered');
        let recovered: boolean | undefined;
        if (recoveredHeader !== undefined) {
          recovered = recoveredHeader === 'true';
          if (!recovered) subscription.position = undefined;
          subscription.onRecovery?.(recovered);
        }
        if (!ready.settled) ready.resolve(recovered === undefined ? {} : { recovered });
      },
      (error: PerigeeError) => {
        // A lost connection resubscribes on the next CONNECTED; anything else is final.
        if (this.state !== 'closed' && error.retryable && error.code !== 'SERVER_ERROR') return;
        if (!ready.settled) ready.reject(error);
        else this.report(error);
      },
    );
  }

  private async unsubscribe(id: string): Promise<void> {
    if (!this.subscriptions.delete(id)) return;
    if (this.state !== 'connected') return; // nothing to undo on the broker: it is resubscribed on connect only
    await this.withReceipt(createFrame('UNSUBSCRIBE', [['id', id]]), false);
  }

  /** Sends `frame` with a receipt header and resolves with the RECEIPT. */
  private withReceipt(
    frame: Frame,
    resend: boolean,
    timeout = this.receiptTimeout,
  ): Promise<Frame> {
    if (this.state === 'closed') {
      return Promise.reject(new PerigeeError('CONNECTION_CLOSED', 'the client was disconnected'));
    }
    const id = `r-${++this.counter}`;
    const framed = withReceiptHeader(frame, id);
    return new Promise<Frame>((resolve, reject) => {
      const pending: PendingReceipt = {
        resolve,
        reject,
        timer: undefined,
        resend: resend ? framed : undefined,
        inFlight: false,
      };
      try {
        this.transmit(framed, pending);
      } catch (error) {
        reject(asPerigeeError(error));
        return;
      }
      pending.timer = setTimeout(() => {
        this.receipts.delete(id);
        reject(new PerigeeError('TIMEOUT', `no RECEIPT for ${frame.command} within ${timeout} ms`));
      }, timeout);
      unref(pending.timer);
      this.receipts.set(id, pending);
    });
  }

  /** Sends now if connected, or queues (bounded) until the next CONNECTED. */
  private transmit(frame: Frame, receipt?: PendingReceipt): void {
    if (this.state === 'closed')
      throw new PerigeeError('CONNECTION_CLOSED', 'the client was disconnected');
    if (this.state === 'connected') {
      this.write(encodeFrame(frame, this.version));
      if (receipt) receipt.inFlight = true;
      return;
    }
    const limit = this.options.maxQueuedBytes ?? 1_048_576;
    const size = frame.body.length + 64 * (frame.headers.length + 1);
    if (this.queuedBytes + size > limit) {
      throw new PerigeeError('LIMIT_EXCEEDED', `more than ${limit} bytes wait for the connection`);
    }
    this.queued.push({ frame, receipt });
    this.queuedBytes += size;
    if (this.state === 'idle') this.open();
  }

  private write(bytes: Uint8Array): void {
    this.lastSentAt = Date.now();
    this.socket?.send(bytes);
  }

  private startHeartBeats(connected: Frame): void {
    this.stopHeartBeats();
    const local = this.options.heartBeat ?? [10_000, 10_000];
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
    this.lastReceivedAt = Date.now();
    const eol = encodeUtf8('\n');
    this.heartBeatTimer = setInterval(
      () => {
        const now = Date.now();
        if (deadline !== 0 && now - this.lastReceivedAt > deadline) {
          this.serverError = new PerigeeError(
            'HEARTBEAT_TIMEOUT',
            `nothing from the server for ${now - this.lastReceivedAt} ms`,
          );
          const socket = this.socket;
          socket?.close();
          this.onSocketClosed(this.serverError);
          return;
        }
        if (outgoing !== 0 && now - this.lastSentAt >= outgoing * 0.8) this.write(eol);
      },
      Math.max(50, Math.floor(tick / 2)),
    );
    unref(this.heartBeatTimer);
  }

  private stopHeartBeats(): void {
    if (this.heartBeatTimer !== undefined) clearInterval(this.heartBeatTimer);
    this.heartBeatTimer = undefined;
  }

  private onSocketClosed(reason: PerigeeError): void {
    if (this.socket) {
      this.socket.onopen = this.socket.onmessage = this.socket.onclose = null;
    }
    this.socket = undefined;
    this.parser = undefined;
    clearTimeout(this.connectTimer);
    this.stopHeartBeats();
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    if (wasConnected) this.generation++;
    // Receipts for frames that went out on this connection cannot come any more, except for
    // publishes, which are resent. Frames still queued keep waiting for the next connection.
    for (const [id, pending] of this.receipts) {
      if (pending.resend || !pending.inFlight) continue;
      this.receipts.delete(id);
      clearTimeout(pending.timer);
      pending.reject(reason);
    }
    if (wasConnected) this.emit('disconnect', reason);
    if (!this.everConnected || !this.reconnectOptions) {
      this.shutdown(reason);
      return;
    }
    const { initialDelay, maxDelay, factor } = this.reconnectOptions;
    const ceiling = Math.min(maxDelay, initialDelay * factor ** this.attempt);
    // "Equal jitter": at least half the backoff, so a crowd of clients does not come back at once.
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt++;
    this.state = 'reconnecting';
    this.emit('reconnecting', this.attempt, delay);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  private stopReconnecting(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  private shutdown(reason: PerigeeError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopReconnecting();
    this.stopHeartBeats();
    clearTimeout(this.connectTimer);
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      socket.close();
    }
    for (const pending of this.receipts.values()) {
      clearTimeout(pending.timer);
      pending.reject(reason);
    }
    this.receipts.clear();
    this.queued = [];
    this.queuedBytes = 0;
    this.transactions.clear();
    for (const subscription of this.subscriptions.values()) {
      if (!subscription.ready.settled) subscription.ready.reject(reason);
    }
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const waiter of waiters) waiter.reject(reason);
  }
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

function withReceiptHeader(frame: Frame, id: string): Frame {
  return { command: frame.command, headers: [...frame.headers, ['receipt', id]], body: frame.body };
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
  if (Array.isArray(data)) {
    // ws delivers fragmented messages as Buffer[] when binaryType is 'fragments'.
    const parts = data as Uint8Array[];
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
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
