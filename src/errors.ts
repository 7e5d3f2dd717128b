/**
 * The one table of Perigee's errors. Each code says what every side sees: the HTTP status a
 * request gets, the `message` header of the STOMP ERROR frame, the WebSocket close code, and
 * whether a client should reconnect (retry advice the browser client reads).
 *
 * Pure: no Node imports, because the protocol codec and the browser client throw these too.
 */

export interface ErrorSpec {
  /** HTTP status for a request refused with this error. */
  readonly status: number;
  /** Short, stable text for the STOMP ERROR frame's `message` header. Details go in the body. */
  readonly message: string;
  /** WebSocket close code (RFC 6455 §7.4) used when the error ends a WebSocket. */
  readonly closeCode: number;
  /** Whether reconnecting may succeed without the client changing anything. */
  readonly retryable: boolean;
}

const spec = (
  status: number,
  message: string,
  closeCode: number,
  retryable = false,
): ErrorSpec => ({ status, message, closeCode, retryable });

// WebSocket close codes: 1002 protocol error, 1008 policy violation, 1009 message too big,
// 1011 internal error, 1012 service restart, 1013 try again later (RFC 6455 §7.4.1, IANA registry).
export const errorTable = {
  // The STOMP codec: the bytes are not a frame.
  MALFORMED_FRAME: spec(400, 'Malformed frame', 1002),
  INVALID_COMMAND: spec(400, 'Malformed frame: invalid command line', 1002),
  INVALID_ESCAPE: spec(400, 'Malformed frame: undefined escape sequence', 1002),
  INVALID_UTF8: spec(400, 'Malformed frame: invalid UTF-8', 1002),
  CONTENT_LENGTH_MISMATCH: spec(400, 'Malformed frame: body does not match content-length', 1002),
  FRAME_TOO_LARGE: spec(413, 'Frame too large', 1009),
  BODY_TOO_LARGE: spec(413, 'Body too large', 1009),
  TOO_MANY_HEADERS: spec(431, 'Too many headers', 1009),
  HEADER_TOO_LONG: spec(431, 'Header line too long', 1009),

  // STOMP semantics: a well-formed frame that the server cannot accept.
  NOT_CONNECTED: spec(400, 'Expected CONNECT first', 1002),
  ALREADY_CONNECTED: spec(400, 'Already connected', 1002),
  UNSUPPORTED_VERSION: spec(400, 'Supported protocol versions are 1.0,1.1,1.2', 1002),
  UNKNOWN_COMMAND: spec(400, 'Unknown command', 1002),
  MISSING_HEADER: spec(400, 'Missing required header', 1002),
  INVALID_HEADER: spec(400, 'Invalid header value', 1002),
  INVALID_DESTINATION: spec(400, 'Invalid destination', 1008),
  DUPLICATE_SUBSCRIPTION: spec(400, 'Subscription id already in use', 1008),
  UNKNOWN_SUBSCRIPTION: spec(400, 'Unknown subscription', 1008),
  UNKNOWN_ACK: spec(400, 'Unknown message to acknowledge', 1008),
  UNKNOWN_TRANSACTION: spec(400, 'Unknown transaction', 1008),
  DUPLICATE_TRANSACTION: spec(400, 'Transaction already begun', 1008),
  LIMIT_EXCEEDED: spec(429, 'Limit exceeded', 1008),
  QUEUE_FULL: spec(503, 'Queue full', 1013, true),
  SLOW_CONSUMER: spec(503, 'Slow consumer: too many bytes queued', 1013, true),
  HEARTBEAT_TIMEOUT: spec(408, 'Heart-beat timeout', 1001, true),

  // Who may do what.
  UNAUTHENTICATED: spec(401, 'Authentication failed', 1008),
  FORBIDDEN: spec(403, 'Access denied', 1008),

  // Lifecycle.
  SHUTTING_DOWN: spec(503, 'Server shutting down', 1012, true),
  INTERNAL: spec(500, 'Internal server error', 1011, true),

  // Client side: what a Perigee client reports to its caller.
  CONNECTION_CLOSED: spec(503, 'Connection closed', 1006, true),
  CONNECT_FAILED: spec(503, 'Could not connect', 1006, true),
  SERVER_ERROR: spec(502, 'The server sent an ERROR frame', 1002),
  TIMEOUT: spec(504, 'Timed out', 1006, true),

  // Command line and configuration.
  USAGE: spec(400, 'Invalid command line', 1008),
  CONFIG_INVALID: spec(400, 'Invalid configuration', 1008),
  ADDRESS_IN_USE: spec(500, 'Address in use', 1011),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorTable;

/**
 * The error type everything in Perigee throws for an expected failure. `message` is the table's
 * short text followed by the detail, so a log line or a CLI line reads on its own.
 */
export class PerigeeError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;

  constructor(code: ErrorCode, detail = '', options?: { cause?: unknown }) {
    const spec = errorTable[code];
    super(detail ? `${spec.message}: ${detail}` : spec.message, options);
    this.name = 'PerigeeError';
    this.code = code;
    this.detail = detail;
  }

  get status(): number {
    return errorTable[this.code].status;
  }

  get closeCode(): number {
    return errorTable[this.code].closeCode;
  }

  get retryable(): boolean {
    return errorTable[this.code].retryable;
  }
}

export function isPerigeeError(value: unknown): value is PerigeeError {
  return value instanceof PerigeeError;
}
