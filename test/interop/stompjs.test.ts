import { connect as connectTcp, type Socket } from 'node:net';
import { Client, type IFrame, type IMessage, type IStompSocket } from '@stomp/stompjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type EmbeddedBroker } from '../../src/broker/index.js';

/**
 * @stomp/stompjs, the most used browser STOMP client, against the embedded broker. Until the
 * gateway's WebSocket endpoint exists it runs over TCP, through a socket that looks like the
 * WebSocket stompjs expects.
 */

/** A TCP socket presented as the WebSocket-like object stompjs drives. */
class TcpAsWebSocket implements IStompSocket {
  readonly url: string;
  onclose: ((event?: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: ArrayBuffer }) => void) | null = null;
  onopen: ((event?: unknown) => void) | null = null;
  binaryType = 'arraybuffer';
  readyState = 0;
  private readonly socket: Socket;

  constructor(port: number) {
    this.url = `tcp://127.0.0.1:${port}`;
    this.socket = connectTcp({ host: '127.0.0.1', port }, () => {
      this.readyState = 1;
      this.onopen?.();
    });
    this.socket.on('data', (chunk: Buffer) => {
      const data = chunk.buffer.slice(
        chunk.byteOffset,
        chunk.byteOffset + chunk.byteLength,
      ) as ArrayBuffer;
      this.onmessage?.({ data });
    });
    this.socket.on('error', (error) => this.onerror?.(error));
    this.socket.on('close', () => {
      this.readyState = 3;
      this.onclose?.({ code: 1000, reason: '', wasClean: true });
    });
  }

  send(data: string | ArrayBufferLike | ArrayBufferView): void {
    if (typeof data === 'string') this.socket.write(data);
    else if (ArrayBuffer.isView(data))
      this.socket.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else this.socket.write(new Uint8Array(data as ArrayBuffer));
  }

  close(): void {
    this.readyState = 2;
    this.socket.end();
  }
}

let broker: EmbeddedBroker;
let port: number;
const clients: Client[] = [];

beforeAll(async () => {
  broker = createBroker();
  port = (await broker.listen({ port: 0 })).port;
});
afterAll(() => broker.close({ drainMs: 100 }));
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.deactivate()));
});

async function stompjs(): Promise<Client> {
  const client = new Client({
    webSocketFactory: () => new TcpAsWebSocket(port),
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  clients.push(client);
  await new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve();
    client.onStompError = (frame: IFrame) => reject(new Error(frame.headers.message));
    client.activate();
  });
  return client;
}

function receiptFor(client: Client, id: string): Promise<IFrame> {
  return new Promise((resolve) => client.watchForReceipt(id, resolve));
}

function messages(): { handler: (message: IMessage) => void; next(): Promise<IMessage> } {
  const queue: IMessage[] = [];
  const waiters: ((message: IMessage) => void)[] = [];
  return {
    handler(message) {
      const waiter = waiters.shift();
      if (waiter) waiter(message);
      else queue.push(message);
    },
    next() {
      const message = queue.shift();
      return message ? Promise.resolve(message) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

describe('@stomp/stompjs against the embedded broker', () => {
  it('negotiates STOMP 1.2', async () => {
    const client = await stompjs();
    expect(client.connectedVersion).toBe('1.2');
  });

  it('topics: publishes and subscribes, with receipts', async () => {
    const [subscriber, publisher] = await Promise.all([stompjs(), stompjs()]);
    const inbox = messages();
    const subscribed = receiptFor(subscriber, 'sub');
    subscriber.subscribe('/games/1/status', inbox.handler, { receipt: 'sub' });
    await subscribed;
    const sent = receiptFor(publisher, 'sent');
    publisher.publish({
      destination: '/games/1/status',
      body: 'live',
      headers: { receipt: 'sent', 'x-app': 'quiz' },
    });
    await sent;
    const message = await inbox.next();
    expect(message.body).toBe('live');
    expect(message.headers['x-app']).toBe('quiz');
    expect(message.headers['x-perigee-offset']).toBeDefined();
  });

  it('carries binary bodies', async () => {
    const [subscriber, publisher] = await Promise.all([stompjs(), stompjs()]);
    const inbox = messages();
    const subscribed = receiptFor(subscriber, 'sub');
    subscriber.subscribe('/bin', inbox.handler, { receipt: 'sub' });
    await subscribed;
    publisher.publish({ destination: '/bin', binaryBody: new Uint8Array([0, 1, 0, 255]) });
    expect([...(await inbox.next()).binaryBody]).toEqual([0, 1, 0, 255]);
  });

  it('queues: client-individual ack and NACK redelivery', async () => {
    const [consumer, publisher] = await Promise.all([stompjs(), stompjs()]);
    const inbox = messages();
    const subscribed = receiptFor(consumer, 'sub');
    consumer.subscribe('/queue/work', inbox.handler, { ack: 'client-individual', receipt: 'sub' });
    await subscribed;
    publisher.publish({ destination: '/queue/work', body: 'task' });
    const first = await inbox.next();
    first.nack();
    const again = await inbox.next();
    expect(again.body).toBe('task');
    expect(again.headers.redelivered).toBe('true');
    const acked = receiptFor(consumer, 'acked');
    again.ack({ receipt: 'acked' });
    await acked;
    expect(broker.stats().queuedMessages).toBe(0);
  });

  it('transactions: abort drops, commit delivers', async () => {
    const [subscriber, publisher] = await Promise.all([stompjs(), stompjs()]);
    const inbox = messages();
    const subscribed = receiptFor(subscriber, 'sub');
    subscriber.subscribe('/tx', inbox.handler, { receipt: 'sub' });
    await subscribed;
    const aborted = publisher.begin();
    publisher.publish({
      destination: '/tx',
      body: 'aborted',
      headers: { transaction: aborted.id },
    });
    aborted.abort();
    const committed = publisher.begin();
    publisher.publish({
      destination: '/tx',
      body: 'committed',
      headers: { transaction: committed.id },
    });
    committed.commit();
    expect((await inbox.next()).body).toBe('committed');
  });

  it('sees the broker’s ERROR frame for a bad frame', async () => {
    const client = await stompjs();
    const error = new Promise<IFrame>((resolve) => (client.onStompError = resolve));
    client.publish({ destination: '/games/*/status', body: 'wildcards are for SUBSCRIBE' });
    expect((await error).headers.message).toMatch(/Invalid destination/);
  });
});
