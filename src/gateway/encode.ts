import { isUtf8 } from 'node:buffer';
import { encodeFrame, MessageDelivery, type Frame, type StompVersion } from '../protocol/index.js';

/** One connection's queued frames, encoded as the bytes of one write. */
export interface EncodedBatch {
  readonly bytes: Buffer;
  /** Every body is UTF-8: a WebSocket may carry the batch as a text message. */
  readonly isText: boolean;
}

/**
 * Encodes a batch into a single buffer, sized first and filled once. This is the per-delivery hot
 * path of every binary transport: a MESSAGE costs its own few header lines (subscription,
 * sequence) written in place, plus a copy of the shared tail that was encoded once per publish
 * for all subscribers. Whether the batch is text comes from what each message already knows,
 * never from scanning the bytes again.
 *
 * `headroom` bytes are left free at the start for a transport's own framing header (the
 * WebSocket transport writes its frame header there), so that a batch is one buffer on the wire.
 */
export function encodeBatch(
  frames: readonly Frame[],
  version: StompVersion,
  headroom = 0,
): EncodedBatch {
  const heads: string[] = new Array<string>(frames.length);
  const parts: Uint8Array[] = new Array<Uint8Array>(frames.length);
  let total = 0;
  let isText = true;
  for (let i = 0; i < frames.length; i++) {
    const frame = frames[i]!;
    if (frame instanceof MessageDelivery) {
      const head = frame.encodeHead(version);
      const tail = frame.shared.tail(version);
      heads[i] = head;
      parts[i] = tail;
      total += Buffer.byteLength(head) + tail.length;
      if (isText && !frame.shared.bodyIsText) isText = false;
    } else {
      const bytes = encodeFrame(frame, version);
      heads[i] = '';
      parts[i] = bytes;
      total += bytes.length;
      if (isText && frame.body.length > 0 && !isUtf8(frame.body)) isText = false;
    }
  }
  const bytes = Buffer.allocUnsafe(headroom + total);
  let offset = headroom;
  for (let i = 0; i < frames.length; i++) {
    const head = heads[i]!;
    if (head.length > 0) offset += bytes.write(head, offset);
    const part = parts[i]!;
    bytes.set(part, offset);
    offset += part.length;
  }
  return { bytes, isText };
}
