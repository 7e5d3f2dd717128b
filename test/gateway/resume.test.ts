import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PerigeeClient, StateChange } from '../../src/client/browser/index.js';
import { collector, nodeClient, startGateway, type TestGateway } from '../support/gateway.js';
import { until } from './transport-conformance.js';

/**
 * Nothing lost across reconnects (DESIGN.md §5): a dropped connection resumes the session and
 * replays what was missed; a long outage recovers from topic history, and says when it cannot.
 */

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function gatewayFor(options: Parameters<typeof startGateway>[0] = {}): Promise<TestGateway> {
  const gateway = await startGateway(options);
  cleanups.push(() => gateway.close());
  return gateway;
}

function client(url: string, options: Parameters<typeof nodeClient>[1] = {}): PerigeeClient {
  const created = nodeClient(url, { reconnect: { initialDelay: 50, maxDelay: 500 }, ...options });
  cleanups.push(() => created.disconnect().catch(() => undefined));
  return created;
}

describe('loss test', () => {
  it('10,000 sequenced messages through 20+ server-side cuts and 3+ transport switches: none lost, none duplicated, in order', async () => {
    // Defaults everywhere but the history, which backs up the session's own replay buffer.
    const gateway = await gatewayFor({ broker: { history: 2000 } });
    const browser = client(gateway.url, { transports: ['websocket'] });
    const states: StateChange[] = [];
    browser.on('state', (change) => states.push(change));
    const inbox = collector();
    const subscription = browser.subscribe('/feed/loss', inbox.handler);
    await subscription.ready;

    const total = 10_000;
    let published = 0;
    // A steady stream: 10 messages every 10 ms, about 1,000 a second.
    const publisher = setInterval(() => {
      for (let i = 0; i < 10 && published < total; i++)
        gateway.broker.publishNow('/feed/loss', String(published++));
      if (published >= total) clearInterval(publisher);
    }, 10);
    cleanups.push(() => clearInterval(publisher));

    // Cut a connection every 150 ms, from the server's side, as a failing network would.
    let cuts = 0;
    const cutter = setInterval(() => {
      const sockets = [...gateway.sockets];
      if (sockets.length === 0) return;
      sockets[Math.floor(Math.random() * sockets.length)]!.destroy();
      cuts++;
    }, 150);
    cleanups.push(() => clearInterval(cutter));

    // Switch transports while it runs.
    const rotation = [
      'xhr-streaming',
      'eventsource',
      'sockjs-websocket',
      'xhr-polling',
      'websocket',
    ] as const;
    let switches = 0;
    const switcher = setInterval(() => {
      browser.useTransports([rotation[switches % rotation.length]!]);
      browser.reconnect('switching transports');
      switches++;
    }, 1000);
    cleanups.push(() => clearInterval(switcher));

    // Cuts of idle keep-alive or send sockets cost the client nothing; what counts is how many
    // connections it lost (drops) and how many times it came back on another transport.
    const drops = () =>
      states.filter(
        (change) =>
          change.state === 'reconnecting' && !change.reason?.includes('switching transports'),
      ).length;
    const transportChanges = () => {
      const opens = states.filter((change) => change.state === 'open');
      return opens.filter((change, i) => i > 0 && change.transport !== opens[i - 1]!.transport)
        .length;
    };
    await until(
      () => published >= total && drops() >= 20 && transportChanges() >= 3 && switches >= 3,
      60_000,
    );
    clearInterval(cutter);
    clearInterval(switcher);
    await inbox.waitFor(total, 30_000);
    // Let anything that would be a duplicate arrive before judging.
    await until(() => browser.state === 'open', 10_000);
    await browser.publish('/chat/barrier', 'barrier');

    const numbers = inbox.received.map((message) => Number(message.text));
    expect(numbers.length).toBe(total);
    expect(numbers).toEqual(Array.from({ length: total }, (_, i) => i));
    const transportsUsed = new Set(
      states.filter((change) => change.state === 'open').map((change) => change.transport),
    );
    expect(transportsUsed.size).toBeGreaterThanOrEqual(3);
    expect(transportChanges()).toBeGreaterThanOrEqual(3);
    expect(drops()).toBeGreaterThanOrEqual(20);
    expect(cuts).toBeGreaterThanOrEqual(drops());
  }, 120_000);
});

describe('session resume', () => {
  it('a resumed session replays what was sent while the browser was away', async () => {
    const gateway = await gatewayFor();
    const browser = client(gateway.url, { transports: ['websocket'] });
    const inbox = collector();
    const opens: StateChange[] = [];
    browser.on('state', (change) => change.state === 'open' && opens.push(change));
    await browser.subscribe('/feed/r', inbox.handler).ready;
    for (const socket of gateway.sockets) socket.destroy();
    // Published while the connection is down.
    gateway.broker.publishNow('/feed/r', 'while away');
    expect((await inbox.next()).text).toBe('while away');
    await until(() => opens.length === 2);
    expect(opens[1]!.resumed).toBe(true);
  });

  it('refuses to resume a session for another principal', async () => {
    const gateway = await gatewayFor({
      authenticate: ({ login }) => (login ? { id: login, anonymous: false } : null),
    });
    const alice = client(gateway.url, { transports: ['websocket'], login: 'alice', passcode: 'x' });
    await alice.ready;
    const sessionId = alice.core.sessionId!;
    const { connect: rawConnect } = await import('../../src/client/browser/index.js');
    const mallory = rawConnect(gateway.url, {
      transports: ['websocket'],
      login: 'mallory',
      passcode: 'x',
      connectHeaders: { 'x-perigee-session': sessionId, 'x-perigee-last-seq': '0' },
      env: (await import('../support/gateway.js')).NODE_ENV,
    });
    cleanups.push(() => mallory.disconnect().catch(() => undefined));
    await mallory.ready;
    expect(mallory.core.sessionId).not.toBe(sessionId);
    expect(alice.state).toBe('open');
  });
});

describe('what sessions hold', () => {
  it('a client that does not resume (no x-perigee-resume) leaves no session behind when it drops', async () => {
    const gateway = await gatewayFor();
    const { default: WebSocket } = await import('ws');
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/stomp`, ['v12.stomp']);
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send('CONNECT\naccept-version:1.2\n\n\0');
    await new Promise((resolve) => socket.once('message', resolve));
    expect(gateway.gateway.stats().sessions).toBe(1);
    socket.terminate();
    await until(() => gateway.gateway.stats().sessions === 0);
  });

  it('past the gateway-wide replay budget, the session detached the longest ends first', async () => {
    const gateway = await gatewayFor({ gateway: { session: { maxRetainedBytes: 64 * 1024 } } });
    const first = client(gateway.url, { transports: ['websocket'], reconnect: false });
    const second = client(gateway.url, { transports: ['websocket'], reconnect: false });
    await first.subscribe('/feed/budget', () => {}).ready;
    await second.subscribe('/feed/budget', () => {}).ready;
    const ids = [first.core.sessionId!, second.core.sessionId!];
    const lastSeqs = [first.core.lastSequence, second.core.lastSequence];
    // Both connections drop (the clients do not come back on their own); the first one earlier.
    first.core.dropConnection('gone');
    await until(() => gateway.gateway.stats().detached === 1);
    second.core.dropConnection('gone');
    await until(() => gateway.gateway.stats().detached === 2);
    // About 90 KB for the two of them to hold: more than the 64 KiB budget.
    for (let i = 0; i < 40; i++) gateway.broker.publishNow('/feed/budget', 'x'.repeat(1000));
    expect(gateway.gateway.stats().sessions).toBe(1);
    expect(await resumes(gateway, ids[0]!, lastSeqs[0]!)).toBe(false);
    expect(await resumes(gateway, ids[1]!, lastSeqs[1]!)).toBe(true);
  });
});

describe('long outage', () => {
  it('past session.timeout, recovers from topic history and says recovered: true', async () => {
    const gateway = await gatewayFor({ gateway: { session: { timeout: 200 } } });
    const proxy = await startProxy(gateway.port);
    const browser = client(`http://127.0.0.1:${proxy.port}`, { transports: ['websocket'] });
    const inbox = collector();
    const recoveries: boolean[] = [];
    const subscription = browser.subscribe('/feed/outage', inbox.handler, {
      onRecovery: (value) => recoveries.push(value),
    });
    await subscription.ready;
    gateway.broker.publishNow('/feed/outage', 'before');
    expect((await inbox.next()).text).toBe('before');

    proxy.block();
    await until(() => gateway.gateway.stats().sessions === 0, 10_000); // the session timed out
    for (const body of ['during 1', 'during 2', 'during 3'])
      gateway.broker.publishNow('/feed/outage', body);
    proxy.unblock();

    expect([
      (await inbox.next(15_000)).text,
      (await inbox.next()).text,
      (await inbox.next()).text,
    ]).toEqual(['during 1', 'during 2', 'during 3']);
    await until(() => recoveries.length === 1);
    expect(recoveries).toEqual([true]);
    expect(subscription.recovered).toBe(true);
  }, 30_000);

  it('a gap larger than the history says recovered: false', async () => {
    const gateway = await gatewayFor({
      broker: { history: 2 },
      gateway: { session: { timeout: 200 } },
    });
    const proxy = await startProxy(gateway.port);
    const browser = client(`http://127.0.0.1:${proxy.port}`, { transports: ['websocket'] });
    const recoveries: boolean[] = [];
    const inbox = collector();
    const subscription = browser.subscribe('/feed/gap', inbox.handler, {
      onRecovery: (value) => recoveries.push(value),
    });
    await subscription.ready;
    proxy.block();
    await until(() => gateway.gateway.stats().sessions === 0, 10_000);
    for (let i = 0; i < 5; i++) gateway.broker.publishNow('/feed/gap', String(i));
    proxy.unblock();
    await until(() => recoveries.length === 1, 15_000);
    expect(recoveries).toEqual([false]);
    expect(subscription.recovered).toBe(false);
    gateway.broker.publishNow('/feed/gap', 'live again');
    expect((await inbox.next()).text).toBe('live again');
  }, 30_000);
});

/** A TCP proxy that can refuse and cut every connection, to stage an outage. */
async function startProxy(
  target: number,
): Promise<{ port: number; block(): void; unblock(): void }> {
  const open = new Set<Socket>();
  let blocked = false;
  const server: Server = createServer((inbound) => {
    if (blocked) {
      inbound.destroy();
      return;
    }
    const outbound = new (inbound.constructor as typeof Socket)();
    outbound.connect(target, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => {});
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const socket of open) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return {
    port: (server.address() as AddressInfo).port,
    block() {
      blocked = true;
      for (const socket of open) socket.destroy();
    },
    unblock() {
      blocked = false;
    },
  };
}

/** Whether a CONNECT that asks to resume `session` from `lastSeq` is told it was resumed. */
async function resumes(gateway: TestGateway, session: string, lastSeq: number): Promise<boolean> {
  const { default: WebSocket } = await import('ws');
  const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/stomp`, ['v12.stomp']);
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(
    `CONNECT\naccept-version:1.2\nx-perigee-resume:true\nx-perigee-session:${session}\nx-perigee-last-seq:${lastSeq}\n\n\0`,
  );
  const reply = await new Promise<string>((resolve) =>
    socket.once('message', (data: Buffer) => resolve(data.toString())),
  );
  socket.terminate();
  return /x-perigee-resumed:true/.test(reply);
}
