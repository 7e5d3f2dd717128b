import WebSocket from 'ws';
import type { ClientSocket } from '../../src/client/index.js';

/** `http://host:port` → `ws://host:port/sockjs/websocket`. */
export function rawSockJSUrl(gatewayUrl: string): string {
  return `${gatewayUrl.replace(/^http/, 'ws')}/sockjs/websocket`;
}

/**
 * The SockJS raw WebSocket route (`/sockjs/websocket`) as the client core's socket. Our browser
 * client has no transport for this route (it is for programs, not browsers), so Node tests drive
 * it through the core: no SockJS framing, STOMP frames as the WebSocket's text messages.
 */
export class RawSockJSWebSocket implements ClientSocket {
  onopen: ((event?: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly #socket: WebSocket;

  constructor(gatewayUrl: string) {
    const socket = new WebSocket(rawSockJSUrl(gatewayUrl));
    this.#socket = socket;
    socket.on('open', () => this.onopen?.());
    socket.on('message', (data: Buffer) => this.onmessage?.({ data: data.toString('utf8') }));
    socket.on('error', (error) => this.onerror?.(error));
    socket.on('close', (code, reason) => this.onclose?.({ code, reason: reason.toString() }));
  }

  send(data: Uint8Array | string): void {
    if (this.#socket.readyState !== WebSocket.OPEN) return;
    // Text messages, as a browser's STOMP client sends them; the core hands over UTF-8 bytes.
    this.#socket.send(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  }

  close(): void {
    if (this.#socket.readyState <= WebSocket.OPEN) this.#socket.close(1000);
  }
}
