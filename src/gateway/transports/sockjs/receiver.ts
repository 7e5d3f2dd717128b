import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { CONNECTION_INTERRUPTED, HEARTBEAT_FRAME, type CloseReason } from './framing.js';
import { addCorsHeaders, addSessionCookie, NOT_CACHED } from './http.js';
import type { SockJSConnectionTransport } from './types.js';

/** What a receiver tells the session it serves. */
export interface ReceiverOwner {
  /**
   * The receiver is gone. `interruption` is set when the client, not the session, ended it: a
   * dropped HTTP request, a closed WebSocket.
   */
  receiverEnded(receiver: Receiver, interruption: CloseReason | undefined): void;
  /** The socket took its buffered bytes; held frames may go now. */
  receiverDrained(receiver: Receiver): void;
}

/**
 * The thing a session writes frames to: one HTTP response, or one WebSocket (sockjs-node's
 * "receiver"). A session outlives its receivers and holds at most one at a time; transports
 * differ only in how they wrap a frame and whether a response carries one frame or many.
 */
export abstract class Receiver {
  readonly transport: SockJSConnectionTransport;
  /** Polling receivers carry one frame per response; streaming ones and WebSockets any number. */
  readonly streaming: boolean;
  /** The request behind this receiver (its headers become the session's). */
  readonly request: IncomingMessage;
  protected owner: ReceiverOwner | null = null;
  protected ended = false;

  constructor(transport: SockJSConnectionTransport, streaming: boolean, request: IncomingMessage) {
    this.transport = transport;
    this.streaming = streaming;
    this.request = request;
  }

  /** Whether the socket accepts more now; when false, the session holds frames until drained. */
  abstract readonly writable: boolean;

  /** Writes frames in one socket write. A polling receiver ends itself afterwards. */
  abstract write(frames: readonly string[]): void;

  /** Ends the response or closes the socket. Idempotent; the owner hears about it. */
  abstract end(close?: CloseReason): void;

  get active(): boolean {
    return !this.ended;
  }

  bind(owner: ReceiverOwner): void {
    this.owner = owner;
  }

  /** Keeps proxies and load balancers from timing the connection out. */
  heartbeat(): void {
    this.write([HEARTBEAT_FRAME]);
  }
}

export interface HttpReceiverOptions {
  readonly transport: SockJSConnectionTransport;
  readonly streaming: boolean;
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  readonly contentType: string;
  /** XHR transports are fetched cross-origin and need CORS headers; script and iframe ones do not. */
  readonly cors: boolean;
  readonly cookieNeeded: boolean;
  /** Bytes of frames (preludes excluded) after which a streaming response ends. */
  readonly responseLimit: number;
}

/**
 * An HTTP response as a receiver: a long or short poll, or a stream. Streaming responses end after
 * `responseLimit` bytes of frames, because "single streaming request will buffer all data until
 * closed" in the browser; the client then opens the next one on the same session.
 */
export abstract class HttpReceiver extends Receiver {
  protected readonly response: ServerResponse;
  readonly #responseLimit: number;
  #bytesWritten = 0;
  #waitingForDrain = false;

  constructor(options: HttpReceiverOptions) {
    super(options.transport, options.streaming, options.request);
    this.response = options.response;
    this.#responseLimit = options.responseLimit;
    const headers: OutgoingHttpHeaders = {
      'Content-Type': options.contentType,
      'Cache-Control': NOT_CACHED,
      // Frames carry client text: the response must never be sniffed into another type.
      'X-Content-Type-Options': 'nosniff',
    };
    if (options.cors) addCorsHeaders(options.request, headers);
    if (options.cookieNeeded) addSessionCookie(options.request, headers);
    if (this.streaming) {
      // Buffering proxies (nginx) would hold a stream back; DESIGN.md §8.
      headers['X-Accel-Buffering'] = 'no';
    }
    // Set, not written: a poll's headers leave with its single frame (and a Content-Length), a
    // stream's with its prelude.
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined) this.response.setHeader(name, value);
    }
    this.response.on('close', () => {
      if (this.ended) return;
      this.ended = true;
      // The client dropped the request before we ended it (the protocol's test_abort_* cases).
      this.owner?.receiverEnded(this, CONNECTION_INTERRUPTED);
    });
    // Receiving requests (xhr, xhr_streaming) are POSTs: discard whatever body they carry.
    this.request.resume();
  }

  /** Wraps one SockJS frame in this transport's framing. */
  protected abstract wrap(frame: string): string;

  get writable(): boolean {
    return !this.ended && !this.#waitingForDrain;
  }

  /** Writes a transport prelude; it does not count toward the response limit. */
  protected writePrelude(text: string): void {
    this.response.write(text);
  }

  write(frames: readonly string[]): void {
    if (this.ended) return;
    let text = '';
    for (const frame of frames) text += this.wrap(frame);
    // Written as a string: the socket encodes it straight from the string, so no Buffer is made
    // (and collected) per write, which on a stream is per delivery batch.
    if (!this.streaming) {
      // One frame per poll: ending with the text lets Node send a Content-Length.
      this.ended = true;
      this.response.end(text);
      this.owner?.receiverEnded(this, undefined);
      return;
    }
    this.#bytesWritten += Buffer.byteLength(text);
    if (!this.response.write(text)) this.#waitForDrain();
    if (this.#bytesWritten >= this.#responseLimit) this.end();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.response.end();
    this.owner?.receiverEnded(this, undefined);
  }

  #waitForDrain(): void {
    this.#waitingForDrain = true;
    this.response.once('drain', () => {
      this.#waitingForDrain = false;
      if (!this.ended) this.owner?.receiverDrained(this);
    });
  }
}
