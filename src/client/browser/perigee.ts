import { PerigeeError } from '../../errors.js';
import {
  StompClient,
  type AckMode,
  type ReconnectOptions,
  type StompMessage,
  type Subscription,
} from '../client.js';
import { Emitter } from '../emitter.js';
import type { ClientSocket } from '../socket.js';
import { defaultEnvironment, type Environment } from './environment.js';
import {
  BUFFERED_CLOSE_CODE,
  DEFAULT_ORDER,
  isAvailable,
  openTransport,
  STREAMING,
  type TransportName,
} from './transports/index.js';

export interface PerigeeOptions {
  login?: string;
  passcode?: string;
  /**
   * Called before every connect and reconnect; the token goes in the CONNECT `Authorization:
   * Bearer` header. A fresh call each time means an expired token is never sent again.
   */
  getToken?: () => string | Promise<string>;
  /** Only these transports, in this order (e.g. `['xhr-polling']`). Default: the full fallback order. */
  transports?: readonly TransportName[];
  /** Never these transports. */
  exclude?: readonly TransportName[];
  /** Log state changes and errors: true for console.debug, or a function of your own. */
  debug?: boolean | ((message: string) => void);
  /** STOMP heart-beats [send every ms, want every ms]. Default 15000,15000. */
  heartBeat?: [number, number];
  /** How long a stream may take to deliver its first frame before it counts as buffered. Default 4000 ms. */
  streamingTimeout?: number;
  /** Short polling: the wait between two empty polls. Default 1000 ms. */
  pollInterval?: number;
  /** Reconnect after a lost connection (default true), with jittered exponential backoff. */
  reconnect?: boolean | ReconnectOptions;
  /** How long one transport may take to reach CONNECTED. Default 10000 ms. */
  connectTimeout?: number;
  /** Extra CONNECT headers. */
  connectHeaders?: Readonly<Record<string, string>>;
  /** For Node and tests: WebSocket, EventSource, fetch… when there are no such globals. */
  env?: Partial<Environment>;
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StateChange {
  readonly state: ConnectionState;
  /** The transport in use or being tried. */
  readonly transport: TransportName | undefined;
  /** Why the connection was lost or a transport was given up. */
  readonly reason?: string;
  /** Whether the server resumed the session (state "open" after a reconnect). */
  readonly resumed?: boolean;
  readonly attempt?: number;
  /** Milliseconds until the next attempt. */
  readonly delay?: number;
}

export interface PerigeeSubscribeOptions {
  ack?: AckMode;
  headers?: Readonly<Record<string, string>>;
  /** Start from a position the page was rendered at (`broker.position(destination)` on the server). */
  since?: { epoch: string; offset: number };
  /** After each reconnect: true when nothing was missed, false when the app should reload state. */
  onRecovery?: (recovered: boolean) => void;
}

/** Cancels a subscription; also tells how its last recovery went. */
export interface Unsubscribe {
  (): Promise<void>;
  readonly id: string;
  readonly destination: string;
  /** Resolves once the server confirmed the subscription. */
  readonly ready: Promise<{ recovered?: boolean }>;
  /** After a reconnect: whether nothing was missed. Undefined before the first reconnect. */
  readonly recovered: boolean | undefined;
}

export type RouteHandler = (message: StompMessage, params: Record<string, string>) => void;

type PerigeeEvents = {
  state: (change: StateChange) => void;
  error: (error: PerigeeError) => void;
};

/**
 * The browser client: STOMP over the best transport that works here, falling back when one fails
 * to open or stalls, reconnecting with jittered backoff, and resuming without loss.
 */
export class PerigeeClient extends Emitter<PerigeeEvents> {
  readonly url: string;
  readonly core: StompClient;
  state: ConnectionState = 'connecting';
  transport: TransportName | undefined;
  /** Resolves at the first successful connection. */
  readonly ready: Promise<void>;

  readonly #env: Environment;
  readonly #options: PerigeeOptions;
  #order: TransportName[];
  #index = 0;
  /** Streaming transports were seen buffered by a proxy: skip them from now on. */
  #streamingBuffered = false;
  #lastClose: { code?: number; reason?: string } | undefined;
  readonly #log: (message: string) => void;
  readonly #cleanups: (() => void)[] = [];

  constructor(url: string, options: PerigeeOptions = {}) {
    super();
    this.#options = options;
    this.#env = defaultEnvironment(options.env);
    this.url = absoluteBase(url, this.#env);
    this.#order = this.#availableOrder(options.transports ?? DEFAULT_ORDER);
    const debug = options.debug;
    this.#log =
      typeof debug === 'function'
        ? debug
        : debug
          ? (message) => console.debug(`[perigee] ${message}`)
          : () => {};
    if (this.#order.length === 0) {
      throw new PerigeeError(
        'USAGE',
        'no transport can run here: check the transports and exclude options',
      );
    }
    const getToken = options.getToken;
    this.core = new StompClient({
      socket: () => this.#openSocket(),
      login: options.login,
      passcode: options.passcode,
      heartBeat: options.heartBeat ?? [15_000, 15_000],
      reconnect: options.reconnect ?? true,
      retryFirstConnect: true,
      connectTimeout: options.connectTimeout,
      connectHeaders: async () => {
        const headers: Record<string, string> = { ...options.connectHeaders };
        if (getToken) headers.Authorization = `Bearer ${await getToken()}`;
        return headers;
      },
      nextDelay: (_attempt, reason, wasConnected) => this.#nextDelay(reason, wasConnected),
    });
    this.core.on('connect', ({ resumed }) => {
      this.#setState({ state: 'open', transport: this.transport, resumed });
    });
    this.core.on('reconnecting', (attempt, delay, reason) => {
      this.#setState({
        state: 'reconnecting',
        transport: this.transport,
        reason: reason.message,
        attempt,
        delay,
      });
    });
    this.core.on('close', (reason) => {
      this.#cleanup();
      this.#setState({ state: 'closed', transport: this.transport, reason: reason.message });
    });
    this.core.on('error', (error) => {
      this.#log(`error: ${error.message}`);
      this.emit('error', error);
    });
    this.ready = this.core.connect().catch((error: unknown) => {
      throw error instanceof PerigeeError
        ? error
        : new PerigeeError('CONNECT_FAILED', String(error));
    });
    this.ready.catch(() => {});
    this.#watchBrowser();
  }

  /** Subscribes; returns the function that cancels it (with `ready` and `recovered` on it). */
  subscribe(
    destination: string,
    handler: (message: StompMessage) => void,
    options: PerigeeSubscribeOptions = {},
  ): Unsubscribe {
    const subscription: Subscription = this.core.subscribe(destination, handler, options);
    const cancel = (): Promise<void> => subscription.unsubscribe();
    Object.defineProperties(cancel, {
      id: { value: subscription.id },
      destination: { value: destination },
      ready: { value: subscription.ready },
      recovered: { get: () => subscription.recovered },
    });
    return cancel as Unsubscribe;
  }

  /** Publishes; resolves when the broker has accepted it (a RECEIPT). */
  publish(
    destination: string,
    body: string | Uint8Array,
    headers?: Readonly<Record<string, string>>,
  ): Promise<void> {
    return this.core.publish(destination, body, { headers, receipt: true });
  }

  /**
   * Subscribes to every destination `pattern` describes and calls `handler` with the pattern's
   * parameters: `route('/games/:id/status', (message, { id }) => …)`. `:name` is one segment and
   * `**` the rest (the talk's `destpatterns.dispatch`).
   */
  route(
    pattern: string,
    handler: RouteHandler,
    options: PerigeeSubscribeOptions = {},
  ): Unsubscribe {
    const names: string[] = [];
    const wildcard = pattern
      .split('/')
      .map((segment) => {
        if (segment.startsWith(':')) {
          names.push(segment.slice(1));
          return '*';
        }
        return segment;
      })
      .join('/');
    const matcher = new RegExp(
      `^${pattern
        .split('/')
        .map((segment) =>
          segment.startsWith(':') ? '([^/]+)' : segment === '**' ? '(?:.*)' : escapeRegExp(segment),
        )
        .join('/')}$`,
    );
    return this.subscribe(
      wildcard,
      (message) => {
        const match = matcher.exec(message.destination);
        if (!match) return;
        const params: Record<string, string> = {};
        names.forEach((name, i) => (params[name] = decodeURIComponent(match[i + 1]!)));
        handler(message, params);
      },
      options,
    );
  }

  /** What time it is on the server, in ms since 1970: for countdowns that must not trust the device clock. */
  serverNow(): number {
    return this.core.serverNow();
  }

  /** Uses these transports from the next connection on (e.g. to force a switch). */
  useTransports(transports: readonly TransportName[]): void {
    this.#order = this.#availableOrder(transports);
    this.#index = 0;
  }

  /** Drops the current connection, as a network failure would; the client comes back and resumes. */
  reconnect(reason = 'reconnect requested'): void {
    this.core.dropConnection(reason);
  }

  /** Disconnects for good: DISCONNECT with a receipt, then close. */
  async disconnect(): Promise<void> {
    await this.core.disconnect();
  }

  #cleanup(): void {
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
  }

  #availableOrder(transports: readonly TransportName[]): TransportName[] {
    const excluded = new Set(this.#options.exclude ?? []);
    return transports.filter((name) => !excluded.has(name) && isAvailable(name, this.#env));
  }

  #openSocket(): ClientSocket {
    const candidates = this.#streamingBuffered
      ? this.#order.filter((name) => !STREAMING.has(name))
      : this.#order;
    const list = candidates.length > 0 ? candidates : this.#order;
    if (this.#index >= list.length) this.#index = 0;
    const name = list[this.#index]!;
    this.transport = name;
    if (this.state !== 'reconnecting') this.#setState({ state: 'connecting', transport: name });
    const socket = openTransport(name, {
      baseUrl: this.url,
      env: this.#env,
      streamingTimeout: this.#options.streamingTimeout ?? 4000,
      pollInterval: this.#options.pollInterval ?? 1000,
    });
    this.#lastClose = undefined;
    return watchClose(socket, (event) => (this.#lastClose = event));
  }

  /**
   * Decides what follows a lost connection. A transport that failed before CONNECTED is given up
   * for the next one at once; a stream that delivered nothing counts as buffered by a proxy, and
   * all streaming transports are skipped from then on. A connection lost after CONNECTED retries
   * the same transport with the usual backoff.
   */
  #nextDelay(reason: PerigeeError, wasConnected: boolean): number | undefined {
    if (wasConnected) return undefined;
    const failed = this.transport;
    if (this.#lastClose?.code === BUFFERED_CLOSE_CODE && failed && STREAMING.has(failed)) {
      this.#streamingBuffered = true;
      this.#setState({
        state: 'reconnecting',
        transport: failed,
        reason: `${failed} delivered nothing within ${this.#options.streamingTimeout ?? 4000} ms (a buffering proxy?): falling back to polling`,
      });
      this.#index = 0;
      return 0;
    }
    this.#index++;
    const candidates = this.#streamingBuffered
      ? this.#order.filter((name) => !STREAMING.has(name))
      : this.#order;
    if (this.#index < candidates.length) return 0;
    this.#index = 0;
    return undefined;
  }

  #setState(change: StateChange): void {
    this.state = change.state;
    this.#log(
      `${change.state}${change.transport ? ` via ${change.transport}` : ''}${change.reason ? `: ${change.reason}` : ''}${change.delay !== undefined ? ` (next try in ${change.delay} ms)` : ''}`,
    );
    this.emit('state', change);
  }

  /** Come back at once when the network returns or a hidden tab is shown again. */
  #watchBrowser(): void {
    const target = this.#env.global as {
      addEventListener?: (type: string, listener: () => void) => void;
      removeEventListener?: (type: string, listener: () => void) => void;
    };
    if (typeof target.addEventListener !== 'function') return;
    const now = (): void => this.core.reconnectNow();
    const visible = (): void => {
      const document = this.#env.document as { visibilityState?: string } | undefined;
      if (document?.visibilityState === 'visible') this.core.reconnectNow();
    };
    target.addEventListener('online', now);
    const document = this.#env.document as
      | {
          addEventListener?: (type: string, listener: () => void) => void;
          removeEventListener?: (type: string, listener: () => void) => void;
        }
      | undefined;
    document?.addEventListener?.('visibilitychange', visible);
    this.#cleanups.push(() => {
      target.removeEventListener?.('online', now);
      document?.removeEventListener?.('visibilitychange', visible);
    });
  }
}

/** Connects to the gateway at `url` (absolute, or relative to the page). */
export function connect(url: string, options: PerigeeOptions = {}): PerigeeClient {
  return new PerigeeClient(url, options);
}

function absoluteBase(url: string, env: Environment): string {
  const location = (env.global.location as { href?: string } | undefined)?.href;
  const absolute = location ? new URL(url, location).href : new URL(url).href;
  return absolute.replace(/\/+$/, '');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Notes how `socket` closed before handing the event on. */
function watchClose(
  socket: ClientSocket,
  record: (event: { code?: number; reason?: string }) => void,
): ClientSocket {
  const watched: ClientSocket = {
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null,
    send: (data) => socket.send(data),
    close: (code, reason) => socket.close(code, reason),
  };
  socket.onopen = (event) => watched.onopen?.(event);
  socket.onmessage = (event) => watched.onmessage?.(event);
  socket.onerror = (event) => watched.onerror?.(event);
  socket.onclose = (event) => {
    record(event);
    watched.onclose?.(event);
  };
  return watched;
}
