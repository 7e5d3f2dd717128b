/**
 * The publisher for an external server under test, in a process of its own on the load core:
 * STOMP over TCP into RabbitMQ, HTTP POSTs into Pushpin's and nchan's publish endpoints. For
 * Pushpin it is also the GRIP origin that tells Pushpin which channel a new request subscribes to.
 * argv[2] is the server kind, argv[3] a JSON {@link AdapterConfig}.
 */
import {
  createServer,
  request as httpRequest,
  Agent,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { READY_TOKEN } from '../catalog.js';
import { topicName, type TopicPlan } from '../ipc.js';
import { makePayload, monotonicMicros } from '../payload.js';
import { servePublisher, type PublisherHooks } from './publishing.js';

export interface AdapterConfig {
  /** RabbitMQ: its STOMP/TCP listener. Pushpin: its publish endpoint. nchan: nginx. */
  publishPort: number;
}

const kind = process.argv[2] as 'rabbitmq' | 'pushpin' | 'nchan';
const config = JSON.parse(process.argv[3] ?? '{}') as AdapterConfig;
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

function post(
  port: number,
  path: string,
  body: string | Buffer,
  contentType: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        agent,
        headers: { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`POST ${path} answered ${status}: ${text.trim().slice(0, 120)}`));
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path, agent }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve(text));
    });
    request.on('error', reject);
    request.end();
  });
}

async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<string | undefined> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return `${what} within ${timeoutMs} ms`;
}

/** SEND frames over one TCP connection; RabbitMQ fans them out from amq.topic. */
async function rabbitmqHooks(): Promise<PublisherHooks> {
  const socket: Socket = connect({ host: '127.0.0.1', port: config.publishPort, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    let answer = '';
    socket.once('error', reject);
    socket.on('data', function onData(chunk: Buffer) {
      answer += chunk.toString('latin1');
      if (!answer.includes('\0')) return;
      socket.off('data', onData);
      if (answer.startsWith('CONNECTED')) resolve();
      else reject(new Error(`RabbitMQ refused the publisher: ${answer.slice(0, 160)}`));
    });
    socket.write(
      'CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\nheart-beat:0,0\n\n\0',
    );
  });
  socket.on('data', (chunk: Buffer) => {
    if (chunk.toString('latin1').startsWith('ERROR')) {
      process.stderr.write(
        `RabbitMQ sent the publisher an ERROR: ${chunk.toString('utf8', 0, 200)}\n`,
      );
    }
  });
  const frame = (topic: string, payload: Buffer): Buffer =>
    Buffer.concat([
      Buffer.from(`SEND\ndestination:/topic/${topic}\ncontent-length:${payload.length}\n\n`),
      payload,
      Buffer.from('\0'),
    ]);
  return {
    publishRound(sequence: number, plan: TopicPlan) {
      if (plan.mode === 'one') {
        socket.write(frame(plan.prefix, makePayload(sequence, monotonicMicros())));
        return;
      }
      const frames: Buffer[] = [];
      for (let client = 0; client < plan.clients; client++) {
        frames.push(frame(topicName(plan, client), makePayload(sequence, monotonicMicros())));
      }
      socket.write(Buffer.concat(frames));
    },
    stop() {
      socket.destroy();
      return Promise.resolve();
    },
  };
}

/** The largest publish request Pushpin takes is 1 MB; rounds go in batches well under it. */
const PUSHPIN_ITEMS_PER_POST = 500;

/**
 * GRIP origin: SSE and long-poll requests get hold instructions for their topic's channel, and a
 * WebSocket (over HTTP) is subscribed with a control message and told so.
 */
async function pushpinHooks(): Promise<{ hooks: PublisherHooks; originPort: number }> {
  let holds = 0;
  const origin = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://origin');
    const topic = url.searchParams.get('topic') ?? '';
    if (url.pathname === '/ws') {
      let body = '';
      request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        let out = '';
        if (body.startsWith('OPEN')) {
          const control = `c:${JSON.stringify({ type: 'subscribe', channel: topic })}`;
          // With the grip extension, messages for the client carry the `m:` prefix.
          const ready = `m:${READY_TOKEN}`;
          out =
            `OPEN\r\n` +
            `TEXT ${Buffer.byteLength(control).toString(16)}\r\n${control}\r\n` +
            `TEXT ${ready.length.toString(16)}\r\n${ready}\r\n`;
          holds++;
        } else if (body.startsWith('CLOSE')) {
          out = 'CLOSE\r\n';
        }
        response.writeHead(200, {
          'content-type': 'application/websocket-events',
          'sec-websocket-extensions': 'grip',
        });
        response.end(out);
      });
      return;
    }
    request.resume();
    if (url.pathname === '/sse') {
      holds++;
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'grip-hold': 'stream',
        'grip-channel': topic,
        'cache-control': 'no-cache',
      });
      response.end();
    } else if (url.pathname === '/lp') {
      holds++;
      response.writeHead(200, {
        'content-type': 'text/plain',
        'grip-hold': 'response',
        'grip-channel': topic,
        'grip-timeout': '120',
      });
      response.end();
    } else {
      response.writeHead(404).end();
    }
  });
  origin.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) =>
    origin.listen({ host: '127.0.0.1', port: 0, backlog: 65_535 }, resolve),
  );
  const item = (topic: string, payload: Buffer): unknown => {
    const text = payload.toString('latin1');
    return {
      channel: topic,
      formats: {
        'http-stream': { content: `data: ${text}\n\n` },
        'http-response': { body: `${text}\n` },
        'ws-message': { content: text },
      },
    };
  };
  const hooks: PublisherHooks = {
    async publishRound(sequence: number, plan: TopicPlan) {
      const items: unknown[] = [];
      const flush = async (): Promise<void> => {
        if (items.length === 0) return;
        await post(config.publishPort, '/publish/', JSON.stringify({ items }), 'application/json');
        items.length = 0;
      };
      if (plan.mode === 'one') {
        items.push(item(plan.prefix, makePayload(sequence, monotonicMicros())));
      } else {
        for (let client = 0; client < plan.clients; client++) {
          items.push(item(topicName(plan, client), makePayload(sequence, monotonicMicros())));
          if (items.length >= PUSHPIN_ITEMS_PER_POST) await flush();
        }
      }
      await flush();
    },
    async awaitSubscribers(count: number, _plan: TopicPlan, timeoutMs: number) {
      const note = await waitFor(
        () => holds >= count,
        timeoutMs,
        `the origin saw ${holds} of ${count} subscriptions`,
      );
      holds = 0;
      // Pushpin's handler registers the subscription a moment after the proxy got the hold.
      await new Promise((resolve) => setTimeout(resolve, 500));
      return note;
    },
    stop() {
      origin.closeAllConnections();
      origin.close();
      return Promise.resolve();
    },
  };
  return { hooks, originPort: (origin.address() as AddressInfo).port };
}

/** One POST per message to nchan's publisher location; long-poll subscriptions counted by nchan. */
function nchanHooks(): PublisherHooks {
  return {
    async publishRound(sequence: number, plan: TopicPlan) {
      if (plan.mode === 'one') {
        await post(
          config.publishPort,
          `/pub/${plan.prefix}`,
          makePayload(sequence, monotonicMicros()),
          'text/plain',
        );
        return;
      }
      const posts: Promise<void>[] = [];
      for (let client = 0; client < plan.clients; client++) {
        posts.push(
          post(
            config.publishPort,
            `/pub/${topicName(plan, client)}`,
            makePayload(sequence, monotonicMicros()),
            'text/plain',
          ),
        );
      }
      await Promise.all(posts);
    },
    async awaitSubscribers(count: number, _plan: TopicPlan, timeoutMs: number) {
      let seen = 0;
      return waitFor(
        async () => {
          const status = await get(config.publishPort, '/nchan_status');
          seen = Number(/subscribers:\s*(\d+)/.exec(status)?.[1] ?? 0);
          return seen >= count;
        },
        timeoutMs,
        `nchan counted ${seen} of ${count} subscribers`,
      );
    },
    stop: () => Promise.resolve(),
  };
}

if (kind === 'rabbitmq') {
  servePublisher(
    { type: 'ready', port: config.publishPort, about: 'STOMP/TCP publisher' },
    await rabbitmqHooks(),
  );
} else if (kind === 'pushpin') {
  const { hooks, originPort } = await pushpinHooks();
  servePublisher({ type: 'ready', port: originPort, about: 'GRIP origin + HTTP publisher' }, hooks);
} else if (kind === 'nchan') {
  servePublisher(
    { type: 'ready', port: config.publishPort, about: 'HTTP publisher' },
    nchanHooks(),
  );
} else {
  throw new Error(`adapter: unknown kind ${String(kind)}`);
}
