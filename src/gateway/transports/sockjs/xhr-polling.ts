import { JAVASCRIPT } from './http.js';
import { HttpReceiver, type HttpReceiverOptions } from './receiver.js';
import type { SessionRequest, SessionRoute } from './routes.js';

/** xhr polling: one frame per POST, newline-terminated ("a frame delimiter specific for xhr-polling"). */
class XhrPollingReceiver extends HttpReceiver {
  constructor(options: HttpReceiverOptions) {
    super(options);
  }

  protected wrap(frame: string): string {
    return `${frame}\n`;
  }
}

/**
 * `POST <session>/xhr`. A long poll waits for the next frame (a heartbeat at the latest). In
 * `pollingMode: 'short'` a poll with nothing queued answers at once with `h`: the talk's AJAX
 * polling, kept as the benchmark's baseline.
 */
export const xhrPollingRoute: SessionRoute = {
  segment: 'xhr',
  method: 'POST',
  cors: true,
  handle({ request, response, sessionId, host }: SessionRequest): void {
    const { shortPolling, cookieNeeded, responseLimit } = host.options;
    const receiver = new XhrPollingReceiver({
      transport: shortPolling ? 'short-polling' : 'xhr-polling',
      streaming: false,
      request,
      response,
      contentType: JAVASCRIPT,
      cors: true,
      cookieNeeded,
      responseLimit,
    });
    host.receive(sessionId, receiver);
    if (shortPolling && receiver.active) receiver.heartbeat();
  },
};
