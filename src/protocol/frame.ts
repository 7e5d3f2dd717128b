/** A header as it travels: name and value, unescaped. Order matters and repeats are kept. */
export type Header = readonly [name: string, value: string];

export type StompVersion = '1.0' | '1.1' | '1.2';

export const SUPPORTED_VERSIONS: readonly StompVersion[] = ['1.0', '1.1', '1.2'];

/**
 * One STOMP frame. Headers are ordered and may repeat; readers use {@link getHeader}, which
 * returns the first entry (STOMP 1.2: "only the first header entry SHOULD be used as the value
 * of header entry").
 */
export interface Frame {
  readonly command: string;
  readonly headers: readonly Header[];
  readonly body: Uint8Array;
}

export const EMPTY_BODY: Uint8Array = new Uint8Array(0);

/** The value of the first header named `name`, or undefined. */
export function getHeader(frame: Frame, name: string): string | undefined {
  for (const header of frame.headers) {
    if (header[0] === name) return header[1];
  }
  return undefined;
}

/** STOMP 1.2 §"Value Encoding": CONNECT and CONNECTED headers are never escaped. */
export function headersAreEscaped(command: string, version: StompVersion): boolean {
  return (
    version !== '1.0' && command !== 'CONNECT' && command !== 'CONNECTED' && command !== 'STOMP'
  );
}

/** Builds a frame; a string body is encoded as UTF-8. */
export function createFrame(
  command: string,
  headers: readonly Header[] = [],
  body: Uint8Array | string = EMPTY_BODY,
): Frame {
  return { command, headers, body: typeof body === 'string' ? utf8Encoder.encode(body) : body };
}

const utf8Encoder = new TextEncoder();
