/**
 * The benchmark's message: 100 ASCII bytes that survive every framing unchanged (STOMP bodies,
 * WebSocket frames, SSE `data:` lines, SockJS's JSON, htmlfile's script tags, socket.io packets),
 * so one scanner finds them in any byte stream without parsing the protocol around them.
 *
 * Layout: `~~PRG` · sequence (10 digits) · `.` · sent-at (16 digits, µs of CLOCK_MONOTONIC) · ` `
 * · `x` padding. CLOCK_MONOTONIC is one clock for every process on the machine, so the receiver's
 * reading minus the sender's is the latency.
 */

export const PAYLOAD_BYTES = 100;
export const MARKER = Buffer.from('~~PRG', 'latin1');
const SEQUENCE_DIGITS = 10;
const SENT_AT_DIGITS = 16;
const SEQUENCE_OFFSET = MARKER.length;
const SENT_AT_OFFSET = SEQUENCE_OFFSET + SEQUENCE_DIGITS + 1;
/** Bytes from the marker to the end of the sent-at field: all a scanner needs to read. */
export const PAYLOAD_HEAD_BYTES = SENT_AT_OFFSET + SENT_AT_DIGITS;
const DIGIT_ZERO = 48;

/** Microseconds of CLOCK_MONOTONIC (process.hrtime's clock), the same in every process. */
export function monotonicMicros(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1_000_000 + Math.floor(nanoseconds / 1000);
}

const template = ((): Buffer => {
  const buffer = Buffer.alloc(PAYLOAD_BYTES, 'x');
  MARKER.copy(buffer, 0);
  buffer[SEQUENCE_OFFSET + SEQUENCE_DIGITS] = 0x2e;
  buffer[SENT_AT_OFFSET + SENT_AT_DIGITS] = 0x20;
  return buffer;
})();

function writeDigits(target: Buffer, offset: number, width: number, value: number): void {
  let rest = value;
  for (let position = offset + width - 1; position >= offset; position--) {
    target[position] = DIGIT_ZERO + (rest % 10);
    rest = Math.floor(rest / 10);
  }
}

function readDigits(source: Buffer, offset: number, width: number): number {
  let value = 0;
  for (let position = offset; position < offset + width; position++) {
    const digit = source[position]! - DIGIT_ZERO;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** A fresh payload for message `sequence`, stamped now. */
export function makePayload(sequence: number, sentAtMicros = monotonicMicros()): Buffer {
  const buffer = Buffer.allocUnsafe(PAYLOAD_BYTES);
  template.copy(buffer);
  writeDigits(buffer, SEQUENCE_OFFSET, SEQUENCE_DIGITS, sequence);
  writeDigits(buffer, SENT_AT_OFFSET, SENT_AT_DIGITS, sentAtMicros);
  return buffer;
}

export type PayloadHandler = (sequence: number, sentAtMicros: number) => void;

/**
 * Finds every payload in `data[start, end)`, a complete message (nothing straddles its ends).
 * Returns how many it found.
 */
export function scanMessage(
  data: Buffer,
  start: number,
  end: number,
  onPayload: PayloadHandler,
): number {
  let found = 0;
  let at = data.indexOf(MARKER, start);
  while (at >= 0 && at + PAYLOAD_HEAD_BYTES <= end) {
    const sequence = readDigits(data, at + SEQUENCE_OFFSET, SEQUENCE_DIGITS);
    const sentAt = readDigits(data, at + SENT_AT_OFFSET, SENT_AT_DIGITS);
    if (sequence >= 0 && sentAt >= 0) {
      onPayload(sequence, sentAt);
      found++;
    }
    at = data.indexOf(MARKER, at + PAYLOAD_HEAD_BYTES);
  }
  return found;
}

/**
 * Finds payloads in a byte stream cut anywhere (an HTTP body): a payload whose head straddles two
 * chunks is put together from the few bytes kept of the first.
 */
export class PayloadStreamScanner {
  private carry: Buffer | undefined;

  constructor(private readonly onPayload: PayloadHandler) {}

  push(chunk: Buffer): void {
    let from = 0;
    if (this.carry) {
      const carried = this.carry;
      this.carry = undefined;
      const head = Buffer.concat([carried, chunk.subarray(0, PAYLOAD_HEAD_BYTES)]);
      const at = head.indexOf(MARKER);
      if (at >= 0 && at < carried.length) {
        if (at + PAYLOAD_HEAD_BYTES > head.length) {
          // Still incomplete: the chunk was tiny.
          this.carry = Buffer.from(head.subarray(at));
          return;
        }
        scanMessage(head, at, at + PAYLOAD_HEAD_BYTES, this.onPayload);
        from = at + PAYLOAD_HEAD_BYTES - carried.length;
      }
    }
    let last = from;
    let at = chunk.indexOf(MARKER, from);
    while (at >= 0) {
      if (at + PAYLOAD_HEAD_BYTES > chunk.length) {
        this.carry = Buffer.from(chunk.subarray(at));
        return;
      }
      scanMessage(chunk, at, at + PAYLOAD_HEAD_BYTES, this.onPayload);
      last = at + PAYLOAD_HEAD_BYTES;
      at = chunk.indexOf(MARKER, last);
    }
    // A marker may begin in the last few bytes.
    const keep = Math.max(last, chunk.length - (MARKER.length - 1));
    if (keep < chunk.length) this.carry = Buffer.from(chunk.subarray(keep));
  }
}
