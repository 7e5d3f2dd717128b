/**
 * The contracts between layers. The gateway talks to a message engine only through
 * {@link Backend}; the embedded broker implements it, and the relay to RabbitMQ/ActiveMQ will.
 * Applications publish through {@link Publisher}, implemented by the embedded broker (in-process)
 * and by the Node STOMP client (over TCP).
 */
import type { Frame, StompVersion } from './protocol/index.js';

/** Who is on the other end of a connection, as established by authentication. */
export interface Principal {
  /** Stable identity: the login, a JWT subject, or a generated id for anonymous users. */
  readonly id: string;
  readonly anonymous: boolean;
  /** Whatever the authenticator wants to keep (roles, JWT claims, a user record id). */
  readonly attributes?: Readonly<Record<string, unknown>>;
}

export const ANONYMOUS: Principal = Object.freeze({ id: 'anonymous', anonymous: true });

/**
 * A message engine that STOMP sessions run on.
 *
 * Contract:
 * - `open` starts one STOMP session for `principal`, who is already authenticated: there is no
 *   CONNECT on a channel. It resolves once the channel accepts frames.
 * - Frames given to `send` are client frames (SEND, SUBSCRIBE, UNSUBSCRIBE, ACK, NACK, BEGIN,
 *   COMMIT, ABORT, DISCONNECT) and are processed in the order given.
 * - `deliver` receives server frames (MESSAGE, RECEIPT, ERROR) in order. It must not throw and
 *   must not block: the channel calls it synchronously on the engine's hot path.
 * - MESSAGE frames carry `x-perigee-offset` and `x-perigee-epoch` where the engine keeps history
 *   for the destination (DESIGN.md §5).
 * - After an ERROR, the channel is closed (STOMP 1.2 §ERROR) and `closed` resolves.
 * - `close()` is idempotent; it ends the session as if the client had disconnected without a
 *   receipt: unacknowledged queue messages are redelivered, open transactions are dropped.
 */
export interface Backend {
  open(
    principal: Principal,
    deliver: (frame: Frame) => void,
    options?: BackendChannelOptions,
  ): Promise<BackendChannel>;
}

export interface BackendChannelOptions {
  /**
   * The STOMP version the client on the far side speaks: it decides how ACK and NACK name a
   * message (`id` in 1.2, `message-id` and `subscription` before). Default 1.2.
   */
  version?: StompVersion;
}

export interface BackendChannel {
  readonly sessionId: string;
  send(frame: Frame): void;
  close(): void;
  /** Resolves when the channel has closed, for whatever reason. */
  readonly closed: Promise<void>;
}

/** A destination's position in its history: where a subscriber can ask to resume from. */
export interface StreamPosition {
  readonly epoch: string;
  readonly offset: number;
}

/** What an application publishes through. Not bound by the browsers' access rules. */
export interface Publisher {
  /** Resolves once the message is accepted (for the TCP client: when its RECEIPT arrives). */
  publish(
    destination: string,
    body: string | Uint8Array,
    headers?: Readonly<Record<string, string>>,
  ): Promise<void>;
}
