import { unguessableId } from '../../../ids.js';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { GO_AWAY, webSocketCloseFor, type CloseReason } from './framing.js';
import type { FlushScheduler, Flushable } from './session.js';
import type { SockJSConnection } from './types.js';
import { failureOf, peerClose } from './websocket.js';

export interface RawWebSocketHost {
  readonly heartbeatDelay: number;
  readonly scheduler: FlushScheduler;
  connectionFinished(connection: RawWebSocketConnection): void;
  applicationFailed(connection: SockJSConnection, error: unknown): void;
}

/**
 * `<prefix>/websocket`: "no open frame, no heartbeats. Only raw WebSocket protocol", for programs
 * that are not browsers. Messages are WebSocket text messages as they are. There is no URL
 * session id, so the id is generated; it is unguessable because it may end up in logs or resume
 * tokens.
 *
 * Keep-alive is a WebSocket ping every heartbeat delay: invisible to the application, and enough
 * for proxies and load balancers.
 */
export class RawWebSocketConnection implements SockJSConnection, Flushable {
  readonly id = unguessableId(16);
  readonly transport = 'sockjs-raw-websocket';
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string | undefined;
  onmessage: ((message: string) => void) | null = null;
  onclose: ((code: number, reason: string) => void) | null = null;

  readonly #webSocket: WebSocket;
  readonly #socket: Duplex;
  readonly #host: RawWebSocketHost;
  #queue: string[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;
  #closed = false;
  readonly #pingTimer: NodeJS.Timeout;

  constructor(
    webSocket: WebSocket,
    socket: Duplex,
    request: IncomingMessage,
    host: RawWebSocketHost,
  ) {
    this.#webSocket = webSocket;
    this.#socket = socket;
    this.#host = host;
    this.headers = request.headers;
    this.remoteAddress = request.socket.remoteAddress;
    this.#pingTimer = setInterval(() => webSocket.ping(), host.heartbeatDelay);
    this.#pingTimer.unref();
    webSocket.on('message', (data: Buffer) => {
      if (this.#closed) return;
      try {
        this.onmessage?.(data.toString('utf8'));
      } catch (error) {
        this.#host.applicationFailed(this, error);
      }
    });
    let failure: CloseReason | undefined;
    webSocket.on('error', (error) => {
      failure = failureOf(error);
    });
    webSocket.on('close', (code, reason) => this.#finish(failure ?? peerClose(code, reason)));
  }

  get bufferedBytes(): number {
    return this.#queuedBytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(message: string): boolean {
    if (this.#closed) return false;
    this.#queue.push(message);
    this.#queuedBytes += Buffer.byteLength(message);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      this.#host.scheduler.schedule(this);
    }
    return true;
  }

  /** One WebSocket message per queued message, corked into one socket write. */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#closed || this.#queue.length === 0) return;
    const batch = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#socket.cork();
    for (const message of batch) this.#webSocket.send(message);
    this.#socket.uncork();
  }

  close(code: number = GO_AWAY.code, reason: string = GO_AWAY.reason): void {
    if (this.#closed) return;
    // Messages sent before close() still go first.
    this.flush();
    const webSocketClose = webSocketCloseFor({ code, reason });
    this.#webSocket.close(webSocketClose.code, webSocketClose.reason);
    this.#finish({ code, reason });
  }

  /** Server shutdown. */
  shutdown(reason: CloseReason): void {
    this.close(reason.code, reason.reason);
  }

  #finish(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pingTimer);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#host.connectionFinished(this);
    const onclose = this.onclose;
    this.onclose = null;
    try {
      onclose?.(reason.code, reason.reason);
    } catch (error) {
      this.#host.applicationFailed(this, error);
    }
  }
}
