import type { Header, StompVersion } from './frame.js';
import {
  encodeHeaderLines,
  joinHeadAndBody,
  textDecoder,
  type PreEncodedFrame,
} from './serializer.js';
import { encodeUtf8, isValidUtf8 } from './utf8.js';

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
  private text: Map<StompVersion, string> | undefined;
  private encodedSize = -1;
  private utf8Body: boolean | undefined;

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

  /**
   * Whether the body is UTF-8 text, checked once per message: a WebSocket sends it as a text
   * message then (RFC 6455 §5.6), and every subscriber's batch can say so without a scan.
   */
  get bodyIsText(): boolean {
    return (this.utf8Body ??= isValidUtf8(this.body));
  }

  /** About how many bytes the tail takes encoded (escaping aside), without encoding it. */
  get approximateSize(): number {
    if (this.encodedSize === -1) {
      let size = this.body.length + 2;
      for (const [name, value] of this.headers) size += name.length + value.length + 2;
      this.encodedSize = size;
    }
    return this.encodedSize;
  }

  /** {@link tail} as text, for text-only transports; also encoded at most once per version. */
  tailText(version: StompVersion): string {
    const cached = this.text?.get(version);
    if (cached !== undefined) return cached;
    const text = `${encodeHeaderLines('MESSAGE', this.headers, version)}\n${textDecoder.decode(this.body)}\0`;
    (this.text ??= new Map()).set(version, text);
    return text;
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
export class MessageDelivery implements PreEncodedFrame {
  readonly command = 'MESSAGE';
  /** Headers of this subscription's deliveries; the same array for all of them may be passed. */
  readonly own: readonly Header[];
  readonly shared: SharedMessage;
  /** A gateway session's `x-perigee-seq`, written after `own` (0: none). */
  readonly seq: number;
  private allHeaders: readonly Header[] | undefined;

  constructor(own: readonly Header[], shared: SharedMessage, seq = 0) {
    this.own = own;
    this.shared = shared;
    this.seq = seq;
  }

  /** The same delivery numbered for one gateway session: one object, nothing copied. */
  withSequence(seq: number): MessageDelivery {
    return new MessageDelivery(this.own, this.shared, seq);
  }

  get headers(): readonly Header[] {
    if (this.allHeaders) return this.allHeaders;
    const all = [...this.own];
    if (this.seq !== 0) all.push(['x-perigee-seq', String(this.seq)]);
    all.push(...this.shared.headers);
    return (this.allHeaders = all);
  }

  get body(): Uint8Array {
    return this.shared.body;
  }

  /**
   * What comes before the shared tail: the command line, the own headers and the sequence. The
   * first two are the same for every delivery of a subscription and are escaped once for all.
   */
  encodeHead(version: StompVersion): string {
    const prefix = ownPrefix(this.own, version);
    return this.seq === 0 ? prefix : `${prefix}x-perigee-seq:${this.seq}\n`;
  }

  /**
   * {@link encodeHead} rewritten by `form` (a transport's escaping), with the rewritten prefix
   * cached like the plain one: per delivery only the sequence line is new.
   */
  encodeHeadAs(version: StompVersion, form: HeadTextForm): string {
    let prefixes = formPrefixes.get(form);
    if (prefixes === undefined) {
      prefixes = new WeakMap();
      formPrefixes.set(form, prefixes);
    }
    let byVersion = prefixes.get(this.own);
    if (byVersion === undefined) {
      byVersion = {};
      prefixes.set(this.own, byVersion);
    }
    const prefix = (byVersion[version] ??= form.escape(ownPrefix(this.own, version)));
    return this.seq === 0 ? prefix : `${prefix}x-perigee-seq:${this.seq}${form.newline}`;
  }

  /** The whole frame as text. */
  encodeText(version: StompVersion): string {
    return `${this.encodeHead(version)}${this.shared.tailText(version)}`;
  }

  /** The whole encoded frame. */
  encode(version: StompVersion): Uint8Array {
    const head = encodeUtf8(this.encodeHead(version));
    const tail = this.shared.tail(version);
    const out = new Uint8Array(head.length + tail.length);
    out.set(head, 0);
    out.set(tail, head.length);
    return out;
  }
}

/** A text form a transport puts frames in (SockJS: the inside of a JSON string). */
export interface HeadTextForm {
  /** Rewrites any head text: the command line and the own header lines. */
  escape(text: string): string;
  /** What a line feed becomes (the sequence line is ASCII digits and a line feed). */
  readonly newline: string;
}

/** {@link ownPrefix} rewritten, by form, header array and version. */
const formPrefixes = new WeakMap<
  HeadTextForm,
  WeakMap<readonly Header[], Partial<Record<StompVersion, string>>>
>();

/** `MESSAGE\n` and the encoded own headers, by header array and version. */
const ownPrefixes = new WeakMap<readonly Header[], Partial<Record<StompVersion, string>>>();

function ownPrefix(own: readonly Header[], version: StompVersion): string {
  let byVersion = ownPrefixes.get(own);
  if (byVersion === undefined) {
    byVersion = {};
    ownPrefixes.set(own, byVersion);
  }
  return (byVersion[version] ??= `MESSAGE\n${encodeHeaderLines('MESSAGE', own, version)}`);
}
