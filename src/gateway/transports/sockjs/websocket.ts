import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { errorTable } from '../../../errors.js';
import {
  NORMAL_CLOSURE,
  parseClientMessages,
  webSocketCloseFor,
  type CloseReason,
} from './framing.js';
import { PROTOCOL_ERRORS, sendText } from './http.js';
import { Receiver } from './receiver.js';
import type { SessionRoute } from './routes.js';
import type { SockJSSession } from './session.js';

/** Above this many unsent bytes, frames wait in the session's queue (where bufferedBytes sees them). */
const SOCKET_HIGH_WATER_MARK = 64 * 1024;

const BROKEN_JSON: CloseReason = {
  code: errorTable.MALFORMED_FRAME.closeCode,
  reason: PROTOCOL_ERRORS.brokenJson.text,
};

/**
 * A SockJS WebSocket: each WebSocket message is one frame, client messages arrive as a JSON
 * array or a single JSON string. The session lives exactly as long as the socket.
 */
export class WebSocketReceiver extends Receiver {
  readonly #webSocket: WebSocket;
  readonly #socket: Duplex;
  #waitingForDrain = false;
  #failure: CloseReason | undefined;

  constructor(webSocket: WebSocket, socket: Duplex, request: IncomingMessage) {
    super('sockjs-websocket', true, request);
    this.#webSocket = webSocket;
    this.#socket = socket;
    webSocket.on('close', (code, reason) => {
      if (this.ended) return;
      this.ended = true;
      this.owner?.receiverEnded(this, this.#failure ?? peerClose(code, reason));
    });
    webSocket.on('error', (error) => {
      this.#failure = failureOf(error);
    });
  }

  /** Hands the client's messages to the session; broken JSON ends it without a close frame. */
  listen(session: SockJSSession): void {
    this.#webSocket.on('message', (data: Buffer) => {
      // "Empty frames must be ignored by the server side."
      if (data.length === 0) return;
      const messages = parseClientMessages(data.toString('utf8'), true);
      if (messages === undefined) session.abort(BROKEN_JSON);
      else session.deliver(messages);
    });
  }

  get writable(): boolean {
    return !this.ended && !this.#waitingForDrain;
  }

  write(frames: readonly string[]): void {
    if (this.ended) return;
    for (const frame of frames) this.#webSocket.send(frame);
    if (this.#socket.writableLength > SOCKET_HIGH_WATER_MARK) {
      this.#waitingForDrain = true;
      this.#socket.once('drain', () => {
        this.#waitingForDrain = false;
        if (!this.ended) this.owner?.receiverDrained(this);
      });
    }
  }

  end(close: CloseReason = NORMAL_CLOSURE): void {
    if (this.ended) return;
    this.ended = true;
    const { code, reason } = webSocketCloseFor(close);
    this.#webSocket.close(code, reason);
    this.owner?.receiverEnded(this, undefined);
  }
}

/** How the peer closed. 1005: it gave no code, which is how sockjs-client closes. */
export function peerClose(code: number, reason: Buffer): CloseReason {
  return code === 1005 ? NORMAL_CLOSURE : { code, reason: reason.toString() };
}

/**
 * ws fails a connection on a protocol error and closes it with the matching code, but its
 * 'close' event then says 1006, since the peer's close frame is never read: the code is taken
 * from the error instead (RFC 6455 §7.4.1: 1009 too big, 1007 bad UTF-8, 1002 the rest).
 */
export function failureOf(error: Error & { code?: string }): CloseReason {
  if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
    return { code: 1009, reason: error.message };
  }
  if (error.code === 'WS_ERR_INVALID_UTF8') return { code: 1007, reason: error.message };
  return { code: 1002, reason: error.message };
}

/**
 * `GET <session>/websocket` without an upgrade: the protocol's WebsocketHttpErrors. Requests with
 * a proper upgrade never come here; they go through `SockJSServer.handleUpgrade`.
 */
export const webSocketHttpRoute: SessionRoute = {
  segment: 'websocket',
  method: 'GET',
  cors: false,
  handle({ request, response }): void {
    const { status, text } = upgradeProblem(request) ?? PROTOCOL_ERRORS.upgradeOnlyToWebSocket;
    sendText(response, status, text);
  },
};

/**
 * Checks the upgrade headers the way the protocol words its refusals: a request that is not an
 * upgrade to WebSocket, or whose `Connection` header a proxy rewrote.
 */
export function upgradeProblem(
  request: IncomingMessage,
): (typeof PROTOCOL_ERRORS)['upgradeOnlyToWebSocket' | 'connectionMustBeUpgrade'] | undefined {
  if ((request.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    return PROTOCOL_ERRORS.upgradeOnlyToWebSocket;
  }
  // Firefox 6 sends `Connection: keep-alive, Upgrade`: look for the token, not the whole value.
  const tokens = (request.headers.connection ?? '').toLowerCase().split(',');
  if (!tokens.some((token) => token.trim() === 'upgrade')) {
    return PROTOCOL_ERRORS.connectionMustBeUpgrade;
  }
  return undefined;
}
