import { createServer, Socket, type AddressInfo } from 'node:net';
import type { StompClient, StompMessage } from '../../src/client/index.js';

/** What the client tests share: an inbox for a subscription, events, and a TCP proxy. */

export interface Inbox {
  readonly handler: (message: StompMessage) => void;
  /** The next message not taken yet, in arrival order. */
  next(timeoutMs?: number): Promise<StompMessage>;
  readonly received: readonly StompMessage[];
}

/** Collects a subscription's messages; `next()` resolves with each in turn. */
export function inbox(): Inbox {
  const received: StompMessage[] = [];
  let waiter: ((message: StompMessage) => void) | undefined;
  let taken = 0;
  return {
    received,
    handler(message) {
      received.push(message);
      if (waiter && taken < received.length) {
        const resolve = waiter;
        waiter = undefined;
        resolve(received[taken++]!);
      }
    },
    next(timeoutMs = 5000) {
      if (taken < received.length) return Promise.resolve(received[taken++]!);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiter = undefined;
          reject(
            new Error(
              `no message within ${timeoutMs} ms (received so far: ${JSON.stringify(received.map((message) => message.text))})`,
            ),
          );
        }, timeoutMs);
        waiter = (message) => {
          clearTimeout(timer);
          resolve(message);
        };
      });
    },
  };
}

/** Resolves when `client` next emits `event`. */
export function once(
  client: StompClient,
  event: 'connect' | 'disconnect' | 'reconnecting' | 'error',
): Promise<unknown> {
  return new Promise((resolve) => {
    const off = client.on(event, (value: unknown) => {
      off();
      resolve(value);
    });
  });
}

/** `promise`, or a rejection naming `what` if it takes longer than `ms`: a clear failure, not a test timeout. */
export function within<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export interface ProxiedConnection {
  /** Everything the client sent through this connection, as latin1 text. */
  fromClient: string;
  /** Everything the broker sent back, as latin1 text, recorded before it is passed on. */
  fromServer: string;
}

export interface TcpProxy {
  readonly port: number;
  /** Where new connections are forwarded. */
  target: { host: string; port: number };
  /** Every connection made through the proxy, in order. */
  readonly connections: readonly ProxiedConnection[];
  /** While true, new connections are accepted and closed at once, as by a broker that is down. */
  refusing: boolean;
  /** Cuts every open connection, as a network failure would. */
  cutAll(): void;
  /** Stops forwarding in both directions without closing anything, and refuses newcomers. */
  freeze(): void;
  /** Ends a freeze: the stalled connections are cut and new ones go through again. */
  unfreeze(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy between a client and a real broker, to fail connections on purpose: the only way to
 * make a client lose its connection to a broker the test cannot restart.
 */
export async function startTcpProxy(
  target: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const connections: ProxiedConnection[] = [];
  let frozen = false;
  const server = createServer((inbound) => {
    if (proxy.refusing) {
      inbound.destroy();
      return;
    }
    const outbound = new Socket();
    outbound.connect(proxy.target.port, proxy.target.host);
    const pair: [Socket, Socket] = [inbound, outbound];
    pairs.add(pair);
    const record: ProxiedConnection = { fromClient: '', fromServer: '' };
    connections.push(record);
    const forward = (from: Socket, to: Socket, log: (text: string) => void): void => {
      from.on('data', (chunk: Buffer) => {
        if (frozen) return;
        log(chunk.toString('latin1'));
        to.write(chunk);
      });
      from.on('close', () => {
        to.destroy();
        pairs.delete(pair);
      });
      from.on('error', () => {});
    };
    forward(inbound, outbound, (text) => (record.fromClient += text));
    forward(outbound, inbound, (text) => (record.fromServer += text));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const cutAll = (): void => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  const proxy: TcpProxy = {
    port: (server.address() as AddressInfo).port,
    target,
    connections,
    refusing: false,
    cutAll,
    freeze() {
      frozen = true;
      proxy.refusing = true;
    },
    unfreeze() {
      frozen = false;
      proxy.refusing = false;
      cutAll();
    },
    close() {
      cutAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
