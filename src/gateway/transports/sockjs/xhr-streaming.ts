import { JAVASCRIPT } from './http.js';
import { HttpReceiver, type HttpReceiverOptions } from './receiver.js';
import type { SessionRequest, SessionRoute } from './routes.js';

/**
 * IE's XHR and XDomainRequest report nothing of a streamed body until 2 KiB have arrived (EricLaw,
 * "Comet Streaming in Internet Explorer with XMLHttpRequest and XDomainRequest", IEInternals,
 * 2010), so the protocol has every stream start with 2048 `h` bytes and a newline.
 */
const PRELUDE = `${'h'.repeat(2048)}\n`;

class XhrStreamingReceiver extends HttpReceiver {
  constructor(options: HttpReceiverOptions) {
    super(options);
    this.writePrelude(PRELUDE);
  }

  protected wrap(frame: string): string {
    return `${frame}\n`;
  }
}

/** `POST <session>/xhr_streaming`: newline-separated frames on one response, up to the response limit. */
export const xhrStreamingRoute: SessionRoute = {
  segment: 'xhr_streaming',
  method: 'POST',
  cors: true,
  handle({ request, response, sessionId, host }: SessionRequest): void {
    const { cookieNeeded, responseLimit } = host.options;
    const receiver = new XhrStreamingReceiver({
      transport: 'xhr-streaming',
      streaming: true,
      request,
      response,
      contentType: JAVASCRIPT,
      cors: true,
      cookieNeeded,
      responseLimit,
    });
    host.receive(sessionId, receiver);
  },
};
