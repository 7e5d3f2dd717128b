import type { IncomingMessage } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type {
  PerigeeClient,
  PerigeeOptions,
  StompMessage,
  TransportName,
} from '../../src/client/browser/index.js';
import type { PerigeeError } from '../../src/errors.js';
import {
  collector,
  NODE_ENV,
  nodeClient,
  startGateway,
  TEST_RULES,
  type TestGateway,
} from '../support/gateway.js';
import { until } from './transport-conformance.js';

/**
 * The browser client's API in Node, against a real gateway: `route`, the `exclude` option,
 * `subscribe` with `since`, and the ES module bundle the gateway serves.
 */

let gateway: TestGateway;
/** Every request path and upgrade path the gateway's server saw, to tell which transports ran. */
const requests: string[] = [];
const upgrades: string[] = [];

beforeAll(async () => {
  gateway = await startGateway({
    rules: [...TEST_RULES, { pattern: '/games/**', subscribe: 'anyone', send: 'nobody' }],
  });
  gateway.server.prependListener('request', (request: IncomingMessage) =>
    requests.push(pathOf(request)),
  );
  gateway.server.prependListener('upgrade', (request: IncomingMessage) =>
    upgrades.push(pathOf(request)),
  );
});
afterAll(() => gateway.close());

const clients: { disconnect(): Promise<void> }[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await Promise.all(clients.splice(0).map((client) => client.disconnect().catch(() => undefined)));
  requests.length = 0;
  upgrades.length = 0;
});

function pathOf(request: IncomingMessage): string {
  return (request.url ?? '/').split('?')[0]!;
}

function client(options: PerigeeOptions): PerigeeClient {
  const opened = nodeClient(gateway.url, options);
  clients.push(opened);
  return opened;
}

/** The SockJS transport segment of each SockJS request seen (`xhr_streaming`, `eventsource`…). */
function sockjsSegments(): string[] {
  return [...requests, ...upgrades]
    .filter((path) => path.startsWith('/sockjs/'))
    .map((path) => path.split('/').pop()!);
}

describe('route()', () => {
  it('dispatches each matching destination to the handler with its parameters', async () => {
    const browser = client({ transports: ['websocket'] });
    const seen: { params: Record<string, string>; text: string; destination: string }[] = [];
    const record = (message: StompMessage, params: Record<string, string>): void => {
      seen.push({ params, text: message.text, destination: message.destination });
    };
    await browser.route('/games/:id/status', record).ready;
    await browser.route('/games/:game/players/:player', record).ready;

    gateway.broker.publishNow('/games/7/status', 'seven');
    gateway.broker.publishNow('/games/7/players', 'not a route: no player segment');
    gateway.broker.publishNow('/games/abc/status/extra', 'not a route: one segment too many');
    gateway.broker.publishNow('/games/42/players/ann', 'ann joined');
    gateway.broker.publishNow('/games/a%20b/status', 'encoded');
    // Last, so that once it is here everything before it has been delivered or dropped.
    gateway.broker.publishNow('/games/last/status', 'last');
    await until(() => seen.some((entry) => entry.text === 'last'));

    expect(seen).toEqual([
      { params: { id: '7' }, text: 'seven', destination: '/games/7/status' },
      {
        params: { game: '42', player: 'ann' },
        text: 'ann joined',
        destination: '/games/42/players/ann',
      },
      { params: { id: 'a b' }, text: 'encoded', destination: '/games/a%20b/status' },
      { params: { id: 'last' }, text: 'last', destination: '/games/last/status' },
    ]);
  });

  it('returns an unsubscribe that ends the dispatch', async () => {
    const browser = client({ transports: ['websocket'] });
    const ids: string[] = [];
    const stop = browser.route('/games/:id/status', (_message, { id }) => ids.push(id!));
    await stop.ready;
    const inbox = collector();
    await browser.subscribe('/games/*/status', inbox.handler).ready;
    gateway.broker.publishNow('/games/1/status', 'routed');
    await inbox.next();
    await stop();
    gateway.broker.publishNow('/games/2/status', 'after unsubscribe');
    // The other subscription to the same destinations proves the message was delivered.
    expect((await inbox.next()).text).toBe('after unsubscribe');
    expect(ids).toEqual(['1']);
  });
});

describe('the exclude option', () => {
  it('removes transports from a forced order', async () => {
    const browser = client({
      transports: ['websocket', 'sockjs-websocket', 'xhr-polling'],
      exclude: ['websocket', 'sockjs-websocket'],
    });
    await browser.ready;
    expect(browser.transport).toBe('xhr-polling');
    expect(upgrades).toEqual([]);
  });

  it('removes transports from the fallback order', async () => {
    // A network that drops WebSocket upgrades, as some proxies do: /stomp fails to open and the
    // client falls back along the default order, whose next entry (eventsource) is excluded.
    const dropUpgrades = (_request: IncomingMessage, socket: Duplex): void => {
      socket.destroy();
    };
    gateway.server.prependListener('upgrade', dropUpgrades);
    cleanups.push(() => gateway.server.off('upgrade', dropUpgrades));
    const browser = client({ exclude: ['eventsource'] });
    await browser.ready;
    expect(upgrades).toContain('/stomp');
    expect(browser.transport).toBe('xhr-streaming');
    expect(sockjsSegments()).not.toContain('eventsource');
    expect(sockjsSegments()).toContain('xhr_streaming');

    const inbox = collector();
    await browser.subscribe('/feed/excluded', inbox.handler).ready;
    gateway.broker.publishNow('/feed/excluded', 'over xhr-streaming');
    expect((await inbox.next()).text).toBe('over xhr-streaming');
  });

  it('leaving no transport is a usage error, at once', () => {
    const everything: TransportName[] = [
      'websocket',
      'eventsource',
      'xhr-streaming',
      'xhr-polling',
    ];
    let caught: PerigeeError | undefined;
    try {
      client({ exclude: everything });
    } catch (error) {
      caught = error as PerigeeError;
    }
    expect(caught?.code).toBe('USAGE');
    expect(caught?.message).toMatch(/no transport can run here/);
  });
});

describe('subscribe() with since', () => {
  for (const transport of ['websocket', 'xhr-polling'] as const) {
    it(`over ${transport}, receives exactly what followed broker.position(), then live messages`, async () => {
      const destination = `/feed/since-${transport}`;
      gateway.broker.publishNow(destination, 'before 1');
      gateway.broker.publishNow(destination, 'before 2');
      const position = gateway.broker.position(destination);
      gateway.broker.publishNow(destination, 'after 1');
      gateway.broker.publishNow(destination, 'after 2');
      gateway.broker.publishNow(destination, 'after 3');

      const browser = client({ transports: [transport] });
      const inbox = collector();
      const subscription = browser.subscribe(destination, inbox.handler, { since: position });
      expect(await subscription.ready).toEqual({ recovered: true });
      gateway.broker.publishNow(destination, 'live');
      await inbox.waitFor(4);
      // Delivery keeps order, so with "live" here nothing published before it is still coming.
      expect(inbox.received.map((message) => message.text)).toEqual([
        'after 1',
        'after 2',
        'after 3',
        'live',
      ]);
    });
  }
});

describe('/perigee.mjs', () => {
  it('is served as JavaScript, and is an ES module whose client works', async () => {
    const response = await fetch(`${gateway.url}/perigee.mjs`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^(application|text)\/javascript\b/);
    const source = await response.text();
    // The module names its source map, which the loader reads from beside it.
    const map = await fetch(`${gateway.url}/perigee.mjs.map`);
    expect(map.status).toBe(200);
    expect(map.headers.get('content-type')).toBe('application/json');

    const directory = await mkdtemp(join(tmpdir(), 'perigee-mjs-'));
    try {
      const file = join(directory, 'perigee.mjs');
      await writeFile(file, source);
      await writeFile(`${file}.map`, await map.text());
      const bundle = (await import(pathToFileURL(file).href)) as {
        connect(url: string, options: PerigeeOptions): PerigeeClient;
        STOMPClient: unknown;
      };
      expect(typeof bundle.STOMPClient).toBe('function');
      const browser = bundle.connect(gateway.url, { transports: ['websocket'], env: NODE_ENV });
      clients.push(browser);
      const inbox = collector();
      await browser.subscribe('/feed/mjs', inbox.handler).ready;
      gateway.broker.publishNow('/feed/mjs', 'from the served module');
      expect((await inbox.next()).text).toBe('from the served module');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
