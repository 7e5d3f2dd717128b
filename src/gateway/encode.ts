import { isUtf8 } from 'node:buffer';
import { encodeFrame, MessageDelivery, type Frame, type StompVersion } from '../protocol/index.js';

/** A transport's own header in front of a batch (the WebSocket transport's RFC 6455 header). */
export interface BatchFraming {
  /** Bytes the header takes in front of a payload of `payloadLength` bytes. */
  headerLength(payloadLength: number): number;
  /** Writes the header into `bytes[0, headerLength)`. */
  writeHeader(bytes: Buffer, payloadLength: number, isText: boolean): void;
}

/**
 * Encodes a batch into a single buffer, sized first and filled once: the bytes of one write. This
 * is the per-delivery hot path of every binary transport. A MESSAGE costs a copy of its
 * subscription's cached header prefix, its sequence digits and a copy of the shared tail that was
 * encoded once per publish for all subscribers; no string is built per delivery. Whether the
 * batch is text comes from what each message already knows, never from scanning the bytes again.
 *
 * `framing` writes a transport's header in front, in the same buffer, so that a batch is one
 * buffer on the wire.
 */
export function encodeBatch(
  frames: readonly Frame[],
  version: StompVersion,
  framing?: BatchFraming,
): Buffer {
  // Frames other than MESSAGE deliveries are encoded whole; the array for them is only made when
  // a batch has one (most batches are deliveries alone).
  let others: (Uint8Array | undefined)[] | undefined;
  let total = 0;
  let isText = true;
  for (let i = 0; i < frames.length; i++) {
    const frame = frames[i]!;
    if (frame instanceof MessageDelivery) {
      total += frame.headLength(version) + frame.shared.tail(version).length;
      if (isText && !frame.shared.bodyIsText) isText = false;
    } else {
      const bytes = encodeFrame(frame, version);
      (others ??= new Array<Uint8Array | undefined>(frames.length))[i] = bytes;
      total += bytes.length;
      if (isText && frame.body.length > 0 && !isUtf8(frame.body)) isText = false;
    }
  }
  const headerLength = framing ? framing.headerLength(total) : 0;
  const bytes = Buffer.allocUnsafe(headerLength + total);
  let offset = headerLength;
  for (let i = 0; i < frames.length; i++) {
    const encoded = others?.[i];
    if (encoded !== undefined) {
      bytes.set(encoded, offset);
      offset += encoded.length;
    } else {
      const delivery = frames[i] as MessageDelivery;
      offset = delivery.writeHead(bytes, offset, version);
      const tail = delivery.shared.tail(version);
      bytes.set(tail, offset);
      offset += tail.length;
    }
  }
  framing?.writeHeader(bytes, total, isText);
  return bytes;
}
