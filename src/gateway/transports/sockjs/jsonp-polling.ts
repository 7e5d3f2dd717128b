import { callbackFrom, JAVASCRIPT, sendText } from './http.js';
import { HttpReceiver, type HttpReceiverOptions } from './receiver.js';
import {
  acceptPostedMessages,
  sendAnswerHeaders,
  type SessionRequest,
  type SessionRoute,
} from './routes.js';

/** One frame per request, as a call of the page's callback with the frame as a string literal. */
class JsonpReceiver extends HttpReceiver {
  readonly #callback: string;

  constructor(options: HttpReceiverOptions, callback: string) {
    super(options);
    this.#callback = callback;
  }

  protected wrap(frame: string): string {
    return `${this.#callback}(${JSON.stringify(frame)});\r\n`;
  }
}

/**
 * `GET <session>/jsonp?c=<callback>`: polling through `<script>` tags, the last resort of
 * browsers without CORS. The callback name is checked against `^[a-zA-Z0-9_.]+$`.
 */
export const jsonpRoute: SessionRoute = {
  segment: 'jsonp',
  method: 'GET',
  cors: false,
  handle({ request, response, sessionId, query, host }: SessionRequest): void {
    const callback = callbackFrom(query);
    if ('error' in callback) {
      sendText(response, callback.error.status, callback.error.text);
      return;
    }
    const { cookieNeeded, responseLimit } = host.options;
    const receiver = new JsonpReceiver(
      {
        transport: 'jsonp-polling',
        streaming: false,
        request,
        response,
        contentType: JAVASCRIPT,
        cors: false,
        cookieNeeded,
        responseLimit,
      },
      callback.name,
    );
    host.receive(sessionId, receiver);
  },
};

const FORM_ENCODED = 'application/x-www-form-urlencoded';

/**
 * `POST <session>/jsonp_send`. sockjs-client posts a hidden form, so the messages usually arrive
 * form-encoded in the field `d`; a raw JSON body is accepted too. The answer is 200 `ok` rather
 * than 204: "Konqueror does weird things on 204."
 */
export const jsonpSendRoute: SessionRoute = {
  segment: 'jsonp_send',
  method: 'POST',
  cors: false,
  async handle(context): Promise<void> {
    const headers = sendAnswerHeaders(context, false);
    const formEncoded = (context.request.headers['content-type'] ?? '')
      .toLowerCase()
      .startsWith(FORM_ENCODED);
    const payloadOf = (body: string): string =>
      formEncoded ? (new URLSearchParams(body).get('d') ?? '') : body;
    if (await acceptPostedMessages(context, headers, payloadOf)) {
      sendText(context.response, 200, 'ok', headers);
    }
  },
};
