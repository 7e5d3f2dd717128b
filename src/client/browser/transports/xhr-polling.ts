import { describe, SockJSSocket, type SockJSSocketOptions } from './sockjs.js';

/**
 * SockJS `xhr` polling: each POST returns the frames queued so far and the next one is sent at
 * once. Long polling holds a request until there is something to say; short polling (Perigee's
 * `/poll`, the talk's "AJAX polling" baseline) answers at once, and the client waits
 * `pollInterval` before asking again when there was nothing.
 */
export class XhrPollingSocket extends SockJSSocket {
  readonly #pollInterval: number;
  #waitTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: SockJSSocketOptions & { pollInterval?: number }) {
    super(options);
    this.#pollInterval = options.pollInterval ?? 0;
  }

  protected startReceiving(): void {
    void this.#poll();
  }

  protected stopReceiving(): void {
    clearTimeout(this.#waitTimer);
  }

  async #poll(): Promise<void> {
    while (!this.isClosed) {
      let body: string;
      try {
        const response = await this.receive('xhr');
        if (!response.ok) {
          this.finish(1006, `xhr answered ${response.status}`);
          return;
        }
        body = await response.text();
      } catch (error) {
        if (!this.isClosed) this.finish(1006, `xhr failed: ${describe(error)}`);
        return;
      }
      this.splitLines('', body);
      if (this.#pollInterval > 0 && body.startsWith('h')) {
        await new Promise<void>(
          (resolve) => (this.#waitTimer = setTimeout(resolve, this.#pollInterval)),
        );
      }
    }
  }
}
