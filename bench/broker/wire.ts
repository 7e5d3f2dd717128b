/**
 * Just enough STOMP for the load generator: hand-built frames and a scanner that only finds frame
 * boundaries. A full client would parse every header of every MESSAGE, and at 100 subscribers
 * the load generator, not the broker, would set the pace.
 */

/** Every message body is exactly this long, so its fields sit at fixed offsets from the NUL. */
export const BODY_BYTES = 100;

/** Body layout: `<sequence> <sent-at µs> xxx…`, zero-padded so the length never varies. */
const SEQUENCE_DIGITS = 12;
const SENT_AT_DIGITS = 15;
const SENT_AT_OFFSET = SEQUENCE_DIGITS + 1;

const NUL = 0;
const LF = 10;
const CR = 13;
const DIGIT_ZERO = 48;

/** The first octet of each server frame's command is enough to tell them apart. */
export const FIRST_OCTET = {
  CONNECTED: 0x43,
  ERROR: 0x45,
  MESSAGE: 0x4d,
  RECEIPT: 0x52,
} as const;

/** Frames that end at NUL: our bodies never contain one, so content-length can be ignored. */
export function encodeFrame(command: string, headers: Record<string, string>, body = ''): Buffer {
  let text = `${command}\n`;
  for (const [name, value] of Object.entries(headers)) text += `${name}:${value}\n`;
  return Buffer.from(`${text}\n${body}\0`, 'utf8');
}

/**
 * Writes batches of SEND frames into one buffer each. Every frame carries its sequence number and
 * the time it was handed to the socket; the receiver reads both back to check order and latency.
 */
export class SendFrameWriter {
  private readonly prefix: Buffer;
  private readonly template: Buffer;
  readonly frameBytes: number;

  constructor(destination: string) {
    this.prefix = Buffer.from(
      `SEND\ndestination:${destination}\ncontent-type:text/plain\ncontent-length:${BODY_BYTES}\n\n`,
      'utf8',
    );
    this.frameBytes = this.prefix.length + BODY_BYTES + 1;
    this.template = Buffer.alloc(this.frameBytes, 'x');
    this.prefix.copy(this.template, 0);
    this.template[this.prefix.length + SEQUENCE_DIGITS] = 0x20;
    this.template[this.prefix.length + SENT_AT_OFFSET + SENT_AT_DIGITS] = 0x20;
    this.template[this.frameBytes - 1] = NUL;
  }

  /** Frames for sequence numbers `firstSequence`, `firstSequence + 1`, … `count` of them. */
  batch(firstSequence: number, count: number, sentAtMicros: number): Buffer {
    const out = Buffer.allocUnsafe(count * this.frameBytes);
    const bodyStart = this.prefix.length;
    for (let index = 0; index < count; index++) {
      const offset = index * this.frameBytes;
      this.template.copy(out, offset);
      writeDigits(out, offset + bodyStart, SEQUENCE_DIGITS, firstSequence + index);
      writeDigits(out, offset + bodyStart + SENT_AT_OFFSET, SENT_AT_DIGITS, sentAtMicros);
    }
    return out;
  }
}

function writeDigits(target: Buffer, offset: number, width: number, value: number): void {
  let rest = value;
  for (let position = offset + width - 1; position >= offset; position--) {
    target[position] = DIGIT_ZERO + (rest % 10);
    rest = Math.floor(rest / 10);
  }
}

/** Reads `width` decimal digits; -1 if any octet is not a digit (the body is not ours). */
function readDigits(source: Buffer, offset: number, width: number): number {
  let value = 0;
  for (let position = offset; position < offset + width; position++) {
    const digit = source[position]! - DIGIT_ZERO;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** The sequence number in a MESSAGE frame that ends (at its NUL) at `end`; -1 if unreadable. */
export function sequenceOf(frame: Buffer, start: number, end: number): number {
  const bodyStart = end - BODY_BYTES;
  return bodyStart <= start ? -1 : readDigits(frame, bodyStart, SEQUENCE_DIGITS);
}

/** When the message in the frame ending at `end` was sent, in µs of the sender's clock. */
export function sentAtOf(frame: Buffer, end: number): number {
  return readDigits(frame, end - BODY_BYTES + SENT_AT_OFFSET, SENT_AT_DIGITS);
}

/** The `message` header and first body line of an ERROR frame, for the failure report. */
export function describeErrorFrame(frame: Buffer, start: number, end: number): string {
  const text = frame.toString('utf8', start, end);
  const blank = text.indexOf('\n\n');
  const headerText = blank < 0 ? text : text.slice(0, blank);
  const message = /^message:(.*)$/m.exec(headerText)?.[1];
  const bodyLine = blank < 0 ? '' : (text.slice(blank + 2).split('\n')[0] ?? '');
  return [message, bodyLine].filter(Boolean).join(' / ') || 'ERROR frame without a message';
}

/** Longest incomplete frame we hold on to; anything longer means the peer is not speaking STOMP. */
const MAX_PARTIAL_BYTES = 1_048_576;

/**
 * Splits a byte stream at NUL octets and hands each frame's [start, end) range (end = the NUL's
 * index) to `onFrame`, without copying, except for the one frame that straddles two chunks.
 * EOLs between frames (heart-beats) are skipped.
 */
export class FrameScanner {
  private partial: Buffer | undefined;

  constructor(private readonly onFrame: (data: Buffer, start: number, end: number) => void) {}

  push(chunk: Buffer): void {
    let offset = 0;
    if (this.partial) {
      const firstNul = chunk.indexOf(NUL);
      if (firstNul < 0) {
        this.partial = Buffer.concat([this.partial, chunk]);
        if (this.partial.length > MAX_PARTIAL_BYTES) {
          throw new Error(`no frame end within ${MAX_PARTIAL_BYTES} bytes`);
        }
        return;
      }
      const joined = Buffer.concat([this.partial, chunk.subarray(0, firstNul + 1)]);
      this.partial = undefined;
      this.emit(joined, 0, joined.length - 1);
      offset = firstNul + 1;
    }
    for (;;) {
      const nul = chunk.indexOf(NUL, offset);
      if (nul < 0) break;
      this.emit(chunk, offset, nul);
      offset = nul + 1;
    }
    // A copy, so that the large chunk it came from can be collected.
    if (offset < chunk.length) this.partial = Buffer.from(chunk.subarray(offset));
  }

  private emit(data: Buffer, start: number, end: number): void {
    let frameStart = start;
    while (frameStart < end && (data[frameStart] === LF || data[frameStart] === CR)) frameStart++;
    if (frameStart < end) this.onFrame(data, frameStart, end);
  }
}
