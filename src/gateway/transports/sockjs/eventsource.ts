import { EVENT_STREAM } from './http.js';
import { HttpReceiver, type HttpReceiverOptions } from './receiver.js';
import type { SessionRequest, SessionRoute } from './routes.js';

/**
 * Server-sent events. The stream opens with an empty line because old Opera dropped the first
 * event otherwise (the protocol: "a new line prelude, due to a bug in Opera"). Frames are JSON
 * or single letters, so they never hold a newline and fit one `data:` line; the space after the
 * colon is the one the EventSource parser strips.
 */
class EventSourceReceiver extends HttpReceiver {
  constructor(options: HttpReceiverOptions) {
    super(options);
    this.writePrelude('\r\n');
  }

  protected wrap(frame: string): string {
    return `data: ${frame}\r\n\r\n`;
  }
}

/** `GET <session>/eventsource`; the client sends through xhr_send. */
export const eventSourceRoute: SessionRoute = {
  segment: 'eventsource',
  method: 'GET',
  cors: false,
  handle({ request, response, sessionId, host }: SessionRequest): void {
    const { cookieNeeded, responseLimit } = host.options;
    const receiver = new EventSourceReceiver({
      transport: 'eventsource',
      streaming: true,
      request,
      response,
      contentType: EVENT_STREAM,
      cors: false,
      cookieNeeded,
      responseLimit,
    });
    host.receive(sessionId, receiver);
  },
};
