import { counter, gauge, type Metric } from '../metrics.js';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type {
  Backend,
  BackendChannel,
  BackendChannelOptions,
  Principal,
  Publisher,
  StreamPosition,
} from '../backend.js';
import { PerigeeError } from '../errors.js';
import { encodeUtf8, validateDestinationName, type Frame } from '../protocol/index.js';
import { ChannelSession } from './channel.js';
import { BrokerCore, type BrokerOptions, type BrokerStats } from './core.js';
import { headersFromRecord } from './message.js';
import { TcpSession, WriteBatcher } from './tcp.js';

export interface ListenOptions {
  host?: string;
  port?: number;
  /** Pending connections the kernel may hold; above Node's default 511 for connection storms. */
  backlog?: number;
}

/** How long `close` waits for clients to read their ERROR frame and hang up. */
const DEFAULT_DRAIN_MS = 2000;

/**
 * The embedded STOMP 1.0/1.1/1.2 broker: topics with history, queues with acknowledgements,
 * transactions, a TCP listener, and in-process channels for the gateway ({@link Backend}) and
 * for the application's own publishing ({@link Publisher}).
 */
export class EmbeddedBroker implements Backend, Publisher {
  private readonly core: BrokerCore;
  private readonly batcher = new WriteBatcher();
  private readonly servers = new Set<Server>();
  private closing: Promise<void> | undefined;

  constructor(options: BrokerOptions = {}) {
    this.core = new BrokerCore(options);
  }

  /**
   * Listens for STOMP clients over TCP. A listener reachable from other machines requires a login
   * check (`users` or `authenticate`); without one it refuses to start.
   */
  async listen(options: ListenOptions = {}): Promise<AddressInfo> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 61613;
    if (!isLoopback(host) && !this.core.requiresLogin) {
      throw new PerigeeError(
        'CONFIG_INVALID',
        `the STOMP listener on ${host}:${port} would accept anyone from the network: configure users or an authenticate hook, or listen on 127.0.0.1`,
      );
    }
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        reject(
          error.code === 'EADDRINUSE'
            ? new PerigeeError('ADDRESS_IN_USE', `${host}:${port} is in use`, { cause: error })
            : error,
        );
      };
      server.once('error', onError);
      server.listen({ host, port, backlog: options.backlog ?? 4096 }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (error) => this.core.log.error({ err: error }, 'STOMP listener error'));
    this.servers.add(server);
    return server.address() as AddressInfo;
  }

  /** Opens an in-process STOMP session for an already authenticated principal. */
  open(
    principal: Principal,
    deliver: (frame: Frame) => void,
    options: BackendChannelOptions = {},
  ): Promise<BackendChannel> {
    if (this.closing) return Promise.reject(new PerigeeError('SHUTTING_DOWN'));
    const session = new ChannelSession(this.core, principal, deliver, options.version ?? '1.2');
    this.core.sessions.add(session);
    return Promise.resolve(session);
  }

  /**
   * Publishes from the application, in-process. Not bound by browsers' access rules. Resolves
   * once routed; rejects with QUEUE_FULL if a queue cannot take it.
   */
  publish(
    destination: string,
    body: string | Uint8Array,
    headers?: Readonly<Record<string, string>>,
  ): Promise<void> {
    try {
      this.publishNow(destination, body, headers);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** {@link publish} without the promise, for hot loops. Throws on a bad destination or a full queue. */
  publishNow(
    destination: string,
    body: string | Uint8Array,
    headers?: Readonly<Record<string, string>>,
  ): void {
    validateDestinationName(destination);
    const bytes = typeof body === 'string' ? encodeUtf8(body) : body;
    this.core.route(destination, headersFromRecord(headers), bytes);
  }

  /** The topic's current (epoch, offset): render a page with it, then subscribe since it. */
  position(destination: string): StreamPosition {
    validateDestinationName(destination);
    return this.core.topics.position(destination);
  }

  stats(): BrokerStats {
    return this.core.snapshot();
  }

  /** {@link stats} as Prometheus metrics, for a gateway's `/metrics` (`metrics.more`). */
  metrics(): Metric[] {
    const stats = this.stats();
    return [
      gauge('perigee_broker_connections', 'STOMP sessions on the broker (TCP and in-process).', [
        { value: stats.connections },
      ]),
      counter(
        'perigee_broker_messages_published_total',
        'Messages accepted from SEND frames and publish().',
        stats.published,
      ),
      counter(
        'perigee_broker_messages_delivered_total',
        'MESSAGE frames handed to subscribers.',
        stats.delivered,
      ),
      counter(
        'perigee_broker_messages_dropped_total',
        'Topic messages skipped for slow consumers, plus queue messages dropped on overflow.',
        stats.dropped,
      ),
      gauge('perigee_broker_topics', 'Topics with subscribers or history.', [
        { value: stats.topics },
      ]),
      gauge('perigee_broker_queues', 'Queues with messages or consumers.', [
        { value: stats.queues },
      ]),
      gauge('perigee_broker_queued_messages', 'Messages waiting in queues.', [
        { value: stats.queuedMessages },
      ]),
      gauge('perigee_broker_history_bytes', 'Bytes of topic history kept for recovery.', [
        { value: stats.historyBytes },
      ]),
    ];
  }

  /** Addresses of the TCP listeners. */
  addresses(): AddressInfo[] {
    return [...this.servers].map((server) => server.address() as AddressInfo);
  }

  /**
   * Stops accepting, tells every client the server is going away (an ERROR frame, which STOMP
   * clients treat as a reason to reconnect), and waits up to `drainMs` for the connections to
   * finish before cutting them.
   */
  close(options: { drainMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(options.drainMs ?? DEFAULT_DRAIN_MS);
    return this.closing;
  }

  private async shutdown(drainMs: number): Promise<void> {
    const serversClosed = [...this.servers].map(
      (server) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    for (const session of [...this.core.sessions]) {
      session.fail(new PerigeeError('SHUTTING_DOWN', 'the broker is stopping; reconnect shortly'));
    }
    const drained = Promise.all(serversClosed).then(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, drainMs);
      timer.unref();
    });
    await Promise.race([drained, deadline]);
    clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    this.servers.clear();
  }

  private readonly sockets = new Set<Socket>();

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const session = new TcpSession(this.core, socket, this.batcher);
    if (this.sockets.size > this.core.options.maxConnections) {
      session.fail(
        new PerigeeError(
          'LIMIT_EXCEEDED',
          `the broker holds its limit of ${this.core.options.maxConnections} connections`,
        ),
      );
      return;
    }
    this.core.sessions.add(session);
  }
}

export function createBroker(options: BrokerOptions = {}): EmbeddedBroker {
  return new EmbeddedBroker(options);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
