import { createHash, randomInt } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import {
  addCorsHeaders,
  addSessionCookie,
  cacheForAYear,
  HTML,
  JSON_TYPE,
  NOT_CACHED,
  sendEmpty,
  sendText,
  TEXT_PLAIN,
} from './http.js';
import type { ResolvedOptions } from './options.js';

/** `GET <prefix>` and `<prefix>/`: the protocol's greeting, byte for byte. */
export function sendGreeting(response: ServerResponse): void {
  sendText(response, 200, 'Welcome to SockJS!\n', { 'Content-Type': TEXT_PLAIN });
}

/**
 * `GET <prefix>/info`: what the client needs before it picks a transport, and its round-trip
 * probe, so it is answered at once and never cached. `origins` is fixed by the protocol
 * ("currently ignored"). `entropy` seeds the browser's weak random generator, so it comes from
 * crypto: "a good, unpredictable random number from the range <0; 2^32-1>".
 */
export function sendInfo(
  request: IncomingMessage,
  response: ServerResponse,
  options: ResolvedOptions,
): void {
  const headers: OutgoingHttpHeaders = { 'Content-Type': JSON_TYPE, 'Cache-Control': NOT_CACHED };
  addCorsHeaders(request, headers);
  const info = {
    websocket: options.webSocketEnabled,
    cookie_needed: options.cookieNeeded,
    origins: ['*:*'],
    entropy: randomInt(0, 2 ** 32),
  };
  sendText(response, 200, JSON.stringify(info), headers);
}

/**
 * OPTIONS preflight for a CORS route: cacheable for a year, so a browser asks once per URL
 * (`Access-Control-Max-Age` and the cache headers the protocol's `verify_options` checks).
 */
export function sendPreflight(
  request: IncomingMessage,
  response: ServerResponse,
  allowedMethods: string,
  withSessionCookie = false,
): void {
  const headers = cacheForAYear({});
  headers['Access-Control-Max-Age'] = '31536000';
  headers['Access-Control-Allow-Methods'] = allowedMethods;
  addCorsHeaders(request, headers);
  // Sticky load balancers see the cookie on the preflight too.
  if (withSessionCookie) addSessionCookie(request, headers);
  sendEmpty(response, 204, headers);
}

/** Escapes text for a double-quoted HTML attribute. */
function htmlAttribute(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/**
 * The iframe page (`<prefix>/iframe.html` and versioned `iframe-*.html`): served from the
 * server's origin, it loads sockjs-client there so that transports without CORS can run
 * same-origin inside it. Its markup is fixed by the protocol except for the script URL.
 */
export class IframePage {
  readonly #body: Buffer;
  readonly #etag: string;

  constructor(sockjsUrl: string) {
    const html = `<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script>
    document.domain = document.domain;
    _sockjs_onload = function(){SockJS.bootstrap_iframe();};
  </script>
  <script src="${htmlAttribute(sockjsUrl)}"></script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>`;
    this.#body = Buffer.from(html);
    this.#etag = `"${createHash('sha256').update(this.#body).digest('base64url').slice(0, 27)}"`;
  }

  /**
   * "The iframe page must be strongly cacheable": a year of caching, an ETag that only changes
   * with the page, no Last-Modified, and 304 for a matching If-None-Match.
   */
  send(request: IncomingMessage, response: ServerResponse): void {
    const headers = cacheForAYear({ ETag: this.#etag });
    const ifNoneMatch = request.headers['if-none-match'];
    if (ifNoneMatch !== undefined && this.#matches(ifNoneMatch)) {
      sendEmpty(response, 304, headers);
      return;
    }
    headers['Content-Type'] = HTML;
    headers['Content-Length'] = this.#body.length;
    response.writeHead(200, headers);
    response.end(request.method === 'HEAD' ? undefined : this.#body);
  }

  #matches(ifNoneMatch: string): boolean {
    return ifNoneMatch.split(',').some((tag) => {
      const candidate = tag.trim();
      return candidate === '*' || candidate.replace(/^W\//, '') === this.#etag;
    });
  }
}
