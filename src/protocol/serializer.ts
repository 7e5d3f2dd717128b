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
  if (isPreEncoded(frame)) return frame.encode(version);
  let head = `${frame.command}\n${encodeHeaderLines(frame.command, frame.headers, version)}`;
  if (frame.body.includes(0) && !frame.headers.some(([name]) => name === 'content-length')) {
    head += `content-length:${frame.body.length}\n`;
  }
  return joinHeadAndBody(encodeUtf8(`${head}\n`), frame.body);
}

/**
 * Serializes a frame as text, for transports that carry only strings (SockJS messages). The body
 * is read as UTF-8; a binary body that is not UTF-8 cannot travel this way.
 */
export function encodeFrameText(frame: Frame, version: StompVersion): string {
  if (isPreEncoded(frame)) return frame.encodeText(version);
  let head = `${frame.command}\n${encodeHeaderLines(frame.command, frame.headers, version)}`;
  if (frame.body.includes(0) && !frame.headers.some(([name]) => name === 'content-length')) {
    head += `content-length:${frame.body.length}\n`;
  }
  return `${head}\n${textDecoder.decode(frame.body)}\0`;
}

export const textDecoder = new TextDecoder();

/**
 * A frame that knows how to encode itself faster than field by field (a MESSAGE whose shared part
 * is already encoded). Recognised by shape, so that code which never builds one (the browser
 * client) does not carry its class.
 */
export interface PreEncodedFrame extends Frame {
  encode(version: StompVersion): Uint8Array;
  encodeText(version: StompVersion): string;
}

function isPreEncoded(frame: Frame): frame is PreEncodedFrame {
  return typeof (frame as Partial<PreEncodedFrame>).encode === 'function';
}

export function joinHeadAndBody(head: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(head.length + body.length + 1);
  out.set(head, 0);
  out.set(body, head.length);
  // The last octet stays 0: the NUL that ends the frame.
  return out;
}
