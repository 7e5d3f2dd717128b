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
  private formed: FormCache | undefined;
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

  /**
   * {@link tailText} rewritten by `form` (a transport's escaping), also at most once per version:
   * a fan-out over SockJS escapes a message's shared part once, not once per subscriber.
   */
  tailTextAs(version: StompVersion, form: TextForm): string {
    return inForm((this.formed ??= new Map() as FormCache), form, version, () =>
      this.tailText(version),
    );
  }

  private encodeTail(version: StompVersion): Uint8Array {
    return joinHeadAndBody(
      encodeUtf8(`${encodeHeaderLines('MESSAGE', this.headers, version)}\n`),
      this.body,
    );
  }
}

/**
 * A subscription's own leading MESSAGE headers (`subscription`, and `ack` where each delivery has
 * its own), with their encoded forms cached: a subscription keeps one for all its deliveries, so
 * the command line and these headers are escaped once per subscription, not once per delivery.
 */
export class OwnHeaders {
  readonly headers: readonly Header[];
  private readonly text: Partial<Record<StompVersion, string>> = {};
  private readonly bytes: Partial<Record<StompVersion, Uint8Array>> = {};
  /** The prefix rewritten by a transport's text form, by form and version. */
  private formed: FormCache | undefined;

  constructor(headers: readonly Header[]) {
    this.headers = headers;
  }

  /** `MESSAGE\n` and the encoded own headers. */
  prefix(version: StompVersion): string {
    return (this.text[version] ??=
      `MESSAGE\n${encodeHeaderLines('MESSAGE', this.headers, version)}`);
  }

  /** {@link prefix} as UTF-8. */
  prefixBytes(version: StompVersion): Uint8Array {
    return (this.bytes[version] ??= encodeUtf8(this.prefix(version)));
  }

  /** {@link prefix} rewritten by `form`. */
  prefixAs(version: StompVersion, form: TextForm): string {
    return inForm((this.formed ??= new Map() as FormCache), form, version, () =>
      this.prefix(version),
    );
  }
}

/**
 * One MESSAGE frame for one subscriber: its own leading headers followed by a
 * {@link SharedMessage}. It is a {@link Frame} like any other, but encoding it copies the shared
 * part instead of escaping it again.
 */
export class MessageDelivery implements PreEncodedFrame {
  readonly command = 'MESSAGE';
  readonly own: OwnHeaders;
  readonly shared: SharedMessage;
  /** A gateway session's `x-perigee-seq`, written after `own` (0: none). */
  readonly seq: number;
  private allHeaders: readonly Header[] | undefined;

  /** `own`: a subscription's {@link OwnHeaders}, the same for all its deliveries, or headers. */
  constructor(own: OwnHeaders | readonly Header[], shared: SharedMessage, seq = 0) {
    this.own = own instanceof OwnHeaders ? own : new OwnHeaders(own);
    this.shared = shared;
    this.seq = seq;
  }

  /** The same delivery numbered for one gateway session: one object, nothing copied. */
  withSequence(seq: number): MessageDelivery {
    return new MessageDelivery(this.own, this.shared, seq);
  }

  get headers(): readonly Header[] {
    if (this.allHeaders) return this.allHeaders;
    const all = [...this.own.headers];
    if (this.seq !== 0) all.push(['x-perigee-seq', String(this.seq)]);
    all.push(...this.shared.headers);
    return (this.allHeaders = all);
  }

  get body(): Uint8Array {
    return this.shared.body;
  }

  /** What comes before the shared tail: the command line, the own headers and the sequence. */
  encodeHead(version: StompVersion): string {
    const prefix = this.own.prefix(version);
    return this.seq === 0 ? prefix : `${prefix}x-perigee-seq:${this.seq}\n`;
  }

  /** {@link encodeHead} rewritten by `form` (a transport's escaping); only the sequence is new. */
  encodeHeadAs(version: StompVersion, form: TextForm): string {
    const prefix = this.own.prefixAs(version, form);
    return this.seq === 0 ? prefix : `${prefix}x-perigee-seq:${this.seq}${form.newline}`;
  }

  /** {@link encodeHead}'s length in bytes, without building it (the sequence line is ASCII). */
  headLength(version: StompVersion): number {
    const prefix = this.own.prefixBytes(version).length;
    return this.seq === 0 ? prefix : prefix + SEQUENCE_LINE_FIXED + decimalDigits(this.seq);
  }

  /**
   * Writes {@link encodeHead} into `target` at `offset` and returns the offset after it: a copy of
   * the subscription's cached prefix, then the sequence line digit by digit. No string is made
   * per delivery, which matters at one delivery per subscriber per message.
   */
  writeHead(target: Uint8Array, offset: number, version: StompVersion): number {
    const prefix = this.own.prefixBytes(version);
    target.set(prefix, offset);
    offset += prefix.length;
    if (this.seq === 0) return offset;
    target.set(SEQUENCE_NAME, offset);
    offset += SEQUENCE_NAME.length;
    const end = offset + decimalDigits(this.seq);
    let value = this.seq;
    for (let at = end - 1; at >= offset; at--) {
      target[at] = 0x30 + (value % 10);
      value = Math.floor(value / 10);
    }
    target[end] = 0x0a;
    return end + 1;
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
export interface TextForm {
  /** Rewrites any frame text. Rewriting two texts apart must equal rewriting them joined. */
  escape(text: string): string;
  /** What a line feed becomes (the sequence line is ASCII digits and a line feed). */
  readonly newline: string;
}

/** Texts rewritten by a form, by form and STOMP version. */
type FormCache = Map<TextForm, Partial<Record<StompVersion, string>>>;

function inForm(
  cache: FormCache,
  form: TextForm,
  version: StompVersion,
  text: () => string,
): string {
  let byVersion = cache.get(form);
  if (byVersion === undefined) {
    byVersion = {};
    cache.set(form, byVersion);
  }
  return (byVersion[version] ??= form.escape(text()));
}

const SEQUENCE_NAME = encodeUtf8('x-perigee-seq:');
/** The sequence line's bytes besides its digits: the name, the colon and the line feed. */
const SEQUENCE_LINE_FIXED = SEQUENCE_NAME.length + 1;

/** How many decimal digits a positive safe integer has. */
function decimalDigits(value: number): number {
  let digits = 1;
  while (value >= 10) {
    value = Math.floor(value / 10);
    digits++;
  }
  return digits;
}
