import type { ClientSocket } from '../../socket.js';
import type { Environment, WebSocketLike } from '../environment.js';
import { toWebSocketUrl } from './sockjs-websocket.js';

const SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

/** `/stomp`: STOMP straight over a WebSocket. */
export class StompWebSocket implements ClientSocket {
  binaryType?: string;
  onopen: ((event?: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly #socket: WebSocketLike;

  constructor(baseUrl: string, env: Environment) {
    const socket = new env.WebSocket!(`${toWebSocketUrl(baseUrl)}/stomp`, SUBPROTOCOLS);
    this.#socket = socket;
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => this.onopen?.();
    socket.onmessage = (event) => this.onmessage?.(event);
    socket.onclose = (event) => this.onclose?.({ code: event.code, reason: event.reason });
    socket.onerror = (event) => this.onerror?.(event);
  }

  send(data: Uint8Array | string): void {
    if (this.#socket.readyState !== 1) return;
    // Text frames, as STOMP-over-WebSocket servers expect; the core sends UTF-8 bytes.
    this.#socket.send(typeof data === 'string' ? data : new TextDecoder().decode(data));
  }

  close(): void {
    if (this.#socket.readyState <= 1) this.#socket.close(1000);
  }
}
