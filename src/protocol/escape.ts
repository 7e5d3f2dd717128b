import { PerigeeError } from '../errors.js';
import type { StompVersion } from './frame.js';

// STOMP 1.1 defines \\, \n and \c; STOMP 1.2 adds \r. STOMP 1.0 has no escaping at all.
const NEEDS_ESCAPE_11 = /[\\\n:]/;
const NEEDS_ESCAPE_12 = /[\\\n\r:]/;
const ESCAPES_11 = /[\\\n:]/g;
const ESCAPES_12 = /[\\\n\r:]/g;
const ESCAPED: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  ':': '\\c',
};

/** Escapes a header name or value for a frame whose headers are escaped (see headersAreEscaped). */
export function escapeHeader(text: string, version: StompVersion): string {
  if (version === '1.2') {
    return NEEDS_ESCAPE_12.test(text) ? text.replace(ESCAPES_12, (c) => ESCAPED[c]!) : text;
  }
  return NEEDS_ESCAPE_11.test(text) ? text.replace(ESCAPES_11, (c) => ESCAPED[c]!) : text;
}

/**
 * Where headers cannot be escaped (STOMP 1.0, CONNECT and CONNECTED), a line feed would end the
 * header line and a colon in a name would end the name. They cannot be represented, so they are
 * replaced by a space rather than corrupting the frame.
 */
export function sanitizeUnescapedHeader(text: string, isName: boolean): string {
  const pattern = isName ? /[\r\n:]/g : /[\r\n]/g;
  return pattern.test(text) ? text.replace(pattern, ' ') : text;
}

/**
 * Reverses {@link escapeHeader}. STOMP 1.2: "Undefined escape sequences such as \t (octet 92 and
 * 116) MUST be treated as a fatal protocol error"; a trailing lone backslash is one too.
 */
export function unescapeHeader(text: string, version: StompVersion): string {
  let slash = text.indexOf('\\');
  if (slash === -1) return text;
  let out = '';
  let from = 0;
  while (slash !== -1) {
    out += text.slice(from, slash);
    const next = text.charCodeAt(slash + 1);
    if (next === 0x5c /* \ */) out += '\\';
    else if (next === 0x6e /* n */) out += '\n';
    else if (next === 0x63 /* c */) out += ':';
    else if (next === 0x72 /* r */ && version === '1.2') out += '\r';
    else {
      const sequence = Number.isNaN(next) ? '\\ at the end' : `\\${String.fromCharCode(next)}`;
      throw new PerigeeError(
        'INVALID_ESCAPE',
        `${sequence} is not defined in STOMP ${version} (use \\\\, \\n, \\c${version === '1.2' ? ', \\r' : ''})`,
      );
    }
    from = slash + 2;
    slash = text.indexOf('\\', from);
  }
  return out + text.slice(from);
}
