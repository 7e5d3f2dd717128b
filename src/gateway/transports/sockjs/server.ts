import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorTable } from '../../../errors.js';
import type { CloseReason } from './framing.js';
import { answerFor, PROTOCOL_ERRORS, refuseUpgrade, sendEmpty, sendText } from './http.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import type { Receiver } from './receiver.js';
import type { SessionRoute, TransportHost } from './routes.js';
import { FlushScheduler, SockJSSession, type SessionHost } from './session.js';
import { IframePage, sendGreeting, sendInfo, sendPreflight } from './static-pages.js';
import { sessionRoutes } from './transports.js';
import type { SockJSConnection, SockJSServerOptions } from './types.js';
import { upgradeProblem, WebSocketReceiver } from './websocket.js';
import { RawWebSocketConnection, type RawWebSocketHost } from './websocket-raw.js';

/**
 * `<server>/<session>/<transport>`: "not an empty string, anything containing dots or paths with
 * less or more parts". Ids are kept as sent (percent-encoding included).
 */
const SESSION_PATH = /^\/([^/.]+)\/([^/.]+)\/([a-z_]+)$/;
/** `iframe.html` and versioned variants such as `iframe-0.1.2abc-dirty.2144.html`; case matters. */
const IFRAME_PATH = /^\/iframe[0-9a-z_.-]*\.html$/;

const SHUTTING_DOWN: CloseReason = {
  code: errorTable.SHUTTING_DOWN.closeCode,
  reason: errorTable.SHUTTING_DOWN.message,
};
const APPLICATION_FAILED: CloseReason = {
  code: errorTable.INTERNAL.closeCode,
  reason: errorTable.INTERNAL.message,
};
const ORIGIN_REFUSED = 'Origin not allowed';

type LiveConnection = SockJSSession | RawWebSocketConnection;

/**
 * The server side of the SockJS 0.3.3 protocol, as a layer to mount on any `http.Server`: the
 * owner passes it requests and upgrades, and it answers those under its prefix. Every session
 * reaches the application through `onConnection` once its open frame is out.
 *
 * `close()` ends every session with `c[1012,"Server shutting down"]` (WebSocket close 1012,
 * "service restart"): the protocol defines no shutdown code, and 1012 is the error table's
 * retryable SHUTTING_DOWN, so clients reconnect.
 */
export class SockJSServer {
  readonly #options: ResolvedOptions;
  readonly #onConnection: (connection: SockJSConnection) => void;
  readonly #routes: ReadonlyMap<string, SessionRoute>;
  /** Sessions that HTTP requests can reach by id (SockJS WebSocket sessions are not among them). */
  readonly #sessions = new Map<string, SockJSSession>();
  readonly #live = new Set<LiveConnection>();
  readonly #scheduler = new FlushScheduler();
  readonly #iframe: IframePage;
  readonly #webSocketServer: WebSocketServer | undefined;
  readonly #sessionHost: SessionHost & RawWebSocketHost;
  readonly #transportHost: TransportHost;
  #closed = false;

  constructor(options: SockJSServerOptions, onConnection: (connection: SockJSConnection) => void) {
    this.#options = resolveOptions(options);
    this.#onConnection = onConnection;
    this.#routes = sessionRoutes(this.#options.transports, this.#options.webSocketEnabled);
    this.#iframe = new IframePage(this.#options.sockjsUrl);
    if (this.#options.webSocketEnabled) {
      this.#webSocketServer = new WebSocketServer({
        noServer: true,
        clientTracking: false,
        perMessageDeflate: false,
        maxPayload: this.#options.maxWebSocketMessageBytes,
      });
    }
    this.#sessionHost = {
      heartbeatDelay: this.#options.heartbeatDelay,
      disconnectDelay: this.#options.disconnectDelay,
      scheduler: this.#scheduler,
      sessionOpened: (connection) => this.#open(connection),
      sessionFinished: (session) => this.#forget(session),
      connectionFinished: (connection) => this.#forget(connection),
      applicationFailed: (connection, error) => this.#applicationFailed(connection, error),
    };
    this.#transportHost = {
      options: this.#options,
      receive: (sessionId, receiver) => this.#receive(sessionId, receiver),
      findSession: (sessionId) => this.#sessions.get(sessionId),
    };
  }

  /** Open sessions and raw WebSockets, including closed sessions still serving their close frame. */
  get sessionCount(): number {
    return this.#live.size;
  }

  /** Handles the request if its path is under the prefix; returns false (and does nothing) otherwise. */
  handleRequest(request: IncomingMessage, response: ServerResponse): boolean {
    const url = request.url ?? '/';
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    const rest = this.#pathUnderPrefix(path);
    if (rest === undefined) return false;
    const query = queryStart === -1 ? '' : url.slice(queryStart + 1);
    try {
      const pending = this.#serve(request, response, rest, query);
      pending?.catch((error: unknown) => this.#requestFailed(response, error));
    } catch (error) {
      this.#requestFailed(response, error);
    }
    return true;
  }

  /** Same for an HTTP upgrade: SockJS websocket and raw websocket. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = request.url ?? '/';
    const queryStart = url.indexOf('?');
    const rest = this.#pathUnderPrefix(queryStart === -1 ? url : url.slice(0, queryStart));
    if (rest === undefined) return false;
    if (this.#closed) {
      refuseUpgrade(socket, errorTable.SHUTTING_DOWN.status, errorTable.SHUTTING_DOWN.message);
      return true;
    }
    if (this.#refusesOrigin(request)) {
      refuseUpgrade(socket, errorTable.FORBIDDEN.status, ORIGIN_REFUSED);
      return true;
    }
    const sessionPath = SESSION_PATH.exec(rest);
    const sessionId = sessionPath?.[3] === 'websocket' ? sessionPath[2] : undefined;
    const raw = rest === '/websocket';
    const webSocketServer = this.#webSocketServer;
    if (webSocketServer === undefined || (sessionId === undefined && !raw)) {
      refuseUpgrade(socket, PROTOCOL_ERRORS.notFound.status, PROTOCOL_ERRORS.notFound.text);
      return true;
    }
    // "WebSocket should only accept GET": 405 with Allow and no body, as the protocol checks.
    if (request.method !== 'GET') {
      refuseUpgrade(socket, 405, '', 'GET');
      return true;
    }
    const problem = upgradeProblem(request);
    if (problem !== undefined) {
      refuseUpgrade(socket, problem.status, problem.text);
      return true;
    }
    // Hybi-07 (Firefox 6) frames exactly like hybi-08 and RFC 6455; ws only lists 8 and 13, so
    // the handshake is let through as 8. The protocol asks for 7, 8 and 13.
    if (request.headers['sec-websocket-version'] === '7') {
      request.headers['sec-websocket-version'] = '8';
    }
    webSocketServer.handleUpgrade(request, socket, head, (webSocket) => {
      if (this.#closed) {
        webSocket.close(SHUTTING_DOWN.code, SHUTTING_DOWN.reason);
        return;
      }
      if (sessionId === undefined) this.#acceptRawWebSocket(webSocket, socket, request);
      else this.#acceptSessionWebSocket(sessionId, webSocket, socket, request);
    });
    return true;
  }

  /** Ends every session (see the class comment for the code) and stops every timer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const connection of [...this.#live]) connection.shutdown(SHUTTING_DOWN);
    this.#live.clear();
    this.#sessions.clear();
    this.#scheduler.cancel();
    this.#webSocketServer?.close();
  }

  #pathUnderPrefix(path: string): string | undefined {
    const prefix = this.#options.prefix;
    if (path === prefix) return '';
    if (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 0x2f /* '/' */) {
      return path.slice(prefix.length);
    }
    return undefined;
  }

  #serve(
    request: IncomingMessage,
    response: ServerResponse,
    rest: string,
    query: string,
  ): void | Promise<void> {
    if (this.#closed) {
      sendText(response, errorTable.SHUTTING_DOWN.status, errorTable.SHUTTING_DOWN.message);
      return;
    }
    if (this.#refusesOrigin(request)) {
      sendText(response, errorTable.FORBIDDEN.status, ORIGIN_REFUSED);
      return;
    }
    const method = request.method ?? 'GET';
    const readOnly = method === 'GET' || method === 'HEAD';
    if (rest === '' || rest === '/') {
      if (readOnly) sendGreeting(response);
      else sendEmpty(response, 405, { Allow: 'GET, HEAD' });
      return;
    }
    if (rest === '/info') {
      if (method === 'GET') sendInfo(request, response, this.#options);
      else if (method === 'OPTIONS') sendPreflight(request, response, 'OPTIONS, GET');
      else sendEmpty(response, 405, { Allow: 'OPTIONS, GET' });
      return;
    }
    if (IFRAME_PATH.test(rest)) {
      if (readOnly) this.#iframe.send(request, response);
      else sendEmpty(response, 405, { Allow: 'GET, HEAD' });
      return;
    }
    if (rest === '/websocket' && this.#options.webSocketEnabled) {
      // An upgrade would have reached handleUpgrade: this request is not one.
      if (method !== 'GET') {
        sendEmpty(response, 405, { Allow: 'GET' });
        return;
      }
      const { status, text } = upgradeProblem(request) ?? PROTOCOL_ERRORS.upgradeOnlyToWebSocket;
      sendText(response, status, text);
      return;
    }
    const sessionPath = SESSION_PATH.exec(rest);
    const route = sessionPath ? this.#routes.get(sessionPath[3] ?? '') : undefined;
    if (sessionPath === null || route === undefined) {
      sendText(response, PROTOCOL_ERRORS.notFound.status, PROTOCOL_ERRORS.notFound.text);
      return;
    }
    if (method === route.method) {
      return route.handle({
        request,
        response,
        sessionId: sessionPath[2] ?? '',
        query,
        host: this.#transportHost,
      });
    }
    if (method === 'OPTIONS' && route.cors) {
      sendPreflight(request, response, `OPTIONS, ${route.method}`, this.#options.cookieNeeded);
      return;
    }
    sendEmpty(response, 405, { Allow: route.cors ? `OPTIONS, ${route.method}` : route.method });
  }

  #receive(sessionId: string, receiver: Receiver): void {
    let session = this.#sessions.get(sessionId);
    if (session === undefined) {
      session = new SockJSSession(sessionId, receiver, this.#sessionHost, false);
      this.#sessions.set(sessionId, session);
      this.#live.add(session);
    }
    session.attach(receiver);
  }

  #acceptSessionWebSocket(
    sessionId: string,
    webSocket: WebSocket,
    socket: Duplex,
    request: IncomingMessage,
  ): void {
    // Not registered by id: "it is correct to have two separate sessions sharing the same
    // session_id at the same time" over WebSocket, and no HTTP request may reach them.
    const receiver = new WebSocketReceiver(webSocket, socket, request);
    const session = new SockJSSession(sessionId, receiver, this.#sessionHost, true);
    this.#live.add(session);
    receiver.listen(session);
    session.attach(receiver);
  }

  #acceptRawWebSocket(webSocket: WebSocket, socket: Duplex, request: IncomingMessage): void {
    const connection = new RawWebSocketConnection(webSocket, socket, request, this.#sessionHost);
    this.#live.add(connection);
    this.#open(connection);
  }

  #open(connection: SockJSConnection): void {
    this.#options.log.debug(
      { session: connection.id, transport: connection.transport },
      'SockJS session opened',
    );
    try {
      this.#onConnection(connection);
    } catch (error) {
      this.#applicationFailed(connection, error);
    }
  }

  #forget(connection: LiveConnection): void {
    this.#live.delete(connection);
    if (connection instanceof SockJSSession && this.#sessions.get(connection.id) === connection) {
      this.#sessions.delete(connection.id);
    }
  }

  #applicationFailed(connection: SockJSConnection, error: unknown): void {
    this.#options.log.warn(
      { session: connection.id, transport: connection.transport, err: error },
      'SockJS application callback threw; closing the session',
    );
    connection.close(APPLICATION_FAILED.code, APPLICATION_FAILED.reason);
  }

  #refusesOrigin(request: IncomingMessage): boolean {
    const allowOrigin = this.#options.allowOrigin;
    const origin = request.headers.origin;
    if (allowOrigin === undefined || origin === undefined) return false;
    try {
      return !allowOrigin(origin, request);
    } catch (error) {
      this.#options.log.warn({ origin, err: error }, 'SockJS allowOrigin threw; refusing');
      return true;
    }
  }

  #requestFailed(response: ServerResponse, error: unknown): void {
    this.#options.log.warn({ err: error }, 'SockJS request failed');
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const { status, text } = answerFor(error);
    sendText(response, status, text);
  }
}
