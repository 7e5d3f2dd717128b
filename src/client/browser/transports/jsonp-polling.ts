import { SockJSSocket } from './sockjs.js';

let callbacks = 0;

/**
 * SockJS `jsonp` polling: a `<script>` per poll calls a callback on this window with one frame;
 * messages go out through `jsonp_send` as a form field. It needs a DOM.
 */
export class JsonpPollingSocket extends SockJSSocket {
  #script: { remove(): void } | undefined;
  readonly #callback = `_perigee_jsonp_${(++callbacks).toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

  protected startReceiving(): void {
    this.env.global[this.#callback] = (data: string) => this.onFrame(data);
    this.#poll();
  }

  protected stopReceiving(): void {
    this.#script?.remove();
    this.#script = undefined;
    delete this.env.global[this.#callback];
  }

  protected override async deliver(messages: string[]): Promise<void> {
    const response = await this.env.fetch!(`${this.sessionUrl}/jsonp_send`, {
      method: 'POST',
      body: `d=${encodeURIComponent(JSON.stringify(messages))}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      credentials: 'include',
    });
    if (!response.ok) throw new Error(`jsonp_send answered ${response.status}`);
  }

  #poll(): void {
    if (this.isClosed) return;
    const document = this.env.document!;
    const script = document.createElement('script');
    script.async = true;
    script.onload = () => {
      script.remove();
      if (this.#script === script) this.#poll();
    };
    script.onerror = () => this.finish(1006, 'a JSONP poll failed');
    // A cache-busting parameter: every poll must reach the server.
    script.src = `${this.sessionUrl}/jsonp?c=${this.#callback}&t=${Date.now().toString(36)}`;
    (document.head ?? document.body)!.appendChild(script);
    this.#script = script;
  }
}
