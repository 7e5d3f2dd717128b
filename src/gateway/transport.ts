import type { Frame, StompVersion } from '../protocol/index.js';

/** The names used everywhere: client options, bots, bench, docs (DESIGN.md §4). */
export const TRANSPORT_NAMES = [
  'websocket',
  'sockjs-websocket',
  'eventsource',
  'xhr-streaming',
  'htmlfile',
  'xhr-polling',
  'jsonp-polling',
  'short-polling',
] as const;

export type TransportName = (typeof TRANSPORT_NAMES)[number];

/**
 * One connection that carries a browser's STOMP frames: a WebSocket, a SockJS session, a
 * short-polling session. A {@link GatewaySession} outlives its transports; a transport never
 * outlives the connection it stands for.
 *
 * Contract:
 * - `writeFrames` encodes a batch of STOMP frames and sends it in one write, in order, before it
 *   returns: the caller reuses the array. `writeHeartBeat` sends a heart-beat. Neither throws;
 *   they return false once the transport holds more than it should (the session then treats the
 *   browser as slow).
 * - `onData` receives what the browser sent, in order, in any chunking (frames may span calls).
 * - `onClose` fires exactly once, whoever closed.
 */
export interface Transport {
  readonly name: string;
  /** Browser-to-server traffic goes through separate requests (SockJS `*_send`, polling POSTs). */
  readonly unidirectional: boolean;
  /** Bytes handed to the transport and not yet on the wire. */
  readonly bufferedBytes: number;
  /**
   * Request headers of the connection, for origin and authentication context. Read once, when the
   * CONNECT frame arrives; see {@link Transport.releaseRequest}.
   */
  readonly requestHeaders: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * The CONNECT frame has been read: the transport may let go of the request headers it kept
   * (several hundred bytes that an idle connection would otherwise carry for its whole life).
   */
  releaseRequest?(): void;
  readonly remoteAddress: string | undefined;
  onData: ((data: string | Uint8Array) => void) | null;
  onClose: ((reason: string) => void) | null;
  /**
   * Encodes the frames and hands them over as one write. The transport encodes them itself so
   * that it can reuse what every subscriber of a message shares: the WebSocket transport frames
   * the batch in place as one buffer, SockJS transports JSON-escape a message's shared part once.
   */
  writeFrames(frames: readonly Frame[], version: StompVersion): boolean;
  /** A STOMP heart-beat: one end-of-line (STOMP 1.2 §Heart-beating). */
  writeHeartBeat(): boolean;
  /** `code` follows the WebSocket close codes of the error table. */
  close(code: number, reason: string): void;
}
