import { PerigeeError } from '../errors.js';
import { unescapeHeader } from './escape.js';
import { headersAreEscaped, type Frame, type Header, type StompVersion } from './frame.js';
import { concatBytes, decodeUtf8 } from './utf8.js';

/** Bounds on what one frame may cost. Every one is checked before the bytes are kept. */
export interface ParserLimits {
  /** Command line, header lines and body together. */
  maxFrameBytes: number;
  /** Header entries per frame, repeats included. */
  maxHeaders: number;
  /** Bytes in the command line or one header line, without its EOL. */
  maxHeaderLineBytes: number;
  /** Bytes in the body. */
  maxBodyBytes: number;
}

export const DEFAULT_PARSER_LIMITS: Readonly<ParserLimits> = {
  maxFrameBytes: 1_310_720,
  maxHeaders: 64,
  maxHeaderLineBytes: 8192,
  maxBodyBytes: 1_048_576,
};

const LF = 10;
const CR = 13;
const NUL = 0;
const COLON = 58;
const MAX_COMMAND_LENGTH = 32;

const enum State {
  Command,
  Headers,
  /** Reading a body of known length (content-length). */
  SizedBody,
  /** After a sized body: the next octet must be the NUL that ends the frame. */
  FrameEnd,
  /** Reading a body that ends at the first NUL. */
  OpenBody,
  /** A fatal error was thrown; nothing more is accepted. */
  Failed,
}

export interface FrameParserOptions {
  limits?: Partial<ParserLimits>;
  /**
   * The STOMP version whose header escaping applies to frames other than CONNECT/CONNECTED.
   * Settable at any time: the broker sets it from inside `onFrame` once CONNECT has negotiated a
   * version, and the frames after it in the same chunk are read with the new rules.
   */
  version?: StompVersion;
  /** Called for each EOL between frames: a heart-beat from the peer. */
  onHeartBeat?: () => void;
}

/**
 * Limits with the defaults filled in, made once per limits object: every connection of a gateway
 * or broker shares the same limits, and a copy each would be an object per idle connection.
 */
const resolvedLimits = new WeakMap<Partial<ParserLimits>, Readonly<ParserLimits>>();

function resolveLimits(limits: Partial<ParserLimits> | undefined): Readonly<ParserLimits> {
  if (limits === undefined) return DEFAULT_PARSER_LIMITS;
  let resolved = resolvedLimits.get(limits);
  if (resolved === undefined) {
    resolved = Object.freeze({ ...DEFAULT_PARSER_LIMITS, ...limits });
    resolvedLimits.set(limits, resolved);
  }
  return resolved;
}

/**
 * A streaming STOMP frame parser. Feed it bytes in any chunking; it calls `onFrame` for each
 * complete frame, synchronously, in order. The first protocol violation throws a
 * {@link PerigeeError} and leaves the parser failed: a STOMP peer must close the connection after
 * an ERROR (STOMP 1.2 §ERROR), so there is no recovery to attempt.
 */
export class FrameParser {
  version: StompVersion;
  readonly limits: Readonly<ParserLimits>;

  readonly #onFrame: (frame: Frame) => void;
  readonly #onHeartBeat: (() => void) | undefined;
  #state = State.Command;
  #stopped = false;
  #failure: PerigeeError | undefined;

  /** Pieces of a line that spans chunks, and their total length. */
  #lineParts: Uint8Array[] = [];
  #lineLength = 0;
  /** Bytes of the current frame so far, EOLs included. */
  #frameBytes = 0;

  #command = '';
  #headers: Header[] = [];
  #unescape = false;
  #contentLength = -1;
  /**
   * The body's bytes so far, sized or not, and their total. Kept as the pieces that arrived, never
   * allocated up front from content-length: a 40-byte frame that announces a 1 MiB body must not
   * cost 1 MiB.
   */
  readonly #bodyParts: Uint8Array[] = [];
  #bodyLength = 0;

  constructor(onFrame: (frame: Frame) => void, options: FrameParserOptions = {}) {
    this.#onFrame = onFrame;
    this.#onHeartBeat = options.onHeartBeat;
    this.version = options.version ?? '1.2';
    this.limits = resolveLimits(options.limits);
  }

  /**
   * Stops parsing at once, even in the middle of a chunk: the frames after the current one are
   * ignored. For a consumer that closes the connection from inside `onFrame`.
   */
  stop(): void {
    this.#stopped = true;
  }

  push(chunk: Uint8Array): void {
    if (this.#failure) throw this.#failure;
    try {
      this.#consume(chunk);
    } catch (error) {
      if (error instanceof PerigeeError) {
        this.#fail(error);
      }
      throw error;
    }
  }

  /** Whether the parser holds part of a frame (bytes that are not yet a whole frame). */
  get midFrame(): boolean {
    return this.#state !== State.Command || this.#lineLength > 0;
  }

  #fail(error: PerigeeError): void {
    this.#failure = error;
    this.#state = State.Failed;
    this.#lineParts = [];
    this.#bodyParts.length = 0;
  }

  #consume(chunk: Uint8Array): void {
    const length = chunk.length;
    let i = 0;
    while (i < length && !this.#stopped) {
      switch (this.#state) {
        case State.Command:
        case State.Headers:
          i = this.#consumeLine(chunk, i);
          break;
        case State.SizedBody: {
          const take = Math.min(this.#contentLength - this.#bodyLength, length - i);
          // A copy, not a view: a body kept in history must not pin the socket's whole chunk.
          this.#bodyParts.push(chunk.slice(i, i + take));
          this.#bodyLength += take;
          i += take;
          if (this.#bodyLength === this.#contentLength) this.#state = State.FrameEnd;
          break;
        }
        case State.FrameEnd:
          // STOMP 1.2: the body is followed by the NULL octet; content-length says where it is.
          if (chunk[i] !== NUL) {
            throw new PerigeeError(
              'CONTENT_LENGTH_MISMATCH',
              `no NUL after the ${this.#contentLength}-byte body that content-length announced`,
            );
          }
          i++;
          this.#emit(this.#takeBody());
          break;
        case State.OpenBody: {
          const nul = chunk.indexOf(NUL, i);
          const end = nul === -1 ? length : nul;
          this.#checkBodySize(this.#bodyLength + (end - i));
          if (end > i) {
            this.#bodyParts.push(chunk.slice(i, end));
            this.#bodyLength += end - i;
          }
          if (nul === -1) {
            i = length;
          } else {
            i = nul + 1;
            const body = this.#takeBody();
            this.#emit(body);
          }
          break;
        }
        case State.Failed:
          throw this.#failure!;
      }
    }
  }

  #checkBodySize(bodyLength: number): void {
    if (bodyLength > this.limits.maxBodyBytes) {
      throw new PerigeeError(
        'BODY_TOO_LARGE',
        `the body exceeds ${this.limits.maxBodyBytes} bytes`,
      );
    }
    if (this.#frameBytes + bodyLength > this.limits.maxFrameBytes) {
      throw new PerigeeError(
        'FRAME_TOO_LARGE',
        `the frame exceeds ${this.limits.maxFrameBytes} bytes`,
      );
    }
  }

  /** Reads up to one line; returns the index after what it consumed. */
  #consumeLine(chunk: Uint8Array, start: number): number {
    const lf = chunk.indexOf(LF, start);
    const end = lf === -1 ? chunk.length : lf;
    const added = end - start;
    const lineLength = this.#lineLength + added;
    // The limit excludes the EOL; allow one byte more for the CR of a CRLF.
    if (lineLength > this.limits.maxHeaderLineBytes + 1) {
      throw new PerigeeError(
        'HEADER_TOO_LONG',
        `a ${this.#state === State.Command ? 'command' : 'header'} line exceeds ${this.limits.maxHeaderLineBytes} bytes`,
      );
    }
    if (this.#frameBytes + added > this.limits.maxFrameBytes) {
      throw new PerigeeError(
        'FRAME_TOO_LARGE',
        `the frame exceeds ${this.limits.maxFrameBytes} bytes`,
      );
    }
    if (lf === -1) {
      if (added > 0) {
        this.#lineParts.push(chunk.slice(start, end));
        this.#lineLength = lineLength;
        this.#frameBytes += added;
      }
      return end;
    }
    let line: Uint8Array;
    if (this.#lineParts.length === 0) {
      line = chunk.subarray(start, end);
    } else {
      this.#lineParts.push(chunk.subarray(start, end));
      line = concatBytes(this.#lineParts, lineLength);
      this.#lineParts = [];
    }
    this.#lineLength = 0;
    this.#frameBytes += added + 1;
    // STOMP 1.2: an EOL is an optional CR followed by a required LF.
    const contentEnd =
      line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
    if (this.#state === State.Command) this.#commandLine(line, contentEnd);
    else this.#headerLine(line, contentEnd);
    return lf + 1;
  }

  #commandLine(line: Uint8Array, end: number): void {
    if (end === 0) {
      // STOMP 1.2 §Heart-beating: EOLs between frames are heart-beats.
      this.#frameBytes = 0;
      this.#onHeartBeat?.();
      return;
    }
    let command = '';
    for (let i = 0; i < end; i++) {
      const byte = line[i]!;
      // Commands are upper-case ASCII words (STOMP 1.2 §Augmented BNF, client-command/server-command).
      if (byte < 0x41 || byte > 0x5a || i >= MAX_COMMAND_LENGTH) {
        throw new PerigeeError('INVALID_COMMAND', describeBadCommand(line, end));
      }
      command += String.fromCharCode(byte);
    }
    this.#command = command;
    this.#headers = [];
    this.#contentLength = -1;
    this.#unescape = headersAreEscaped(command, this.version);
    this.#state = State.Headers;
  }

  #headerLine(line: Uint8Array, end: number): void {
    if (end === 0) {
      this.#startBody();
      return;
    }
    if (this.#headers.length >= this.limits.maxHeaders) {
      throw new PerigeeError(
        'TOO_MANY_HEADERS',
        `a ${this.#command} frame has more than ${this.limits.maxHeaders} headers`,
      );
    }
    const colon = line.indexOf(COLON);
    if (colon === -1 || colon >= end) {
      const nul = line.indexOf(NUL);
      throw new PerigeeError(
        'MALFORMED_FRAME',
        nul !== -1 && nul < end
          ? `${this.#command} frame: NUL inside the headers (is the blank line after the headers missing?)`
          : `${this.#command} frame: header line without ':'`,
      );
    }
    if (colon === 0) {
      throw new PerigeeError(
        'MALFORMED_FRAME',
        `${this.#command} frame: header with an empty name`,
      );
    }
    let name = decodeUtf8(line, 0, colon);
    let value = decodeUtf8(line, colon + 1, end);
    if (this.#unescape) {
      name = unescapeHeader(name, this.version);
      value = unescapeHeader(value, this.version);
    }
    if (name === 'content-length' && this.#contentLength === -1) {
      this.#contentLength = this.#parseContentLength(value);
    }
    this.#headers.push([name, value]);
  }

  #parseContentLength(value: string): number {
    // STOMP 1.2: "octet count for the length of the message body", a non-negative integer.
    if (!/^\d{1,10}$/.test(value)) {
      throw new PerigeeError(
        'CONTENT_LENGTH_MISMATCH',
        `content-length must be a non-negative integer, got "${value.slice(0, 32)}"`,
      );
    }
    const length = Number(value);
    this.#checkBodySize(length);
    return length;
  }

  #startBody(): void {
    if (this.#contentLength === -1) {
      this.#state = State.OpenBody;
    } else {
      this.#state = this.#contentLength === 0 ? State.FrameEnd : State.SizedBody;
    }
  }

  /** The body collected so far, as one array; the collection starts empty again. */
  #takeBody(): Uint8Array {
    const body = concatBytes(this.#bodyParts, this.#bodyLength);
    this.#bodyParts.length = 0;
    this.#bodyLength = 0;
    return body;
  }

  #emit(body: Uint8Array): void {
    const frame: Frame = { command: this.#command, headers: this.#headers, body };
    this.#state = State.Command;
    this.#frameBytes = 0;
    this.#headers = [];
    this.#onFrame(frame);
  }
}

function describeBadCommand(line: Uint8Array, end: number): string {
  const shown = Array.from(line.subarray(0, Math.min(end, 24)), (byte) =>
    byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '.',
  ).join('');
  return `expected a STOMP command such as CONNECT or SEND, got "${shown}${end > 24 ? '…' : ''}"`;
}
