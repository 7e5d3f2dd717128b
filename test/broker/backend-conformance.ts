import { afterEach, describe, expect, it } from 'vitest';
import { getHeader, type Frame } from '../../src/protocol/index.js';
import {
  text,
  uniqueName,
  type FrameSession,
  type HeaderInput,
  type TcpFrameSession,
} from '../support/frame-session.js';

/**
 * The conformance suite every STOMP backend runs: the embedded broker (over TCP and over its
 * in-process channel), RabbitMQ's STOMP plugin and ActiveMQ. Where brokers legitimately differ
 * (STOMP 1.2 leaves it open, or a peer deviates in a documented way), the target says so in
 * `features`, and only that assertion is relaxed for it. Cases that need Perigee's extensions
 * (history, unprefixed topic names, `**` wildcards) run against Perigee only and say so.
 */

export interface TargetFeatures {
  /** Reached over TCP: CONNECT, versions, heart-beats and raw bytes can be tested. */
  readonly tcp: boolean;
  /** Perigee's extensions: history and recovery, unprefixed topics, `*` and `**` wildcards. */
  readonly perigee: boolean;
  /** STOMP 1.2 §ERROR: the server closes the connection after an ERROR. */
  readonly errorClosesConnection: boolean;
  /** The ERROR for a frame that asked for a receipt carries `receipt-id`. */
  readonly errorCarriesReceiptId: boolean;
  /** A NACKed queue message is delivered again (ActiveMQ discards it instead). */
  readonly nackRequeues: boolean;
  /** Queue messages alternate strictly between consumers with room. */
  readonly strictRoundRobin: boolean;
  /** The sender's `receipt` header is not copied into MESSAGE (RabbitMQ copies it). */
  readonly stripsReceiptHeader: boolean;
  /** A second SUBSCRIBE with an id already in use is refused (ActiveMQ accepts it). */
  readonly refusesDuplicateSubscription: boolean;
  /** SUBSCRIBE without `id` in STOMP 1.2 is refused (RabbitMQ accepts it). */
  readonly requiresSubscriptionId: boolean;
  /** ACK/NACK naming no pending message is refused with an ERROR. */
  readonly refusesUnknownAck: boolean;
  /** A second BEGIN with an open transaction's name is refused (RabbitMQ accepts it). */
  readonly refusesDuplicateTransaction: boolean;
  /** `prefetch-count` on SUBSCRIBE caps unacknowledged messages (RabbitMQ, Perigee). */
  readonly prefetchCount: boolean;
  /** The ERROR refusing a version carries the supported ones in `version` (STOMP 1.2 MUST). */
  readonly errorListsVersions: boolean;
}

export interface ConformanceTarget {
  readonly name: string;
  readonly features: TargetFeatures;
  /** Headers every SEND and SUBSCRIBE to a queue carries (RabbitMQ: a non-durable, auto-deleted queue). */
  readonly queueHeaders: Readonly<Record<string, string>>;
  /** A connected session, as the default user. */
  connect(options?: ConnectOptions): Promise<FrameSession>;
  /** A TCP socket that has sent nothing (TCP targets). */
  openSocket?(): Promise<TcpFrameSession>;
}

export interface ConnectOptions {
  acceptVersion?: string | null;
  heartBeat?: string;
  login?: string;
  passcode?: string;
  stompCommand?: boolean;
}

export function describeBackendConformance(target: ConformanceTarget): void {
  const { features } = target;
  const open: FrameSession[] = [];
  const connect = async (options?: ConnectOptions): Promise<FrameSession> => {
    const session = await target.connect(options);
    open.push(session);
    return session;
  };
  const openSocket = async (): Promise<TcpFrameSession> => {
    const session = await target.openSocket!();
    open.push(session);
    return session;
  };
  afterEach(() => {
    for (const session of open.splice(0)) session.close();
  });

  const topic = (): string => `/topic/${uniqueName('t')}`;
  const queue = (): string => `/queue/${uniqueName('q')}`;
  const destinationHeaders = (destination: string): HeaderInput =>
    destination.startsWith('/queue/') ? target.queueHeaders : {};

  let receipts = 0;
  /** SUBSCRIBE and wait for its RECEIPT, so that what is sent next is seen. */
  const subscribe = async (
    session: FrameSession,
    destination: string,
    headers: Record<string, string> = {},
  ): Promise<string> => {
    const id = headers.id ?? uniqueName('sub');
    const receipt = `r-${++receipts}`;
    session.send('SUBSCRIBE', {
      ...destinationHeaders(destination),
      id,
      destination,
      ...headers,
      receipt,
    });
    await session.receipt(receipt);
    return id;
  };
  /** SEND and wait for its RECEIPT. */
  const send = async (
    session: FrameSession,
    destination: string,
    body: string | Uint8Array,
    headers: Record<string, string> = {},
  ): Promise<void> => {
    const receipt = `r-${++receipts}`;
    session.send(
      'SEND',
      { ...destinationHeaders(destination), destination, ...headers, receipt },
      body,
    );
    await session.receipt(receipt);
  };
  const message = (session: FrameSession): Promise<Frame> => session.nextOf('MESSAGE');
  const header = (frame: Frame, name: string): string | undefined => getHeader(frame, name);
  /** ACK or NACK a MESSAGE the way its session's version says. */
  const settle = (
    session: FrameSession,
    command: 'ACK' | 'NACK',
    frame: Frame,
    extra: Record<string, string> = {},
  ): void => {
    const headers: Record<string, string> =
      session.version === '1.2'
        ? { id: header(frame, 'ack')! }
        : {
            'message-id': header(frame, 'message-id')!,
            subscription: header(frame, 'subscription')!,
          };
    session.send(command, { ...headers, ...extra });
  };
  /** Asserts the ERROR a bad frame gets, and what follows it. */
  const expectError = async (session: FrameSession, receipt?: string): Promise<Frame> => {
    const error = await session.error();
    expect(header(error, 'message')).toBeTruthy();
    if (receipt !== undefined && features.errorCarriesReceiptId) {
      expect(header(error, 'receipt-id')).toBe(receipt);
    }
    if (features.errorClosesConnection) await session.closed;
    return error;
  };

  // Cases a target cannot run are reported as skipped, never passed: CONNECT and heart-beats need
  // TCP; extensions need Perigee; and a few checks need a feature the peer lacks.
  const tcpIt = it.skipIf(!features.tcp);
  const perigeeIt = it.skipIf(!features.perigee);

  describe(`${target.name}: CONNECT`, () => {
    tcpIt(
      'answers CONNECT with CONNECTED carrying version, session, server and heart-beat',
      async () => {
        const session = await connect({ acceptVersion: '1.2', heartBeat: '0,0' });
        const connected = session.connected!;
        expect(connected.command).toBe('CONNECTED');
        expect(header(connected, 'version')).toBe('1.2');
        expect(header(connected, 'session')).toBeTruthy();
        expect(header(connected, 'server')).toBeTruthy();
        expect(header(connected, 'heart-beat')).toMatch(/^\d+,\d+$/);
      },
    );

    tcpIt('accepts the STOMP command as CONNECT (STOMP 1.2 §"STOMP Frame")', async () => {
      const session = await connect({ stompCommand: true });
      expect(header(session.connected!, 'version')).toBe('1.2');
    });

    tcpIt('negotiates the highest common version from accept-version', async () => {
      const session = await connect({ acceptVersion: '1.0,1.1' });
      expect(header(session.connected!, 'version')).toBe('1.1');
    });

    tcpIt('treats a CONNECT without accept-version as STOMP 1.0', async () => {
      const session = await connect({ acceptVersion: null });
      expect(header(session.connected!, 'version') ?? '1.0').toBe('1.0');
    });

    tcpIt('refuses a version it does not speak with an ERROR listing its versions', async () => {
      const session = await openSocket();
      session.send('CONNECT', { 'accept-version': '9.9', host: '/', ...credentials() });
      const error = await session.error();
      expect(header(error, 'message')).toBeTruthy();
      if (features.errorListsVersions) expect(header(error, 'version')).toMatch(/1\.2/);
    });

    tcpIt('refuses a wrong passcode', async () => {
      const session = await openSocket();
      session.send('CONNECT', {
        'accept-version': '1.2',
        host: '/',
        login: credentials().login,
        passcode: 'wrong-passcode',
      });
      const error = await session.error();
      expect(header(error, 'message')).toBeTruthy();
    });

    tcpIt('refuses a frame before CONNECT', async () => {
      const session = await openSocket();
      session.send('SEND', { destination: topic() }, 'too early');
      const error = await session.error();
      expect(header(error, 'message')).toBeTruthy();
    });
  });

  describe(`${target.name}: heart-beats`, () => {
    tcpIt('sends heart-beats at the negotiated interval', async () => {
      const session = (await connect({ heartBeat: '0,500' })) as TcpFrameSession;
      const [serverSends] = header(session.connected!, 'heart-beat')!.split(',').map(Number);
      expect(serverSends).toBeGreaterThan(0);
      const interval = Math.max(serverSends!, 500);
      // An EOL arrives from the server while the client stays silent.
      const beat = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no heart-beat')), interval * 4 + 2000);
        session.socket.once('data', (chunk: Buffer) => {
          clearTimeout(timer);
          resolve(chunk.toString());
        });
      });
      expect(beat).toMatch(/^\r?\n/);
    });

    tcpIt(
      'drops a client that promised heart-beats and went silent',
      async () => {
        const session = await connect({ heartBeat: '500,0' });
        await session.closed;
        expect(session.isClosed).toBe(true);
      },
      30_000,
    );

    tcpIt('refuses a malformed heart-beat header', async () => {
      const session = await openSocket();
      session.send('CONNECT', {
        'accept-version': '1.2',
        host: '/',
        ...credentials(),
        'heart-beat': 'often',
      });
      const reply = await session.next();
      expect(reply.command).toBe('ERROR');
    });
  });

  describe(`${target.name}: topics`, () => {
    it('delivers a SEND to every subscriber of the topic', async () => {
      const destination = topic();
      const [a, b, publisher] = await Promise.all([connect(), connect(), connect()]);
      await subscribe(a, destination);
      await subscribe(b, destination);
      await send(publisher, destination, 'to everyone');
      expect(text(await message(a))).toBe('to everyone');
      expect(text(await message(b))).toBe('to everyone');
    });

    it('sets subscription, message-id, destination, content-length and copies sender headers', async () => {
      const destination = topic();
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      const id = await subscribe(subscriber, destination);
      await send(publisher, destination, '{"a":1}', {
        'content-length': '7',
        'content-type': 'application/json',
        'x-custom': 'custom value',
      });
      const frame = await message(subscriber);
      expect(header(frame, 'subscription')).toBe(id);
      expect(header(frame, 'message-id')).toBeTruthy();
      expect(header(frame, 'destination')).toBe(destination);
      expect(header(frame, 'content-type')).toBe('application/json');
      expect(header(frame, 'content-length')).toBe('7');
      expect(header(frame, 'x-custom')).toBe('custom value');
      if (features.stripsReceiptHeader) expect(header(frame, 'receipt')).toBeUndefined();
      expect(header(frame, 'transaction')).toBeUndefined();
    });

    it('carries a binary body with NUL octets whole (content-length)', async () => {
      const destination = topic();
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(subscriber, destination);
      const body = new Uint8Array([0, 1, 2, 0, 255, 0, 10, 13, 0]);
      await send(publisher, destination, body, { 'content-length': String(body.length) });
      expect([...(await message(subscriber)).body]).toEqual([...body]);
    });

    it('carries an empty body', async () => {
      const destination = topic();
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(subscriber, destination);
      await send(publisher, destination, '');
      expect((await message(subscriber)).body.length).toBe(0);
    });

    it('carries UTF-8 bodies and escaped header values (colon, newline, backslash)', async () => {
      const destination = topic();
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(subscriber, destination);
      await send(publisher, destination, 'héllo wörld ✓ 🚀', { 'x-tricky': 'a:b\\c\nd' });
      const frame = await message(subscriber);
      expect(text(frame)).toBe('héllo wörld ✓ 🚀');
      expect(header(frame, 'x-tricky')).toBe('a:b\\c\nd');
    });

    it('carries a 256 KiB body', async () => {
      const destination = topic();
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(subscriber, destination);
      const body = 'x'.repeat(256 * 1024);
      await send(publisher, destination, body);
      expect(text(await message(subscriber))).toBe(body);
    });

    it('keeps the order of messages from one sender', async () => {
      const destination = topic();
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(subscriber, destination);
      for (let i = 0; i < 100; i++) publisher.send('SEND', { destination }, String(i));
      await send(publisher, destination, 'end');
      const received: string[] = [];
      for (let i = 0; i <= 100; i++) received.push(text(await message(subscriber)));
      expect(received).toEqual([...Array.from({ length: 100 }, (_, i) => String(i)), 'end']);
    });

    it('delivers to each of two subscriptions of one session, with their own ids', async () => {
      const destination = topic();
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      const first = await subscribe(subscriber, destination);
      const second = await subscribe(subscriber, destination);
      await send(publisher, destination, 'twice');
      const ids = [
        header(await message(subscriber), 'subscription'),
        header(await message(subscriber), 'subscription'),
      ];
      expect(ids.sort()).toEqual([first, second].sort());
    });

    it('stops delivering after UNSUBSCRIBE', async () => {
      const destination = topic();
      const marker = topic();
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      const id = await subscribe(subscriber, destination);
      await subscribe(subscriber, marker);
      subscriber.send('UNSUBSCRIBE', { id, receipt: 'unsub' });
      await subscriber.receipt('unsub');
      await send(publisher, destination, 'after unsubscribe');
      await send(publisher, marker, 'marker');
      // The marker was sent after the message; if the message had been delivered, it came first.
      expect(text(await message(subscriber))).toBe('marker');
    });
  });

  describe(`${target.name}: queues`, () => {
    it('gives each queue message to exactly one consumer', async () => {
      const destination = queue();
      const [a, b, publisher] = await Promise.all([connect(), connect(), connect()]);
      await subscribe(a, destination);
      await subscribe(b, destination);
      for (let i = 0; i < 10; i++) await send(publisher, destination, String(i));
      const received = await collectAcross([a, b], 10);
      expect(received.map((entry) => entry.body).sort((x, y) => Number(x) - Number(y))).toEqual(
        Array.from({ length: 10 }, (_, i) => String(i)),
      );
      const perConsumer = [0, 1].map((n) => received.filter((entry) => entry.from === n).length);
      if (features.strictRoundRobin) expect(perConsumer).toEqual([5, 5]);
    });

    it('keeps messages until a consumer subscribes, in order', async () => {
      const destination = queue();
      const publisher = await connect();
      for (const body of ['one', 'two', 'three']) await send(publisher, destination, body);
      const consumer = await connect();
      await subscribe(consumer, destination);
      const received = [];
      for (let i = 0; i < 3; i++) received.push(text(await message(consumer)));
      expect(received).toEqual(['one', 'two', 'three']);
    });

    it('redelivers unacknowledged messages of a consumer that disconnects', async () => {
      const destination = queue();
      const [first, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(first, destination, { ack: 'client-individual' });
      await send(publisher, destination, 'needs an ack');
      expect(text(await message(first))).toBe('needs an ack');
      const second = await connect();
      await subscribe(second, destination, { ack: 'client-individual' });
      first.close();
      const again = await message(second);
      expect(text(again)).toBe('needs an ack');
      expect(header(again, 'redelivered')).toBe('true');
    });

    it('client mode: an ACK covers every earlier message (cumulative)', async () => {
      const destination = queue();
      const [first, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(first, destination, { ack: 'client' });
      for (const body of ['a', 'b', 'c']) await send(publisher, destination, body);
      const frames = [await message(first), await message(first), await message(first)];
      settle(first, 'ACK', frames[1]!, { receipt: 'ack-b' });
      await first.receipt('ack-b');
      const second = await connect();
      await subscribe(second, destination, { ack: 'client' });
      first.close();
      // Only "c" was not covered by the ACK of "b".
      expect(text(await message(second))).toBe('c');
      await send(publisher, destination, 'marker');
      expect(text(await message(second))).toBe('marker');
    });

    it('client-individual mode: an ACK covers only its own message', async () => {
      const destination = queue();
      const [first, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(first, destination, { ack: 'client-individual' });
      for (const body of ['a', 'b', 'c']) await send(publisher, destination, body);
      const frames = [await message(first), await message(first), await message(first)];
      settle(first, 'ACK', frames[0]!);
      settle(first, 'ACK', frames[2]!, { receipt: 'acks' });
      await first.receipt('acks');
      const second = await connect();
      await subscribe(second, destination, { ack: 'client-individual' });
      first.close();
      expect(text(await message(second))).toBe('b');
      await send(publisher, destination, 'marker');
      expect(text(await message(second))).toBe('marker');
    });

    it('NACK gives a queue message back for another delivery', async () => {
      const destination = queue();
      const [consumer, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(consumer, destination, { ack: 'client-individual' });
      await send(publisher, destination, 'try again');
      const first = await message(consumer);
      settle(consumer, 'NACK', first, { receipt: 'nack' });
      await consumer.receipt('nack');
      if (features.nackRequeues) {
        const again = await message(consumer);
        expect(text(again)).toBe('try again');
        expect(header(again, 'redelivered')).toBe('true');
      } else {
        await send(publisher, destination, 'marker');
        expect(text(await message(consumer))).toBe('marker');
      }
    });

    tcpIt('STOMP 1.1: ACK and NACK name the message by message-id and subscription', async () => {
      const destination = queue();
      const [consumer, publisher] = await Promise.all([
        connect({ acceptVersion: '1.1' }),
        connect(),
      ]);
      expect(consumer.version).toBe('1.1');
      await subscribe(consumer, destination, { ack: 'client-individual' });
      await send(publisher, destination, 'nacked');
      await send(publisher, destination, 'acked');
      const [nacked, acked] = [await message(consumer), await message(consumer)];
      expect(header(nacked, 'message-id')).toBeTruthy();
      settle(consumer, 'ACK', acked, { receipt: 'ack-1.1' });
      await consumer.receipt('ack-1.1');
      settle(consumer, 'NACK', nacked, { receipt: 'nack-1.1' });
      await consumer.receipt('nack-1.1');
      if (features.nackRequeues) {
        const again = await message(consumer);
        expect(text(again)).toBe('nacked');
        settle(consumer, 'ACK', again);
      }
      // The ACKed one never comes back.
      await send(publisher, destination, 'marker');
      expect(text(await message(consumer))).toBe('marker');
    });

    it('auto mode needs no ACK: nothing comes back after the consumer leaves', async () => {
      const destination = queue();
      const [first, publisher] = await Promise.all([connect(), connect()]);
      const firstId = await subscribe(first, destination);
      await send(publisher, destination, 'consumed');
      expect(text(await message(first))).toBe('consumed');
      const second = await connect();
      await subscribe(second, destination);
      // Leave by UNSUBSCRIBE with a receipt: after a bare close, a broker may still count the
      // consumer for a moment and hand it the marker, which auto mode then loses (at most once).
      first.send('UNSUBSCRIBE', { id: firstId, receipt: 'left' });
      await first.receipt('left');
      first.close();
      await send(publisher, destination, 'marker');
      expect(text(await message(second))).toBe('marker');
    });

    it.skipIf(!features.prefetchCount)(
      'prefetch-count caps the messages waiting for an ACK',
      async () => {
        const destination = queue();
        const [consumer, publisher] = await Promise.all([connect(), connect()]);
        await subscribe(consumer, destination, { ack: 'client-individual', 'prefetch-count': '2' });
        for (const body of ['1', '2', '3']) await send(publisher, destination, body);
        const first = await message(consumer);
        await message(consumer);
        // The third waits until one of the two is acknowledged.
        await expect(consumer.nextOf('MESSAGE', 300)).rejects.toThrow(/no MESSAGE/);
        settle(consumer, 'ACK', first);
        expect(text(await message(consumer))).toBe('3');
      },
    );

    it.skipIf(!features.refusesUnknownAck)(
      'refuses an ACK that names no pending message',
      async () => {
        const session = await connect();
        session.send(
          'ACK',
          session.version === '1.2'
            ? { id: 'no-such-ack', receipt: 'bad-ack' }
            : { 'message-id': 'nope', receipt: 'bad-ack' },
        );
        await expectError(session, 'bad-ack');
      },
    );
  });

  describe(`${target.name}: transactions`, () => {
    it('delivers transactional sends at COMMIT, not before', async () => {
      const destination = topic();
      const marker = topic();
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(subscriber, destination);
      await subscribe(subscriber, marker);
      publisher.send('BEGIN', { transaction: 'tx1' });
      // No receipt here: RabbitMQ answers a transactional SEND's receipt only at COMMIT.
      publisher.send('SEND', { destination, transaction: 'tx1' }, 'in tx');
      await send(publisher, marker, 'before commit');
      expect(text(await message(subscriber))).toBe('before commit');
      publisher.send('COMMIT', { transaction: 'tx1', receipt: 'commit' });
      await publisher.receipt('commit');
      expect(text(await message(subscriber))).toBe('in tx');
    });

    it('drops transactional sends at ABORT', async () => {
      const destination = topic();
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(subscriber, destination);
      publisher.send('BEGIN', { transaction: 'tx2' });
      publisher.send('SEND', { destination, transaction: 'tx2' }, 'aborted');
      publisher.send('ABORT', { transaction: 'tx2', receipt: 'abort' });
      await publisher.receipt('abort');
      await send(publisher, destination, 'marker');
      expect(text(await message(subscriber))).toBe('marker');
    });

    it('drops an open transaction when its session disconnects', async () => {
      const destination = topic();
      const [subscriber, publisher, other] = await Promise.all([connect(), connect(), connect()]);
      await subscribe(subscriber, destination);
      publisher.send('BEGIN', { transaction: 'tx3' });
      publisher.send('SEND', { destination, transaction: 'tx3' }, 'never committed');
      publisher.send('UNSUBSCRIBE', { id: 'none', receipt: 'flushed' });
      // Whatever the answer, the server has read everything before it.
      await publisher.next();
      publisher.close();
      await publisher.closed;
      await send(other, destination, 'marker');
      expect(text(await message(subscriber))).toBe('marker');
    });

    it('applies an ACK inside a transaction at COMMIT, and forgets it at ABORT', async () => {
      const destination = queue();
      const [first, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(first, destination, { ack: 'client-individual' });
      await send(publisher, destination, 'kept');
      await send(publisher, destination, 'acked');
      const kept = await message(first);
      const acked = await message(first);
      first.send('BEGIN', { transaction: 'aborted' });
      settle(first, 'ACK', kept, { transaction: 'aborted' });
      first.send('ABORT', { transaction: 'aborted' });
      first.send('BEGIN', { transaction: 'committed' });
      settle(first, 'ACK', acked, { transaction: 'committed' });
      first.send('COMMIT', { transaction: 'committed', receipt: 'committed' });
      await first.receipt('committed');
      const second = await connect();
      await subscribe(second, destination, { ack: 'client-individual' });
      first.close();
      expect(text(await message(second))).toBe('kept');
      await send(publisher, destination, 'marker');
      expect(text(await message(second))).toBe('marker');
    });

    it('refuses COMMIT of a transaction that was never begun', async () => {
      const session = await connect();
      session.send('COMMIT', { transaction: 'never-begun', receipt: 'commit' });
      await expectError(session, 'commit');
    });

    it('refuses a SEND in a transaction that was never begun', async () => {
      const session = await connect();
      session.send('SEND', { destination: topic(), transaction: 'missing', receipt: 'send' }, 'x');
      const reply = await session.next();
      // ActiveMQ and RabbitMQ accept it silently in some versions; a RECEIPT is not a refusal.
      if (features.perigee) {
        expect(reply.command).toBe('ERROR');
        if (features.errorClosesConnection) await session.closed;
      } else {
        expect(['ERROR', 'RECEIPT']).toContain(reply.command);
      }
    });

    it.skipIf(!features.refusesDuplicateTransaction)(
      'refuses a second BEGIN of an open transaction',
      async () => {
        const session = await connect();
        session.send('BEGIN', { transaction: 'twice' });
        session.send('BEGIN', { transaction: 'twice', receipt: 'again' });
        await expectError(session, 'again');
      },
    );
  });

  describe(`${target.name}: receipts`, () => {
    it('answers a receipt on every client frame', async () => {
      const destination = queue();
      const session = await connect();
      const id = uniqueName('sub');
      session.send('SUBSCRIBE', {
        ...target.queueHeaders,
        id,
        destination,
        ack: 'client-individual',
        receipt: 'subscribe',
      });
      await session.receipt('subscribe');
      session.send('SEND', { ...target.queueHeaders, destination, receipt: 'send' }, 'x');
      await session.receipt('send');
      const frame = await message(session);
      session.send('BEGIN', { transaction: 't', receipt: 'begin' });
      await session.receipt('begin');
      settle(session, 'ACK', frame, { receipt: 'ack' });
      await session.receipt('ack');
      session.send('ABORT', { transaction: 't', receipt: 'abort' });
      await session.receipt('abort');
      session.send('SEND', { ...target.queueHeaders, destination, receipt: 'send-2' }, 'y');
      await session.receipt('send-2');
      settle(session, 'NACK', await message(session), { receipt: 'nack' });
      await session.receipt('nack');
      session.send('BEGIN', { transaction: 't2' });
      session.send('COMMIT', { transaction: 't2', receipt: 'commit' });
      await session.receipt('commit');
      session.send('UNSUBSCRIBE', { id, receipt: 'unsubscribe' });
      await session.receipt('unsubscribe');
    });

    it('answers DISCONNECT with its RECEIPT, then closes', async () => {
      const session = await connect();
      session.send('DISCONNECT', { receipt: 'bye' });
      await session.receipt('bye');
      await session.closed;
    });
  });

  describe(`${target.name}: errors`, () => {
    it('refuses SEND without destination', async () => {
      const session = await connect();
      session.send('SEND', { receipt: 'no-destination' }, 'nowhere');
      await expectError(session, 'no-destination');
    });

    it.skipIf(!features.requiresSubscriptionId)(
      'refuses SUBSCRIBE without id (STOMP 1.2)',
      async () => {
        const session = await connect();
        session.send('SUBSCRIBE', { destination: topic(), receipt: 'no-id' });
        await expectError(session, 'no-id');
      },
    );

    it.skipIf(!features.refusesDuplicateSubscription)(
      'refuses a subscription id already in use',
      async () => {
        const session = await connect();
        const id = await subscribe(session, topic());
        session.send('SUBSCRIBE', { id, destination: topic(), receipt: 'again' });
        await expectError(session, 'again');
      },
    );

    it('refuses UNSUBSCRIBE of an unknown id', async () => {
      const session = await connect();
      session.send('UNSUBSCRIBE', { id: 'never-subscribed', receipt: 'unsub' });
      await expectError(session, 'unsub');
    });

    it('refuses an unknown command', async () => {
      const session = await connect();
      session.send('FROBNICATE', { receipt: 'what' });
      await expectError(session, 'what');
    });

    it('keeps serving other sessions after one gets an ERROR', async () => {
      const destination = topic();
      const [bad, subscriber, publisher] = await Promise.all([connect(), connect(), connect()]);
      await subscribe(subscriber, destination);
      bad.send('SEND', {}, 'no destination');
      await bad.error();
      await send(publisher, destination, 'still here');
      expect(text(await message(subscriber))).toBe('still here');
    });
  });

  describe(`${target.name}: STOMP 1.0 and 1.1`, () => {
    tcpIt('1.0: SUBSCRIBE without id, ACK by message-id', async () => {
      const destination = queue();
      const [consumer, publisher] = await Promise.all([
        connect({ acceptVersion: null }),
        connect(),
      ]);
      consumer.send('SUBSCRIBE', {
        ...target.queueHeaders,
        destination,
        ack: 'client',
        receipt: 'sub10',
      });
      await consumer.receipt('sub10');
      await send(publisher, destination, 'one-oh');
      const frame = await message(consumer);
      expect(text(frame)).toBe('one-oh');
      consumer.send('ACK', { 'message-id': header(frame, 'message-id')!, receipt: 'ack10' });
      await consumer.receipt('ack10');
    });

    tcpIt('1.1: ACK by message-id and subscription; escaped headers', async () => {
      const destination = queue();
      const [consumer, publisher] = await Promise.all([
        connect({ acceptVersion: '1.1' }),
        connect(),
      ]);
      await subscribe(consumer, destination, { ack: 'client-individual' });
      await send(publisher, destination, 'one-one', { 'x-escaped': 'a:b\nc\\d' });
      const frame = await message(consumer);
      expect(header(frame, 'x-escaped')).toBe('a:b\nc\\d');
      settle(consumer, 'ACK', frame, { receipt: 'ack11' });
      await consumer.receipt('ack11');
    });
  });

  describe(`${target.name}: Perigee extensions`, () => {
    perigeeIt(
      '[perigee] any name outside /queue/ is a topic, such as /games/7/status',
      async () => {
        const destination = `/games/${uniqueName('g')}/status`;
        const [a, b, publisher] = await Promise.all([connect(), connect(), connect()]);
        await subscribe(a, destination);
        await subscribe(b, destination);
        await send(publisher, destination, 'state');
        expect(text(await message(a))).toBe('state');
        expect(text(await message(b))).toBe('state');
      },
    );

    perigeeIt('[perigee] * matches exactly one segment', async () => {
      const game = uniqueName('g');
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(subscriber, `/games/${game}/*/status`);
      await send(publisher, `/games/${game}/1/2/status`, 'two segments');
      await send(publisher, `/games/${game}/1/status`, 'one segment');
      const frame = await message(subscriber);
      expect(text(frame)).toBe('one segment');
      expect(header(frame, 'destination')).toBe(`/games/${game}/1/status`);
    });

    perigeeIt('[perigee] ** matches any depth', async () => {
      const game = uniqueName('g');
      const [subscriber, publisher] = await Promise.all([connect(), connect()]);
      await subscribe(subscriber, `/games/${game}/**`);
      await send(publisher, `/other/${game}`, 'elsewhere');
      await send(publisher, `/games/${game}/1/2/status`, 'deep');
      await send(publisher, `/games/${game}/1`, 'shallow');
      expect(text(await message(subscriber))).toBe('deep');
      expect(text(await message(subscriber))).toBe('shallow');
    });

    perigeeIt('[perigee] a wildcard SEND destination is refused', async () => {
      const session = await connect();
      session.send('SEND', { destination: '/games/*/status', receipt: 'wild' }, 'x');
      await expectError(session, 'wild');
    });

    perigeeIt(
      '[perigee] topic messages carry offset and epoch; senders cannot forge them',
      async () => {
        const destination = topic();
        const [subscriber, publisher] = await Promise.all([connect(), connect()]);
        await subscribe(subscriber, destination);
        await send(publisher, destination, 'first', {
          'x-perigee-offset': '999',
          'x-perigee-epoch': 'forged',
        });
        await send(publisher, destination, 'second');
        const first = await message(subscriber);
        const second = await message(subscriber);
        expect(header(first, 'x-perigee-epoch')).not.toBe('forged');
        expect(header(first, 'x-perigee-epoch')).toBe(header(second, 'x-perigee-epoch'));
        expect(Number(header(second, 'x-perigee-offset'))).toBe(
          Number(header(first, 'x-perigee-offset')) + 1,
        );
        expect(first.headers.filter(([name]) => name === 'x-perigee-offset')).toHaveLength(1);
      },
    );

    perigeeIt(
      '[perigee] SUBSCRIBE since a position replays what followed it; RECEIPT says recovered',
      async () => {
        const destination = topic();
        const [watcher, publisher] = await Promise.all([connect(), connect()]);
        await subscribe(watcher, destination);
        for (const body of ['1', '2', '3']) await send(publisher, destination, body);
        const first = await message(watcher);
        const epoch = header(first, 'x-perigee-epoch')!;
        const offset = header(first, 'x-perigee-offset')!;
        const late = await connect();
        late.send('SUBSCRIBE', {
          id: 'late',
          destination,
          'x-perigee-since': `${epoch}:${offset}`,
          receipt: 'since',
        });
        expect(text(await message(late))).toBe('2');
        expect(text(await message(late))).toBe('3');
        expect(header(await late.receipt('since'), 'x-perigee-recovered')).toBe('true');
        await send(publisher, destination, '4');
        expect(text(await message(late))).toBe('4');
      },
    );

    perigeeIt('[perigee] SUBSCRIBE since another epoch is told recovered:false', async () => {
      const destination = topic();
      const publisher = await connect();
      await send(publisher, destination, 'x');
      const late = await connect();
      late.send('SUBSCRIBE', {
        id: 'late',
        destination,
        'x-perigee-since': 'stale-epoch:1',
        receipt: 'since',
      });
      expect(header(await late.receipt('since'), 'x-perigee-recovered')).toBe('false');
    });

    perigeeIt('[perigee] SUBSCRIBE since without a receipt header is refused', async () => {
      const session = await connect();
      session.send('SUBSCRIBE', { id: 's', destination: topic(), 'x-perigee-since': 'e:0' });
      await expectError(session);
    });
  });
}

/** Every target accepts this login (the embedded broker is configured with it in the tests). */
function credentials(): { login: string; passcode: string } {
  return { login: 'guest', passcode: 'guest' };
}

/** Collects `count` MESSAGE frames from several sessions, noting which one got each. */
async function collectAcross(
  sessions: readonly FrameSession[],
  count: number,
): Promise<{ from: number; body: string }[]> {
  const received: { from: number; body: string }[] = [];
  const pending = sessions.map((session, from) => {
    const loop = async (): Promise<void> => {
      for (;;) {
        let frame: Frame;
        try {
          frame = await session.nextOf('MESSAGE', 2000);
        } catch {
          return;
        }
        received.push({ from, body: text(frame) });
        if (received.length >= count) return;
      }
    };
    return loop();
  });
  await Promise.all(pending);
  return received;
}
