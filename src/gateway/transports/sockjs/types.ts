import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** The SockJS session transports a server can offer (the names sockjs-client uses). */
export const SOCKJS_TRANSPORT_NAMES = [
  'websocket',
  'xhr-streaming',
  'xhr-polling',
  'eventsource',
  'htmlfile',
  'jsonp-polling',
] as const;

export type SockJSTransportName = (typeof SOCKJS_TRANSPORT_NAMES)[number];

/**
 * Perigee's name (DESIGN.md §4) for the transport that opened a connection. `short-polling` is
 * xhr polling in `pollingMode: 'short'`; `sockjs-raw-websocket` is the protocol's framing-free
 * `<prefix>/websocket` entry point.
 */
export type SockJSConnectionTransport =
  | 'sockjs-websocket'
  | 'sockjs-raw-websocket'
  | 'xhr-streaming'
  | 'xhr-polling'
  | 'eventsource'
  | 'htmlfile'
  | 'jsonp-polling'
  | 'short-polling';

export interface SockJSLogger {
  debug(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface SockJSServerOptions {
  /** Path under which the server answers, e.g. `/sockjs`; requests outside it are not handled. */
  prefix: string;
  /** Bytes per streaming response before it closes (default 128 KiB). */
  responseLimit?: number;
  /** Milliseconds between `h` frames while a receiver is attached (default 25 s). */
  heartbeatDelay?: number;
  /** Milliseconds a session without a receiver survives (default 5 s). */
  disconnectDelay?: number;
  /** Default true; false disables websocket and raw websocket, and `/info` says so. */
  websocket?: boolean;
  /** Default false: `/info`'s `cookie_needed`, and the JSESSIONID cookie on session responses. */
  cookieNeeded?: boolean;
  /** Script URL written into iframe.html. */
  sockjsUrl?: string;
  /** Cap on xhr_send / jsonp_send bodies, checked before reading and while reading (default 128 KiB). */
  maxPostBytes?: number;
  /** Largest WebSocket message accepted (ws `maxPayload`, default 128 KiB). */
  maxWebSocketMessageBytes?: number;
  /**
   * `'short'`: an xhr poll with nothing queued answers at once with an `h` frame instead of
   * waiting. Perigee's short-polling baseline; only xhr + xhr_send are meant for this mode.
   */
  pollingMode?: 'long' | 'short';
  /** Session transports on offer (default all). */
  transports?: readonly SockJSTransportName[];
  /**
   * Called for requests that carry an Origin header (default: allow all). False answers 403 with a
   * short text reason and no CORS headers, for HTTP requests and WebSocket upgrades alike.
   */
  allowOrigin?: (origin: string, request: IncomingMessage) => boolean;
  log?: SockJSLogger;
}

/**
 * One SockJS session as the application sees it, whatever transport carries it.
 *
 * Contract:
 * - `onmessage` receives each message the client sent, in order, once the session is open.
 * - `send` queues; every message queued in one turn of the event loop leaves as one `a[...]` frame
 *   in one write. Each message is JSON-encoded once, when queued. It returns false once closed.
 * - `onclose` fires exactly once, however the session ends: `close()`, the client going away
 *   (disconnect delay or a broken WebSocket), broken JSON on a WebSocket, or server shutdown.
 */
export interface SockJSConnection {
  /** The session id from the URL; for raw websocket, generated from crypto randomness. */
  readonly id: string;
  /** Perigee's name for the transport of the receiver that opened the session. */
  readonly transport: SockJSConnectionTransport;
  /** Headers of the request that created the session. */
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string | undefined;
  /** Bytes queued and not yet handed to a socket (held while no receiver is attached or while the socket is full). */
  readonly bufferedBytes: number;
  readonly closed: boolean;
  onmessage: ((message: string) => void) | null;
  onclose: ((code: number, reason: string) => void) | null;
  send(message: string): boolean;
  /**
   * `send` for a message already JSON-encoded (quotes included) with `escapeMessageText` (framing.ts),
   * where the caller could reuse escaped parts; absent where messages travel unencoded (the raw
   * WebSocket endpoint).
   */
  sendEncoded?(encoded: string): boolean;
  /** Default `3000 "Go away!"`, the protocol's own example. */
  close(code?: number, reason?: string): void;
}
