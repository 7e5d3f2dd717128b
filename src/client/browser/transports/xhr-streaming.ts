import { describe, SockJSSocket } from './sockjs.js';

/**
 * SockJS `xhr_streaming` read with fetch: one long POST whose body streams newline-separated
 * frames after a 2 KB `h` prelude (which old browsers needed before they show partial responses).
 * When the server ends the response at its size limit, the next request continues the session.
 */
export class XhrStreamingSocket extends SockJSSocket {
  protected startReceiving(): void {
    void this.#stream();
  }

  protected stopReceiving(): void {}

  async #stream(): Promise<void> {
    while (!this.isClosed) {
      try {
        const response = await this.receive('xhr_streaming');
        if (!response.ok || !response.body) {
          this.finish(1006, `xhr_streaming answered ${response.status}`);
          return;
        }
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let pending = '';
        for (;;) {
          const { done, value } = await reader.read();
          if (done || this.isClosed) break;
          pending = this.splitLines(pending, decoder.decode(value, { stream: true }));
        }
      } catch (error) {
        if (!this.isClosed) this.finish(1006, `xhr_streaming failed: ${describe(error)}`);
        return;
      }
    }
  }
}
