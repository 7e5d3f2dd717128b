import { unguessableId } from '../ids.js';
import type { Principal } from '../backend.js';
import { PerigeeError } from '../errors.js';
import {
  errorFrame,
  getHeader,
  negotiateVersion,
  parseHeartBeat,
  validateDestinationName,
  validatePattern,
  isWildcardPattern,
  type Frame,
  type Header,
  type HeartBeat,
  type StompVersion,
} from '../protocol/index.js';
import type { BrokerCore } from './core.js';
import type { StoredMessage } from './message.js';
import { ACK_MODES, Subscription, type AckMode, type PendingAck } from './subscription.js';

type SessionState = 'new' | 'authenticating' | 'connected' | 'closed';

interface Transaction {
  readonly frames: Frame[];
  bytes: number;
}

/** What a parsed frame costs to hold, beyond its bytes: the objects around them, roughly. */
const FRAME_OVERHEAD_BYTES = 64;

/** What a frame costs to hold: its body, its header lines and its objects, roughly. */
function heldSize(frame: Frame): number {
  let size = FRAME_OVERHEAD_BYTES + frame.body.length + frame.command.length;
  for (const [name, value] of frame.headers) size += name.length + value.length + 2;
  return size;
}

/** The unacknowledged-bytes caps, as bits of {@link BrokerSession.unackedCapsReached}. */
const SESSION_CAP = 1;
const BROKER_CAP = 2;

/** Unguessable session ids (DESIGN.md §5: the `session` header of CONNECTED). */
export function newSessionId(): string {
  return unguessableId(16);
}

/**
 * The server side of one STOMP session, whatever carries it: a TCP socket ({@link TcpSession}) or
 * an in-process channel ({@link ChannelSession}). It owns the protocol rules; subclasses only
 * say how frames leave.
 */
export abstract class BrokerSession {
  readonly id = newSessionId();
  version: StompVersion = '1.0';
  principal: Principal | undefined;
  /** Topic messages this session did not receive because it was too slow. */
  dropped = 0;

  protected state: SessionState = 'new';
  protected readonly core: BrokerCore;
  protected readonly subscriptions = new Map<string, Subscription>();
  /**
   * STOMP 1.2 ack ids of unacknowledged deliveries, across subscriptions; made on the first (see
   * Subscription.pending).
   */
  private acksById: Map<string, PendingAck> | undefined;
  private transactions: Map<string, Transaction> | undefined;
  /** Bytes held in this session's open transactions, all together. */
  private transactionBytes = 0;
  /** Bytes of this session's delivered messages that wait for an ACK. */
  private unackedBytes = 0;
  /** Which of the session's queue subscriptions a released cap re-offers first, in turn. */
  private reofferTurn = 0;
  private framesWhileAuthenticating: Frame[] | undefined;
  private bytesWhileAuthenticating = 0;
  private ackCounter = 0;

  constructor(core: BrokerCore) {
    this.core = core;
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** The peer's network address, where there is one. */
  get remoteAddress(): string | undefined {
    return undefined;
  }

  /** Bytes written to this session that have not left the process yet. */
  abstract queuedBytes(): number;

  /** Sends a frame other than MESSAGE. */
  protected abstract writeFrame(frame: Frame): void;

  /** Sends a MESSAGE; `ackId` is set when the client must acknowledge it with `id` (1.2). */
  protected abstract writeMessage(
    subscription: Subscription,
    message: StoredMessage,
    ackId: string | undefined,
  ): void;

  /** Ends the transport: `graceful` flushes what is queued first. */
  protected abstract terminate(graceful: boolean): void;

  /**
   * Called as soon as CONNECT has negotiated the version, before any login check finishes: the
   * frames the client pipelined behind CONNECT must be read with that version's escaping.
   */
  protected onVersionNegotiated(_version: StompVersion): void {}

  /** Called when a login check starts (TCP sessions stop reading until it ends). */
  protected onAuthenticating(): void {}

  /** Called when CONNECTED has been sent (TCP sessions start their heart-beat timer). */
  protected onConnected(_clientHeartBeat: HeartBeat): void {}

  /**
   * Whether a queue may hand `subscription` another message now: the session is not backed up,
   * and, if the subscription acknowledges, the unacknowledged-bytes caps leave room. An `auto`
   * subscription adds nothing unacknowledged, so those caps never hold it back.
   */
  canTakeQueueMessage(subscription: Subscription): boolean {
    return (
      this.state === 'connected' &&
      this.queuedBytes() < this.core.options.maxQueuedBytes &&
      (!subscription.acknowledges || this.hasRoomForUnacked(0))
    );
  }

  /** Whether `size` more bytes may wait for an ACK, in this session and in the broker. */
  private hasRoomForUnacked(size: number): boolean {
    return this.unackedBytesOver(size) === undefined;
  }

  /** The cap that `size` more unacknowledged bytes would pass, if any, said as an ERROR detail. */
  private unackedBytesOver(size: number): string | undefined {
    const { maxUnackedBytes, maxUnackedBytesTotal } = this.core.options;
    if (this.unackedBytes + size > maxUnackedBytes) {
      return `more than ${maxUnackedBytes} bytes wait for an ACK`;
    }
    if (this.core.held.unackedBytes + size > maxUnackedBytesTotal) {
      return `more than ${maxUnackedBytesTotal} bytes wait for an ACK across the broker`;
    }
    return undefined;
  }

  /**
   * Why a topic message of `size` bytes cannot go to this subscription now (the slow-consumer
   * policy then applies), or undefined when it can.
   */
  private whyTooSlow(subscription: Subscription, size: number): string | undefined {
    const { maxQueuedBytes } = this.core.options;
    if (this.queuedBytes() + size > maxQueuedBytes) {
      return `more than ${maxQueuedBytes} bytes wait to be sent`;
    }
    if (!subscription.acknowledges) return undefined;
    if (!subscription.hasRoom)
      return `more than ${subscription.maxUnacked} messages wait for an ACK`;
    return this.unackedBytesOver(size);
  }

  /** Processes one client frame. Protocol errors end the session with an ERROR frame. */
  handleFrame(frame: Frame): void {
    if (this.state === 'closed') return;
    if (this.state === 'authenticating') {
      const waiting = (this.framesWhileAuthenticating ??= []);
      const size = heldSize(frame);
      // One frame always fits, whatever its size: the parser's limits already bound it. A TCP
      // session stops reading during the check, so it holds at most the rest of one chunk.
      if (
        waiting.length > 0 &&
        this.bytesWhileAuthenticating + size > this.core.options.maxQueuedBytes
      ) {
        this.fail(
          new PerigeeError(
            'LIMIT_EXCEEDED',
            `more than ${this.core.options.maxQueuedBytes} bytes of frames before CONNECTED`,
          ),
          frame,
        );
        return;
      }
      this.bytesWhileAuthenticating += size;
      waiting.push(frame);
      return;
    }
    try {
      this.dispatch(frame);
    } catch (error) {
      this.fail(error, frame);
    }
  }

  /**
   * Ends the session with an ERROR frame (STOMP 1.2 §ERROR: "the server MUST then close the
   * connection"). The ERROR carries `receipt-id` when the offending frame asked for a receipt.
   */
  fail(error: unknown, frame?: Frame): void {
    if (this.state === 'closed') return;
    const perigeeError =
      error instanceof PerigeeError
        ? error
        : new PerigeeError('INTERNAL', 'unexpected server error', { cause: error });
    if (!(error instanceof PerigeeError)) {
      this.core.log.error({ err: error, session: this.id }, 'unexpected error in a STOMP session');
    } else {
      this.core.log.debug(
        { session: this.id, code: perigeeError.code, detail: perigeeError.detail },
        'STOMP session failed',
      );
    }
    this.writeFrame(errorFrame(perigeeError, frame));
    this.end(true);
  }

  /** Ends the session without a word: the transport went away, or the owner closed it. */
  end(graceful: boolean): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.release();
    this.terminate(graceful);
  }

  /**
   * Hands a message to this session for one of its subscriptions. Topic messages past the
   * session's queued-bytes cap are dropped and counted, or end the session, per the broker's
   * slow-consumer policy. Queue messages are only offered when {@link canTakeQueueMessage}.
   */
  deliver(subscription: Subscription, message: StoredMessage): void {
    if (this.state !== 'connected') return;
    if (!subscription.isQueue) {
      const tooSlow = this.whyTooSlow(subscription, message.size);
      if (tooSlow !== undefined) {
        if (this.core.options.slowConsumerPolicy === 'error') {
          this.fail(new PerigeeError('SLOW_CONSUMER', tooSlow));
        } else {
          this.dropped++;
          this.core.stats.dropped++;
        }
        return;
      }
    }
    let ackId: string | undefined;
    if (subscription.acknowledges) {
      const key = this.version === '1.2' ? String(++this.ackCounter) : message.id;
      const pending: PendingAck = { key, message, subscription };
      (subscription.pending ??= new Map()).set(key, pending);
      this.unackedBytes += message.size;
      this.core.held.unackedBytes += message.size;
      if (this.version === '1.2') {
        (this.acksById ??= new Map()).set(key, pending);
        ackId = key;
      }
    }
    this.core.stats.delivered++;
    this.writeMessage(subscription, message, ackId);
  }

  /** The session's output drained: queues may hand it messages again. */
  protected drained(): void {
    for (const subscription of this.subscriptions.values()) {
      if (subscription.isQueue) this.core.queues.dispatchTo(subscription);
    }
  }

  protected startConnected(principal: Principal, version: StompVersion): void {
    this.principal = principal;
    this.version = version;
    this.state = 'connected';
  }

  private dispatch(frame: Frame): void {
    const command = frame.command;
    if (this.state === 'new') {
      if (command === 'CONNECT' || command === 'STOMP') {
        this.connect(frame);
        return;
      }
      throw new PerigeeError('NOT_CONNECTED', `got ${command} before CONNECT`);
    }
    switch (command) {
      case 'SEND':
        this.acceptSendFrame(frame);
        break;
      case 'SUBSCRIBE':
        this.subscribe(frame);
        return; // sends its own RECEIPT, after any replayed history
      case 'UNSUBSCRIBE':
        this.unsubscribe(frame);
        break;
      case 'ACK':
        this.acknowledge(frame, true);
        break;
      case 'NACK':
        if (this.version === '1.0')
          throw new PerigeeError('UNKNOWN_COMMAND', 'NACK is not part of STOMP 1.0');
        this.acknowledge(frame, false);
        break;
      case 'BEGIN':
        this.begin(frame);
        break;
      case 'COMMIT':
        this.commit(frame);
        break;
      case 'ABORT':
        this.closeTransaction(this.transactionOf(frame, 'ABORT'), frame);
        break;
      case 'DISCONNECT':
        this.receipt(frame);
        this.end(true);
        return;
      case 'CONNECT':
      case 'STOMP':
        throw new PerigeeError('ALREADY_CONNECTED', 'this session already sent CONNECT');
      default:
        throw new PerigeeError(
          'UNKNOWN_COMMAND',
          `${command} is not a STOMP client command (SEND, SUBSCRIBE, UNSUBSCRIBE, ACK, NACK, BEGIN, COMMIT, ABORT, DISCONNECT)`,
        );
    }
    this.receipt(frame);
  }

  private receipt(frame: Frame, extra: Header[] = []): void {
    const receipt = getHeader(frame, 'receipt');
    if (receipt === undefined || this.state === 'closed') return;
    this.writeFrame({
      command: 'RECEIPT',
      headers: [['receipt-id', receipt], ...extra],
      body: EMPTY,
    });
  }

  private connect(frame: Frame): void {
    const version = negotiateVersion(getHeader(frame, 'accept-version'));
    this.version = version;
    this.onVersionNegotiated(version);
    const heartBeat = parseHeartBeat(getHeader(frame, 'heart-beat'));
    this.state = 'authenticating';
    this.onAuthenticating();
    const credentials = {
      login: getHeader(frame, 'login'),
      passcode: getHeader(frame, 'passcode'),
      headers: frame.headers,
      remoteAddress: this.remoteAddress,
    };
    const finish = (principal: Principal | null | undefined): void => {
      if (this.state !== 'authenticating') return;
      if (!principal) {
        this.state = 'new';
        this.fail(new PerigeeError('UNAUTHENTICATED', 'bad login or passcode'), frame);
        return;
      }
      this.startConnected(principal, version);
      const [send, receive] = this.core.options.heartBeat;
      this.writeFrame({
        command: 'CONNECTED',
        headers: [
          ['version', version],
          ['session', this.id],
          ['server', this.core.options.serverName],
          ['heart-beat', `${send},${receive}`],
        ],
        body: EMPTY,
      });
      const waiting = this.framesWhileAuthenticating;
      this.framesWhileAuthenticating = undefined;
      this.bytesWhileAuthenticating = 0;
      if (waiting) for (const next of waiting) this.handleFrame(next);
      // Last: a TCP session reads on from here, and what it reads came after those frames.
      if (!this.isClosed) this.onConnected(heartBeat);
    };
    const failed = (error: unknown): void => {
      if (this.state !== 'authenticating') return;
      this.state = 'new';
      this.fail(
        error instanceof PerigeeError
          ? error
          : new PerigeeError('UNAUTHENTICATED', 'the login check failed', { cause: error }),
        frame,
      );
    };
    let result: Principal | null | undefined | Promise<Principal | null | undefined>;
    try {
      result = this.core.authenticate(credentials);
    } catch (error) {
      failed(error);
      return;
    }
    if (result instanceof Promise) result.then(finish, failed);
    else finish(result);
  }

  private acceptSendFrame(frame: Frame): void {
    const destination = requireHeader(frame, 'destination');
    validateDestinationName(destination);
    const transaction = getHeader(frame, 'transaction');
    if (transaction !== undefined) {
      this.addToTransaction(frame, transaction);
      return;
    }
    this.core.acceptSend(destination, frame);
  }

  private subscribe(frame: Frame): void {
    const destination = requireHeader(frame, 'destination');
    validatePattern(destination);
    let id = getHeader(frame, 'id');
    const explicitId = id !== undefined;
    if (id === undefined) {
      // STOMP 1.0 made the id optional; 1.1 and 1.2 require it.
      if (this.version !== '1.0') throw missingHeader(frame, 'id');
      id = destination;
    }
    if (this.subscriptions.has(id)) {
      throw new PerigeeError('DUPLICATE_SUBSCRIPTION', `id "${id}" is already subscribed`);
    }
    if (this.subscriptions.size >= this.core.options.maxSubscriptionsPerSession) {
      throw new PerigeeError(
        'LIMIT_EXCEEDED',
        `a session may hold ${this.core.options.maxSubscriptionsPerSession} subscriptions`,
      );
    }
    const ackMode = (getHeader(frame, 'ack') ?? 'auto') as AckMode;
    if (!ACK_MODES.includes(ackMode)) {
      throw new PerigeeError(
        'INVALID_HEADER',
        `ack must be auto, client or client-individual, got "${ackMode}"`,
      );
    }
    const isQueue = destination.startsWith('/queue/');
    if (isQueue && isWildcardPattern(destination)) {
      throw new PerigeeError(
        'INVALID_DESTINATION',
        `"${destination}": wildcards work on topics only, not on /queue/ destinations`,
      );
    }
    const since = getHeader(frame, 'x-perigee-since');
    if (since !== undefined) {
      if (isQueue || isWildcardPattern(destination)) {
        throw new PerigeeError(
          'INVALID_HEADER',
          'x-perigee-since works on a single topic, not on queues or wildcard patterns',
        );
      }
      if (getHeader(frame, 'receipt') === undefined) {
        throw new PerigeeError(
          'MISSING_HEADER',
          'x-perigee-since needs a receipt header: the RECEIPT says whether the history covered the gap',
        );
      }
    }
    const subscription = new Subscription({
      id,
      explicitId,
      destination,
      ackMode,
      session: this,
      isQueue,
      maxUnacked: prefetchOf(frame, this.core.options.maxUnackedPerSubscription),
    });
    this.subscriptions.set(id, subscription);
    if (isQueue) {
      this.core.queues.addConsumer(subscription);
      this.receipt(frame);
      return;
    }
    let recovered: boolean | undefined;
    if (since !== undefined) {
      const replay = this.core.topics.replay(destination, parsePosition(since));
      recovered = replay.recovered;
      for (const message of replay.messages) this.deliver(subscription, message);
    }
    // Registered after the replay: nothing can be published in between (this is synchronous),
    // so the subscriber sees history and live messages without a gap or a duplicate.
    this.core.topics.subscribe(subscription);
    const extra: Header[] = [];
    if (recovered !== undefined) extra.push(['x-perigee-recovered', String(recovered)]);
    if (!isWildcardPattern(destination)) {
      // Where the subscription starts: a client that loses its connection before any message
      // arrives can still resubscribe since this position, and lose nothing.
      const { epoch, offset } = this.core.topics.position(destination);
      extra.push(['x-perigee-position', `${epoch}:${offset}`]);
    }
    this.receipt(frame, extra);
  }

  private unsubscribe(frame: Frame): void {
    let id = getHeader(frame, 'id');
    if (id === undefined) {
      if (this.version !== '1.0') throw missingHeader(frame, 'id');
      // STOMP 1.0: UNSUBSCRIBE may name the destination instead.
      id = getHeader(frame, 'destination');
      if (id === undefined) throw missingHeader(frame, 'id');
    }
    const subscription = this.subscriptions.get(id);
    if (!subscription) {
      throw new PerigeeError('UNKNOWN_SUBSCRIPTION', `no subscription with id "${id}"`);
    }
    this.removeSubscription(subscription);
  }

  private removeSubscription(subscription: Subscription): void {
    this.subscriptions.delete(subscription.id);
    const capsReached = this.unackedCapsReached();
    const unacked: StoredMessage[] = [];
    if (subscription.pending !== undefined) {
      for (const pending of subscription.pending.values()) {
        unacked.push(pending.message);
        this.acksById?.delete(pending.key);
        this.releaseUnacked(pending.message);
      }
      subscription.pending.clear();
    }
    if (subscription.isQueue) {
      this.core.queues.removeConsumer(subscription);
      // STOMP leaves unacknowledged messages to the server; a queue gives them to another consumer.
      this.core.queues.requeue(subscription.destination, unacked);
    } else {
      this.core.topics.unsubscribe(subscription);
    }
    this.reofferAfterRelease(capsReached);
  }

  private findPending(frame: Frame): PendingAck {
    const id = getHeader(frame, 'id');
    if (id !== undefined && this.version === '1.2') {
      const pending = this.acksById?.get(id);
      if (pending) return pending;
      throw new PerigeeError(
        'UNKNOWN_ACK',
        `no message waits for an ${frame.command} with id "${id}"`,
      );
    }
    // STOMP 1.0 and 1.1 name the message by message-id (and, in 1.1, the subscription).
    const messageId = getHeader(frame, 'message-id') ?? id;
    if (messageId === undefined) {
      throw missingHeader(frame, this.version === '1.2' ? 'id' : 'message-id');
    }
    const subscriptionId = getHeader(frame, 'subscription');
    if (subscriptionId !== undefined) {
      const pending = this.subscriptions.get(subscriptionId)?.pending?.get(messageId);
      if (pending) return pending;
    } else {
      for (const subscription of this.subscriptions.values()) {
        const pending = subscription.pending?.get(messageId);
        if (pending) return pending;
      }
    }
    throw new PerigeeError(
      'UNKNOWN_ACK',
      `no message "${messageId}" waits for an ${frame.command}${subscriptionId === undefined ? '' : ` on subscription "${subscriptionId}"`}`,
    );
  }

  private acknowledge(frame: Frame, positive: boolean): void {
    const pending = this.findPending(frame);
    const transaction = getHeader(frame, 'transaction');
    if (transaction !== undefined) {
      this.addToTransaction(frame, transaction);
      return;
    }
    this.settle(pending, positive);
  }

  /**
   * Completes an ACK or NACK. In `client` mode it covers every earlier unacknowledged message of
   * the subscription too. A NACKed queue message goes back to the queue; a NACKed topic message
   * is dropped, as there is nobody else to give it to.
   */
  private settle(pending: PendingAck, positive: boolean): void {
    const subscription = pending.subscription;
    const unacked = subscription.pending;
    if (unacked?.has(pending.key) !== true) return; // already covered by a cumulative ACK
    const settled: StoredMessage[] = [];
    if (subscription.ackMode === 'client') {
      for (const [key, entry] of unacked) {
        unacked.delete(key);
        this.acksById?.delete(key);
        settled.push(entry.message);
        if (key === pending.key) break;
      }
    } else {
      unacked.delete(pending.key);
      this.acksById?.delete(pending.key);
      settled.push(pending.message);
    }
    const capsReached = this.unackedCapsReached();
    for (const message of settled) this.releaseUnacked(message);
    if (subscription.isQueue && !positive) {
      this.core.queues.requeue(subscription.destination, settled);
    }
    // The queues a cap held back go before this subscription's own backlog, which would
    // otherwise fill the room just freed again and keep them waiting for as long as it lasts.
    this.reofferAfterRelease(capsReached, subscription);
    if (subscription.isQueue && positive) this.core.queues.dispatchTo(subscription);
  }

  private releaseUnacked(message: StoredMessage): void {
    this.unackedBytes -= message.size;
    this.core.held.unackedBytes -= message.size;
  }

  /**
   * Which unacknowledged-bytes caps hold queue messages back now (see canTakeQueueMessage), as
   * bits: it is asked on every ACK, so it makes no object.
   */
  private unackedCapsReached(): number {
    const { maxUnackedBytes, maxUnackedBytesTotal } = this.core.options;
    return (
      (this.unackedBytes > maxUnackedBytes ? SESSION_CAP : 0) |
      (this.core.held.unackedBytes > maxUnackedBytesTotal ? BROKER_CAP : 0)
    );
  }

  /**
   * A cap that was reached held back every queue it covers, not only the one whose message was
   * settled: the session's cap its own queue subscriptions, the broker's cap every queue with
   * acknowledging consumers. Once released, those queues hand out what waits in them now, not at
   * their next SEND or ACK; `settled`'s own queue comes last.
   */
  private reofferAfterRelease(before: number, settled?: Subscription): void {
    if (before === 0) return;
    const lifted = before & ~this.unackedCapsReached();
    if (lifted & BROKER_CAP) {
      this.core.queues.dispatchHeldBack(
        () => (this.unackedCapsReached() & BROKER_CAP) === 0,
        settled?.isQueue ? settled.destination : undefined,
      );
    } else if (lifted & SESSION_CAP) {
      const others = [...this.subscriptions.values()].filter(
        (subscription) => subscription.isQueue && subscription !== settled,
      );
      // From a different one each time: the first to go may fill the room again.
      const first = others.length === 0 ? 0 : this.reofferTurn++ % others.length;
      for (let i = 0; i < others.length; i++)
        this.core.queues.dispatchTo(others[(first + i) % others.length]!);
    }
  }

  private begin(frame: Frame): void {
    const name = requireHeader(frame, 'transaction');
    const transactions = (this.transactions ??= new Map());
    if (transactions.has(name)) {
      throw new PerigeeError('DUPLICATE_TRANSACTION', `transaction "${name}" is already open`);
    }
    if (transactions.size >= this.core.options.maxTransactionsPerSession) {
      throw new PerigeeError(
        'LIMIT_EXCEEDED',
        `a session may hold ${this.core.options.maxTransactionsPerSession} open transactions`,
      );
    }
    transactions.set(name, { frames: [], bytes: 0 });
  }

  private transactionOf(frame: Frame, command: string): Transaction {
    const name = requireHeader(frame, 'transaction');
    const transaction = this.transactions?.get(name);
    if (!transaction) {
      throw new PerigeeError(
        'UNKNOWN_TRANSACTION',
        `${command} names transaction "${name}", which is not open`,
      );
    }
    return transaction;
  }

  private addToTransaction(frame: Frame, name: string): void {
    const transaction = this.transactions?.get(name);
    if (!transaction) {
      throw new PerigeeError(
        'UNKNOWN_TRANSACTION',
        `${frame.command} names transaction "${name}", which is not open (send BEGIN first)`,
      );
    }
    const { maxTransactionFrames, maxTransactionBytes, maxTransactionBytesTotal } =
      this.core.options;
    const size = heldSize(frame);
    if (transaction.frames.length >= maxTransactionFrames) {
      throw new PerigeeError(
        'LIMIT_EXCEEDED',
        `transaction "${name}" exceeds ${maxTransactionFrames} frames`,
      );
    }
    if (this.transactionBytes + size > maxTransactionBytes) {
      throw new PerigeeError(
        'LIMIT_EXCEEDED',
        `this session's open transactions exceed ${maxTransactionBytes} bytes`,
      );
    }
    if (this.core.held.transactionBytes + size > maxTransactionBytesTotal) {
      throw new PerigeeError(
        'LIMIT_EXCEEDED',
        `open transactions across the broker exceed ${maxTransactionBytesTotal} bytes; commit or abort first`,
      );
    }
    transaction.bytes += size;
    this.transactionBytes += size;
    this.core.held.transactionBytes += size;
    transaction.frames.push(frame);
  }

  /** Forgets an open transaction (committed or aborted) and what it held. */
  private closeTransaction(transaction: Transaction, frame: Frame): void {
    this.transactions!.delete(getHeader(frame, 'transaction')!);
    this.transactionBytes -= transaction.bytes;
    this.core.held.transactionBytes -= transaction.bytes;
  }

  /** Applies a transaction's sends and acks in order: all of them, or none if a queue is full. */
  private commit(frame: Frame): void {
    const transaction = this.transactionOf(frame, 'COMMIT');
    this.closeTransaction(transaction, frame);
    this.core.checkQueueRoom(transaction.frames);
    for (const entry of transaction.frames) {
      if (entry.command === 'SEND') {
        this.core.acceptSend(getHeader(entry, 'destination')!, entry);
      } else {
        // An earlier cumulative ACK in the same transaction may have settled this one already.
        let pending: PendingAck | undefined;
        try {
          pending = this.findPending(entry);
        } catch {
          continue;
        }
        this.settle(pending, entry.command === 'ACK');
      }
    }
  }

  /** Gives back what the session holds: unacknowledged queue messages and open transactions. */
  private release(): void {
    this.transactions = undefined;
    this.core.held.transactionBytes -= this.transactionBytes;
    this.transactionBytes = 0;
    this.framesWhileAuthenticating = undefined;
    this.bytesWhileAuthenticating = 0;
    for (const subscription of [...this.subscriptions.values()])
      this.removeSubscription(subscription);
    this.core.sessionClosed(this);
  }
}

const EMPTY = new Uint8Array(0);

function missingHeader(frame: Frame, name: string): PerigeeError {
  return new PerigeeError('MISSING_HEADER', `${frame.command} frame has no ${name} header`);
}

function requireHeader(frame: Frame, name: string): string {
  const value = getHeader(frame, name);
  if (value === undefined) throw missingHeader(frame, name);
  return value;
}

/** `prefetch-count` (as RabbitMQ names it) caps unacknowledged messages, within the broker's cap. */
function prefetchOf(frame: Frame, cap: number): number {
  const value = getHeader(frame, 'prefetch-count');
  if (value === undefined) return cap;
  if (!/^\d{1,9}$/.test(value) || Number(value) === 0) {
    throw new PerigeeError(
      'INVALID_HEADER',
      `prefetch-count must be a positive integer, got "${value}"`,
    );
  }
  return Math.min(Number(value), cap);
}

function parsePosition(value: string): { epoch: string; offset: number } {
  const colon = value.lastIndexOf(':');
  const offset = Number(value.slice(colon + 1));
  if (
    colon <= 0 ||
    !Number.isSafeInteger(offset) ||
    offset < 0 ||
    !/^\d+$/.test(value.slice(colon + 1))
  ) {
    throw new PerigeeError(
      'INVALID_HEADER',
      `x-perigee-since must be EPOCH:OFFSET, got "${value}"`,
    );
  }
  return { epoch: value.slice(0, colon), offset };
}
