import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type EmbeddedBroker } from '../../src/broker/index.js';
import { getHeader } from '../../src/protocol/index.js';
import { TcpFrameSession, text, uniqueName } from '../support/frame-session.js';

/**
 * Whatever bytes a stranger sends, the broker answers with an ERROR that says what was wrong,
 * closes that connection only, and keeps serving everyone else.
 */

const LIMITS = { maxFrameBytes: 4096, maxHeaders: 16, maxHeaderLineBytes: 256, maxBodyBytes: 2048 };

let broker: EmbeddedBroker;
let port: number;
const sessions: TcpFrameSession[] = [];

beforeAll(async () => {
  broker = createBroker({ limits: LIMITS });
  port = (await broker.listen({ port: 0 })).port;
});
afterAll(() => broker.close({ drainMs: 100 }));
afterEach(() => {
  for (const session of sessions.splice(0)) session.close();
});

async function raw(): Promise<TcpFrameSession> {
  const session = await TcpFrameSession.openSocket(port);
  sessions.push(session);
  return session;
}

async function connected(): Promise<TcpFrameSession> {
  const session = await TcpFrameSession.connect({ port });
  sessions.push(session);
  return session;
}

/** A subscriber and publisher pair that proves the broker still works. */
async function expectBrokerStillServes(): Promise<void> {
  const destination = `/topic/${uniqueName('alive')}`;
  const [subscriber, publisher] = await Promise.all([connected(), connected()]);
  subscriber.send('SUBSCRIBE', { id: '1', destination, receipt: 's' });
  await subscriber.receipt('s');
  publisher.send('SEND', { destination }, 'alive');
  expect(text(await subscriber.nextOf('MESSAGE'))).toBe('alive');
}

/** The same, against another broker of this file's. */
async function expectBrokerServes(otherPort: number): Promise<void> {
  const destination = `/topic/${uniqueName('alive')}`;
  const [subscriber, publisher] = await Promise.all([
    TcpFrameSession.connect({ port: otherPort }),
    TcpFrameSession.connect({ port: otherPort }),
  ]);
  sessions.push(subscriber, publisher);
  subscriber.send('SUBSCRIBE', { id: '1', destination, receipt: 's' });
  await subscriber.receipt('s');
  publisher.send('SEND', { destination }, 'alive');
  expect(text(await subscriber.nextOf('MESSAGE'))).toBe('alive');
}

/** Sends `bytes` on a fresh connection; expects an ERROR whose message matches, then the close. */
async function expectRefused(
  bytes: string | Uint8Array,
  message: RegExp,
  options: { connectFirst?: boolean } = {},
): Promise<void> {
  const session = options.connectFirst ? await connected() : await raw();
  session.sendBytes(bytes);
  const error = await session.error();
  expect(getHeader(error, 'message')).toMatch(message);
  await session.closed;
  await expectBrokerStillServes();
}

describe('embedded broker: bad input', () => {
  it('garbage bytes', async () => {
    await expectRefused(
      new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x0a, 0x00, 0xff]),
      /invalid command/,
    );
  });

  it('an HTTP request on the STOMP port', async () => {
    await expectRefused('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n', /expected a STOMP command/);
  });

  it('a frame before CONNECT', async () => {
    await expectRefused('SEND\ndestination:/a\n\nx\0', /Expected CONNECT first/);
  });

  it('an unknown command', async () => {
    await expectRefused('BOGUS\n\n\0', /Unknown command/, { connectFirst: true });
  });

  it('a frame over the frame limit', async () => {
    const headers = Array.from({ length: 15 }, (_, i) => `h${i}:${'v'.repeat(200)}\n`).join('');
    await expectRefused(
      `SEND\ndestination:/a\n${headers}\n${'x'.repeat(1500)}\0`,
      /Frame too large/,
      {
        connectFirst: true,
      },
    );
  });

  it('a frame over the header count limit', async () => {
    const headers = Array.from({ length: 17 }, (_, i) => `h${i}:v\n`).join('');
    await expectRefused(`SEND\n${headers}\n\0`, /Too many headers/, { connectFirst: true });
  });

  it('a header line over the limit', async () => {
    await expectRefused(`SEND\nk:${'v'.repeat(300)}\n\n\0`, /Header line too long/, {
      connectFirst: true,
    });
  });

  it('a body over the limit, announced by content-length', async () => {
    await expectRefused('SEND\ndestination:/a\ncontent-length:999999\n\n', /Body too large/, {
      connectFirst: true,
    });
  });

  it('an undefined escape sequence', async () => {
    await expectRefused('SEND\ndestination:/a\nk:a\\tb\n\n\0', /undefined escape/, {
      connectFirst: true,
    });
  });

  it('invalid UTF-8 in a header', async () => {
    await expectRefused(
      new Uint8Array([
        ...new TextEncoder().encode('SEND\ndestination:/a\nk:'),
        0xff,
        0xfe,
        0x0a,
        0x0a,
        0x00,
      ]),
      /invalid UTF-8/,
      { connectFirst: true },
    );
  });

  it('a content-length that lies: too short', async () => {
    await expectRefused('SEND\ndestination:/a\ncontent-length:2\n\nhello\0', /content-length/, {
      connectFirst: true,
    });
  });

  it('a content-length that lies: too long, so the body swallows the next frame', async () => {
    await expectRefused(
      'SEND\ndestination:/a\ncontent-length:12\n\nhi\0SEND\ndestination:/b\n\nthere\0',
      /content-length/,
      { connectFirst: true },
    );
  });

  it('SEND without destination, with the receipt-id of the refused frame', async () => {
    const session = await connected();
    session.send('SEND', { receipt: 'r1' }, 'x');
    const error = await session.error();
    expect(getHeader(error, 'message')).toMatch(/no destination header/);
    expect(getHeader(error, 'receipt-id')).toBe('r1');
    await session.closed;
  });

  it('SUBSCRIBE without id', async () => {
    await expectRefused('SUBSCRIBE\ndestination:/a\n\n\0', /no id header/, { connectFirst: true });
  });

  it('ACK of an unknown id', async () => {
    await expectRefused('ACK\nid:404\n\n\0', /Unknown message to acknowledge/, {
      connectFirst: true,
    });
  });

  it('a second CONNECT', async () => {
    await expectRefused('CONNECT\naccept-version:1.2\n\n\0', /Already connected/, {
      connectFirst: true,
    });
  });

  it('reads a whole session sent one byte at a time', async () => {
    const destination = `/topic/${uniqueName('bytes')}`;
    const subscriber = await connected();
    subscriber.send('SUBSCRIBE', { id: '1', destination, receipt: 's' });
    await subscriber.receipt('s');
    const publisher = await raw();
    const session = `CONNECT\naccept-version:1.2\n\n\0SEND\ndestination:${destination}\ncontent-length:5\n\nab\0cd\0DISCONNECT\nreceipt:bye\n\n\0`;
    for (const byte of new TextEncoder().encode(session)) {
      publisher.sendBytes(new Uint8Array([byte]));
      // Each byte as its own TCP segment: wait for the write to leave before the next one.
      await new Promise<void>((resolve) =>
        publisher.socket.write(new Uint8Array(0), () => resolve()),
      );
    }
    expect((await publisher.receipt('bye')).command).toBe('RECEIPT');
    expect([...(await subscriber.nextOf('MESSAGE')).body]).toEqual([97, 98, 0, 99, 100]);
  });

  it('processes a 10,000-frame pipeline in order', async () => {
    const destination = `/topic/${uniqueName('pipeline')}`;
    const subscriber = await connected();
    subscriber.send('SUBSCRIBE', { id: '1', destination, receipt: 's' });
    await subscriber.receipt('s');
    const publisher = await connected();
    let pipeline = '';
    for (let i = 0; i < 10_000; i++) pipeline += `SEND\ndestination:${destination}\n\n${i}\0`;
    publisher.sendBytes(`${pipeline}DISCONNECT\nreceipt:done\n\n\0`);
    await publisher.receipt('done', 20_000);
    for (let i = 0; i < 10_000; i++) {
      const frame = await subscriber.nextOf('MESSAGE');
      if (text(frame) !== String(i)) expect(text(frame)).toBe(String(i));
    }
    await expectBrokerStillServes();
  });

  it('survives many connections that send garbage at once', async () => {
    const attackers = await Promise.all(Array.from({ length: 50 }, () => raw()));
    for (const attacker of attackers) attacker.sendBytes(new Uint8Array(512).fill(0x41));
    await Promise.all(attackers.map((attacker) => attacker.closed));
    await expectBrokerStillServes();
  });
});

describe('embedded broker: clients that send and never read', () => {
  it('a flood of frames with receipts: the broker stops reading it at its cap, and loses nothing', async () => {
    const floodBroker = createBroker({ maxQueuedBytes: 64 * 1024 });
    const floodPort = (await floodBroker.listen({ port: 0 })).port;
    try {
      const flooder = await TcpFrameSession.connect({ port: floodPort });
      flooder.socket.pause();
      // 10,000 SENDs whose 4 KB receipt ids come back in 40 MB of RECEIPTs: far more than the
      // cap and the kernel's socket buffers on both sides can hold.
      const total = 10_000;
      const filler = 'r'.repeat(4000);
      let pipeline = '';
      for (let i = 0; i < total; i++) {
        pipeline += `SEND\ndestination:/topic/nobody\nreceipt:${i}-${filler}\n\n\0`;
      }
      flooder.sendBytes(pipeline);
      // Wait until the broker has stopped taking SENDs from it.
      let last = -1;
      while (floodBroker.stats().published !== last) {
        last = floodBroker.stats().published;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      expect(last).toBeLessThan(total);
      await expectBrokerServes(floodPort);
      // Reading again lets it go on: every receipt arrives, in order.
      flooder.socket.resume();
      for (let i = 0; i < total; i++) {
        const receipt = await flooder.nextOf('RECEIPT', 20_000);
        const id = getHeader(receipt, 'receipt-id')!;
        if (id !== `${i}-${filler}`) expect(id.slice(0, 10)).toBe(`${i}-`);
      }
      // Every SEND counted, plus the one that showed the broker still serving.
      expect(floodBroker.stats().published).toBe(total + 1);
      flooder.close();
    } finally {
      await floodBroker.close({ drainMs: 100 });
    }
  }, 60_000);

  it('pipelined frames behind CONNECT wait unparsed while an asynchronous login runs, then all count', async () => {
    // Each login waits until the test lets it through.
    const pending = new Map<string, () => void>();
    const slowLoginBroker = createBroker({
      authenticate: ({ login }) =>
        new Promise((resolve) =>
          pending.set(login ?? '', () => resolve({ id: login ?? '', anonymous: false })),
        ),
    });
    const slowPort = (await slowLoginBroker.listen({ port: 0 })).port;
    const letIn = async (login: string): Promise<void> => {
      while (!pending.has(login)) await new Promise((resolve) => setTimeout(resolve, 10));
      pending.get(login)!();
    };
    try {
      const destination = `/topic/${uniqueName('behind-connect')}`;
      const subscriberConnecting = TcpFrameSession.connect({ port: slowPort, login: 'sub' });
      await letIn('sub');
      const subscriber = await subscriberConnecting;
      sessions.push(subscriber);
      subscriber.send('SUBSCRIBE', { id: '1', destination, receipt: 's' });
      await subscriber.receipt('s');

      // 20,000 frames in one write: many socket chunks, and far more than the 1,000 frames a
      // session may queue during a login. They must wait as bytes, not be refused.
      const total = 20_000;
      let pipeline = 'CONNECT\naccept-version:1.2\nlogin:pub\n\n\0';
      for (let i = 0; i < total; i++) pipeline += `SEND\ndestination:${destination}\n\n${i}\0`;
      pipeline += 'DISCONNECT\nreceipt:done\n\n\0';
      const publisher = await TcpFrameSession.openSocket(slowPort);
      sessions.push(publisher);
      publisher.sendBytes(pipeline);
      // Give the bytes time to reach the broker while the check is still running.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await letIn('pub');
      await publisher.receipt('done', 20_000);
      for (let i = 0; i < total; i++) {
        const frame = await subscriber.nextOf('MESSAGE');
        if (text(frame) !== String(i)) expect(text(frame)).toBe(String(i));
      }
    } finally {
      await slowLoginBroker.close({ drainMs: 100 });
    }
  }, 60_000);
});

describe('embedded broker: what sessions hold is capped, per session and in all', () => {
  it('open transactions: past the broker-wide cap a frame is refused, and an ABORT frees the room', async () => {
    const capped = createBroker({
      maxTransactionBytes: 48 * 1024,
      maxTransactionBytesTotal: 64 * 1024,
    });
    const cappedPort = (await capped.listen({ port: 0 })).port;
    try {
      const body = 'x'.repeat(1000);
      const first = await TcpFrameSession.connect({ port: cappedPort });
      const second = await TcpFrameSession.connect({ port: cappedPort });
      sessions.push(first, second);
      first.send('BEGIN', { transaction: 't' });
      for (let i = 0; i < 40; i++)
        first.send('SEND', { destination: '/queue/held', transaction: 't' }, body);
      first.send('SEND', { destination: '/topic/none', receipt: 'first' });
      await first.receipt('first');
      // The first session holds ~41 KB; the second may add up to the broker's 64 KiB in all.
      second.send('BEGIN', { transaction: 't' });
      for (let i = 0; i < 30; i++)
        second.send('SEND', { destination: '/queue/held', transaction: 't' }, body);
      const refused = await second.error();
      expect(getHeader(refused, 'message')).toMatch(/Limit exceeded/);
      expect(text(refused)).toMatch(/open transactions across the broker exceed 65536 bytes/);
      // Its session ended and gave its share back; so does an ABORT.
      first.send('ABORT', { transaction: 't', receipt: 'aborted' });
      await first.receipt('aborted');
      const third = await TcpFrameSession.connect({ port: cappedPort });
      sessions.push(third);
      third.send('BEGIN', { transaction: 't' });
      for (let i = 0; i < 40; i++)
        third.send('SEND', { destination: '/queue/held', transaction: 't' }, body);
      third.send('COMMIT', { transaction: 't', receipt: 'committed' });
      await third.receipt('committed');
      expect(capped.stats().queuedMessages).toBe(40);
    } finally {
      await capped.close({ drainMs: 100 });
    }
  });

  it('one session past its own transaction cap gets an ERROR', async () => {
    const capped = createBroker({ maxTransactionBytes: 16 * 1024 });
    const cappedPort = (await capped.listen({ port: 0 })).port;
    try {
      const session = await TcpFrameSession.connect({ port: cappedPort });
      sessions.push(session);
      // Two transactions together: the cap is on the session, not on each transaction.
      session.send('BEGIN', { transaction: 'a' });
      session.send('BEGIN', { transaction: 'b' });
      for (let i = 0; i < 20; i++) {
        session.send(
          'SEND',
          { destination: '/queue/x', transaction: i % 2 ? 'a' : 'b' },
          'y'.repeat(1000),
        );
      }
      // 20 KB in all, 10 KB in each: only the session's total is over.
      const error = await session.error();
      expect(getHeader(error, 'message')).toMatch(/Limit exceeded/);
      expect(text(error)).toMatch(/this session's open transactions exceed 16384 bytes/);
      await expectBrokerServes(cappedPort);
    } finally {
      await capped.close({ drainMs: 100 });
    }
  });

  it('unacknowledged messages: a queue stops handing them out at the cap and goes on after ACKs', async () => {
    const capped = createBroker({ maxUnackedBytes: 20 * 1024 });
    const cappedPort = (await capped.listen({ port: 0 })).port;
    try {
      const consumer = await TcpFrameSession.connect({ port: cappedPort });
      sessions.push(consumer);
      consumer.send('SUBSCRIBE', {
        id: '1',
        destination: '/queue/work',
        ack: 'client-individual',
        receipt: 's',
      });
      await consumer.receipt('s');
      const producer = await TcpFrameSession.connect({ port: cappedPort });
      sessions.push(producer);
      for (let i = 0; i < 50; i++)
        producer.send('SEND', { destination: '/queue/work' }, String(i).padEnd(1000, '.'));
      producer.send('SEND', { destination: '/topic/none', receipt: 'sent' });
      await producer.receipt('sent');
      // About 20 of the 50 go out; the rest wait in the queue for room.
      const first = await consumer.nextOf('MESSAGE');
      await expectBrokerServes(cappedPort);
      const held = capped.stats().queuedMessages;
      expect(held).toBeGreaterThan(20);
      expect(held).toBeLessThan(50);
      let frame = first;
      for (let i = 0; i < 50; i++) {
        if (i > 0) frame = await consumer.nextOf('MESSAGE');
        expect(text(frame).startsWith(`${i}.`)).toBe(true);
        consumer.send('ACK', { id: getHeader(frame, 'ack')! });
      }
      expect(capped.stats().queuedMessages).toBe(0);
    } finally {
      await capped.close({ drainMs: 100 });
    }
  });

  it('unacknowledged messages: ACKs on one queue free the session for its other queues too', async () => {
    const capped = createBroker({ maxUnackedBytes: 20 * 1024 });
    const cappedPort = (await capped.listen({ port: 0 })).port;
    try {
      const consumer = await TcpFrameSession.connect({ port: cappedPort });
      sessions.push(consumer);
      for (const [id, destination] of [
        ['a', '/queue/a'],
        ['b', '/queue/b'],
      ] as const) {
        consumer.send('SUBSCRIBE', { id, destination, ack: 'client-individual', receipt: id });
        await consumer.receipt(id);
      }
      const producer = await TcpFrameSession.connect({ port: cappedPort });
      sessions.push(producer);
      // /queue/a's backlog is five times the cap: it alone could fill every room an ACK frees.
      for (let i = 0; i < 100; i++)
        producer.send('SEND', { destination: '/queue/a' }, `a${i}`.padEnd(1000, '.'));
      for (let i = 0; i < 3; i++)
        producer.send('SEND', { destination: '/queue/b' }, `b${i}`.padEnd(1000, '.'));
      producer.send('SEND', { destination: '/topic/none', receipt: 'sent' });
      await producer.receipt('sent');
      // The session's cap is reached on /queue/a; /queue/b's three wait behind it.
      expect(capped.stats().queuedMessages).toBeGreaterThan(3);
      const seen: string[] = [];
      while (seen.length < 103) {
        const frame = await consumer.nextOf('MESSAGE');
        seen.push(text(frame).replace(/\.+$/, ''));
        consumer.send('ACK', { id: getHeader(frame, 'ack')! });
      }
      expect(seen.filter((body) => body.startsWith('a'))).toEqual(
        Array.from({ length: 100 }, (_, i) => `a${i}`),
      );
      expect(seen.filter((body) => body.startsWith('b'))).toEqual(['b0', 'b1', 'b2']);
      // /queue/b's turn comes with the first ACKs, not after /queue/a's whole backlog.
      expect(seen.indexOf('b2')).toBeLessThan(40);
      expect(capped.stats().queuedMessages).toBe(0);
    } finally {
      await capped.close({ drainMs: 100 });
    }
  });

  it('unacknowledged messages: at the broker-wide cap, one consumer’s ACKs free the others’ queues', async () => {
    const capped = createBroker({ maxUnackedBytesTotal: 20 * 1024 });
    const cappedPort = (await capped.listen({ port: 0 })).port;
    try {
      const [busy, waiting, automatic] = await Promise.all([
        TcpFrameSession.connect({ port: cappedPort }),
        TcpFrameSession.connect({ port: cappedPort }),
        TcpFrameSession.connect({ port: cappedPort }),
      ]);
      sessions.push(busy, waiting, automatic);
      busy.send('SUBSCRIBE', { id: '1', destination: '/queue/busy', ack: 'client', receipt: 's' });
      await busy.receipt('s');
      waiting.send('SUBSCRIBE', {
        id: '1',
        destination: '/queue/other',
        ack: 'client-individual',
        receipt: 's',
      });
      await waiting.receipt('s');
      automatic.send('SUBSCRIBE', { id: '1', destination: '/queue/auto', receipt: 's' });
      await automatic.receipt('s');
      const producer = await TcpFrameSession.connect({ port: cappedPort });
      sessions.push(producer);
      // A backlog five times the cap, waiting for `busy`'s ACKs.
      for (let i = 0; i < 100; i++)
        producer.send('SEND', { destination: '/queue/busy' }, `${i}`.padEnd(1000, '.'));
      producer.send('SEND', { destination: '/topic/none', receipt: 'busy' });
      await producer.receipt('busy');
      // The broker holds 20 KB unacknowledged for `busy`: no queue with acknowledging
      // consumers hands out anything now. An `auto` subscription holds nothing unacknowledged,
      // so the cap does not stop it.
      producer.send('SEND', { destination: '/queue/other', receipt: 'other' }, 'for waiting');
      producer.send('SEND', { destination: '/queue/auto' }, 'for automatic');
      await producer.receipt('other');
      expect(text(await automatic.nextOf('MESSAGE'))).toBe('for automatic');
      const queued = capped.stats().queuedMessages;
      expect(queued).toBeGreaterThan(1);
      // What `busy` was handed before the cap: the rest of its 100, and `waiting`'s one, wait.
      const handed = 100 - (queued - 1);
      let last = await busy.nextOf('MESSAGE');
      for (let i = 1; i < handed; i++) last = await busy.nextOf('MESSAGE');
      // One cumulative ACK ('client' mode) releases them all at once: `waiting`, held back the
      // longest, goes before `busy`'s backlog fills the room again.
      busy.send('ACK', { id: getHeader(last, 'ack')! });
      expect(text(await waiting.nextOf('MESSAGE'))).toBe('for waiting');
    } finally {
      await capped.close({ drainMs: 100 });
    }
  });

  it('unacknowledged topic messages past the cap are a slow consumer', async () => {
    const capped = createBroker({ maxUnackedBytes: 20 * 1024 });
    const cappedPort = (await capped.listen({ port: 0 })).port;
    try {
      const subscriber = await TcpFrameSession.connect({ port: cappedPort });
      sessions.push(subscriber);
      subscriber.send('SUBSCRIBE', {
        id: '1',
        destination: '/topic/news',
        ack: 'client',
        receipt: 's',
      });
      await subscriber.receipt('s');
      const publisher = await TcpFrameSession.connect({ port: cappedPort });
      sessions.push(publisher);
      for (let i = 0; i < 50; i++)
        publisher.send('SEND', { destination: '/topic/news' }, 'z'.repeat(1000));
      const error = await subscriber.error();
      expect(getHeader(error, 'message')).toMatch(/Slow consumer/);
      expect(text(error)).toMatch(/more than 20480 bytes wait for an ACK/);
      await expectBrokerServes(cappedPort);
    } finally {
      await capped.close({ drainMs: 100 });
    }
  });
});

describe('embedded broker: slow consumers', () => {
  it('policy "error": a subscriber that never reads is cut off with an ERROR; others get everything', async () => {
    const slowBroker = createBroker({ maxQueuedBytes: 64 * 1024 });
    const slowPort = (await slowBroker.listen({ port: 0 })).port;
    try {
      const destination = '/topic/flood';
      const stalled = await TcpFrameSession.connect({ port: slowPort });
      const reader = await TcpFrameSession.connect({ port: slowPort });
      for (const session of [stalled, reader]) {
        session.send('SUBSCRIBE', { id: '1', destination, receipt: 's' });
        await session.receipt('s');
      }
      stalled.socket.pause();
      const publisher = await TcpFrameSession.connect({ port: slowPort });
      // 20 MB in all: more than the kernel's socket buffers can absorb for the stalled reader.
      const body = 'x'.repeat(10_000);
      const total = 2000;
      const batch = 5; // 50 KB bursts stay under the 64 KiB cap for a subscriber that reads
      for (let i = 0; i < total; i++) {
        publisher.send('SEND', { destination }, body);
        if (i % batch === batch - 1) {
          publisher.send('SEND', { destination: '/topic/none', receipt: `batch-${i}` });
          await publisher.receipt(`batch-${i}`);
          // Let the reader keep up, so that only the stalled subscriber falls behind.
          for (let n = 0; n < batch; n++) expect(text(await reader.nextOf('MESSAGE'))).toBe(body);
        }
      }
      // Reading again shows what the broker did: it closed the connection. Its ERROR frame comes
      // last, behind bytes the subscriber never read, so it arrives only if the close was gentle.
      stalled.socket.resume();
      await stalled.closed;
      const error = await stalled.error(1).catch(() => undefined);
      if (error) expect(getHeader(error, 'message')).toMatch(/Slow consumer/);
      expect(slowBroker.stats().connections).toBe(2);
      expect(slowBroker.stats().published).toBe(total + total / batch);
    } finally {
      await slowBroker.close({ drainMs: 100 });
    }
  });

  it('policy "drop": topic messages for a subscriber that never reads are dropped and counted', async () => {
    const dropBroker = createBroker({ maxQueuedBytes: 64 * 1024, slowConsumerPolicy: 'drop' });
    const dropPort = (await dropBroker.listen({ port: 0 })).port;
    try {
      const destination = '/topic/flood';
      const stalled = await TcpFrameSession.connect({ port: dropPort });
      stalled.send('SUBSCRIBE', { id: '1', destination, receipt: 's' });
      await stalled.receipt('s');
      stalled.socket.pause();
      const publisher = await TcpFrameSession.connect({ port: dropPort });
      const body = 'x'.repeat(1000);
      for (let i = 0; i < 2000; i++) publisher.send('SEND', { destination }, body);
      publisher.send('SEND', { destination: '/topic/none', receipt: 'done' });
      await publisher.receipt('done', 20_000);
      expect(dropBroker.stats().dropped).toBeGreaterThan(0);
      expect(stalled.isClosed).toBe(false);
      stalled.socket.resume();
      // What was kept arrives whole: frames parse, and none is cut.
      const first = await stalled.nextOf('MESSAGE');
      expect(text(first)).toBe(body);
    } finally {
      await dropBroker.close({ drainMs: 100 });
    }
  });

  it('broker memory stays bounded while a subscriber never reads (separate process, RSS)', async () => {
    const server = await startBrokerProcess({
      slowConsumerPolicy: 'drop',
      maxQueuedBytes: 1 << 20,
      history: 100,
    });
    try {
      const destination = '/topic/flood';
      const stalled = await TcpFrameSession.connect({ port: server.port });
      stalled.send('SUBSCRIBE', { id: '1', destination, receipt: 's' });
      await stalled.receipt('s');
      stalled.socket.pause();
      const publisher = await TcpFrameSession.connect({ port: server.port });
      const body = 'x'.repeat(10_000);
      const rssBefore = server.rssBytes();
      // 100 MB toward a subscriber that reads nothing.
      for (let batch = 0; batch < 100; batch++) {
        for (let i = 0; i < 100; i++) publisher.send('SEND', { destination }, body);
        publisher.send('SEND', { destination: '/topic/none', receipt: `b${batch}` });
        await publisher.receipt(`b${batch}`, 20_000);
      }
      const growth = server.rssBytes() - rssBefore;
      // The cap (1 MiB), the kernel socket buffers, history (100 × 10 KB) and allocator slack
      // fit well inside 48 MiB; unbounded buffering would have grown by ~100 MB.
      expect(growth).toBeLessThan(48 * 1024 * 1024);
      stalled.close();
      publisher.close();
    } finally {
      server.stop();
    }
  }, 60_000);
});

interface BrokerProcess {
  port: number;
  rssBytes(): number;
  stop(): void;
}

/** Runs an embedded broker in a child process, so that its memory can be read alone. */
async function startBrokerProcess(options: Record<string, unknown>): Promise<BrokerProcess> {
  const script = `
    import { createBroker } from ${JSON.stringify(new URL('../../src/broker/index.ts', import.meta.url).pathname)};
    const broker = createBroker(${JSON.stringify(options)});
    const address = await broker.listen({ port: 0 });
    console.log(address.port);
  `;
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`broker process exited with ${code}`)));
  });
  return {
    port: Number(line),
    rssBytes: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
    },
    stop: () => child.kill('SIGKILL'),
  };
}
