import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { isPerigeeError } from '../../src/errors.js';
import {
  SockJSServer,
  type SockJSConnection,
  type SockJSServerOptions,
} from '../../src/gateway/transports/sockjs/index.js';

/**
 * The layer's own contract, beyond the protocol suite: batching, the connection API, limits,
 * origins, transports on offer, shutdown. Each test mounts its own SockJSServer on port 0, with
 * short delays where a delay must pass; nothing asserts on durations.
 */

const WAIT_MS = 5_000;

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

interface Fixture {
  readonly port: number;
  readonly server: SockJSServer;
  /** Resolves with the next connection the application is handed. */
  nextConnection(): Promise<SockJSConnection>;
}

/** A SockJSServer under `/sockjs` on its own http.Server; the test closes it when it finishes. */
async function startFixture(
  options: Partial<SockJSServerOptions> = {},
  onConnection: (connection: SockJSConnection) => void = (connection) => {
    connection.onmessage = (message) => connection.send(message);
  },
): Promise<Fixture> {
  const waiting: ((connection: SockJSConnection) => void)[] = [];
  const arrived: SockJSConnection[] = [];
  const server = new SockJSServer({ prefix: '/sockjs', ...options }, (connection) => {
    onConnection(connection);
    const waiter = waiting.shift();
    if (waiter) waiter(connection);
    else arrived.push(connection);
  });
  const http = createServer((request, response) => {
    if (!server.handleRequest(request, response)) {
      response.writeHead(404);
      response.end();
    }
  });
  http.on('upgrade', (request, socket, head: Buffer) => {
    if (!server.handleUpgrade(request, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    server.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return {
    port: (http.address() as AddressInfo).port,
    server,
    nextConnection: () => {
      const ready = arrived.shift();
      if (ready) return Promise.resolve(ready);
      return withTimeout(
        new Promise<SockJSConnection>((resolve) => waiting.push(resolve)),
        'a connection',
      );
    },
  };
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function send(
  port: number,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string; chunked?: boolean } = {},
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    const body = options.body ?? (method === 'POST' ? '' : undefined);
    if (body !== undefined && !options.chunked) {
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const request = httpRequest(
      { host: '127.0.0.1', port, method, path, headers, agent: false },
      (response) => {
        response.setEncoding('utf8');
        let text = '';
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }),
        );
      },
    );
    request.on('error', reject);
    if (options.chunked && body !== undefined) {
      // No Content-Length: the body arrives in chunks and is only counted while read.
      request.write(body.slice(0, 10));
      request.end(body.slice(10));
    } else {
      request.end(body);
    }
  });
}

/** A raw TCP connection reading a chunked response chunk by chunk: one chunk is one write. */
class ChunkReader {
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (data: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, data]);
      this.#wake?.();
    });
    const finish = (): void => {
      this.#ended = true;
      this.#wake?.();
    };
    socket.on('close', finish);
    socket.on('error', finish);
  }

  /** POSTs to `path` and reads past the response head. */
  static async post(port: number, path: string): Promise<ChunkReader> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const opened = connect(port, '127.0.0.1', () => resolve(opened));
      opened.once('error', reject);
    });
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`);
    const reader = new ChunkReader(socket);
    const headEnd = await reader.#until(() => reader.#buffer.indexOf('\r\n\r\n'));
    reader.#buffer = reader.#buffer.subarray(headEnd + 4);
    return reader;
  }

  async chunk(): Promise<string> {
    const lineEnd = await this.#until(() => this.#buffer.indexOf('\r\n'));
    const size = parseInt(this.#buffer.subarray(0, lineEnd).toString('latin1'), 16);
    const start = lineEnd + 2;
    await this.#until(() => (this.#buffer.length >= start + size + 2 ? 0 : -1));
    const data = this.#buffer.subarray(start, start + size).toString('utf8');
    this.#buffer = this.#buffer.subarray(start + size + 2);
    return data;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  async #until(position: () => number): Promise<number> {
    for (;;) {
      const found = position();
      if (found >= 0) return found;
      if (this.#ended) throw new Error('connection closed');
      await withTimeout(new Promise<void>((resolve) => (this.#wake = resolve)), 'data');
    }
  }
}

function openWebSocket(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ socket: WebSocket; messages: string[]; next(): Promise<string> }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
  const messages: string[] = [];
  let wake: (() => void) | undefined;
  socket.on('message', (data: Buffer) => {
    messages.push(data.toString('utf8'));
    wake?.();
  });
  socket.on('error', () => {
    // 'close' or 'unexpected-response' tells the test what happened.
  });
  const next = async (): Promise<string> => {
    while (messages.length === 0) {
      await withTimeout(new Promise<void>((resolve) => (wake = resolve)), 'a WebSocket message');
    }
    return messages.shift() ?? '';
  };
  return withTimeout(
    new Promise((resolve, reject) => {
      socket.once('open', () => resolve({ socket, messages, next }));
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`HTTP ${response.statusCode}`)),
      );
      socket.once('close', () => reject(new Error('closed before opening')));
    }),
    `WebSocket ${path}`,
  );
}

function closeOf(socket: WebSocket): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve) => socket.once('close', (code) => resolve(code))),
    'the WebSocket to close',
  );
}

function closeEventOf(connection: SockJSConnection): Promise<{ code: number; reason: string }> {
  return withTimeout(
    new Promise((resolve) => {
      const previous = connection.onclose;
      connection.onclose = (code, reason) => {
        previous?.(code, reason);
        resolve({ code, reason });
      };
    }),
    'onclose',
  );
}

const session = (): string => `/sockjs/000/${randomUUID()}`;

describe('batching', () => {
  it('writes every message queued in one turn as one a[...] frame in one write', async () => {
    const fixture = await startFixture({}, (connection) => {
      connection.onmessage = () => {
        connection.send('one');
        connection.send('two');
        connection.send('three');
      };
    });
    const url = session();
    const stream = await ChunkReader.post(fixture.port, `${url}/xhr_streaming`);
    expect(await stream.chunk()).toBe(`${'h'.repeat(2048)}\n`);
    expect(await stream.chunk()).toBe('o\n');
    expect((await send(fixture.port, 'POST', `${url}/xhr_send`, { body: '["go"]' })).status).toBe(
      204,
    );
    expect(await stream.chunk()).toBe('a["one","two","three"]\n');
    stream.destroy();
  });

  it('holds messages while no receiver is attached and counts them in bufferedBytes', async () => {
    const fixture = await startFixture({}, () => {});
    const url = session();
    expect((await send(fixture.port, 'POST', `${url}/xhr`)).body).toBe('o\n');
    const connection = await fixture.nextConnection();
    expect(connection.send('x')).toBe(true);
    expect(connection.send('ü')).toBe(true);
    // `"x"` and `"ü"`: 3 and 4 bytes of JSON.
    expect(connection.bufferedBytes).toBe(7);
    expect((await send(fixture.port, 'POST', `${url}/xhr`)).body).toBe('a["x","ü"]\n');
    expect(connection.bufferedBytes).toBe(0);
  });

  it('sends what was queued before close() ahead of the close frame', async () => {
    const fixture = await startFixture({}, (connection) => {
      connection.onmessage = () => {
        connection.send('bye');
        connection.close(4000, 'done');
      };
    });
    const url = session();
    const stream = await ChunkReader.post(fixture.port, `${url}/xhr_streaming`);
    await stream.chunk();
    expect(await stream.chunk()).toBe('o\n');
    await send(fixture.port, 'POST', `${url}/xhr_send`, { body: '["now"]' });
    expect(await stream.chunk()).toBe('a["bye"]\nc[4000,"done"]\n');
    expect(await stream.chunk()).toBe('');

    // A poll carries one frame: the messages first, the close frame on the next poll.
    const polled = session();
    expect((await send(fixture.port, 'POST', `${polled}/xhr`)).body).toBe('o\n');
    await send(fixture.port, 'POST', `${polled}/xhr_send`, { body: '["now"]' });
    expect((await send(fixture.port, 'POST', `${polled}/xhr`)).body).toBe('a["bye"]\n');
    expect((await send(fixture.port, 'POST', `${polled}/xhr`)).body).toBe('c[4000,"done"]\n');
  });
});

describe('session lifetime', () => {
  it('ends a session no receiver comes back to within the disconnect delay', async () => {
    const fixture = await startFixture({ disconnectDelay: 30 });
    const url = session();
    expect((await send(fixture.port, 'POST', `${url}/xhr`)).body).toBe('o\n');
    const connection = await fixture.nextConnection();
    expect(fixture.server.sessionCount).toBe(1);
    expect(await closeEventOf(connection)).toEqual({
      code: 1006,
      reason: 'Disconnect delay expired',
    });
    expect(connection.closed).toBe(true);
    expect(connection.send('late')).toBe(false);
    expect(fixture.server.sessionCount).toBe(0);
    expect((await send(fixture.port, 'POST', `${url}/xhr_send`, { body: '["x"]' })).status).toBe(
      404,
    );
  });

  it('closes the session with 1002 when the client drops a receiving request', async () => {
    const fixture = await startFixture();
    const url = session();
    const stream = await ChunkReader.post(fixture.port, `${url}/xhr_streaming`);
    await stream.chunk();
    expect(await stream.chunk()).toBe('o\n');
    const connection = await fixture.nextConnection();
    const closed = closeEventOf(connection);
    stream.destroy();
    expect(await closed).toEqual({ code: 1002, reason: 'Connection interrupted' });
    expect((await send(fixture.port, 'POST', `${url}/xhr`)).body).toBe(
      'c[1002,"Connection interrupted"]\n',
    );
  });

  it('reports a clean WebSocket close from the client as 1000', async () => {
    const fixture = await startFixture();
    const ws = await openWebSocket(fixture.port, `${session()}/websocket`);
    expect(await ws.next()).toBe('o');
    const connection = await fixture.nextConnection();
    const closed = closeEventOf(connection);
    ws.socket.close();
    expect(await closed).toEqual({ code: 1000, reason: 'Normal closure' });
    expect(fixture.server.sessionCount).toBe(0);
  });

  it('sends heartbeats to streams, polls and WebSockets', async () => {
    const fixture = await startFixture({ heartbeatDelay: 20 });
    const url = session();
    const stream = await ChunkReader.post(fixture.port, `${url}/xhr_streaming`);
    await stream.chunk();
    expect(await stream.chunk()).toBe('o\n');
    expect(await stream.chunk()).toBe('h\n');
    expect(await stream.chunk()).toBe('h\n');
    stream.destroy();

    const polled = session();
    expect((await send(fixture.port, 'POST', `${polled}/xhr`)).body).toBe('o\n');
    expect((await send(fixture.port, 'POST', `${polled}/xhr`)).body).toBe('h\n');

    const ws = await openWebSocket(fixture.port, `${session()}/websocket`);
    expect(await ws.next()).toBe('o');
    expect(await ws.next()).toBe('h');
    ws.socket.close();
  });

  it('answers an empty poll at once with h in short-polling mode', async () => {
    // A long poll would wait a minute for its heartbeat: far past the test's timeout.
    const fixture = await startFixture({
      pollingMode: 'short',
      heartbeatDelay: 60_000,
      transports: ['xhr-polling'],
    });
    const url = session();
    expect((await send(fixture.port, 'POST', `${url}/xhr`)).body).toBe('o\n');
    const connection = await fixture.nextConnection();
    expect(connection.transport).toBe('short-polling');
    expect((await send(fixture.port, 'POST', `${url}/xhr`)).body).toBe('h\n');
    await send(fixture.port, 'POST', `${url}/xhr_send`, { body: '["x"]' });
    expect((await send(fixture.port, 'POST', `${url}/xhr`)).body).toBe('a["x"]\n');
  });
});

describe('the connection', () => {
  it('names its transport, and carries the id, headers and address of its first request', async () => {
    const fixture = await startFixture();
    const headers = { 'X-Perigee-Test': 'yes' };
    const id = randomUUID();
    const opened: [string, string][] = [
      ['POST', `/sockjs/1/${id}-xs/xhr_streaming`],
      ['POST', `/sockjs/1/${id}-xp/xhr`],
      ['GET', `/sockjs/1/${id}-es/eventsource`],
      ['GET', `/sockjs/1/${id}-hf/htmlfile?c=cb`],
      ['GET', `/sockjs/1/${id}-jp/jsonp?c=cb`],
    ];
    const expected = ['xhr-streaming', 'xhr-polling', 'eventsource', 'htmlfile', 'jsonp-polling'];
    for (const [index, [method, path]] of opened.entries()) {
      const request = httpRequest({
        host: '127.0.0.1',
        port: fixture.port,
        method,
        path,
        headers,
        agent: false,
      });
      request.on('error', () => {});
      request.end();
      const connection = await fixture.nextConnection();
      expect(connection.transport).toBe(expected[index]);
      expect(connection.id).toBe(path.split('/')[3]);
      expect(connection.headers['x-perigee-test']).toBe('yes');
      expect(connection.remoteAddress).toBe('127.0.0.1');
      request.destroy();
    }

    const ws = await openWebSocket(fixture.port, `/sockjs/1/${id}-ws/websocket`, headers);
    const sockjsWebSocket = await fixture.nextConnection();
    expect(sockjsWebSocket.transport).toBe('sockjs-websocket');
    expect(sockjsWebSocket.id).toBe(`${id}-ws`);
    expect(sockjsWebSocket.headers['x-perigee-test']).toBe('yes');
    ws.socket.close();

    const raw = await openWebSocket(fixture.port, '/sockjs/websocket');
    const rawConnection = await fixture.nextConnection();
    const otherRaw = await openWebSocket(fixture.port, '/sockjs/websocket');
    const otherRawConnection = await fixture.nextConnection();
    expect(rawConnection.transport).toBe('sockjs-raw-websocket');
    // 16 random bytes, base64url.
    expect(rawConnection.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(otherRawConnection.id).not.toBe(rawConnection.id);
    raw.socket.close();
    otherRaw.socket.close();
  });

  it('closes the session with 1011 when the application throws, and keeps serving', async () => {
    const fixture = await startFixture({}, (connection) => {
      connection.onmessage = (message) => {
        if (message === 'boom') throw new Error('application bug');
        connection.send(message);
      };
    });
    const ws = await openWebSocket(fixture.port, `${session()}/websocket`);
    expect(await ws.next()).toBe('o');
    const closed = closeOf(ws.socket);
    ws.socket.send('["boom"]');
    expect(await ws.next()).toBe('c[1011,"Internal server error"]');
    expect(await closed).toBe(1011);

    const other = await openWebSocket(fixture.port, `${session()}/websocket`);
    expect(await other.next()).toBe('o');
    other.socket.send('["fine"]');
    expect(await other.next()).toBe('a["fine"]');
    other.socket.close();
  });

  it('delivers raw WebSocket messages as they are, batched into one socket write', async () => {
    const fixture = await startFixture({}, (connection) => {
      connection.onmessage = (message) => {
        connection.send(message);
        connection.send(`${message}!`);
      };
    });
    const raw = await openWebSocket(fixture.port, '/sockjs/websocket');
    raw.socket.send('["not json"');
    expect(await raw.next()).toBe('["not json"');
    expect(await raw.next()).toBe('["not json"!');
    raw.socket.close();
  });
});

describe('limits and safety', () => {
  it('refuses a POST body over maxPostBytes, declared or chunked, with 413', async () => {
    const fixture = await startFixture({ maxPostBytes: 16 });
    const url = session();
    expect((await send(fixture.port, 'POST', `${url}/xhr`)).body).toBe('o\n');
    const body = JSON.stringify(['x'.repeat(64)]);
    const declared = await send(fixture.port, 'POST', `${url}/xhr_send`, { body });
    expect(declared).toMatchObject({ status: 413, body: 'Payload too large' });
    const chunked = await send(fixture.port, 'POST', `${url}/xhr_send`, { body, chunked: true });
    expect(chunked).toMatchObject({ status: 413, body: 'Payload too large' });
    const jsonp = await send(fixture.port, 'POST', `${url}/jsonp_send`, { body: `d=${body}` });
    expect(jsonp.status).toBe(413);
    expect((await send(fixture.port, 'POST', `${url}/xhr_send`, { body: '["ok"]' })).status).toBe(
      204,
    );
  });

  it('closes a WebSocket whose message exceeds maxWebSocketMessageBytes with 1009', async () => {
    const fixture = await startFixture({ maxWebSocketMessageBytes: 64 });
    const ws = await openWebSocket(fixture.port, `${session()}/websocket`);
    expect(await ws.next()).toBe('o');
    const connection = await fixture.nextConnection();
    const closed = closeEventOf(connection);
    ws.socket.send(JSON.stringify(['x'.repeat(200)]));
    expect((await closed).code).toBe(1009);
  });

  it('never lets a frame end the htmlfile script element', async () => {
    const fixture = await startFixture();
    const url = session();
    const stream = new Promise<string>((resolve) => {
      const request = httpRequest(
        { host: '127.0.0.1', port: fixture.port, path: `${url}/htmlfile?c=cb`, agent: false },
        (response) => {
          response.setEncoding('utf8');
          let text = '';
          response.on('data', (chunk: string) => {
            text += chunk;
            if (text.includes('a[')) {
              resolve(text);
              request.destroy();
            }
          });
        },
      );
      request.on('error', () => {});
      request.end();
    });
    await fixture.nextConnection();
    const attack = '</script><script>alert(1)</script><!--';
    await send(fixture.port, 'POST', `${url}/xhr_send`, { body: JSON.stringify([attack]) });
    const page = await withTimeout(stream, 'the htmlfile frame');
    const frame = page.slice(page.indexOf('<script>\np("a['));
    expect(frame).not.toContain('</script><script>');
    expect(frame).not.toContain('<!--');
    expect(frame).toContain('\\u003c/script>');
  });

  it('refuses origins allowOrigin rejects with 403 and no CORS headers', async () => {
    const fixture = await startFixture({ allowOrigin: (origin) => origin === 'http://good' });
    const refused = await send(fixture.port, 'GET', '/sockjs/info', {
      headers: { Origin: 'http://evil' },
    });
    expect(refused.status).toBe(403);
    expect(refused.body).toBe('Origin not allowed');
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    const allowed = await send(fixture.port, 'GET', '/sockjs/info', {
      headers: { Origin: 'http://good' },
    });
    expect(allowed.headers['access-control-allow-origin']).toBe('http://good');
    // No Origin: not a browser; its credentials decide (DESIGN.md §4).
    expect((await send(fixture.port, 'GET', '/sockjs/info')).status).toBe(200);
    await expect(
      openWebSocket(fixture.port, `${session()}/websocket`, { Origin: 'http://evil' }),
    ).rejects.toThrow('HTTP 403');
    await expect(
      openWebSocket(fixture.port, '/sockjs/websocket', { Origin: 'http://evil' }),
    ).rejects.toThrow('HTTP 403');
  });
});

describe('configuration', () => {
  it('serves only the transports on offer', async () => {
    const fixture = await startFixture({ transports: ['xhr-polling'] });
    const info = JSON.parse((await send(fixture.port, 'GET', '/sockjs/info')).body) as {
      websocket: boolean;
    };
    expect(info.websocket).toBe(false);
    const url = session();
    expect((await send(fixture.port, 'POST', `${url}/xhr`)).body).toBe('o\n');
    expect((await send(fixture.port, 'POST', `${url}/xhr_streaming`)).status).toBe(404);
    expect((await send(fixture.port, 'GET', `${url}/eventsource`)).status).toBe(404);
    expect((await send(fixture.port, 'GET', `${url}/jsonp?c=x`)).status).toBe(404);
    await expect(openWebSocket(fixture.port, `${url}/websocket`)).rejects.toThrow('HTTP 404');
    await expect(openWebSocket(fixture.port, '/sockjs/websocket')).rejects.toThrow('HTTP 404');
  });

  it('refuses unknown transports and malformed prefixes when built', () => {
    const build = (options: SockJSServerOptions): unknown => new SockJSServer(options, () => {});
    for (const options of [
      { prefix: '/s', transports: ['carrier-pigeon'] },
      { prefix: 'no-slash' },
      { prefix: '/s', heartbeatDelay: 0 },
    ] as SockJSServerOptions[]) {
      try {
        build(options);
        expect.unreachable('the options should have been refused');
      } catch (error) {
        expect(isPerigeeError(error) && error.code).toBe('CONFIG_INVALID');
      }
    }
  });

  it('handles only paths under its prefix', async () => {
    const fixture = await startFixture();
    expect((await send(fixture.port, 'GET', '/sockjs')).body).toBe('Welcome to SockJS!\n');
    expect((await send(fixture.port, 'GET', '/sockjsx')).status).toBe(404);
    expect((await send(fixture.port, 'GET', '/other/info')).status).toBe(404);
    await expect(openWebSocket(fixture.port, '/other/websocket')).rejects.toThrow();
  });
});

describe('shutdown', () => {
  it('closes every session with 1012, stops, and refuses what comes after', async () => {
    const fixture = await startFixture();
    const closes: number[] = [];
    const stream = await ChunkReader.post(fixture.port, `${session()}/xhr_streaming`);
    await stream.chunk();
    await stream.chunk();
    const streamed = await fixture.nextConnection();
    streamed.onclose = (code) => closes.push(code);

    const ws = await openWebSocket(fixture.port, `${session()}/websocket`);
    expect(await ws.next()).toBe('o');
    (await fixture.nextConnection()).onclose = (code) => closes.push(code);

    const raw = await openWebSocket(fixture.port, '/sockjs/websocket');
    (await fixture.nextConnection()).onclose = (code) => closes.push(code);

    const wsClosed = closeOf(ws.socket);
    const rawClosed = closeOf(raw.socket);
    fixture.server.close();

    expect(await stream.chunk()).toBe('c[1012,"Server shutting down"]\n');
    expect(await stream.chunk()).toBe('');
    expect(await ws.next()).toBe('c[1012,"Server shutting down"]');
    expect(await wsClosed).toBe(1012);
    expect(await rawClosed).toBe(1012);
    expect(closes).toEqual([1012, 1012, 1012]);
    expect(fixture.server.sessionCount).toBe(0);
    expect((await send(fixture.port, 'POST', `${session()}/xhr`)).status).toBe(503);
  });
});
