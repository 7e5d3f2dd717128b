import { compilePattern, OwnHeaders, type PatternMatcher } from '../protocol/index.js';
import type { StoredMessage } from './message.js';
import type { BrokerSession } from './session.js';

export type AckMode = 'auto' | 'client' | 'client-individual';

export const ACK_MODES: readonly AckMode[] = ['auto', 'client', 'client-individual'];

/** A delivered message that waits for the subscriber's ACK or NACK. */
export interface PendingAck {
  /** What the client names in ACK: the `ack` header (1.2) or the `message-id` (1.0, 1.1). */
  readonly key: string;
  readonly message: StoredMessage;
  readonly subscription: Subscription;
}

/**
 * One SUBSCRIBE of one session. Holds what is unacknowledged, in delivery order, so that a
 * `client`-mode ACK can acknowledge everything up to the message it names (STOMP 1.2 §SUBSCRIBE
 * "ack Header": "the ACK operates cumulatively").
 */
export class Subscription {
  readonly id: string;
  /** The SUBSCRIBE destination: a name, or a pattern with `*` / `**` for topics. */
  readonly destination: string;
  readonly ackMode: AckMode;
  readonly session: BrokerSession;
  readonly isQueue: boolean;
  /** At most this many messages may wait for an ACK (the `prefetch-count` header). */
  readonly maxUnacked: number;
  readonly matches: PatternMatcher;
  /**
   * Unacknowledged deliveries by key, in delivery order. Made on the first one: most
   * subscriptions are `auto` and never need it, and an empty Map is a few hundred bytes that an
   * idle session should not carry.
   */
  pending: Map<string, PendingAck> | undefined;
  /** Whether the client sent an `id` (STOMP 1.0 allows SUBSCRIBE without one). */
  readonly explicitId: boolean;
  private own: OwnHeaders | undefined;

  constructor(init: {
    id: string;
    explicitId: boolean;
    destination: string;
    ackMode: AckMode;
    session: BrokerSession;
    isQueue: boolean;
    maxUnacked: number;
  }) {
    this.id = init.id;
    this.explicitId = init.explicitId;
    this.destination = init.destination;
    this.ackMode = init.ackMode;
    this.session = init.session;
    this.isQueue = init.isQueue;
    this.maxUnacked = init.maxUnacked;
    this.matches = compilePattern(init.destination);
  }

  get acknowledges(): boolean {
    return this.ackMode !== 'auto';
  }

  /** Whether another message may be handed to this subscription now. */
  get hasRoom(): boolean {
    return (this.pending?.size ?? 0) < this.maxUnacked;
  }

  /**
   * The headers that start every MESSAGE of this subscription (`subscription`, when there is no
   * per-delivery `ack`), with their encoded forms cached once per version: the same for every
   * message, whatever session carries it (TCP or in-process).
   */
  get ownHeaders(): OwnHeaders {
    return (this.own ??= new OwnHeaders([['subscription', this.id]]));
  }
}
