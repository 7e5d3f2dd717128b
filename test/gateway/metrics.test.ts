import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { MetricsAccess } from '../../src/gateway/index.js';
import type { Metric } from '../../src/index.js';
import { collector, nodeClient, startGateway, type TestGateway } from '../support/gateway.js';

/**
 * `/metrics` (Prometheus text, format 0.0.4) on a real gateway with real clients: the figures
 * follow what the clients do, the text is well formed, and only this machine may read it unless
 * configured otherwise.
 */

const gateways: TestGateway[] = [];
afterEach(async () => {
  for (const gateway of gateways.splice(0)) await gateway.close();
});

async function gatewayWith(
  access: MetricsAccess | undefined = 'loopback',
  more?: () => Metric[],
): Promise<TestGateway> {
  const holder: { gateway?: TestGateway } = {};
  const gateway = await startGateway({
    gateway: {
      metrics: { access, more: more ?? (() => holder.gateway!.broker.metrics()) },
    },
  });
  holder.gateway = gateway;
  gateways.push(gateway);
  return gateway;
}

interface Scrape {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function scrape(
  url: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      new URL('/metrics', url),
      { method: options.method ?? 'GET', headers: options.headers, agent: false },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text }),
        );
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/** The samples of a scrape by `name{labels}`, after checking the text is well formed. */
function samplesOf(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const helped = new Set<string>();
  const typed = new Map<string, string>();
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment;
      if (kind === 'HELP') {
        expect(helped.has(name!), `one HELP for ${name}`).toBe(false);
        helped.add(name!);
      } else {
        expect(typed.has(name!), `one TYPE for ${name}`).toBe(false);
        expect(['counter', 'gauge']).toContain(rest);
        typed.set(name!, rest!);
      }
      continue;
    }
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"\\\n]*"(?:,[a-z_]+="[^"\\\n]*")*\})? (\S+)$/.exec(
        line,
      );
    expect(sample, `a sample line: ${line}`).not.toBeNull();
    const [, name, labels = '', value] = sample!;
    expect(helped.has(name!) && typed.has(name!), `${name} is described before its samples`).toBe(
      true,
    );
    if (typed.get(name!) === 'counter') expect(name).toMatch(/_total$/);
    expect(Number.isFinite(Number(value)), `${line} has a number`).toBe(true);
    samples.set(`${name}${labels}`, Number(value));
  }
  return samples;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const limit = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > limit) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('gateway: /metrics', () => {
  it('counts connections by transport, sessions, resumes and the broker’s messages', async () => {
    const site = await gatewayWith();
    const before = samplesOf((await scrape(site.url)).text);
    for (const transport of ['websocket', 'eventsource', 'htmlfile', 'short-polling'])
      expect(before.get(`perigee_gateway_connections{transport="${transport}"}`), transport).toBe(
        0,
      );
    expect(before.get('perigee_broker_messages_published_total')).toBe(0);

    const clients = ['websocket', 'eventsource'].map((transport) =>
      nodeClient(site.url, { transports: [transport as 'websocket' | 'eventsource'] }),
    );
    try {
      const received = clients.map(() => collector());
      await Promise.all(clients.map((client) => client.ready));
      await Promise.all(
        clients.map((client, n) => client.subscribe('/feed/news', received[n]!.handler).ready),
      );
      await site.broker.publish('/feed/news', 'hello');
      await Promise.all(received.map((collected) => collected.next()));

      const scraped = await scrape(site.url);
      expect(scraped.status).toBe(200);
      expect(scraped.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      const now = samplesOf(scraped.text);
      expect(now.get('perigee_gateway_connections{transport="websocket"}')).toBe(1);
      expect(now.get('perigee_gateway_connections{transport="eventsource"}')).toBe(1);
      expect(now.get('perigee_gateway_sessions{state="attached"}')).toBe(2);
      expect(now.get('perigee_gateway_sessions{state="detached"}')).toBe(0);
      expect(now.get('perigee_gateway_sessions_opened_total')).toBe(2);
      expect(now.get('perigee_gateway_connections_opened_total')).toBeGreaterThanOrEqual(2);
      expect(now.get('perigee_broker_messages_published_total')).toBe(1);
      expect(now.get('perigee_broker_messages_delivered_total')).toBe(2);
      expect(now.get('process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(now.get('nodejs_eventloop_delay_max_seconds')).toBeGreaterThanOrEqual(0);
      expect(now.get('process_open_fds')).toBeGreaterThan(0);

      // A dropped connection: the session waits detached, the client comes back and resumes it.
      for (const socket of site.sockets) socket.destroy();
      const resumed = await until('the resumes', async () => {
        const figures = samplesOf((await scrape(site.url)).text);
        return figures.get('perigee_gateway_sessions_resumed_total') === 2 ? figures : undefined;
      });
      expect(resumed.get('perigee_gateway_sessions_opened_total')).toBe(2);
      expect(resumed.get('perigee_gateway_sessions{state="attached"}')).toBe(2);
    } finally {
      await Promise.all(clients.map((client) => client.disconnect().catch(() => undefined)));
    }
  });

  it('closes a browser that goes silent past its heart-beat (1001), and counts it', async () => {
    const holder: { gateway?: TestGateway } = {};
    const site = await startGateway({
      gateway: {
        session: { pingInterval: 100 },
        metrics: { access: 'loopback', more: () => holder.gateway!.broker.metrics() },
      },
    });
    holder.gateway = site;
    gateways.push(site);
    const socket = new WebSocket(`${site.url.replace(/^http/, 'ws')}/stomp`, ['v12.stomp']);
    const closed = new Promise<number>((resolve) => socket.once('close', resolve));
    await new Promise((resolve) => socket.once('open', resolve));
    // It promises a heart-beat every 100 ms, then sends nothing more.
    socket.send('CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:100,0\n\n\0');
    expect(await closed).toBe(1001);
    const figures = samplesOf((await scrape(site.url)).text);
    expect(figures.get('perigee_gateway_heart_beat_timeouts_total')).toBe(1);
    expect(figures.get('perigee_gateway_connections{transport="websocket"}')).toBe(0);
  });

  it('reconnects a browser that does not read (1013), and counts it', async () => {
    const holder: { gateway?: TestGateway } = {};
    const site = await startGateway({
      gateway: {
        session: { maxQueuedBytes: 64 * 1024 },
        metrics: { access: 'loopback', more: () => holder.gateway!.broker.metrics() },
      },
    });
    holder.gateway = site;
    gateways.push(site);
    const socket = new WebSocket(`${site.url.replace(/^http/, 'ws')}/stomp`, ['v12.stomp']);
    const received: string[] = [];
    socket.on('message', (data: Buffer) => received.push(data.toString()));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send('CONNECT\naccept-version:1.2\nhost:localhost\n\n\0');
    socket.send('SUBSCRIBE\nid:0\ndestination:/feed/flood\nreceipt:r\n\n\0');
    await until('the subscription', () =>
      Promise.resolve(received.some((text) => text.includes('RECEIPT')) || undefined),
    );
    // The browser stops reading; the server goes on publishing, past what the kernel's socket
    // buffers hold and then past the gateway's own limit for one connection.
    (socket as unknown as { _socket: { pause(): void } })._socket.pause();
    const body = 'x'.repeat(50_000);
    const figures = await until('the slow browser dropped', async () => {
      for (let i = 0; i < 20; i++) site.broker.publishNow('/feed/flood', body);
      await new Promise((resolve) => setImmediate(resolve));
      const now = samplesOf((await scrape(site.url)).text);
      return now.get('perigee_gateway_slow_consumer_disconnects_total') === 1 ? now : undefined;
    });
    expect(figures.get('perigee_gateway_connections{transport="websocket"}')).toBe(0);
    expect(figures.get('perigee_gateway_sessions{state="attached"}')).toBe(0);
    socket.terminate();
  });

  it('reports the event loop blocked between two scrapes', async () => {
    const site = await gatewayWith();
    await scrape(site.url); // the first scrape starts the monitor
    // The loop held for 150 ms, as a long synchronous task in the server would hold it.
    const until = Date.now() + 150;
    while (Date.now() < until);
    await new Promise((resolve) => setTimeout(resolve, 60));
    const figures = samplesOf((await scrape(site.url)).text);
    expect(figures.get('nodejs_eventloop_delay_max_seconds')).toBeGreaterThanOrEqual(0.1);
    // Busy for 150 of some 210 ms since the first scrape.
    expect(figures.get('nodejs_eventloop_utilization_ratio')).toBeGreaterThan(0.2);
    expect(figures.get('nodejs_eventloop_utilization_ratio')).toBeLessThanOrEqual(1);
  });

  it('`loopback` answers this machine only, `open` everyone; `off`, the default, leaves the path', async () => {
    const loopback = await gatewayWith();
    const relayed = await scrape(loopback.url, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(relayed.status).toBe(403);
    expect(relayed.text).toBe(
      'Metrics are served to this machine only, and this request came through a proxy (its x-forwarded-for header); to let other hosts read them, set [metrics] access = "open" in perigee.toml (metrics.access in createGateway)\n',
    );
    for (const [name, value] of Object.entries({
      forwarded: 'for=203.0.113.9',
      via: '1.1 proxy',
      'x-forwarded-host': 'example.com',
      'x-real-ip': '203.0.113.9',
    })) {
      const refused = await scrape(loopback.url, { headers: { [name]: value } });
      expect(refused.status, name).toBe(403);
    }
    const posted = await scrape(loopback.url, { method: 'POST' });
    expect(posted.status).toBe(405);
    expect(posted.headers.allow).toBe('GET, HEAD');
    const head = await scrape(loopback.url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');

    // From another address of this machine, which is not loopback.
    const external = Object.values(networkInterfaces())
      .flat()
      .find((address) => address && address.family === 'IPv4' && !address.internal);
    if (!external) {
      console.info('metrics: no non-loopback IPv4 address here; a remote scrape is not tried');
    } else {
      const server = createServer();
      loopback.gateway.attach(server);
      await new Promise<void>((resolve) => server.listen(0, external.address, resolve));
      try {
        const { port } = server.address() as AddressInfo;
        const remote = await scrape(`http://${external.address}:${port}`);
        expect(remote.status).toBe(403);
        expect(remote.text).toBe(
          'Metrics are served to this machine only; to let other hosts read them, set [metrics] access = "open" in perigee.toml (metrics.access in createGateway)\n',
        );
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    }

    const open = await gatewayWith('open');
    const openRelayed = await scrape(open.url, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(openRelayed.status).toBe(200);
    expect(samplesOf(openRelayed.text).has('perigee_gateway_sessions{state="attached"}')).toBe(
      true,
    );

    // Off, which is the default: the gateway leaves the path to whatever else the server serves.
    const off = await gatewayWith('off');
    const plain = await startGateway();
    gateways.push(plain);
    for (const site of [off, plain]) {
      const hidden = await scrape(site.url);
      expect(hidden.status).toBe(404);
      expect(hidden.text).toBe('Not found\n');
    }
  });

  it('answers 500 when what the application adds fails, and goes on serving', async () => {
    let failing = true;
    const site = await gatewayWith('loopback', () => {
      if (failing) throw new Error('the app’s figures are broken');
      return [
        { name: 'app_ok', help: 'Whether the app works.', type: 'gauge', samples: [{ value: 1 }] },
      ];
    });
    const failed = await scrape(site.url);
    expect(failed.status).toBe(500);
    expect(failed.text).toBe(
      'Internal server error: the application’s metrics failed (see the log)\n',
    );
    failing = false;
    const served = await scrape(site.url);
    expect(served.status).toBe(200);
    expect(samplesOf(served.text).get('app_ok')).toBe(1);
  });
});
