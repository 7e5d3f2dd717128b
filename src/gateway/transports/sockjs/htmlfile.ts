import { callbackFrom, HTML, sendText } from './http.js';
import { HttpReceiver, type HttpReceiverOptions } from './receiver.js';
import type { SessionRequest, SessionRoute } from './routes.js';

/**
 * The page that hosts the stream: it hands each frame to `parent.<callback>`, the object
 * sockjs-client's htmlfile receiver set up in the parent frame (the `document.domain` trick of
 * Michael Carter's "htmlfile" streaming for IE). Its markup is fixed by the protocol.
 */
function pageHead(callback: string): string {
  return `<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.${callback};
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>
`;
}

/**
 * Browsers hold back rendering, and so the first scripts, until they have about 1 KiB of a page
 * to sniff its type: the head is padded past that.
 */
const RENDER_THRESHOLD_BYTES = 1024;

/**
 * A frame as a JavaScript string literal inside `<script>`. JSON is a valid literal; `<` is
 * escaped as well so that no frame content (`</script>`, `<!--`) can end or change the script
 * element: the HTML parser sees no client text.
 */
function scriptLiteral(frame: string): string {
  return JSON.stringify(frame).replace(/</g, '\\u003c');
}

class HtmlFileReceiver extends HttpReceiver {
  constructor(options: HttpReceiverOptions, callback: string) {
    super(options);
    const head = pageHead(callback);
    const padding = ' '.repeat(Math.max(0, RENDER_THRESHOLD_BYTES - head.length + 14));
    this.writePrelude(`${head}${padding}\r\n`);
  }

  protected wrap(frame: string): string {
    return `<script>\np(${scriptLiteral(frame)});\n</script>\r\n`;
  }
}

/**
 * `GET <session>/htmlfile?c=<callback>`: streaming for browsers whose XHR cannot stream (old IE).
 * The callback name is checked against `^[a-zA-Z0-9_.]+$` before anything is written.
 */
export const htmlFileRoute: SessionRoute = {
  segment: 'htmlfile',
  method: 'GET',
  cors: false,
  handle({ request, response, sessionId, query, host }: SessionRequest): void {
    const callback = callbackFrom(query);
    if ('error' in callback) {
      sendText(response, callback.error.status, callback.error.text);
      return;
    }
    const { cookieNeeded, responseLimit } = host.options;
    const receiver = new HtmlFileReceiver(
      {
        transport: 'htmlfile',
        streaming: true,
        request,
        response,
        contentType: HTML,
        cors: false,
        cookieNeeded,
        responseLimit,
      },
      callback.name,
    );
    host.receive(sessionId, receiver);
  },
};
