import type { ClientSocket } from '../../socket.js';
import type { Environment, ResponseLike } from '../environment.js';

/**
 * The client side of the SockJS 0.3.3 protocol, shared by every SockJS transport. A transport
 * only says how frames arrive (a stream, a poll, a WebSocket) and how messages leave; this class
 * reads the frames: `o` open, `h` heart-beat, `a[...]` messages, `c[code,"reason"]` close.
 *
 * Each SockJS message carries STOMP frames as text, so the STOMP client sees a socket like any
 * other.
 */

/** Close code for a stream that never delivered its first frame: a proxy is buffering it. */
export const BUFFERED_CLOSE_CODE = 4901;

export interface SockJSSocketOptions {
  /** The SockJS root, e.g. `https://host/sockjs` (or `/poll` for short polling). */
  baseUrl: string;
  env: Environment;
  /**
   * For streaming transports: how long the first frame may take before the stream counts as
   * buffered by a proxy (0 turns the check off).
   */
  openTimeout: number;
}

/**
 * `/<server>/<session>`. The session id is all that ties an `xhr_send` to its receiver, so it
 * comes from the CSPRNG: 128 bits, of which the server id (which only spreads sessions across
 * backends) shows less than 7, leaving over 120 to guess.
 */
function sessionPath(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let id = '';
  for (const byte of bytes) id += (byte | 256).toString(16).slice(1);
  return `/${bytes[0]! % 100}/${id}`;
}

export abstract class SockJSSocket implements ClientSocket {
  binaryType?: string;
  onopen: ((event?: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  protected readonly env: Environment;
  protected readonly sessionUrl: string;
  protected state: 'connecting' | 'open' | 'closed' = 'connecting';
  readonly #outbox: string[] = [];
  #sending = false;
  #openTimer: ReturnType<typeof setTimeout> | undefined;
  /** The receiving request in flight, aborted when the socket closes. */
  #receiving: { abort(): void } | undefined;

  constructor(options: SockJSSocketOptions) {
    this.env = options.env;
    this.sessionUrl = `${options.baseUrl}${sessionPath()}`;
    if (options.openTimeout > 0) {
      this.#openTimer = setTimeout(() => {
        if (this.state === 'connecting') {
          this.finish(
            BUFFERED_CLOSE_CODE,
            `no data within ${options.openTimeout} ms: a proxy may be buffering the stream`,
          );
        }
      }, options.openTimeout);
    }
    // Started after the subclass constructor has run.
    queueMicrotask(() => {
      if (!this.isClosed) this.startReceiving();
    });
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  send(data: Uint8Array | string): void {
    if (this.state !== 'open') return;
    this.#outbox.push(typeof data === 'string' ? data : new TextDecoder().decode(data));
    if (!this.#sending) void this.#drain();
  }

  close(): void {
    this.finish(1000, 'closed by the client');
  }

  /** Opens the receiving side: a stream, a WebSocket, the first poll. */
  protected abstract startReceiving(): void;

  /** Stops receiving, for good. */
  protected abstract stopReceiving(): void;

  /**
   * POSTs to the session's `path` to receive (`xhr`, `xhr_streaming`). The request is aborted when
   * the socket closes: a poll the server holds would otherwise keep one of the browser's few
   * connections to the host until the next heart-beat.
   */
  protected receive(path: string): Promise<ResponseLike> {
    const controller = this.env.AbortController ? new this.env.AbortController() : undefined;
    this.#receiving = controller;
    return this.env.fetch!(`${this.sessionUrl}/${path}`, {
      method: 'POST',
      credentials: 'include',
      signal: controller?.signal,
    });
  }

  /** Delivers `messages` to the server, in order. Rejects if the session is gone. */
  protected async deliver(messages: string[]): Promise<void> {
    const response = await this.env.fetch!(`${this.sessionUrl}/xhr_send`, {
      method: 'POST',
      body: JSON.stringify(messages),
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
      credentials: 'include',
    });
    if (!response.ok) throw new Error(`xhr_send answered ${response.status}`);
  }

  /** Reads one SockJS frame. */
  protected onFrame(frame: string): void {
    if (this.isClosed || frame.length === 0) return;
    switch (frame.charAt(0)) {
      case 'o':
        if (this.state !== 'connecting') return;
        this.state = 'open';
        clearTimeout(this.#openTimer);
        this.onopen?.();
        return;
      case 'h':
        return;
      case 'a': {
        let messages: unknown;
        try {
          messages = JSON.parse(frame.slice(1));
        } catch {
          this.finish(1002, 'the server sent broken JSON');
          return;
        }
        if (!Array.isArray(messages)) return;
        for (const message of messages) {
          if (this.isClosed) return;
          if (typeof message === 'string') this.onmessage?.({ data: message });
        }
        return;
      }
      case 'c': {
        let code = 1000;
        let reason = 'closed by the server';
        try {
          const parsed = JSON.parse(frame.slice(1)) as unknown;
          if (Array.isArray(parsed)) {
            code = Number(parsed[0]) || code;
            reason = String(parsed[1] ?? reason);
          }
        } catch {
          // a close is a close, whatever its text
        }
        this.finish(code, reason);
        return;
      }
      default:
        return;
    }
  }

  /** Reads a chunk of newline-separated frames (xhr transports), keeping a partial last line. */
  protected splitLines(pending: string, chunk: string): string {
    let text = pending + chunk;
    let newline = text.indexOf('\n');
    while (newline !== -1) {
      this.onFrame(text.slice(0, newline));
      text = text.slice(newline + 1);
      newline = text.indexOf('\n');
    }
    return text;
  }

  protected finish(code: number, reason: string): void {
    if (this.isClosed) return;
    this.state = 'closed';
    clearTimeout(this.#openTimer);
    this.#receiving?.abort();
    try {
      this.stopReceiving();
    } finally {
      this.onclose?.({ code, reason });
    }
  }

  async #drain(): Promise<void> {
    this.#sending = true;
    // One send request at a time: two in flight could arrive out of order.
    while (this.#outbox.length > 0 && this.state === 'open') {
      const batch = this.#outbox.splice(0);
      try {
        await this.deliver(batch);
      } catch (error) {
        this.finish(
          1006,
          `sending failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    this.#sending = false;
  }
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
