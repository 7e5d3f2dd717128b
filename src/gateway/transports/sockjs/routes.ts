import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { parseClientMessages } from './framing.js';
import {
  addCorsHeaders,
  addSessionCookie,
  answerFor,
  NOT_CACHED,
  PROTOCOL_ERRORS,
  readBody,
  sendText,
  TEXT_PLAIN,
} from './http.js';
import type { ResolvedOptions } from './options.js';
import type { Receiver } from './receiver.js';
import type { SockJSSession } from './session.js';

/** What the server offers the session routes. */
export interface TransportHost {
  readonly options: ResolvedOptions;
  /** Attaches a receiver to the session with this id, creating the session if there is none. */
  receive(sessionId: string, receiver: Receiver): void;
  findSession(sessionId: string): SockJSSession | undefined;
}

/** One request to `<prefix>/<server>/<session>/<segment>`. */
export interface SessionRequest {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  /** Only the session id matters: the server id is for load balancers and is ignored. */
  readonly sessionId: string;
  /** The raw query string, without `?`. */
  readonly query: string;
  readonly host: TransportHost;
}

/** A session URL a transport serves, declared as data (sockjs-node `lib/transport/*` routes). */
export interface SessionRoute {
  /** The URL's last segment, e.g. `xhr_send`. */
  readonly segment: string;
  readonly method: 'GET' | 'POST';
  /** XHR routes are fetched cross-origin: CORS headers, and OPTIONS preflights answered. */
  readonly cors: boolean;
  handle(context: SessionRequest): void | Promise<void>;
}

/** Headers of an answer to a `*_send` request. */
export function sendAnswerHeaders(context: SessionRequest, cors: boolean): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { 'Content-Type': TEXT_PLAIN, 'Cache-Control': NOT_CACHED };
  if (cors) addCorsHeaders(context.request, headers);
  if (context.host.options.cookieNeeded) addSessionCookie(context.request, headers);
  return headers;
}

/**
 * The shared part of xhr_send and jsonp_send: find the session, read the body within the limit,
 * decode the messages and hand them over. Answers the error itself and returns false on failure.
 * `extractPayload` turns the body into the JSON text (jsonp_send's form field `d`).
 */
export async function acceptPostedMessages(
  context: SessionRequest,
  headers: OutgoingHttpHeaders,
  extractPayload: (body: string) => string,
): Promise<boolean> {
  const { request, response, host } = context;
  // "Sending messages to not existing sessions is invalid": checked before reading a byte.
  const session = host.findSession(context.sessionId);
  if (session === undefined) {
    const { status, text } = PROTOCOL_ERRORS.sessionNotFound;
    sendText(response, status, text, headers);
    return false;
  }
  let body: string;
  try {
    body = await readBody(request, host.options.maxPostBytes);
  } catch (error) {
    if (response.destroyed) return false;
    const { status, text } = answerFor(error);
    // The rest of an oversized body is never read: the connection cannot be reused.
    headers.Connection = 'close';
    sendText(response, status, text, headers);
    return false;
  }
  const payload = extractPayload(body);
  if (payload === '') {
    const { status, text } = PROTOCOL_ERRORS.payloadExpected;
    sendText(response, status, text, headers);
    return false;
  }
  const messages = parseClientMessages(payload, false);
  if (messages === undefined) {
    const { status, text } = PROTOCOL_ERRORS.brokenJson;
    sendText(response, status, text, headers);
    return false;
  }
  session.deliver(messages);
  return true;
}
