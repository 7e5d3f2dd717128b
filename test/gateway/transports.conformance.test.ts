import { Client, type IFrame, type IMessage } from '@stomp/stompjs';
import SockJS from 'sockjs-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { StompClient, type StompMessage } from '../../src/client/index.js';
import type { PerigeeError } from '../../src/errors.js';
import {
  collector,
  NODE_TRANSPORTS,
  nodeClient,
  startGateway,
  type TestGateway,
} from '../support/gateway.js';
import { RawSockJSWebSocket, rawSockJSUrl } from '../support/raw-websocket.js';
import {
  describeTransportConformance,
  type ConformanceClient,
  type OpenClient,
  until,
} from './transport-conformance.js';

/** What our browser client and our client core have in common, for one driver over both. */
interface OurClient {
  subscribe(
    destination: string,
    handler: (message: StompMessage) => void,
  ): { ready: Promise<unknown> };
  publish(destination: string, body: string): Promise<void>;
  disconnect(): Promise<void>;
}

function ourDriver(client: OurClient): ConformanceClient {
  return {
    async subscribe(destination) {
      const inbox = collector();
      await client.subscribe(destination, inbox.handler).ready;
      return {
        bodies: async (count, timeoutMs) =>
          (await inbox.waitFor(count, timeoutMs)).slice(0, count).map((m) => m.text),
      };
    },
    publish: (destination, body) => client.publish(destination, body),
    async publishRefused(destination, body) {
      const error = await client.publish(destination, body).then(
        () => {
          throw new Error('the publish was accepted');
        },
        (caught: PerigeeError) => caught,
      );
      return error.message;
    },
    disconnect: () => client.disconnect(),
  };
}

/** Our client in Node, forced onto one transport. */
function ours(transport: (typeof NODE_TRANSPORTS)[number]): OpenClient {
  return async (gateway) => {
    const client = nodeClient(gateway.url, { transports: [transport] });
    await client.ready;
    expect(client.transport).toBe(transport);
    return ourDriver(client);
  };
}

/**
 * Our client core on the raw SockJS WebSocket (`/sockjs/websocket`), the route for programs that
 * are not browsers: STOMP frames as plain WebSocket messages, no SockJS framing.
 */
const oursOnRawSockJS: OpenClient = async (gateway) => {
  const core = new StompClient({
    socket: () => new RawSockJSWebSocket(gateway.url),
    reconnect: false,
    heartBeat: [0, 0],
  });
  await core.connect();
  return ourDriver({
    subscribe: (destination, handler) => core.subscribe(destination, handler),
    publish: (destination, body) => core.publish(destination, body, { receipt: true }),
    disconnect: () => core.disconnect(),
  });
};

/**
 * @stomp/stompjs on a socket of our choosing: a WebSocket to /stomp or /sockjs/websocket, or
 * sockjs-client.
 */
function stompjs(socket: (url: string) => unknown): OpenClient {
  return async (gateway) => {
    const errors: IFrame[] = [];
    const errorWaiters: ((frame: IFrame) => void)[] = [];
    const client = new Client({
      webSocketFactory: () => socket(gateway.url),
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
    });
    client.onStompError = (frame) => {
      const waiter = errorWaiters.shift();
      if (waiter) waiter(frame);
      else errors.push(frame);
    };
    await new Promise<void>((resolve, reject) => {
      client.onConnect = () => resolve();
      client.onWebSocketError = (event: unknown) =>
        reject(new Error(`socket error: ${String(event)}`));
      client.activate();
    });
    let receipts = 0;
    const receipt = (): { id: string; done: Promise<IFrame> } => {
      const id = `r${++receipts}`;
      return { id, done: new Promise((resolve) => client.watchForReceipt(id, resolve)) };
    };
    const driver: ConformanceClient = {
      async subscribe(destination) {
        const bodies: string[] = [];
        const waiters: (() => void)[] = [];
        const { id, done } = receipt();
        client.subscribe(
          destination,
          (message: IMessage) => {
            bodies.push(message.body);
            for (const waiter of waiters.splice(0)) waiter();
          },
          { receipt: id },
        );
        await done;
        return {
          bodies: (count, timeoutMs = 20_000) =>
            new Promise((resolve, reject) => {
              const timer = setTimeout(
                () => reject(new Error(`got ${bodies.length} of ${count}`)),
                timeoutMs,
              );
              const check = (): void => {
                if (bodies.length >= count) {
                  clearTimeout(timer);
                  resolve(bodies.slice(0, count));
                } else waiters.push(check);
              };
              check();
            }),
        };
      },
      async publish(destination, body) {
        const { id, done } = receipt();
        client.publish({ destination, body, headers: { receipt: id } });
        await done;
      },
      async publishRefused(destination, body) {
        const error =
          errors.shift() ?? new Promise<IFrame>((resolve) => errorWaiters.push(resolve));
        client.publish({ destination, body });
        return (await error).headers.message ?? '';
      },
      disconnect: () => client.deactivate(),
    };
    return driver;
  };
}

for (const transport of NODE_TRANSPORTS)
  describeTransportConformance(`our client, ${transport}`, ours(transport));

describeTransportConformance(
  '@stomp/stompjs over /stomp',
  stompjs(
    (url) =>
      new WebSocket(`${url.replace(/^http/, 'ws')}/stomp`, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
  ),
);

describeTransportConformance('our client core over the raw SockJS WebSocket', oursOnRawSockJS);

describeTransportConformance(
  '@stomp/stompjs over the raw SockJS WebSocket',
  stompjs((url) => new WebSocket(rawSockJSUrl(url))),
);

// sockjs-client runs in Node over these three; the other six of its browser transports run in
// Chromium (test/e2e).
for (const transport of ['websocket', 'xhr-streaming', 'xhr-polling']) {
  describeTransportConformance(
    `@stomp/stompjs over sockjs-client, ${transport}`,
    stompjs((url) => new SockJS(`${url}/sockjs`, undefined, { transports: [transport] })),
  );
}

/** A bare WebSocket on `/stomp` that records every message and whether it came as binary. */
async function openStompSocket(
  gateway: TestGateway,
): Promise<{ socket: WebSocket; received: { data: Buffer; isBinary: boolean }[] }> {
  const socket = new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/stomp`, ['v12.stomp']);
  const received: { data: Buffer; isBinary: boolean }[] = [];
  socket.on('message', (data: Buffer, isBinary) => received.push({ data, isBinary }));
  await new Promise((resolve) => socket.once('open', resolve));
  return { socket, received };
}

describe('/stomp WebSocket messages', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(() => gateway.close());

  it('carries UTF-8 batches as text messages and a batch with a non-UTF-8 body as binary, bytes intact', async () => {
    const { socket, received } = await openStompSocket(gateway);
    socket.send('CONNECT\naccept-version:1.2\nhost:localhost\n\n\0');
    socket.send('SUBSCRIBE\nid:0\ndestination:/feed/bytes\nreceipt:r\n\n\0');
    await until(() => received.some(({ data }) => data.includes('RECEIPT')));
    // CONNECTED and RECEIPT may share a message; what follows is one message per publish.
    const setup = received.length;
    const binary = Buffer.from([0xff, 0x00, 0x80, 0x41]);
    gateway.broker.publishNow('/feed/bytes', 'plain text ✓');
    await until(() => received.length === setup + 1);
    gateway.broker.publishNow('/feed/bytes', binary);
    await until(() => received.length === setup + 2);
    socket.close();
    const [text, bytes] = received.slice(setup);
    // RFC 6455 §5.6: a text message must be UTF-8; the binary body goes out as a binary message.
    expect(text!.isBinary).toBe(false);
    expect(text!.data.toString()).toMatch(/^MESSAGE\n[\s\S]*\n\nplain text ✓\0$/);
    expect(bytes!.isBinary).toBe(true);
    const body = bytes!.data.subarray(bytes!.data.indexOf('\n\n') + 2);
    expect(body).toEqual(Buffer.concat([binary, Buffer.from([0])]));
  });
});

describe('/stomp heart-beats', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway({ gateway: { session: { pingInterval: 100 } } });
  });
  afterAll(() => gateway.close());

  it('sends each heart-beat as a text message holding one end-of-line', async () => {
    const { socket, received } = await openStompSocket(gateway);
    socket.send('CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,100\n\n\0');
    await until(() => received.filter(({ data }) => data.equals(Buffer.from('\n'))).length >= 2);
    socket.close();
    expect(received[0]!.data.toString()).toMatch(/^CONNECTED\n/);
    const beats = received.slice(1);
    expect(beats.every(({ data, isBinary }) => !isBinary && data.toString() === '\n')).toBe(true);
  });
});
