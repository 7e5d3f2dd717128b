import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorTable, PerigeeError } from '../../../errors.js';

/**
 * HTTP pieces every SockJS route shares: caching, CORS, the JSESSIONID cookie, bounded bodies and
 * the protocol's error answers.
 */

export const TEXT_PLAIN = 'text/plain; charset=UTF-8';
export const JAVASCRIPT = 'application/javascript; charset=UTF-8';
export const JSON_TYPE = 'application/json; charset=UTF-8';
export const HTML = 'text/html; charset=UTF-8';
export const EVENT_STREAM = 'text/event-stream; charset=UTF-8';

/**
 * The protocol's `verify_not_cached`: session data is fetched with GET on some transports, and
 * iOS 6 caches POSTs, so dynamic answers carry exactly this and no Expires or Last-Modified.
 */
export const NOT_CACHED = 'no-store, no-cache, must-revalidate, max-age=0';

/** "max-age must be large, one year (31536000) is best" (iframe page and OPTIONS answers). */
const ONE_YEAR_SECONDS = 31_536_000;

/** The protocol's error bodies: its statuses win over errors.ts on SockJS paths (DESIGN.md §3). */
export const PROTOCOL_ERRORS = {
  brokenJson: { status: 500, text: 'Broken JSON encoding.' },
  payloadExpected: { status: 500, text: 'Payload expected.' },
  callbackRequired: { status: 500, text: '"callback" parameter required' },
  callbackInvalid: { status: 500, text: 'invalid "callback" parameter' },
  upgradeOnlyToWebSocket: { status: 400, text: 'Can "Upgrade" only to "WebSocket".' },
  connectionMustBeUpgrade: { status: 400, text: '"Connection" must be "Upgrade".' },
  notFound: { status: 404, text: 'Not found' },
  sessionNotFound: { status: 404, text: 'Session not found' },
} as const;

export interface ErrorAnswer {
  readonly status: number;
  readonly text: string;
}

/** What a client sees for a PerigeeError raised while serving a SockJS request: no stack, no detail. */
export function answerFor(error: unknown): ErrorAnswer {
  if (error instanceof PerigeeError) {
    // The brief's wording for an oversized body; the error table's status.
    if (error.code === 'BODY_TOO_LARGE') return { status: error.status, text: 'Payload too large' };
    return { status: error.status, text: errorTable[error.code].message };
  }
  return { status: errorTable.INTERNAL.status, text: errorTable.INTERNAL.message };
}

export function cacheForAYear(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  headers['Cache-Control'] = `public, max-age=${ONE_YEAR_SECONDS}`;
  headers.Expires = new Date(Date.now() + ONE_YEAR_SECONDS * 1000).toUTCString();
  return headers;
}

/**
 * CORS for the XHR transports and /info. The Origin is reflected, except `null` (a page opened
 * from file://): "just echoing back 'null' won't work - browser will understand that as a
 * rejection", so it gets `*`. Credentials are allowed so that a JSESSIONID cookie can fly, and
 * requested headers are allowed back, as the protocol's `test_request_headers_cors` demands.
 */
export function addCorsHeaders(request: IncomingMessage, headers: OutgoingHttpHeaders): void {
  const origin = request.headers.origin;
  headers['Access-Control-Allow-Origin'] = origin && origin !== 'null' ? origin : '*';
  headers['Access-Control-Allow-Credentials'] = 'true';
  headers.Vary = 'Origin';
  const requested = request.headers['access-control-request-headers'];
  if (requested) headers['Access-Control-Allow-Headers'] = requested;
}

/** A cookie value as RFC 6265 `cookie-octet`s: anything else is not echoed into a header. */
const COOKIE_VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{1,256}$/;

/**
 * Load balancers that only stick sessions by JSESSIONID need it on every session URL: the
 * client's own value is echoed, or `dummy` is set (the protocol's `JsessionidCookie` tests).
 */
export function addSessionCookie(request: IncomingMessage, headers: OutgoingHttpHeaders): void {
  let value = 'dummy';
  const cookies = request.headers.cookie;
  if (cookies) {
    for (const pair of cookies.split(';')) {
      const separator = pair.indexOf('=');
      if (separator > 0 && pair.slice(0, separator).trim() === 'JSESSIONID') {
        const candidate = pair.slice(separator + 1).trim();
        if (COOKIE_VALUE.test(candidate)) value = candidate;
        break;
      }
    }
  }
  headers['Set-Cookie'] = `JSESSIONID=${value}; path=/`;
}

/** A complete answer with a fixed body; Content-Length lets HTTP/1.0 clients keep the connection. */
export function sendText(
  response: ServerResponse,
  status: number,
  text: string,
  headers: OutgoingHttpHeaders = {},
): void {
  const body = Buffer.from(text);
  headers['Content-Type'] ??= TEXT_PLAIN;
  headers['Content-Length'] = body.length;
  response.writeHead(status, headers);
  response.end(body);
}

/** An answer without a body or Content-Type (204, 304, and 405 as `verify405` wants it). */
export function sendEmpty(
  response: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders = {},
): void {
  if (status !== 204 && status !== 304) headers['Content-Length'] = 0;
  response.writeHead(status, headers);
  response.end();
}

/**
 * Refuses a WebSocket upgrade on the raw socket, the way an HTTP server would have answered.
 * `Allow` is set for 405; the body is omitted when there is no text.
 */
export function refuseUpgrade(socket: Duplex, status: number, text = '', allow?: string): void {
  const body = Buffer.from(text);
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`, 'Connection: close'];
  if (allow) lines.push(`Allow: ${allow}`);
  if (body.length > 0) lines.push(`Content-Type: ${TEXT_PLAIN}`);
  lines.push(`Content-Length: ${body.length}`, '', '');
  socket.on('error', () => socket.destroy());
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), body]));
}

/**
 * Reads a POST body of at most `limit` bytes. The declared Content-Length is checked before a
 * byte is buffered, and the running total while reading, so a chunked or lying client cannot
 * make us hold more than the limit.
 */
export function readBody(request: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > limit) {
    return Promise.reject(
      new PerigeeError('BODY_TOO_LARGE', `Content-Length ${declared} exceeds ${limit}`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanUp = (): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) {
        cleanUp();
        // Stop reading: the 413 goes out with `Connection: close` and the rest is never read.
        request.pause();
        reject(new PerigeeError('BODY_TOO_LARGE', `body exceeds ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanUp();
      resolve(Buffer.concat(chunks, received).toString('utf8'));
    };
    const onError = (error: Error): void => {
      cleanUp();
      reject(error);
    };
    const onClose = (): void => {
      cleanUp();
      reject(new PerigeeError('CONNECTION_CLOSED', 'request aborted while reading its body'));
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('close', onClose);
  });
}

/**
 * JSONP and htmlfile callbacks end up as JavaScript (and, for htmlfile, inside HTML): only names
 * made of these characters are ever written back, so no client text is echoed unescaped.
 */
const CALLBACK_NAME = /^[a-zA-Z0-9_.]+$/;

export type CallbackResult = { readonly name: string } | { readonly error: ErrorAnswer };

/** sockjs-client sends the callback name as `c`; `callback` is accepted too. */
export function callbackFrom(query: string): CallbackResult {
  const parameters = new URLSearchParams(query);
  const name = parameters.get('c') ?? parameters.get('callback');
  if (!name) return { error: PROTOCOL_ERRORS.callbackRequired };
  if (!CALLBACK_NAME.test(name)) return { error: PROTOCOL_ERRORS.callbackInvalid };
  return { name };
}
