import { PerigeeError } from '../errors.js';

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF in a header value instead of silently eating it, so that
// decoding is the exact inverse of encoding.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function encodeUtf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Decodes `bytes[start, end)` as strict UTF-8 (STOMP 1.2: "commands and header names and values
 * MUST be encoded in UTF-8"). Header lines are short and almost always ASCII, so ASCII takes a
 * path that avoids the TextDecoder call.
 */
export function decodeUtf8(bytes: Uint8Array, start = 0, end = bytes.length): string {
  const length = end - start;
  if (length <= 64) {
    let ascii = '';
    let i = start;
    for (; i < end; i++) {
      const byte = bytes[i]!;
      if (byte >= 0x80) break;
      ascii += String.fromCharCode(byte);
    }
    if (i === end) return ascii;
  }
  try {
    return decoder.decode(bytes.subarray(start, end));
  } catch (error) {
    throw new PerigeeError('INVALID_UTF8', 'a header is not valid UTF-8', { cause: error });
  }
}

/** Whether every byte of `bytes` is valid UTF-8. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

export function concatBytes(parts: readonly Uint8Array[], totalLength?: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let length = totalLength ?? 0;
  if (totalLength === undefined) for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
