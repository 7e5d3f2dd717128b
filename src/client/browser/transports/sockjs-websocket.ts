import type { WebSocketLike } from '../environment.js';
import { SockJSSocket } from './sockjs.js';

/** SockJS frames over a WebSocket (`.../websocket`): messages go out as JSON arrays. */
export class SockJSWebSocketSocket extends SockJSSocket {
  #socket: WebSocketLike | undefined;

  protected startReceiving(): void {
    const socket = new this.env.WebSocket!(`${toWebSocketUrl(this.sessionUrl)}/websocket`);
    this.#socket = socket;
    socket.onmessage = (event) => {
      if (typeof event.data === 'string') this.onFrame(event.data);
    };
    socket.onclose = (event) => {
      if (this.#socket === socket)
        this.finish(event.code || 1006, event.reason || 'the WebSocket closed');
    };
    socket.onerror = () => {};
  }

  protected stopReceiving(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket && socket.readyState <= 1) socket.close();
  }

  protected override deliver(messages: string[]): Promise<void> {
    this.#socket?.send(JSON.stringify(messages));
    return Promise.resolve();
  }
}

export function toWebSocketUrl(url: string): string {
  return url.replace(/^http/, 'ws');
}
