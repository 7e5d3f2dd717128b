import { SockJSSocket } from './sockjs.js';

let callbacks = 0;

/**
 * SockJS `htmlfile`: a hidden iframe whose page streams `<script>` tags, each handing one frame
 * to a callback on this window. It needs a DOM. When the page finishes (the response hit its
 * size limit), a new iframe continues the session.
 */
export class HtmlFileSocket extends SockJSSocket {
  #frame: { remove(): void } | undefined;
  readonly #callback = `_perigee_htmlfile_${(++callbacks).toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

  protected startReceiving(): void {
    const document = this.env.document!;
    const global = this.env.global;
    // The page calls parent[callback].start(), .message(frame) per frame, and .stop() on load.
    global[this.#callback] = {
      start: () => {},
      message: (data: string) => this.onFrame(data),
      stop: () => {
        if (this.state === 'open') this.#openFrame();
      },
    };
    this.#openFrame();
    void document;
  }

  protected stopReceiving(): void {
    this.#frame?.remove();
    this.#frame = undefined;
    delete this.env.global[this.#callback];
  }

  #openFrame(): void {
    this.#frame?.remove();
    const iframe = this.env.document!.createElement('iframe');
    iframe.style.display = 'none';
    iframe.onerror = () => this.finish(1006, 'the htmlfile frame failed to load');
    iframe.src = `${this.sessionUrl}/htmlfile?c=${this.#callback}`;
    this.env.document!.body!.appendChild(iframe);
    this.#frame = iframe;
  }
}
