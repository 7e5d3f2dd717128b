/**
 * A Node server under test, in a process of its own (pinned to the server core by the
 * orchestrator, run with --expose-gc). argv[2] names the kind; the orchestrator's commands arrive
 * over IPC (publishing.ts). Every kind keeps subscribers per topic and publishes in-process.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Connection as SockJSConnection } from 'sockjs';
import type { WebSocket as WsSocket } from 'ws';
import { READY_TOKEN, type ServerKind } from '../catalog.js';
import { topicName, type TopicPlan } from '../ipc.js';
import { makePayload, monotonicMicros } from '../payload.js';
import { fullGcMemory, servePublisher } from './publishing.js';

/** Subscribers of one kind of server, by topic. */
interface Hub {
  publish(topic: string, payload: Buffer): void;
  close(): Promise<void>;
  about: string;
}

/** A `Map<topic, Set<T>>` that forgets empty topics. */
class Topics<T> {
  private readonly byTopic = new Map<string, Set<T>>();

  add(topic: string, member: T): void {
    let members = this.byTopic.get(topic);
    if (!members) {
      members = new Set();
      this.byTopic.set(topic, members);
    }
    members.add(member);
  }

  delete(topic: string, member: T): void {
    const members = this.byTopic.get(topic);
    if (!members) return;
    members.delete(member);
    if (members.size === 0) this.byTopic.delete(topic);
  }

  get(topic: string): Set<T> | undefined {
    return this.byTopic.get(topic);
  }
}

function topicOf(request: IncomingMessage): string {
  return new URL(request.url ?? '/', 'http://localhost').searchParams.get('topic') ?? '';
}

const server = createServer();
// Connection storms: far above Node's default backlog of 511 (the kernel caps it at somaxconn).
const BACKLOG = 65_535;
const kind = process.argv[2] as ServerKind;

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC11B85';

/** The Node limit: the handshake by hand, each message framed once and written to every socket. */
function rawWebSocketHub(): Hub {
  const topics = new Topics<Socket>();
  server.on('upgrade', (request: IncomingMessage, socket: Duplex) => {
    const key = request.headers['sec-websocket-key'];
    if (typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    const accept = createHash('sha1')
      .update(key + WS_GUID)
      .digest('base64');
    const tcp = socket as Socket;
    tcp.setNoDelay(true);
    const topic = topicOf(request);
    tcp.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    topics.add(topic, tcp);
    // Clients send nothing but a close; reading keeps the socket flowing.
    tcp.on('data', () => {});
    tcp.on('error', () => {});
    tcp.on('close', () => topics.delete(topic, tcp));
  });
  return {
    about: `Node ${process.version} net.Socket.write`,
    publish(topic, payload) {
      const members = topics.get(topic);
      if (!members) return;
      // Payloads are < 126 bytes: a two-byte header, FIN + text opcode, unmasked.
      const frame = Buffer.allocUnsafe(2 + payload.length);
      frame[0] = 0x81;
      frame[1] = payload.length;
      payload.copy(frame, 2);
      for (const socket of members) socket.write(frame);
    },
    close: () => Promise.resolve(),
  };
}

async function wsHub(): Promise<Hub> {
  const { WebSocketServer } = await import('ws');
  const topics = new Topics<WsSocket>();
  const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false });
  wss.on('connection', (socket, request) => {
    const topic = topicOf(request);
    topics.add(topic, socket);
    socket.on('error', () => {});
    socket.on('close', () => topics.delete(topic, socket));
  });
  const version = await packageVersion('ws');
  return {
    about: `ws ${version}`,
    publish(topic, payload) {
      const members = topics.get(topic);
      if (!members) return;
      for (const socket of members) socket.send(payload, { binary: false });
    },
    close: () => new Promise((resolve) => wss.close(() => resolve())),
  };
}

function rawSseHub(): Hub {
  const topics = new Topics<ServerResponse>();
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (!(request.url ?? '').startsWith('/sse')) {
      response.writeHead(404).end();
      return;
    }
    const topic = topicOf(request);
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    response.flushHeaders();
    response.socket?.setNoDelay(true);
    topics.add(topic, response);
    response.on('close', () => topics.delete(topic, response));
  });
  return {
    about: `Node ${process.version} http.ServerResponse.write`,
    publish(topic, payload) {
      const members = topics.get(topic);
      if (!members) return;
      const event = Buffer.concat([Buffer.from('data: '), payload, Buffer.from('\n\n')]);
      for (const response of members) response.write(event);
    },
    close: () => Promise.resolve(),
  };
}

async function socketIoHub(): Promise<Hub> {
  const { Server } = await import('socket.io');
  const io = new Server(server, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
  });
  io.on('connection', (socket) => {
    const topic = socket.handshake.query.topic;
    if (typeof topic === 'string') void socket.join(topic);
  });
  const version = await packageVersion('socket.io');
  return {
    about: `socket.io ${version}`,
    publish(topic, payload) {
      io.to(topic).emit('m', payload.toString('latin1'));
    },
    close: () => io.close(),
  };
}

async function sockjsHub(): Promise<Hub> {
  const sockjs = await import('sockjs');
  const topics = new Topics<SockJSConnection>();
  const service = sockjs.createServer({ prefix: '/sockjs', log: () => {} });
  service.on('connection', (connection: SockJSConnection) => {
    let topic: string | undefined;
    connection.on('data', (message: string) => {
      if (message === 'bye') {
        connection.close();
        return;
      }
      if (topic !== undefined || !message.startsWith('sub ')) return;
      topic = message.slice(4);
      topics.add(topic, connection);
      connection.write(READY_TOKEN);
    });
    connection.on('close', () => {
      if (topic !== undefined) topics.delete(topic, connection);
    });
  });
  service.installHandlers(server, { prefix: '/sockjs' });
  const version = await packageVersion('sockjs');
  return {
    about: `sockjs ${version}`,
    publish(topic, payload) {
      const members = topics.get(topic);
      if (!members) return;
      const text = payload.toString('latin1');
      for (const connection of members) connection.write(text);
    },
    close: () => Promise.resolve(),
  };
}

async function perigeeHub(): Promise<Hub> {
  const { createBroker, createGateway, createAuthorizer } = await import('../../src/index.js');
  const broker = createBroker();
  const gateway = createGateway({
    backend: broker,
    authorizer: createAuthorizer({
      rules: [{ pattern: '/bench/**', subscribe: 'anyone', send: 'nobody' }],
    }),
    server,
  });
  return {
    about: 'Perigee (src/), createBroker() and createGateway() defaults',
    publish(topic, payload) {
      broker.publishNow(`/bench/${topic}`, payload);
    },
    close: async () => {
      await gateway.close({ drainMs: 0 });
      await broker.close({ drainMs: 0 });
    },
  };
}

async function packageVersion(name: string): Promise<string> {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return '?';
  }
}

async function makeHub(): Promise<Hub> {
  switch (kind) {
    case 'raw-ws':
      return rawWebSocketHub();
    case 'ws':
      return wsHub();
    case 'raw-sse':
      return rawSseHub();
    case 'socketio':
      return socketIoHub();
    case 'sockjs':
      return sockjsHub();
    case 'perigee':
      return perigeeHub();
    case 'rabbitmq':
    case 'pushpin':
    case 'nchan':
      throw new Error(`node-server: ${kind} is not a Node server`);
  }
}

const hub = await makeHub();
await new Promise<void>((resolve) =>
  server.listen({ host: '127.0.0.1', port: 0, backlog: BACKLOG }, resolve),
);
server.keepAliveTimeout = 60_000;
server.headersTimeout = 60_000;
server.requestTimeout = 0;

servePublisher(
  { type: 'ready', port: (server.address() as AddressInfo).port, about: hub.about },
  {
    publishRound(sequence: number, plan: TopicPlan) {
      if (plan.mode === 'one') {
        hub.publish(plan.prefix, makePayload(sequence, monotonicMicros()));
        return;
      }
      for (let client = 0; client < plan.clients; client++) {
        hub.publish(topicName(plan, client), makePayload(sequence, monotonicMicros()));
      }
    },
    memory: fullGcMemory,
    async stop() {
      await hub.close();
      server.closeAllConnections();
      server.close();
    },
  },
);
