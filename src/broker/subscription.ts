import {
  compilePattern,
  encodeUtf8,
  escapeHeader,
  type OwnHeaders,
  type PatternMatcher,
  type StompVersion,
} from '../protocol/index.js';
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
  /** The own headers of this subscription's in-process deliveries (see ChannelSession). */
  ownHeaders: OwnHeaders | undefined;
  private prefix: Uint8Array | undefined;
  private prefixVersion: StompVersion | undefined;

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
   * The encoded start of every MESSAGE for this subscription: the command line and the
   * `subscription` header. Built once, since it is the same for every message.
   */
  messagePrefix(version: StompVersion): Uint8Array {
    if (this.prefix === undefined || this.prefixVersion !== version) {
      const id =
        version === '1.0' ? this.id.replace(/[\r\n]/g, ' ') : escapeHeader(this.id, version);
      this.prefix = encodeUtf8(`MESSAGE\nsubscription:${id}\n`);
      this.prefixVersion = version;
    }
    return this.prefix;
  }
}
