import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroker, type EmbeddedBroker } from '../../src/broker/index.js';
import type { StompClient } from '../../src/client/index.js';
import { PerigeeError } from '../../src/errors.js';
import { connect, createPublisher, type TcpClientOptions } from '../../src/publisher/index.js';
import { inbox, once, startTcpProxy, type TcpProxy } from './helpers.js';

/**
 * The STOMP client core over TCP against the embedded broker: what only it can show (its counters,
 * restarts, history). The cases every broker must pass, RabbitMQ and ActiveMQ included, are in
 * client-conformance.ts.
 */

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startBroker(
  options: Parameters<typeof createBroker>[0] = {},
  port = 0,
): Promise<{ broker: EmbeddedBroker; url: string; port: number }> {
  const broker = createBroker(options);
  const address = await broker.listen({ port });
  cleanups.push(() => broker.close({ drainMs: 50 }));
  return { broker, url: `stomp://127.0.0.1:${address.port}`, port: address.port };
}

async function client(url: string, options: TcpClientOptions = {}): Promise<StompClient> {
  const connected = await connect(url, {
    reconnect: { initialDelay: 20, maxDelay: 200 },
    ...options,
  });
  cleanups.push(() => connected.disconnect());
  return connected;
}

describe('client API against the embedded broker', () => {
  it('publishes and subscribes; message bodies, text, JSON and headers', async () => {
    const { url } = await startBroker();
    const [subscriber, publisher] = await Promise.all([client(url), client(url)]);
    const messages = inbox();
    const subscription = subscriber.subscribe('/games/1/status', messages.handler);
    await subscription.ready;
    await publisher.publish('/games/1/status', JSON.stringify({ state: 'question', n: 1 }), {
      headers: { 'content-type': 'application/json' },
      receipt: true,
    });
    const message = await messages.next();
    expect(message.json()).toEqual({ state: 'question', n: 1 });
    expect(message.headers['content-type']).toBe('application/json');
    expect(message.destination).toBe('/games/1/status');
    expect(subscriber.version).toBe('1.2');
    expect(subscriber.sessionId).toMatch(/^[\w-]{22}$/);
  });

  it('disconnect() waits for the receipt: everything sent before it was processed', async () => {
    const { url, broker } = await startBroker();
    const publisher = await connect(url);
    for (let i = 0; i < 50; i++) void publisher.publish('/queue/flush', String(i));
    await publisher.disconnect();
    expect(broker.stats().queuedMessages).toBe(50);
    expect(publisher.state).toBe('closed');
  });

  it('createPublisher() connects lazily and resolves publish on the broker’s receipt', async () => {
    const { url, broker } = await startBroker();
    const publisher = createPublisher(url);
    cleanups.push(() => publisher.close());
    await publisher.publish('/queue/p', 'one');
    expect(broker.stats().queuedMessages).toBe(1);
  });

  it('reports an ERROR from the broker to the call that caused it', async () => {
    const { url } = await startBroker({ maxQueueDepth: 1 });
    const publisher = await client(url);
    await publisher.publish('/queue/small', 'fits', { receipt: true });
    await expect(publisher.publish('/queue/small', 'overflows', { receipt: true })).rejects.toThrow(
      /Queue full/,
    );
  });

  it('the first connect fails clearly when nothing listens', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const error = await connect(`stomp://127.0.0.1:${port}`).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PerigeeError);
    expect((error as PerigeeError).message).toMatch(/ECONNREFUSED/);
  });

  it('the first connect fails clearly on a wrong login', async () => {
    const { url } = await startBroker({ users: { alice: 'secret' } });
    await expect(connect(url.replace('//', '//alice:wrong@'))).rejects.toThrow(
      /Authentication failed/,
    );
  });
});

describe('client resilience', () => {
  it('reconnects after the broker restarts, resubscribes, and resends unconfirmed publishes', async () => {
    const first = await startBroker();
    const subscriber = await client(first.url);
    const publisher = await client(first.url);
    const messages = inbox();
    await subscriber.subscribe('/queue/work', messages.handler).ready;
    await publisher.publish('/queue/work', 'before', { receipt: true });
    expect((await messages.next()).text).toBe('before');

    const reconnected = Promise.all([once(subscriber, 'connect'), once(publisher, 'connect')]);
    await first.broker.close({ drainMs: 50 });
    // Published while the broker is down: queued, then sent after the reconnect.
    const pending = publisher.publish('/queue/work', 'during', { receipt: true });
    await startBroker({}, first.port);
    await reconnected;
    await pending;
    expect((await messages.next()).text).toBe('during');
  });

  it('after a broker restart, tells the app that history could not cover the gap', async () => {
    const { url, broker, port } = await startBroker();
    const subscriber = await client(url);
    const messages = inbox();
    let recovered!: (value: boolean) => void;
    const recovery = new Promise<boolean>((resolve) => (recovered = resolve));
    await subscriber.subscribe('/scores', messages.handler, {
      onRecovery: (value) => recovered(value),
    }).ready;
    await broker.publish('/scores', '1');
    expect((await messages.next()).text).toBe('1');

    await broker.close({ drainMs: 0 });
    const second = await startBroker({}, port);
    // A new broker process has a new epoch: the resubscription's RECEIPT says recovered:false.
    expect(await recovery).toBe(false);
    await second.broker.publish('/scores', 'fresh');
    expect((await messages.next()).text).toBe('fresh');
  });

  it('replays what it missed when the same broker still has the history', async () => {
    const proxy = await startFlakyProxy();
    const { broker, port } = await startBroker();
    proxy.target = { host: '127.0.0.1', port };
    const subscriber = await client(`stomp://127.0.0.1:${proxy.port}`);
    const messages = inbox();
    const recoveries: boolean[] = [];
    await subscriber.subscribe('/feed', messages.handler, {
      onRecovery: (recovered) => recoveries.push(recovered),
    }).ready;
    await broker.publish('/feed', '1');
    expect((await messages.next()).text).toBe('1');
    const reconnected = once(subscriber, 'connect');
    proxy.cutAll();
    await broker.publish('/feed', '2');
    await broker.publish('/feed', '3');
    await reconnected;
    expect((await messages.next()).text).toBe('2');
    expect((await messages.next()).text).toBe('3');
    await broker.publish('/feed', '4');
    expect((await messages.next()).text).toBe('4');
    expect(messages.received.map((message) => message.text)).toEqual(['1', '2', '3', '4']);
    expect(recoveries).toEqual([true]);
  });

  it('drops a server that goes silent past the heart-beat deadline, and reconnects', async () => {
    const proxy = await startFlakyProxy();
    // The broker sends heart-beats but asks for none, so that only the client can notice silence.
    const { port } = await startBroker({ heartBeat: [200, 0] });
    proxy.target = { host: '127.0.0.1', port };
    const subscriber = await client(`stomp://127.0.0.1:${proxy.port}`, { heartBeat: [200, 200] });
    const lost = once(subscriber, 'disconnect');
    const reconnected = once(subscriber, 'connect');
    proxy.freeze();
    expect(((await lost) as PerigeeError).code).toBe('HEARTBEAT_TIMEOUT');
    proxy.unfreeze();
    await reconnected;
    expect(subscriber.state).toBe('connected');
  });
});

/** A proxy in front of a broker, to fail connections on purpose; closed after the test. */
async function startFlakyProxy(): Promise<TcpProxy> {
  const proxy = await startTcpProxy();
  cleanups.push(() => proxy.close());
  return proxy;
}
