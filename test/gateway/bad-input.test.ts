import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { PerigeeError } from '../../src/errors.js';
import {
  collector,
  NODE_TRANSPORTS,
  nodeClient,
  startGateway,
  type TestGateway,
} from '../support/gateway.js';
import { until } from './transport-conformance.js';

/**
 * Whatever a stranger sends to the gateway gets its documented answer (a 4xx or 5xx with a reason,
 * the SockJS protocol's own statuses on /sockjs, or a STOMP ERROR), and the gateway keeps serving.
 */

let gateway: TestGateway;
const LIMITS = { maxFrameBytes: 4096, maxBodyBytes: 2048, maxHeaders: 32, maxHeaderLineBytes: 512 };

beforeAll(async () => {
  gateway = await startGateway({
    gateway: {
      limits: LIMITS,
      sockjs: { maxPostBytes: 8192 },
      access: { selfAddresses: ['127.0.0.1:61613'] },
    },
  });
});
afterAll(() => gateway.close());

const clients: { disconnect(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.disconnect().catch(() => undefined)));
});

/** Proves the gateway still serves: a fresh client gets a message. */
async function expectStillServing(): Promise<void> {
  const client = nodeClient(gateway.url, { transports: ['websocket'] });
  clients.push(client);
  const inbox = collector();
  await client.subscribe('/feed/alive', inbox.handler).ready;
  gateway.broker.publishNow('/feed/alive', 'alive');
  expect((await inbox.next()).text).toBe('alive');
}

/** Opens a raw WebSocket to /stomp and collects what the server sends. */
async function rawStomp(headers: Record<string, string> = {}): Promise<{
  socket: WebSocket;
  frames: string[];
  closed: Promise<{ code: number; reason: string }>;
}> {
  const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/stomp`, ['v12.stomp'], {
    headers,
  });
  const frames: string[] = [];
  socket.on('message', (data: Buffer) => frames.push(data.toString()));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, frames, closed };
}

function sessionUrl(): string {
  return `${gateway.url}/sockjs/000/${Math.random().toString(36).slice(2)}`;
}

describe('HTTP and WebSocket requests', () => {
  it('a foreign Origin is refused with 403, on /stomp and on SockJS', async () => {
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/stomp`, ['v12.stomp'], {
      headers: { origin: 'https://evil.example' },
    });
    const status = await new Promise<number>((resolve) =>
      socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0)),
    );
    expect(status).toBe(403);
    const info = await fetch(`${gateway.url}/sockjs/info`, {
      headers: { origin: 'https://evil.example' },
    });
    expect(info.status).toBe(403);
    const url = sessionUrl();
    const poll = await fetch(`${url}/xhr`, {
      method: 'POST',
      headers: { origin: 'https://evil.example' },
    });
    expect(poll.status).toBe(403);
    expect(poll.headers.get('access-control-allow-origin')).toBeNull();
    await expectStillServing();
  });

  it('the gateway’s own origin is allowed, with CORS headers that name it', async () => {
    const origin = gateway.url;
    const info = await fetch(`${gateway.url}/sockjs/info`, { headers: { origin } });
    expect(info.status).toBe(200);
    expect(info.headers.get('access-control-allow-origin')).toBe(origin);
  });

  it('an oversize POST is refused with 413 before it is read', async () => {
    const url = sessionUrl();
    await (await fetch(`${url}/xhr`, { method: 'POST' })).text();
    const response = await fetch(`${url}/xhr_send`, {
      method: 'POST',
      body: JSON.stringify(['x'.repeat(10_000)]),
    });
    expect(response.status).toBe(413);
    await expectStillServing();
  });

  it('a send to an unknown session is 404', async () => {
    const response = await fetch(`${sessionUrl()}/xhr_send`, {
      method: 'POST',
      body: '["x"]',
    });
    expect(response.status).toBe(404);
  });

  it('broken JSON and an empty payload are 500, as the SockJS protocol says', async () => {
    const url = sessionUrl();
    await (await fetch(`${url}/xhr`, { method: 'POST' })).text();
    const broken = await fetch(`${url}/xhr_send`, { method: 'POST', body: '["x"' });
    expect(broken.status).toBe(500);
    expect(await broken.text()).toBe('Broken JSON encoding.');
    const empty = await fetch(`${url}/xhr_send`, { method: 'POST', body: '' });
    expect(empty.status).toBe(500);
    expect(await empty.text()).toBe('Payload expected.');
  });

  it('a bad JSONP callback name is refused', async () => {
    const url = sessionUrl();
    const missing = await fetch(`${url}/jsonp`);
    expect(missing.status).toBe(500);
    expect(await missing.text()).toBe('"callback" parameter required');
    const bad = await fetch(`${url}/jsonp?c=${encodeURIComponent('alert(1)//')}`);
    expect(bad.status).toBe(500);
    expect(await bad.text()).toBe('invalid "callback" parameter');
    const html = await fetch(
      `${url}/htmlfile?c=${encodeURIComponent('</script><script>alert(1)')}`,
    );
    expect(html.status).toBe(500);
    expect(await html.text()).not.toContain('<script>alert');
  });

  it('a second receiver on one SockJS session gets c[2010,"Another connection still open"]', async () => {
    const url = sessionUrl();
    expect(await (await fetch(`${url}/xhr`, { method: 'POST' })).text()).toBe('o\n');
    const holding = new AbortController();
    const first = fetch(`${url}/xhr`, { method: 'POST', signal: holding.signal }).catch(
      () => undefined,
    );
    // The first poll is held open by the server (nothing to send yet); a second one arrives.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = await fetch(`${url}/xhr`, { method: 'POST' });
    expect(await second.text()).toBe('c[2010,"Another connection still open"]\n');
    holding.abort();
    await first;
  });

  it('/stomp without an upgrade answers 426', async () => {
    const response = await fetch(`${gateway.url}/stomp`);
    expect(response.status).toBe(426);
  });
});

describe('STOMP frames', () => {
  it('a frame before CONNECT gets an ERROR and a close', async () => {
    const { socket, frames, closed } = await rawStomp();
    socket.send('SEND\ndestination:/chat/x\n\nearly\0');
    const { code } = await closed;
    expect(frames.join('')).toMatch(/^ERROR\nmessage:Expected CONNECT first/);
    expect(code).toBe(1002);
  });

  it('garbage gets an ERROR, and no stack trace', async () => {
    const { socket, frames, closed } = await rawStomp();
    socket.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x0a]));
    await closed;
    expect(frames.join('')).toMatch(/message:Malformed frame/);
    expect(frames.join('')).not.toMatch(/at .*\.(ts|js):\d+/);
    await expectStillServing();
  });

  it('credentials sent to a gateway without a login check are refused', async () => {
    const { socket, frames, closed } = await rawStomp();
    socket.send('CONNECT\naccept-version:1.2\nlogin:alice\npasscode:secret\n\n\0');
    await closed;
    const reply = frames.join('');
    expect(reply).toMatch(/message:Authentication failed/);
    expect(reply).not.toContain('secret');
  });

  it('a SUBSCRIBE the rules do not cover is refused, naming why', async () => {
    const { socket, frames, closed } = await rawStomp();
    socket.send(
      'CONNECT\naccept-version:1.2\n\n\0SUBSCRIBE\nid:1\ndestination:/**\nreceipt:s\n\n\0',
    );
    await closed;
    const reply = frames.join('');
    expect(reply).toMatch(
      // STOMP 1.2 escapes a colon in a header value as \c.
      /message:Access denied\\c SUBSCRIBE to \/\*\* refused\\c no \[\[destinations\]\] rule covers it/,
    );
    expect(reply).toMatch(/receipt-id:s/);
  });

  it('a wildcard SUBSCRIBE is allowed only where a rule covers all it can match', async () => {
    const client = nodeClient(gateway.url, { transports: ['websocket'] });
    clients.push(client);
    await expect(client.subscribe('/feed/*', () => {}).ready).resolves.toEqual({});
    const refused = client.subscribe('/private/*', () => {});
    await expect(refused.ready).rejects.toThrow(
      /rule 3 .*subscribe = "authenticated".*log in first/,
    );
  });

  it('naming a broker the [access] rules do not allow is refused', async () => {
    const { socket, frames, closed } = await rawStomp();
    socket.send('CONNECT\naccept-version:1.2\nx-perigee-upstream:10.0.0.9:61613\n\n\0');
    await closed;
    expect(frames.join('')).toMatch(/no \[access\] rule lets browsers reach 10\.0\.0\.9:61613/);
  });

  it('the gateway’s own broker may be named (as the talk’s STOMPClient does)', async () => {
    const { socket, frames } = await rawStomp();
    socket.send('CONNECT\naccept-version:1.2\nx-perigee-upstream:localhost:61613\n\n\0');
    await new Promise((resolve) => socket.once('message', resolve));
    expect(frames[0]).toMatch(/^CONNECTED\n/);
    socket.close();
  });

  it('a CONNECT refused for good (a broker no rule allows) ends the client instead of retrying', async () => {
    const client = nodeClient(gateway.url, {
      transports: ['websocket', 'xhr-polling'],
      connectHeaders: { 'x-perigee-upstream': 'stomp.invalid:61613' },
    });
    clients.push(client);
    const errors: PerigeeError[] = [];
    client.on('error', (error) => errors.push(error));
    await expect(client.ready).rejects.toThrow(
      /no \[access\] rule lets browsers reach stomp.invalid:61613/,
    );
    expect(client.state).toBe('closed');
    expect(errors).toHaveLength(1);
  });

  it('a refused subscription is dropped, so reconnects do not repeat the refusal', async () => {
    const client = nodeClient(gateway.url, {
      transports: ['websocket'],
      reconnect: { initialDelay: 10, maxDelay: 50 },
    });
    clients.push(client);
    const errors: PerigeeError[] = [];
    client.on('error', (error) => errors.push(error));
    const opens: unknown[] = [];
    client.on('state', (change) => change.state === 'open' && opens.push(change));
    await expect(client.subscribe('/private/secrets', () => {}).ready).rejects.toThrow(
      /log in first/,
    );
    const inbox = collector();
    await client.subscribe('/feed/after', inbox.handler).ready;
    gateway.broker.publishNow('/feed/after', 'still subscribed');
    expect((await inbox.next()).text).toBe('still subscribed');
    client.reconnect('once more');
    await until(() => opens.length >= 3);
    expect(errors).toHaveLength(1);
  });

  for (const transport of NODE_TRANSPORTS) {
    it(`a frame over the limits through ${transport} gets an ERROR; the gateway keeps serving`, async () => {
      const client = nodeClient(gateway.url, { transports: [transport], reconnect: false });
      clients.push(client);
      await client.ready;
      const error = await client.publish('/chat/big', 'x'.repeat(3000)).then(
        () => undefined,
        (caught: PerigeeError) => caught,
      );
      expect(error?.message).toMatch(/Body too large|Frame too large|Payload too large|closed/);
      await expectStillServing();
    });
  }
});
