import { randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../auth/secrets.js';
import type { Principal } from '../backend.js';
import {
  getHeader,
  type Frame,
  type Header,
  type HeartBeat,
  type ParserLimits,
} from '../protocol/index.js';
import { senderHeadersOf, StoredMessage } from './message.js';
import { QueueRegistry, type QueueOverflowPolicy } from './queues.js';
import type { BrokerSession } from './session.js';
import { TopicRegistry } from './topics.js';

/** What CONNECT offers for a login check. The passcode never reaches a log. */
export interface Credentials {
  readonly login: string | undefined;
  readonly passcode: string | undefined;
  /** All CONNECT headers, for hooks that read tokens from elsewhere. */
  readonly headers: readonly Header[];
  /** The peer's address for TCP connections. */
  readonly remoteAddress?: string;
}

/** Returns the principal for valid credentials, or null (or throws) to refuse the connection. */
export type AuthenticateHook = (
  credentials: Credentials,
) => Principal | null | undefined | Promise<Principal | null | undefined>;

export type SlowConsumerPolicy = 'error' | 'drop';

/** The minimal logger the broker writes to; pino fits it. */
export interface BrokerLogger {
  debug(object: object, message: string): void;
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

export interface BrokerOptions {
  /** Limits on one incoming frame (TCP clients). */
  limits?: Partial<ParserLimits>;
  /**
   * The broker's heart-beat offer: [can send every ms, wants to receive every ms]. The default
   * 10000,10000 lets peers that ask for heart-beats detect a dead link within ~20 s.
   */
  heartBeat?: HeartBeat;
  /** Bytes that may wait to be written to one connection. Default 1 MiB. */
  maxQueuedBytes?: number;
  /**
   * Past `maxQueuedBytes` (or `maxUnackedPerSubscription` for a topic subscription that
   * acknowledges): 'error' ends the connection with an ERROR (the default: the client learns it
   * fell behind and can resubscribe from history); 'drop' skips topic messages for that
   * connection and counts them.
   */
  slowConsumerPolicy?: SlowConsumerPolicy;
  /** Messages kept per topic for recovery. Default 100; 0 turns history off. */
  history?: number;
  /** Bytes of history across all topics. Default 64 MiB. */
  maxHistoryBytes?: number;
  /** Messages that may wait in one queue. Default 10000. */
  maxQueueDepth?: number;
  /** Bytes that may wait across all queues. Default 256 MiB. */
  maxQueueBytes?: number;
  /** 'reject' (default) refuses a SEND to a full queue with an ERROR; 'drop-oldest' drops. */
  queueOverflow?: QueueOverflowPolicy;
  /** Default 1000. */
  maxSubscriptionsPerSession?: number;
  /** Messages that may wait for an ACK per subscription; `prefetch-count` may lower it. Default 1000. */
  maxUnackedPerSubscription?: number;
  /** Default 16. */
  maxTransactionsPerSession?: number;
  /** Default 10000. */
  maxTransactionFrames?: number;
  /** Bytes of the frames held in one session's open transactions, all together. Default 16 MiB. */
  maxTransactionBytes?: number;
  /** Bytes held in open transactions across all sessions. Default 256 MiB. */
  maxTransactionBytesTotal?: number;
  /** Bytes of delivered messages that wait for an ACK in one session. Default 16 MiB. */
  maxUnackedBytes?: number;
  /** Bytes of delivered messages that wait for an ACK across all sessions. Default 256 MiB. */
  maxUnackedBytesTotal?: number;
  /** Concurrent TCP connections. Default 10000. */
  maxConnections?: number;
  /** Login check for TCP clients. Without it (and without `users`), every CONNECT is accepted. */
  authenticate?: AuthenticateHook;
  /** Accepted login → passcode pairs, for TCP clients. */
  users?: Readonly<Record<string, string>>;
  /** The CONNECTED `server` header. */
  serverName?: string;
  logger?: BrokerLogger;
}

export interface ResolvedBrokerOptions {
  limits: Partial<ParserLimits>;
  heartBeat: HeartBeat;
  maxQueuedBytes: number;
  slowConsumerPolicy: SlowConsumerPolicy;
  history: number;
  maxHistoryBytes: number;
  maxQueueDepth: number;
  maxQueueBytes: number;
  queueOverflow: QueueOverflowPolicy;
  maxSubscriptionsPerSession: number;
  maxUnackedPerSubscription: number;
  maxTransactionsPerSession: number;
  maxTransactionFrames: number;
  maxTransactionBytes: number;
  maxTransactionBytesTotal: number;
  maxUnackedBytes: number;
  maxUnackedBytesTotal: number;
  maxConnections: number;
  serverName: string;
}

export interface BrokerStats {
  connections: number;
  /** Messages accepted from SEND frames and `publish`. */
  published: number;
  /** MESSAGE frames handed to subscribers. */
  delivered: number;
  /** Topic messages skipped for slow consumers, plus queue messages dropped on overflow. */
  dropped: number;
  topics: number;
  queues: number;
  queuedMessages: number;
  historyBytes: number;
}

const silentLogger: BrokerLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export const SERVER_NAME = 'Perigee/0.1.0';

export function resolveBrokerOptions(options: BrokerOptions): ResolvedBrokerOptions {
  return {
    limits: options.limits ?? {},
    heartBeat: options.heartBeat ?? [10_000, 10_000],
    maxQueuedBytes: options.maxQueuedBytes ?? 1_048_576,
    slowConsumerPolicy: options.slowConsumerPolicy ?? 'error',
    history: options.history ?? 100,
    maxHistoryBytes: options.maxHistoryBytes ?? 64 * 1_048_576,
    maxQueueDepth: options.maxQueueDepth ?? 10_000,
    maxQueueBytes: options.maxQueueBytes ?? 256 * 1_048_576,
    queueOverflow: options.queueOverflow ?? 'reject',
    maxSubscriptionsPerSession: options.maxSubscriptionsPerSession ?? 1000,
    maxUnackedPerSubscription: options.maxUnackedPerSubscription ?? 1000,
    maxTransactionsPerSession: options.maxTransactionsPerSession ?? 16,
    maxTransactionFrames: options.maxTransactionFrames ?? 10_000,
    maxTransactionBytes: options.maxTransactionBytes ?? 16 * 1_048_576,
    maxTransactionBytesTotal: options.maxTransactionBytesTotal ?? 256 * 1_048_576,
    maxUnackedBytes: options.maxUnackedBytes ?? 16 * 1_048_576,
    maxUnackedBytesTotal: options.maxUnackedBytesTotal ?? 256 * 1_048_576,
    maxConnections: options.maxConnections ?? 10_000,
    serverName: options.serverName ?? SERVER_NAME,
  };
}

/**
 * The broker's engine: destinations, routing and the counters. Sessions call into it; it never
 * knows how a session's bytes travel.
 */
export class BrokerCore {
  readonly options: ResolvedBrokerOptions;
  readonly log: BrokerLogger;
  readonly topics: TopicRegistry;
  readonly queues: QueueRegistry;
  readonly sessions = new Set<BrokerSession>();
  readonly stats = { published: 0, delivered: 0, dropped: 0 };
  /**
   * What sessions hold beyond their sockets, across the broker: frames in open transactions, and
   * delivered messages that wait for an ACK. Each is capped per session and in total, so that
   * memory stays bounded however many connections misbehave.
   */
  readonly held = { transactionBytes: 0, unackedBytes: 0 };
  private readonly authenticateHook: AuthenticateHook | undefined;
  private readonly messageIdPrefix = `${randomBytes(4).toString('base64url')}-`;
  private messageCounter = 0;

  constructor(options: BrokerOptions) {
    this.options = resolveBrokerOptions(options);
    this.log = options.logger ?? silentLogger;
    this.authenticateHook =
      options.authenticate ?? (options.users ? usersHook(options.users) : undefined);
    this.topics = new TopicRegistry({
      historyDepth: this.options.history,
      maxHistoryBytes: this.options.maxHistoryBytes,
    });
    this.queues = new QueueRegistry({
      maxDepth: this.options.maxQueueDepth,
      maxBytes: this.options.maxQueueBytes,
      overflow: this.options.queueOverflow,
      deliver: (subscription, message) => subscription.session.deliver(subscription, message),
    });
  }

  /** Whether CONNECT needs valid credentials (a hook or users are configured). */
  get requiresLogin(): boolean {
    return this.authenticateHook !== undefined;
  }

  authenticate(
    credentials: Credentials,
  ): Principal | null | undefined | Promise<Principal | null | undefined> {
    if (!this.authenticateHook) {
      const login = credentials.login;
      return login ? { id: login, anonymous: false } : { id: 'anonymous', anonymous: true };
    }
    return this.authenticateHook(credentials);
  }

  nextMessageId(): string {
    return this.messageIdPrefix + (++this.messageCounter).toString(36);
  }

  /** Accepts a SEND frame's message for `destination`. */
  acceptSend(destination: string, frame: Frame): void {
    this.route(destination, senderHeadersOf(frame), frame.body);
  }

  /** Routes a message to its queue or to the topic's subscribers. Throws QUEUE_FULL. */
  route(destination: string, senderHeaders: readonly Header[], body: Uint8Array): void {
    if (destination.startsWith('/queue/')) {
      this.queues.enqueue(
        new StoredMessage(this.nextMessageId(), destination, senderHeaders, body),
      );
      this.stats.published++;
      return;
    }
    const message = this.topics.append(
      destination,
      (position) =>
        new StoredMessage(this.nextMessageId(), destination, senderHeaders, body, position),
    );
    this.stats.published++;
    this.topics.forEachSubscriber(destination, (subscription) =>
      subscription.session.deliver(subscription, message),
    );
  }

  /** Throws QUEUE_FULL if the SENDs among `frames` would not all fit in their queues. */
  checkQueueRoom(frames: readonly Frame[]): void {
    const perQueue = new Map<string, { bytes: number; count: number }>();
    for (const frame of frames) {
      if (frame.command !== 'SEND') continue;
      const destination = getHeader(frame, 'destination')!;
      if (!destination.startsWith('/queue/')) continue;
      const entry = perQueue.get(destination) ?? { bytes: 0, count: 0 };
      entry.bytes += frame.body.length;
      entry.count++;
      perQueue.set(destination, entry);
    }
    for (const [name, { bytes, count }] of perQueue) this.queues.checkRoom(name, bytes, count);
  }

  sessionClosed(session: BrokerSession): void {
    this.sessions.delete(session);
  }

  snapshot(): BrokerStats {
    return {
      connections: this.sessions.size,
      published: this.stats.published,
      delivered: this.stats.delivered,
      dropped: this.stats.dropped + this.queues.dropped,
      topics: this.topics.topicCount,
      queues: this.queues.queueCount,
      queuedMessages: this.queues.queuedMessages,
      historyBytes: this.topics.historyBytes,
    };
  }
}

function usersHook(users: Readonly<Record<string, string>>): AuthenticateHook {
  return ({ login, passcode }) => {
    if (login === undefined || passcode === undefined) return null;
    if (!Object.hasOwn(users, login)) return null;
    return constantTimeEqual(users[login]!, passcode) ? { id: login, anonymous: false } : null;
  };
}
