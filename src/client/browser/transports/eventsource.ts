import type { EventSourceLike } from '../environment.js';
import { SockJSSocket } from './sockjs.js';

/**
 * SockJS `eventsource`: each server-sent event carries one frame. When the server ends the
 * response at its size limit, a new EventSource continues the session at once (its own retry
 * would wait seconds).
 */
export class EventSourceSocket extends SockJSSocket {
  #source: EventSourceLike | undefined;

  protected startReceiving(): void {
    const source = new this.env.EventSource!(`${this.sessionUrl}/eventsource`);
    this.#source = source;
    source.onmessage = (event) => this.onFrame(event.data);
    source.onerror = () => {
      if (this.#source !== source) return;
      source.close();
      if (this.state === 'open') {
        this.startReceiving();
      } else if (this.state === 'connecting') {
        this.finish(1006, 'the event stream failed to open');
      }
    };
  }

  protected stopReceiving(): void {
    const source = this.#source;
    this.#source = undefined;
    source?.close();
  }
}
