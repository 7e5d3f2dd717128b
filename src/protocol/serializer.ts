import { escapeHeader, sanitizeUnescapedHeader } from './escape.js';
import { headersAreEscaped, type Frame, type Header, type StompVersion } from './frame.js';
import { encodeUtf8 } from './utf8.js';

/** Encodes header lines (each ending in LF) the way `command` frames carry them in `version`. */
export function encodeHeaderLines(
  command: string,
  headers: readonly Header[],
  version: StompVersion,
): string {
  const escaped = headersAreEscaped(command, version);
  let text = '';
  for (const [name, value] of headers) {
    text += escaped
      ? `${escapeHeader(name, version)}:${escapeHeader(value, version)}\n`
      : `${sanitizeUnescapedHeader(name, true)}:${sanitizeUnescapedHeader(value, false)}\n`;
  }
  return text;
}

/**
 * Serializes a frame: the exact inverse of {@link FrameParser} for the same version. A body with a
 * NUL octet needs `content-length` to be read back (STOMP 1.2 §"Body"); if the frame has none,
 * one is added.
 */
export function encodeFrame(frame: Frame, version: StompVersion): Uint8Array {
  if (frame instanceof MessageDelivery) return frame.encode(version);
  let head = `${frame.command}\n${encodeHeaderLines(frame.command, frame.headers, version)}`;
  if (frame.body.includes(0) && !frame.headers.some(([name]) => name === 'content-length')) {
    head += `content-length:${frame.body.length}\n`;
  }
  return joinHeadAndBody(encodeUtf8(`${head}\n`), frame.body);
}

function joinHeadAndBody(head: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(head.length + body.length + 1);
  out.set(head, 0);
  out.set(body, head.length);
  // The last octet stays 0: the NUL that ends the frame.
  return out;
}

/**
 * The part of a MESSAGE frame that every subscriber receives alike: the shared headers, the
 * blank line, the body and the NUL. It is encoded at most once per STOMP version, however many
 * subscribers there are.
 */
export class SharedMessage {
  readonly headers: readonly Header[];
  readonly body: Uint8Array;
  private tail10: Uint8Array | undefined;
  private tail11: Uint8Array | undefined;
  private tail12: Uint8Array | undefined;

  constructor(headers: readonly Header[], body: Uint8Array) {
    this.headers = headers;
    this.body = body;
  }

  /** The encoded shared headers, blank line, body and NUL for `version`. */
  tail(version: StompVersion): Uint8Array {
    switch (version) {
      case '1.2':
        return (this.tail12 ??= this.encodeTail(version));
      case '1.1':
        return (this.tail11 ??= this.encodeTail(version));
      case '1.0':
        return (this.tail10 ??= this.encodeTail(version));
    }
  }

  private encodeTail(version: StompVersion): Uint8Array {
    return joinHeadAndBody(
      encodeUtf8(`${encodeHeaderLines('MESSAGE', this.headers, version)}\n`),
      this.body,
    );
  }
}

/**
 * One MESSAGE frame for one subscriber: its own leading headers (`subscription`, `ack`, …)
 * followed by a {@link SharedMessage}. It is a {@link Frame} like any other, but encoding it
 * copies the shared part instead of escaping it again.
 */
export class MessageDelivery implements Frame {
  readonly command = 'MESSAGE';
  readonly own: readonly Header[];
  readonly shared: SharedMessage;
  private allHeaders: readonly Header[] | undefined;

  constructor(own: readonly Header[], shared: SharedMessage) {
    this.own = own;
    this.shared = shared;
  }

  get headers(): readonly Header[] {
    return (this.allHeaders ??= [...this.own, ...this.shared.headers]);
  }

  get body(): Uint8Array {
    return this.shared.body;
  }

  /** The whole encoded frame. */
  encode(version: StompVersion): Uint8Array {
    const head = encodeUtf8(`MESSAGE\n${encodeHeaderLines('MESSAGE', this.own, version)}`);
    const tail = this.shared.tail(version);
    const out = new Uint8Array(head.length + tail.length);
    out.set(head, 0);
    out.set(tail, head.length);
    return out;
  }
}
