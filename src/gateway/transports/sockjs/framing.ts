/**
 * SockJS 0.3.3 frames, independent of any transport: `o` (open), `h` (heartbeat), `a[...]` (an
 * array of JSON-encoded messages) and `c[code,"reason"]` (close). Transports only wrap them.
 */

export const OPEN_FRAME = 'o';
export const HEARTBEAT_FRAME = 'h';

export interface CloseReason {
  readonly code: number;
  readonly reason: string;
}

/** The protocol's example of an application close, and `close()`'s default. */
export const GO_AWAY: CloseReason = { code: 3000, reason: 'Go away!' };
/** "The server must not allow two receiving connections to wait on a single session." */
export const ANOTHER_CONNECTION_OPEN: CloseReason = {
  code: 2010,
  reason: 'Another connection still open',
};
/**
 * A receiving request the client dropped before we ended it: the protocol lets the server answer
 * later requests with this rather than forget the session, so a client never mistakes a session
 * that lost messages for a live one.
 */
export const CONNECTION_INTERRUPTED: CloseReason = { code: 1002, reason: 'Connection interrupted' };
/**
 * No receiver came back within the disconnect delay. That is how every HTTP client leaves, so it
 * is reported with 1006, WebSocket's "closed without a close frame" (RFC 6455 §7.4.1).
 */
export const DISCONNECT_DELAY_EXPIRED: CloseReason = {
  code: 1006,
  reason: 'Disconnect delay expired',
};
/** The client closed its WebSocket cleanly (1000, or 1005 when it gave no code). */
export const NORMAL_CLOSURE: CloseReason = { code: 1000, reason: 'Normal closure' };

/**
 * Characters the server must escape even though JSON allows them raw: browsers mangle them on XHR
 * and WebSocket (the protocol's `escapable_by_server`: U+200C–U+200F, U+2028–U+202F,
 * U+2060–U+206F, U+FFF0–U+FFFF), plus surrogates, which the protocol says a UCS-2 server should
 * escape because they cannot be sent over WebSocket unpaired. JSON.stringify already escapes
 * U+0000–U+001F and lone surrogates; what is left here are paired surrogates and the ranges above.
 */
const MANGLED_BY_BROWSERS = /[\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff\ud800-\udfff]/g;

function escapeCodeUnit(character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** JSON-encodes one message for an `a[...]` frame: done once per message, when it is queued. */
export function encodeMessage(message: string): string {
  return JSON.stringify(message).replace(MANGLED_BY_BROWSERS, escapeCodeUnit);
}

/**
 * {@link encodeMessage} without the quotes. Escaping works code unit by code unit (a surrogate
 * pair is two escapes either way), so the escapes of two texts joined are the escapes of the
 * joined text: a message's parts can be escaped apart, and a shared part once for everyone.
 */
export function escapeMessageText(text: string): string {
  const encoded = encodeMessage(text);
  return encoded.slice(1, encoded.length - 1);
}

/** Joins already-encoded messages into one `a[...]` frame. */
export function messageFrame(encodedMessages: readonly string[]): string {
  return `a[${encodedMessages.join(',')}]`;
}

export function closeFrame({ code, reason }: CloseReason): string {
  return `c[${code},${encodeMessage(reason)}]`;
}

/**
 * Reads what a client sent. The protocol has no framing client to server: a body is "an array of
 * json-encoded messages" (xhr_send, jsonp_send), and a SockJS WebSocket message may also be a
 * single JSON string. Returns undefined for anything else ("Broken JSON encoding."): Perigee
 * carries text, so a number or object is as broken as a syntax error.
 */
export function parseClientMessages(
  payload: string,
  allowSingleMessage: boolean,
): string[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof parsed === 'string') return allowSingleMessage ? [parsed] : undefined;
  if (!Array.isArray(parsed)) return undefined;
  for (const message of parsed) if (typeof message !== 'string') return undefined;
  return parsed as string[];
}

/**
 * A WebSocket close frame may carry only registered codes or 3000–4999 (RFC 6455 §7.4), and a
 * reason of at most 123 bytes; a SockJS close code such as 2010 is valid only inside a `c` frame.
 */
export function webSocketCloseFor({ code, reason }: CloseReason): CloseReason {
  const registered =
    code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
  const valid = registered || (code >= 3000 && code <= 4999);
  const fittingReason = Buffer.byteLength(reason) <= 123 ? reason : '';
  return valid ? { code, reason: fittingReason } : NORMAL_CLOSURE;
}
