import { SharedMessage, type Frame, type Header } from '../protocol/index.js';

/** Headers a sender may not set: the broker sets them, or they belong to the SEND itself. */
const RESERVED_SEND_HEADERS = new Set([
  'destination',
  'message-id',
  'subscription',
  'ack',
  'receipt',
  'transaction',
  'content-length',
  'redelivered',
]);

/** One published message, shared by every delivery of it. */
export class StoredMessage {
  readonly id: string;
  readonly destination: string;
  readonly shared: SharedMessage;
  /** Where it sits in its topic's history; -1 for queue messages. */
  readonly offset: number;
  /** Bytes it costs to keep: body plus a rough share for headers. */
  readonly size: number;
  /** The sender's headers, kept to build a redelivered copy. */
  private readonly senderHeaders: readonly Header[];

  constructor(
    id: string,
    destination: string,
    senderHeaders: readonly Header[],
    body: Uint8Array,
    history?: { offset: number; epoch: string },
    redelivered = false,
  ) {
    this.id = id;
    this.destination = destination;
    this.offset = history ? history.offset : -1;
    this.senderHeaders = senderHeaders;
    const headers: Header[] = [
      ['destination', destination],
      ['message-id', id],
    ];
    if (history) {
      headers.push(['x-perigee-offset', String(history.offset)]);
      headers.push(['x-perigee-epoch', history.epoch]);
    }
    if (redelivered) headers.push(['redelivered', 'true']);
    let headerBytes = 64;
    for (const header of senderHeaders) {
      headers.push(header);
      headerBytes += header[0].length + header[1].length + 2;
    }
    // Always sent, so that bodies with NUL octets arrive whole (STOMP 1.2 §"Body").
    headers.push(['content-length', String(body.length)]);
    this.shared = new SharedMessage(headers, body);
    this.size = body.length + headerBytes;
  }

  /** A copy marked `redelivered:true`, for a queue message that goes out a second time. */
  redelivered(): StoredMessage {
    return new StoredMessage(
      this.id,
      this.destination,
      this.senderHeaders,
      this.shared.body,
      undefined,
      true,
    );
  }
}

/**
 * The headers of a SEND that travel on to subscribers. STOMP 1.2 §MESSAGE: "MESSAGE frames
 * SHOULD include ... all user-defined headers"; the broker's own headers come first, and the
 * sender's copies of them are dropped, as are `x-perigee-*` headers so that offsets and epochs
 * cannot be spoofed (DESIGN.md §5).
 */
export function senderHeadersOf(frame: Frame): Header[] {
  const kept: Header[] = [];
  for (const header of frame.headers) {
    const name = header[0];
    if (RESERVED_SEND_HEADERS.has(name) || name.startsWith('x-perigee-')) continue;
    kept.push(header);
  }
  return kept;
}

/** Headers from a plain object, as an application passes them to `publish`. */
export function headersFromRecord(record: Readonly<Record<string, string>> | undefined): Header[] {
  if (!record) return [];
  const kept: Header[] = [];
  for (const name of Object.keys(record)) {
    if (RESERVED_SEND_HEADERS.has(name) || name.startsWith('x-perigee-')) continue;
    kept.push([name, String(record[name])]);
  }
  return kept;
}
