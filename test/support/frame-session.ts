import { connect as connectTcp, type Socket } from 'node:net';
import type { Backend } from '../../src/backend.js';
import {
  createFrame,
  encodeFrame,
  FrameParser,
  getHeader,
  type Frame,
  type Header,
  type StompVersion,
} from '../../src/protocol/index.js';

/**
 * One STOMP session seen frame by frame, for tests that check exactly what a server sends. Two
 * kinds: a TCP connection (any broker), and an in-process channel of a {@link Backend}.
 */
export interface FrameSession {
  readonly version: StompVersion;
  /** The CONNECTED frame (TCP sessions only). */
  readonly connected: Frame | undefined;
  send(command: string, headers?: HeaderInput, body?: string | Uint8Array): void;
  /** The next frame the server sent, in order; rejects after `timeoutMs` or if the session closes first. */
  next(timeoutMs?: number): Promise<Frame>;
  /** The first frame with this command; frames before it stay for later. */
  nextOf(command: string, timeoutMs?: number): Promise<Frame>;
  /** The RECEIPT with this receipt-id. */
  receipt(id: string, timeoutMs?: number): Promise<Frame>;
  /** The first ERROR frame. */
  error(timeoutMs?: number): Promise<Frame>;
  /** Resolves when the server has closed the session. */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  close(): void;
}

export type HeaderInput = Readonly<Record<string, string>> | readonly Header[];

export function toHeaders(input: HeaderInput | undefined): Header[] {
  if (!input) return [];
  if (Array.isArray(input)) return [...(input as readonly Header[])];
  return Object.entries(input as Record<string, string>);
}

const DEFAULT_TIMEOUT = 5000;

type FramePredicate = (frame: Frame) => boolean;

interface Waiter {
  readonly matches: FramePredicate;
  readonly resolve: (frame: Frame) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Holds received frames until a test takes them. A test may take a frame out of order (the first
 * RECEIPT, say) and the frames before it stay for later. An ERROR that nobody asked for fails the
 * waiting test at once, with the server's message, instead of a timeout.
 */
class FrameInbox {
  private readonly frames: Frame[] = [];
  private readonly waiters: Waiter[] = [];
  private ended: Error | undefined;

  push(frame: Frame): void {
    const index = this.waiters.findIndex((waiter) => waiter.matches(frame));
    if (index !== -1) {
      this.waiters.splice(index, 1)[0]!.resolve(frame);
      return;
    }
    this.frames.push(frame);
    if (frame.command === 'ERROR') {
      for (const waiter of this.waiters.splice(0)) {
        waiter.reject(
          new Error(`the server sent ERROR: ${getHeader(frame, 'message')} ${text(frame)}`),
        );
      }
    }
  }

  end(reason: Error): void {
    this.ended = reason;
    for (const waiter of this.waiters.splice(0)) waiter.reject(reason);
  }

  private describeHeld(): string {
    const counts = new Map<string, number>();
    for (const frame of this.frames)
      counts.set(frame.command, (counts.get(frame.command) ?? 0) + 1);
    return [...counts].map(([command, count]) => `${count} ${command}`).join(', ') || 'nothing';
  }

  take(matches: FramePredicate, timeoutMs: number, what: string): Promise<Frame> {
    const index = this.frames.findIndex(matches);
    if (index !== -1) return Promise.resolve(this.frames.splice(index, 1)[0]!);
    const error = this.frames.find((frame) => frame.command === 'ERROR');
    if (error) {
      return Promise.reject(
        new Error(`waiting for ${what}, the server sent ERROR: ${getHeader(error, 'message')}`),
      );
    }
    if (this.ended) return Promise.reject(this.ended);
    return new Promise<Frame>((resolve, reject) => {
      const waiter: Waiter = {
        matches,
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        reject: (reason) => {
          clearTimeout(timer);
          reject(reason);
        },
      };
      const timer = setTimeout(() => {
        const at = this.waiters.indexOf(waiter);
        if (at !== -1) this.waiters.splice(at, 1);
        reject(new Error(`no ${what} within ${timeoutMs} ms (holding: ${this.describeHeld()})`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

abstract class BaseSession implements FrameSession {
  abstract readonly version: StompVersion;
  connected: Frame | undefined;
  readonly closed: Promise<void>;
  isClosed = false;
  protected readonly inbox = new FrameInbox();
  private resolveClosed!: () => void;

  constructor() {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  abstract send(command: string, headers?: HeaderInput, body?: string | Uint8Array): void;
  abstract close(): void;

  next(timeoutMs = DEFAULT_TIMEOUT): Promise<Frame> {
    return this.inbox.take(() => true, timeoutMs, 'frame');
  }

  nextOf(command: string, timeoutMs = DEFAULT_TIMEOUT): Promise<Frame> {
    return this.inbox.take((frame) => frame.command === command, timeoutMs, command);
  }

  receipt(id: string, timeoutMs = DEFAULT_TIMEOUT): Promise<Frame> {
    return this.inbox.take(
      (frame) => frame.command === 'RECEIPT' && getHeader(frame, 'receipt-id') === id,
      timeoutMs,
      `RECEIPT ${id}`,
    );
  }

  error(timeoutMs = DEFAULT_TIMEOUT): Promise<Frame> {
    return this.nextOf('ERROR', timeoutMs);
  }

  protected markClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.inbox.end(new Error('the session closed'));
    this.resolveClosed();
  }
}

export interface TcpSessionOptions {
  host?: string;
  port: number;
  login?: string;
  passcode?: string;
  /** accept-version; undefined sends none (STOMP 1.0). Default "1.2". */
  acceptVersion?: string | null;
  heartBeat?: string;
  /** Extra CONNECT headers. */
  headers?: HeaderInput;
  /** Use STOMP instead of CONNECT. */
  stompCommand?: boolean;
}

/** A raw TCP connection to a STOMP server, using Perigee's codec. */
export class TcpFrameSession extends BaseSession {
  version: StompVersion = '1.2';
  readonly socket: Socket;
  private readonly parser: FrameParser;

  private constructor(socket: Socket) {
    super();
    this.socket = socket;
    socket.setNoDelay(true);
    this.parser = new FrameParser((frame) => this.onFrame(frame), { version: '1.0' });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.parser.push(chunk);
      } catch (error) {
        this.inbox.end(error as Error);
      }
    });
    socket.on('close', () => this.markClosed());
    socket.on('error', () => {});
  }

  /** A connected TCP socket that has sent nothing yet. */
  static async openSocket(port: number, host = '127.0.0.1'): Promise<TcpFrameSession> {
    const socket = connectTcp({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new TcpFrameSession(socket);
  }

  /** Connects and completes CONNECT/CONNECTED; throws if the server answers with an ERROR. */
  static async connect(options: TcpSessionOptions): Promise<TcpFrameSession> {
    const session = await TcpFrameSession.openSocket(options.port, options.host);
    const headers: Header[] = [];
    if (options.acceptVersion !== null)
      headers.push(['accept-version', options.acceptVersion ?? '1.2']);
    headers.push(['host', '/']);
    if (options.login !== undefined) headers.push(['login', options.login]);
    if (options.passcode !== undefined) headers.push(['passcode', options.passcode]);
    headers.push(['heart-beat', options.heartBeat ?? '0,0']);
    headers.push(...toHeaders(options.headers));
    session.send(options.stompCommand ? 'STOMP' : 'CONNECT', headers);
    const reply = await session.next();
    if (reply.command !== 'CONNECTED') {
      session.close();
      throw new Error(`expected CONNECTED, got ${reply.command}: ${getHeader(reply, 'message')}`);
    }
    return session;
  }

  send(command: string, headers?: HeaderInput, body: string | Uint8Array = ''): void {
    this.sendBytes(encodeFrame(createFrame(command, toHeaders(headers), body), this.version));
  }

  sendBytes(bytes: Uint8Array | string): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }

  private onFrame(frame: Frame): void {
    if (frame.command === 'CONNECTED' && !this.connected) {
      this.connected = frame;
      const version = getHeader(frame, 'version');
      this.version = version === '1.1' || version === '1.2' ? version : '1.0';
      this.parser.version = this.version;
    }
    this.inbox.push(frame);
  }
}

/** A session on a {@link Backend}'s in-process channel: no CONNECT, STOMP 1.2 rules. */
export class ChannelFrameSession extends BaseSession {
  readonly version: StompVersion = '1.2';
  private channel: Awaited<ReturnType<Backend['open']>> | undefined;

  static async open(backend: Backend, principalId = 'tester'): Promise<ChannelFrameSession> {
    const session = new ChannelFrameSession();
    session.channel = await backend.open({ id: principalId, anonymous: false }, (frame) =>
      session.inbox.push(frame),
    );
    void session.channel.closed.then(() => session.markClosed());
    return session;
  }

  send(command: string, headers?: HeaderInput, body: string | Uint8Array = ''): void {
    this.channel!.send(createFrame(command, toHeaders(headers), body));
  }

  close(): void {
    this.channel!.close();
  }
}

export function text(frame: Frame): string {
  return new TextDecoder().decode(frame.body);
}

let counter = 0;
/** A name no other test (or earlier run against a shared broker) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`;
}
