import { Client, type IFrame } from '@stomp/stompjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { errorTable, type PerigeeError } from '../../src/errors.js';
import {
  collector,
  NODE_TRANSPORTS,
  nodeClient,
  startGateway,
  type TestGateway,
} from '../support/gateway.js';
import {
  errorMessageHeader,
  OVER_LIMIT_FRAMES,
  refusedByServer,
  TEST_LIMITS,
} from '../support/limits.js';
import { rawSockJSUrl } from '../support/raw-websocket.js';
import { until } from './transport-conformance.js';

/**
 * Whatever a stranger sends to the gateway gets its documented answer (a 4xx or 5xx with a reason,
 * the SockJS protocol's own statuses on /sockjs, or a STOMP ERROR), and the gateway keeps serving.
 */

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startGateway({
    gateway: {
      limits: TEST_LIMITS,
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

interface RawSocket {
  socket: WebSocket;
  frames: string[];
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a raw WebSocket to /stomp and collects what the server sends. */
function rawStomp(headers: Record<string, string> = {}): Promise<RawSocket> {
  return rawWebSocket(
    new WebSocket(`${gateway.url.replace('http', 'ws')}/stomp`, ['v12.stomp'], { headers }),
  );
}

/** Collects what the server sends on `socket` (a raw STOMP route), once it is open. */
async function rawWebSocket(socket: WebSocket): Promise<RawSocket> {
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
    await expectStillServing();
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
    await expectStillServing();
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
    await expectStillServing();
  });

  it('a second receiver on one SockJS session gets c[2010,"Another connection still open"]', async () => {
    const url = sessionUrl();
    expect(await (await fetch(`${url}/xhr`, { method: 'POST' })).text()).toBe('o\n');
    const holding = new AbortController();
    // The first receiver is a stream: the server sends its headers (with the 2 KiB prelude) in
    // the same turn that attaches it to the session, so once they are here it is attached.
    const first = await fetch(`${url}/xhr_streaming`, { method: 'POST', signal: holding.signal });
    expect(first.status).toBe(200);
    const second = await fetch(`${url}/xhr`, { method: 'POST' });
    expect(await second.text()).toBe('c[2010,"Another connection still open"]\n');
    holding.abort();
    await first.body?.cancel().catch(() => undefined);
    await expectStillServing();
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
    for (const frame of OVER_LIMIT_FRAMES) {
      it(`${frame.name} through ${transport} gets its ERROR; the gateway keeps serving`, async () => {
        const client = nodeClient(gateway.url, { transports: [transport], reconnect: false });
        clients.push(client);
        await client.ready;
        const error = await client.publish('/chat/big', frame.body, frame.headers).then(
          () => undefined,
          (caught: PerigeeError) => caught,
        );
        expect(error?.code).toBe('SERVER_ERROR');
        expect(error?.message).toMatch(refusedByServer(frame.code));
        await expectStillServing();
      });
    }
  }

  for (const frame of OVER_LIMIT_FRAMES) {
    it(`${frame.name} through the raw SockJS WebSocket gets its ERROR and close code`, async () => {
      const { socket, frames, closed } = await rawWebSocket(
        new WebSocket(rawSockJSUrl(gateway.url)),
      );
      socket.send('CONNECT\naccept-version:1.2\n\n\0');
      await new Promise((resolve) => socket.once('message', resolve));
      expect(frames[0]).toMatch(/^CONNECTED\n/);
      const headers = Object.entries(frame.headers).map(([name, value]) => `${name}:${value}\n`);
      socket.send(`SEND\ndestination:/chat/big\n${headers.join('')}\n${frame.body}\0`);
      const { code } = await closed;
      const error = frames.slice(1).join('');
      expect(error).toMatch(/^ERROR\n/);
      expect(/^message:(.*)$/m.exec(error)?.[1]).toMatch(errorMessageHeader(frame.code));
      expect(code).toBe(errorTable[frame.code].closeCode);
      await expectStillServing();
    });

    it(`${frame.name} from @stomp/stompjs over /stomp gets its ERROR and close code`, async () => {
      const client = new Client({
        webSocketFactory: () =>
          new WebSocket(`${gateway.url.replace('http', 'ws')}/stomp`, ['v12.stomp']),
        reconnectDelay: 0,
        heartbeatIncoming: 0,
        heartbeatOutgoing: 0,
      });
      clients.push({ disconnect: () => client.deactivate() });
      const refused = new Promise<IFrame>((resolve) => (client.onStompError = resolve));
      const closed = new Promise<number>(
        (resolve) => (client.onWebSocketClose = (event: { code: number }) => resolve(event.code)),
      );
      await new Promise<void>((resolve) => {
        client.onConnect = () => resolve();
        client.activate();
      });
      client.publish({ destination: '/chat/big', body: frame.body, headers: { ...frame.headers } });
      expect((await refused).headers.message).toMatch(errorMessageHeader(frame.code));
      expect(await closed).toBe(errorTable[frame.code].closeCode);
      await expectStillServing();
    });
  }
});
