import { errorTable, type ErrorCode } from '../../src/errors.js';
import type { ParserLimits } from '../../src/protocol/index.js';

/**
 * Small frame limits for the bad-input tests (Node and Chromium), and one SEND past each of them,
 * so that every transport is shown to refuse each limit with its own documented error.
 */
export const TEST_LIMITS: ParserLimits = {
  maxFrameBytes: 4096,
  maxBodyBytes: 2048,
  maxHeaders: 32,
  maxHeaderLineBytes: 512,
};

export interface OverLimitFrame {
  readonly name: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The error the gateway answers with: its `message` heads the ERROR frame's `message` header. */
  readonly code: ErrorCode;
}

const manyHeaders = (count: number, value: string): Record<string, string> =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`x-filler-${i}`, value]));

export const OVER_LIMIT_FRAMES: readonly OverLimitFrame[] = [
  { name: 'a body over the limit', body: 'x'.repeat(3000), headers: {}, code: 'BODY_TOO_LARGE' },
  {
    // Each part within its own limit; together past the frame's.
    name: 'a frame over the limit',
    body: 'x'.repeat(2000),
    headers: manyHeaders(10, 'y'.repeat(400)),
    code: 'FRAME_TOO_LARGE',
  },
  {
    name: 'a header line over the limit',
    body: 'small',
    headers: { 'x-long': 'y'.repeat(600) },
    code: 'HEADER_TOO_LONG',
  },
  {
    name: 'too many headers',
    body: 'small',
    headers: manyHeaders(40, 'y'),
    code: 'TOO_MANY_HEADERS',
  },
];

/** What our client reports for a frame the server refused with `code`: the ERROR's message. */
export function refusedByServer(code: ErrorCode): RegExp {
  return new RegExp(
    `^${escapeRegExp(`${errorTable.SERVER_ERROR.message}: ${errorTable[code].message}`)}(:|$)`,
  );
}

/** The `message` header of the ERROR frame the server answers `code` with. */
export function errorMessageHeader(code: ErrorCode): RegExp {
  return new RegExp(`^${escapeRegExp(errorTable[code].message)}(\\\\c|:|$)`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
