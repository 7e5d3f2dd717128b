import { afterEach, describe, expect, it } from 'vitest';
import { createBroker, type BrokerOptions, type EmbeddedBroker } from '../../src/broker/index.js';
import { PerigeeError } from '../../src/errors.js';
import { getHeader, MessageDelivery, type Frame } from '../../src/protocol/index.js';
import { ChannelFrameSession, TcpFrameSession, text } from '../support/frame-session.js';

/** The embedded broker's own API: in-process publishing, positions, channels, limits, lifecycle. */

const brokers: EmbeddedBroker[] = [];
const sessions: { close(): void }[] = [];
function broker(options: BrokerOptions = {}): EmbeddedBroker {
  const created = createBroker(options);
  brokers.push(created);
  return created;
}
async function channel(on: EmbeddedBroker): Promise<ChannelFrameSession> {
  const session = await ChannelFrameSession.open(on);
  sessions.push(session);
  return session;
}
async function tcp(
  port: number,
  options: { login?: string; passcode?: string } = {},
): Promise<TcpFrameSession> {
  const session = await TcpFrameSession.connect({ port, ...options });
  sessions.push(session);
  return session;
}
afterEach(async () => {
  for (const session of sessions.splice(0)) session.close();
  await Promise.all(brokers.splice(0).map((created) => created.close({ drainMs: 50 })));
});

async function subscribed(
  session: ChannelFrameSession | TcpFrameSession,
  destination: string,
  headers: Record<string, string> = {},
): Promise<void> {
  session.send('SUBSCRIBE', {
    id: destination,
    destination,
    ...headers,
    receipt: `s-${destination}`,
  });
  await session.receipt(`s-${destination}`);
}

describe('publish and position', () => {
  it('publish() delivers to subscribers with the app’s headers, minus reserved ones', async () => {
    const embedded = broker();
    const subscriber = await channel(embedded);
    await subscribed(subscriber, '/games/1/status');
    await embedded.publish('/games/1/status', '{"state":"lobby"}', {
      'content-type': 'application/json',
      destination: '/elsewhere',
      'x-perigee-offset': '42',
    });
    const frame = await subscriber.nextOf('MESSAGE');
    expect(text(frame)).toBe('{"state":"lobby"}');
    expect(getHeader(frame, 'content-type')).toBe('application/json');
    expect(getHeader(frame, 'destination')).toBe('/games/1/status');
    expect(getHeader(frame, 'x-perigee-offset')).toBe('1');
  });

  it('publish() refuses a wildcard destination', async () => {
    const embedded = broker();
    await expect(embedded.publish('/games/*/status', 'x')).rejects.toMatchObject({
      code: 'INVALID_DESTINATION',
    });
  });

  it('position() names the last offset, and a subscriber since it misses nothing that follows', async () => {
    const embedded = broker();
    await embedded.publish('/scores', 'before render 1');
    await embedded.publish('/scores', 'before render 2');
    const position = embedded.position('/scores');
    expect(position.offset).toBe(2);
    await embedded.publish('/scores', 'after render');
    const subscriber = await channel(embedded);
    subscriber.send('SUBSCRIBE', {
      id: 's',
      destination: '/scores',
      'x-perigee-since': `${position.epoch}:${position.offset}`,
      receipt: 'since',
    });
    expect(text(await subscriber.nextOf('MESSAGE'))).toBe('after render');
    expect(getHeader(await subscriber.receipt('since'), 'x-perigee-recovered')).toBe('true');
  });

  it('position() of a topic nobody published to is offset 0 with a stable epoch', () => {
    const embedded = broker();
    const first = embedded.position('/empty');
    expect(first.offset).toBe(0);
    expect(embedded.position('/empty').epoch).toBe(first.epoch);
  });

  it('history keeps the newest N; asking for older is recovered:false', async () => {
    const embedded = broker({ history: 3 });
    const start = embedded.position('/h');
    for (let i = 1; i <= 5; i++) await embedded.publish('/h', String(i));
    const subscriber = await channel(embedded);
    subscriber.send('SUBSCRIBE', {
      id: 'old',
      destination: '/h',
      'x-perigee-since': `${start.epoch}:0`,
      receipt: 'old',
    });
    expect(getHeader(await subscriber.receipt('old'), 'x-perigee-recovered')).toBe('false');
    subscriber.send('SUBSCRIBE', {
      id: 'ok',
      destination: '/h',
      'x-perigee-since': `${start.epoch}:2`,
      receipt: 'ok',
    });
    expect([
      text(await subscriber.nextOf('MESSAGE')),
      text(await subscriber.nextOf('MESSAGE')),
      text(await subscriber.nextOf('MESSAGE')),
    ]).toEqual(['3', '4', '5']);
    expect(getHeader(await subscriber.receipt('ok'), 'x-perigee-recovered')).toBe('true');
  });

  it('the history byte budget evicts the least recently published topic first', async () => {
    const embedded = broker({ history: 10, maxHistoryBytes: 8 * 1024 });
    const oldPosition = embedded.position('/old');
    await embedded.publish('/old', 'x'.repeat(1000));
    for (let i = 0; i < 10; i++) await embedded.publish(`/new/${i}`, 'y'.repeat(1000));
    expect(embedded.stats().historyBytes).toBeLessThanOrEqual(8 * 1024);
    const subscriber = await channel(embedded);
    subscriber.send('SUBSCRIBE', {
      id: 's',
      destination: '/old',
      'x-perigee-since': `${oldPosition.epoch}:0`,
      receipt: 'r',
    });
    expect(getHeader(await subscriber.receipt('r'), 'x-perigee-recovered')).toBe('false');
  });
});

describe('in-process channels (Backend)', () => {
  it('delivers MESSAGE frames that reuse the bytes shared by all subscribers', async () => {
    const embedded = broker();
    const received: Frame[] = [];
    const first = await embedded.open({ id: 'a', anonymous: false }, (frame) =>
      received.push(frame),
    );
    const second = await embedded.open({ id: 'b', anonymous: false }, (frame) =>
      received.push(frame),
    );
    first.send({
      command: 'SUBSCRIBE',
      headers: [
        ['id', '1'],
        ['destination', '/t'],
      ],
      body: new Uint8Array(),
    });
    second.send({
      command: 'SUBSCRIBE',
      headers: [
        ['id', '2'],
        ['destination', '/t'],
      ],
      body: new Uint8Array(),
    });
    embedded.publishNow('/t', 'shared');
    const messages = received.filter(
      (frame): frame is MessageDelivery => frame instanceof MessageDelivery,
    );
    expect(messages).toHaveLength(2);
    expect(messages[0]!.shared).toBe(messages[1]!.shared);
    expect(messages.map((frame) => getHeader(frame, 'subscription'))).toEqual(['1', '2']);
    first.close();
    second.close();
    await Promise.all([first.closed, second.closed]);
  });

  it('refuses CONNECT on a channel (it is connected already)', async () => {
    const embedded = broker();
    const session = await channel(embedded);
    session.send('CONNECT', { 'accept-version': '1.2' });
    expect(getHeader(await session.error(), 'message')).toMatch(/Already connected/);
    await session.closed;
  });

  it('closing a channel gives its unacknowledged queue messages to another consumer', async () => {
    const embedded = broker();
    const [first, second] = [await channel(embedded), await channel(embedded)];
    await subscribed(first, '/queue/jobs', { ack: 'client' });
    await embedded.publish('/queue/jobs', 'job');
    expect(text(await first.nextOf('MESSAGE'))).toBe('job');
    await subscribed(second, '/queue/jobs', { ack: 'client' });
    first.close();
    const again = await second.nextOf('MESSAGE');
    expect(text(again)).toBe('job');
    expect(getHeader(again, 'redelivered')).toBe('true');
  });
});

describe('limits and policies', () => {
  it('queue overflow "reject": a SEND to a full queue gets QUEUE_FULL, and nothing accepted is lost', async () => {
    const embedded = broker({ maxQueueDepth: 3 });
    const sender = await channel(embedded);
    for (let i = 0; i < 3; i++) {
      sender.send('SEND', { destination: '/queue/full', receipt: `r${i}` }, String(i));
      await sender.receipt(`r${i}`);
    }
    sender.send('SEND', { destination: '/queue/full', receipt: 'overflow' }, '3');
    const error = await sender.error();
    expect(getHeader(error, 'message')).toMatch(/Queue full/);
    expect(getHeader(error, 'receipt-id')).toBe('overflow');
    await expect(embedded.publish('/queue/full', 'x')).rejects.toBeInstanceOf(PerigeeError);
    const consumer = await channel(embedded);
    await subscribed(consumer, '/queue/full');
    expect([
      text(await consumer.nextOf('MESSAGE')),
      text(await consumer.nextOf('MESSAGE')),
      text(await consumer.nextOf('MESSAGE')),
    ]).toEqual(['0', '1', '2']);
  });

  it('queue overflow "drop-oldest": the oldest waiting message makes room and is counted', async () => {
    const embedded = broker({ maxQueueDepth: 2, queueOverflow: 'drop-oldest' });
    for (const body of ['a', 'b', 'c']) await embedded.publish('/queue/q', body);
    expect(embedded.stats().dropped).toBe(1);
    const consumer = await channel(embedded);
    await subscribed(consumer, '/queue/q');
    expect([
      text(await consumer.nextOf('MESSAGE')),
      text(await consumer.nextOf('MESSAGE')),
    ]).toEqual(['b', 'c']);
  });

  it('a transaction that would overflow a queue fails whole at COMMIT', async () => {
    const embedded = broker({ maxQueueDepth: 2 });
    const sender = await channel(embedded);
    sender.send('BEGIN', { transaction: 't' });
    for (const body of ['1', '2', '3'])
      sender.send('SEND', { destination: '/queue/tx', transaction: 't' }, body);
    sender.send('COMMIT', { transaction: 't', receipt: 'commit' });
    expect(getHeader(await sender.error(), 'receipt-id')).toBe('commit');
    expect(embedded.stats().queuedMessages).toBe(0);
  });

  it('caps subscriptions per session', async () => {
    const embedded = broker({ maxSubscriptionsPerSession: 2 });
    const session = await channel(embedded);
    await subscribed(session, '/a');
    await subscribed(session, '/b');
    session.send('SUBSCRIBE', { id: 'c', destination: '/c' });
    expect(getHeader(await session.error(), 'message')).toMatch(/Limit exceeded/);
  });

  it('caps frames per transaction', async () => {
    const embedded = broker({ maxTransactionFrames: 2 });
    const session = await channel(embedded);
    session.send('BEGIN', { transaction: 't' });
    for (let i = 0; i < 3; i++)
      session.send('SEND', { destination: '/x', transaction: 't' }, String(i));
    expect(getHeader(await session.error(), 'message')).toMatch(/exceeds 2 frames/);
  });

  it('topic subscriptions that acknowledge: past the unacked cap, the slow-consumer policy applies', async () => {
    const embedded = broker({ maxUnackedPerSubscription: 2, slowConsumerPolicy: 'drop' });
    const session = await channel(embedded);
    await subscribed(session, '/ticks', { ack: 'client-individual' });
    for (let i = 0; i < 5; i++) await embedded.publish('/ticks', String(i));
    expect(embedded.stats().dropped).toBe(3);
  });
});

describe('authentication and listening', () => {
  it('checks logins against configured users', async () => {
    const embedded = broker({ users: { alice: 'secret' } });
    const { port } = await embedded.listen({ port: 0 });
    await expect(tcp(port, { login: 'alice', passcode: 'wrong' })).rejects.toThrow(
      /Authentication failed/,
    );
    await expect(tcp(port, {})).rejects.toThrow(/Authentication failed/);
    const session = await tcp(port, { login: 'alice', passcode: 'secret' });
    expect(getHeader(session.connected!, 'version')).toBe('1.2');
  });

  it('waits for an asynchronous login check, reading frames sent meanwhile in order and with the negotiated escaping', async () => {
    const embedded = broker({
      authenticate: async ({ login }) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return login === 'bob' ? { id: 'bob', anonymous: false } : null;
      },
    });
    const { port } = await embedded.listen({ port: 0 });
    const watcher = await channel(embedded);
    await subscribed(watcher, '/a');
    const session = await TcpFrameSession.openSocket(port);
    sessions.push(session);
    session.sendBytes(
      'CONNECT\naccept-version:1.2\nlogin:bob\npasscode:x\n\n\0' +
        'SUBSCRIBE\nid:1\ndestination:/b\nreceipt:sub\n\n\0' +
        'SEND\ndestination:/a\nx-escaped:a\\cb\\\\c\n\nbody\0',
    );
    expect((await session.next()).command).toBe('CONNECTED');
    expect(getHeader(await session.next(), 'receipt-id')).toBe('sub');
    expect(getHeader(await watcher.nextOf('MESSAGE'), 'x-escaped')).toBe('a:b\\c');
  });

  it('refuses to listen beyond loopback without a login check', async () => {
    const embedded = broker();
    await expect(embedded.listen({ host: '0.0.0.0', port: 0 })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });

  it('names the address when the port is taken', async () => {
    const first = broker();
    const { port } = await first.listen({ port: 0 });
    await expect(broker().listen({ port })).rejects.toMatchObject({ code: 'ADDRESS_IN_USE' });
  });

  it('refuses connections past maxConnections with an ERROR', async () => {
    const embedded = broker({ maxConnections: 1 });
    const { port } = await embedded.listen({ port: 0 });
    await tcp(port);
    await expect(tcp(port)).rejects.toThrow(/Limit exceeded/);
  });

  it('close() tells connected clients the server is going away, and stops listening', async () => {
    const embedded = createBroker();
    const { port } = await embedded.listen({ port: 0 });
    const session = await tcp(port);
    const closing = embedded.close({ drainMs: 1000 });
    const error = await session.error();
    expect(getHeader(error, 'message')).toMatch(/shutting down/);
    expect(getHeader(error, 'x-perigee-code')).toBe('SHUTTING_DOWN');
    await closing;
    await session.closed;
    await expect(TcpFrameSession.openSocket(port)).rejects.toThrow();
  });
});
