import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { createAuthorizer, type Authenticate, type DestinationRule } from '../../src/auth/index.js';
import { createBroker, type BrokerOptions, type EmbeddedBroker } from '../../src/broker/index.js';
import {
  connect,
  type PerigeeClient,
  type PerigeeOptions,
  type StompMessage,
} from '../../src/client/browser/index.js';
import type { Environment } from '../../src/client/browser/environment.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/index.js';

/** A gateway on an embedded broker, on a free port, for tests. */
export interface TestGateway {
  broker: EmbeddedBroker;
  gateway: Gateway;
  server: Server;
  port: number;
  url: string;
  /** The server's open TCP sockets, to cut connections as a failing network would. */
  sockets: Set<Socket>;
  close(): Promise<void>;
}

/** The rules most tests use: a public feed, a chat browsers may write to, and a secret area. */
export const TEST_RULES: DestinationRule[] = [
  { pattern: '/feed/**', subscribe: 'anyone', send: 'nobody' },
  { pattern: '/chat/**', subscribe: 'anyone', send: 'anyone' },
  { pattern: '/private/**', subscribe: 'authenticated', send: 'authenticated' },
];

export async function startGateway(
  options: {
    broker?: BrokerOptions;
    gateway?: Partial<GatewayOptions>;
    rules?: DestinationRule[];
    authenticate?: Authenticate;
  } = {},
): Promise<TestGateway> {
  const broker = createBroker(options.broker);
  const gateway = createGateway({
    backend: broker,
    authorizer: createAuthorizer({
      rules: options.rules ?? TEST_RULES,
      authenticate: options.authenticate,
    }),
    ...options.gateway,
  });
  const { server, address } = await gateway.listen();
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    broker,
    gateway,
    server,
    port: address.port,
    url: `http://127.0.0.1:${address.port}`,
    sockets,
    async close() {
      await gateway.close({ drainMs: 50 });
      await broker.close({ drainMs: 50 });
    },
  };
}

/** What Node lacks of a browser: ws for WebSocket, the eventsource package for EventSource. */
export const NODE_ENV: Partial<Environment> = {
  WebSocket: WebSocket as unknown as Environment['WebSocket'],
  EventSource: EventSource as unknown as Environment['EventSource'],
};

/** The transports our client runs in Node (htmlfile and JSONP need a DOM: Chromium tests). */
export const NODE_TRANSPORTS = [
  'websocket',
  'sockjs-websocket',
  'eventsource',
  'xhr-streaming',
  'xhr-polling',
  'short-polling',
] as const;

export function nodeClient(url: string, options: PerigeeOptions = {}): PerigeeClient {
  return connect(url, { pollInterval: 20, ...options, env: { ...NODE_ENV, ...options.env } });
}

/** Collects messages; `next()` resolves with the next one. */
export function collector(): {
  handler: (message: StompMessage) => void;
  received: StompMessage[];
  next(timeoutMs?: number): Promise<StompMessage>;
  waitFor(count: number, timeoutMs?: number): Promise<StompMessage[]>;
} {
  const received: StompMessage[] = [];
  let taken = 0;
  const waiters: (() => void)[] = [];
  const wake = (): void => {
    for (const waiter of waiters.splice(0)) waiter();
  };
  const until = (done: () => boolean, timeoutMs: number, what: string): Promise<void> =>
    new Promise((resolve, reject) => {
      if (done()) {
        resolve();
        return;
      }
      const timer = setTimeout(
        () => reject(new Error(`${what} within ${timeoutMs} ms (got ${received.length})`)),
        timeoutMs,
      );
      const check = (): void => {
        if (done()) {
          clearTimeout(timer);
          resolve();
        } else {
          waiters.push(check);
        }
      };
      waiters.push(check);
    });
  return {
    received,
    handler(message) {
      received.push(message);
      wake();
    },
    async next(timeoutMs = 5000) {
      await until(() => taken < received.length, timeoutMs, 'no message');
      return received[taken++]!;
    },
    async waitFor(count, timeoutMs = 20_000) {
      await until(() => received.length >= count, timeoutMs, `not ${count} messages`);
      return received;
    },
  };
}
