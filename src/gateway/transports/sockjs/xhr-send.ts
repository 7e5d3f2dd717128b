import { sendEmpty } from './http.js';
import { acceptPostedMessages, sendAnswerHeaders, type SessionRoute } from './routes.js';

/**
 * `POST <session>/xhr_send`: the client-to-server half of every XHR and script transport
 * (xhr polling and streaming, eventsource, htmlfile). The body is a JSON array of messages.
 * 204 carries `Content-Type: text/plain` all the same: "Firefox/Firebug ... assumes that the
 * content type is xml and shouts about it."
 */
export const xhrSendRoute: SessionRoute = {
  segment: 'xhr_send',
  method: 'POST',
  cors: true,
  async handle(context): Promise<void> {
    const headers = sendAnswerHeaders(context, true);
    if (await acceptPostedMessages(context, headers, (body) => body)) {
      sendEmpty(context.response, 204, headers);
    }
  },
};
