import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createAuthorizer, type Authorizer } from '../auth/index.js';
import type { Backend } from '../backend.js';
import { PerigeeError } from '../errors.js';
import type { HeartBeat, ParserLimits } from '../protocol/index.js';
import { Connection } from './connection.js';
import {
  gatewayMetrics,
  metricsRefusal,
  newGatewayCounters,
  ProcessMetrics,
  sendMetrics,
  type MetricsAccess,
} from './metrics.js';
import type { Metric } from '../metrics.js';
import {
  FlushBatcher,
  type GatewayContext,
  type GatewayLogger,
  type ResolvedSessionOptions,
} from './context.js';
import { OriginPolicy } from './origin.js';
import { SessionRegistry } from './registry.js';
import { UpstreamAccess } from './upstreams.js';
import { SockJSServer, type SockJSConnection } from './transports/sockjs/index.js';
import { SockJSStompTransport } from './transports/sockjs-stomp.js';
import { WebSocketEndpoint } from './transports/websocket.js';

export interface GatewayOptions {
  /** Where sessions run: the embedded broker, or (later) a relay to RabbitMQ/ActiveMQ. */
  backend: Backend;
  /** Logins and rights. Default: everyone anonymous, and no rights at all (deny by default). */
  authorizer?: Authorizer;
  /** Attach to this server (requests under `prefix` and upgrades); other requests pass through. */
  server?: Server;
  /** Path prefix of every gateway URL, e.g. `/rt`. Default: none. */
  prefix?: string;
  /** Browser origins allowed; default `['self']` (the gateway's own origin). */
  allowedOrigins?: readonly string[];
  /**
   * `[access]` rules (`* -> HOST:PORT`): brokers a browser may name in the talk's
   * `STOMPClient.connect(host, port)`. `selfAddresses` (the embedded broker's own STOMP address)
   * are always allowed.
   */
  access?: { rules?: readonly string[]; selfAddresses?: readonly string[] };
  session?: {
    /** STOMP heart-beats and SockJS `h` frames. Default 25 s. */
    pingInterval?: number;
    /** How long a detached session waits for its browser to come back. Default 30 s. */
    timeout?: number;
    /** MESSAGE bytes a session keeps for replay (and a detached one may queue). Default 1 MiB. */
    maxQueuedBytes?: number;
    /** Default 50000. */
    maxSessions?: number;
    /**
     * MESSAGE bytes all sessions together may hold for replay; past it, the sessions detached the
     * longest end first. Default 256 MiB.
     */
    maxRetainedBytes?: number;
  };
  /** Limits on one incoming STOMP frame. */
  limits?: Partial<ParserLimits>;
  sockjs?: {
    /** Bytes per streaming response before it is recycled. Default 128 KiB. */
    responseLimit?: number;
    /** Set the JSESSIONID cookie (for sticky load balancers). Default false. */
    cookieNeeded?: boolean;
    /** Bytes one xhr_send/jsonp_send body may have. Default 128 KiB. */
    maxPostBytes?: number;
    /** How long a SockJS session survives without a receiver. Default 5 s. */
    disconnectDelay?: number;
  };
  /** The CONNECTED `server` header. */
  serverName?: string;
  logger?: GatewayLogger;
  /** More figures for `/healthz` (e.g. the broker's counters). */
  health?: () => Record<string, unknown>;
  /** `/metrics`, Prometheus text. */
  metrics?: {
    /** Who may read it; default `off` (the path is left to the application). */
    access?: MetricsAccess;
    /** More metrics at each scrape, e.g. the embedded broker's `broker.metrics()`. */
    more?: () => readonly Metric[];
  };
}

const silent: GatewayLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** The browser bundles the gateway serves, built by `npm run build` into dist/client. */
const BUNDLES: Readonly<Record<string, string>> = {
  '/perigee.js': 'perigee.js',
  '/perigee.mjs': 'perigee.mjs',
  '/perigee-orbited.js': 'perigee-orbited.js',
  '/perigee.js.map': 'perigee.js.map',
  '/perigee.mjs.map': 'perigee.mjs.map',
  '/perigee-orbited.js.map': 'perigee-orbited.js.map',
};

/**
 * The gateway: browsers' STOMP over every transport, each connection one STOMP session on the
 * backend, checked against the access rules. See DESIGN.md §4 for the paths.
 */
export class Gateway {
  readonly prefix: string;
  private readonly context: GatewayContext;
  private readonly origins: OriginPolicy;
  private readonly websocket: WebSocketEndpoint;
  private readonly sockjs: SockJSServer;
  private readonly polling: SockJSServer;
  private readonly ticker: NodeJS.Timeout;
  private ownServer: Server | undefined;
  private closing: Promise<void> | undefined;
  private readonly health: (() => Record<string, unknown>) | undefined;
  private readonly metricsAccess: MetricsAccess;
  private readonly moreMetrics: (() => readonly Metric[]) | undefined;
  /** Made on the first scrape: a gateway nobody scrapes runs no event-loop monitor. */
  private processMetrics: ProcessMetrics | undefined;
  private readonly bundles = new Map<string, { body: Buffer; etag: string } | null>();

  constructor(options: GatewayOptions) {
    this.prefix = (options.prefix ?? '').replace(/\/+$/, '');
    this.health = options.health;
    this.metricsAccess = options.metrics?.access ?? 'off';
    this.moreMetrics = options.metrics?.more;
    if (this.prefix !== '' && !this.prefix.startsWith('/')) {
      throw new PerigeeError(
        'CONFIG_INVALID',
        `the gateway prefix must start with "/", got "${options.prefix}"`,
      );
    }
    this.origins = new OriginPolicy(options.allowedOrigins);
    const session = resolveSessionOptions(options.session);
    const heartBeat: HeartBeat = [session.pingInterval, session.pingInterval];
    this.context = {
      options: session,
      limits: options.limits ?? {},
      heartBeat,
      serverName: options.serverName ?? 'Perigee/0.1.0',
      backend: options.backend,
      authorizer: options.authorizer ?? createAuthorizer(),
      upstreams: new UpstreamAccess(options.access?.rules, options.access?.selfAddresses),
      registry: new SessionRegistry(),
      batcher: new FlushBatcher(),
      connections: new Set(),
      counters: newGatewayCounters(),
      log: options.logger ?? silent,
      closing: false,
    };
    const maxFrame = options.limits?.maxFrameBytes ?? 1_310_720;
    this.websocket = new WebSocketEndpoint({
      // Room above the STOMP limit, so that a frame slightly over it gets a STOMP ERROR saying
      // so; a message far over it is cut by the WebSocket layer (close 1009).
      maxPayload: maxFrame * 2,
      onTransport: (transport) => new Connection(transport, this.context),
    });
    const allowOrigin = (origin: string, request: IncomingMessage): boolean =>
      this.origins.allows(origin, request.headers.host);
    const onSockJS = (connection: SockJSConnection): void => {
      void new Connection(new SockJSStompTransport(connection), this.context);
    };
    const sockjsOptions = options.sockjs ?? {};
    this.sockjs = new SockJSServer(
      {
        prefix: `${this.prefix}/sockjs`,
        responseLimit: sockjsOptions.responseLimit,
        heartbeatDelay: session.pingInterval,
        disconnectDelay: sockjsOptions.disconnectDelay,
        cookieNeeded: sockjsOptions.cookieNeeded,
        maxPostBytes: sockjsOptions.maxPostBytes ?? Math.max(maxFrame * 2, 128 * 1024),
        maxWebSocketMessageBytes: maxFrame * 2,
        sockjsUrl: `${this.prefix}/sockjs.min.js`,
        allowOrigin,
        log: this.context.log,
      },
      onSockJS,
    );
    this.polling = new SockJSServer(
      {
        prefix: `${this.prefix}/poll`,
        pollingMode: 'short',
        transports: ['xhr-polling'],
        websocket: false,
        disconnectDelay: sockjsOptions.disconnectDelay,
        maxPostBytes: sockjsOptions.maxPostBytes ?? Math.max(maxFrame * 2, 128 * 1024),
        allowOrigin,
        log: this.context.log,
      },
      onSockJS,
    );
    const tickEvery = Math.max(100, Math.min(1000, Math.floor(session.pingInterval / 4)));
    this.ticker = setInterval(() => this.tick(), tickEvery);
    this.ticker.unref();
    if (options.server) this.attach(options.server);
  }

  /** Serves the gateway's paths from `server`; its other requests reach its other listeners. */
  attach(server: Server): void {
    const others = server.listeners('request') as ((
      request: IncomingMessage,
      response: ServerResponse,
    ) => void)[];
    server.removeAllListeners('request');
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      if (this.handleRequest(request, response)) return;
      if (others.length === 0) {
        response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        response.end('Not found\n');
        return;
      }
      for (const listener of others) listener.call(server, request, response);
    });
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.handleUpgrade(request, socket, head) && server.listenerCount('upgrade') === 1) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      }
    });
  }

  /** A standalone HTTP server for the gateway alone. */
  async listen(
    options: { host?: string; port?: number } = {},
  ): Promise<{ server: Server; address: AddressInfo }> {
    const server = createServer();
    this.ownServer = server;
    this.attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(
        { host: options.host ?? '127.0.0.1', port: options.port ?? 0, backlog: 4096 },
        () => {
          server.off('error', reject);
          resolve();
        },
      );
    });
    return { server, address: server.address() as AddressInfo };
  }

  /** Handles `request` if its path is the gateway's; returns false otherwise. */
  handleRequest(request: IncomingMessage, response: ServerResponse): boolean {
    const path = (request.url ?? '/').split('?')[0]!;
    if (this.prefix !== '' && path !== this.prefix && !path.startsWith(`${this.prefix}/`))
      return false;
    const local = path.slice(this.prefix.length);
    if (local === '/sockjs' || local.startsWith('/sockjs/'))
      return this.sockjs.handleRequest(request, response);
    if (local === '/poll' || local.startsWith('/poll/'))
      return this.polling.handleRequest(request, response);
    if (local === '/stomp') {
      response.writeHead(426, {
        'content-type': 'text/plain; charset=utf-8',
        upgrade: 'websocket',
      });
      response.end('Upgrade required: /stomp is STOMP over WebSocket\n');
      return true;
    }
    if (local === '/sockjs.min.js')
      return this.serveFile(request, response, sockjsClientPath(), 'sockjs.min.js');
    const bundle = BUNDLES[local];
    if (bundle !== undefined)
      return this.serveFile(request, response, join(clientBundleDirectory(), bundle), bundle);
    if (local === '/metrics' && this.metricsAccess !== 'off') {
      this.serveMetrics(request, response, this.metricsAccess);
      return true;
    }
    if (local === '/healthz') {
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
      response.end(
        JSON.stringify({
          status: this.context.closing ? 'closing' : 'ok',
          gateway: this.stats(),
          ...this.health?.(),
        }),
      );
      return true;
    }
    return false;
  }

  /** Handles a WebSocket upgrade under the gateway's paths; returns false otherwise. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (request.url ?? '/').split('?')[0]!;
    if (path === `${this.prefix}/stomp`) {
      try {
        this.origins.check(request);
      } catch (error) {
        refuseUpgrade(socket, 403, (error as PerigeeError).message);
        return true;
      }
      if (this.context.closing) {
        refuseUpgrade(socket, 503, 'Server shutting down');
        return true;
      }
      this.websocket.handleUpgrade(request, socket, head);
      return true;
    }
    return this.sockjs.handleUpgrade(request, socket, head);
  }

  private serveMetrics(
    request: IncomingMessage,
    response: ServerResponse,
    access: Exclude<MetricsAccess, 'off'>,
  ): void {
    const refusal = this.context.closing
      ? { status: 503, reason: 'Service unavailable: the gateway is shutting down' }
      : metricsRefusal(request, access);
    if (refusal) {
      response.writeHead(refusal.status, {
        'content-type': 'text/plain; charset=utf-8',
        ...(refusal.status === 405 ? { allow: 'GET, HEAD' } : {}),
      });
      response.end(`${refusal.reason}\n`);
      return;
    }
    let more: readonly Metric[];
    try {
      more = this.moreMetrics?.() ?? [];
    } catch (error) {
      this.context.log.error({ err: error }, 'metrics.more failed');
      response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('Internal server error: the application’s metrics failed (see the log)\n');
      return;
    }
    const connectionsByTransport = new Map<string, number>();
    for (const connection of this.context.connections) {
      const name = connection.transport.name;
      connectionsByTransport.set(name, (connectionsByTransport.get(name) ?? 0) + 1);
    }
    const { attached, detached } = this.context.registry.counts();
    this.processMetrics ??= new ProcessMetrics();
    sendMetrics(request, response, [
      ...gatewayMetrics({
        connectionsByTransport,
        sessions: { attached, detached },
        counters: this.context.counters,
      }),
      ...more,
      ...this.processMetrics.collect(),
    ]);
  }

  stats(): { sessions: number; attached: number; detached: number; connections: number } {
    return { ...this.context.registry.counts(), connections: this.context.connections.size };
  }

  /**
   * Stops accepting, tells every browser to come back later (ERROR with `x-perigee-retry: true`
   * and close code 1012), ends the sessions, and waits up to `drainMs` for writes to leave.
   */
  close(options: { drainMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(options.drainMs ?? 1000);
    return this.closing;
  }

  private async shutdown(drainMs: number): Promise<void> {
    this.context.closing = true;
    clearInterval(this.ticker);
    this.processMetrics?.stop();
    for (const connection of [...this.context.connections]) connection.shutdown();
    for (const session of [...this.context.registry.values()])
      session.end('the gateway is shutting down');
    this.sockjs.close();
    this.polling.close();
    this.websocket.close();
    // A moment for the last writes to leave; not unref(): the process must not end mid-close.
    if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(drainMs, 100)));
    const server = this.ownServer;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private tick(): void {
    const now = Date.now();
    for (const connection of this.context.connections) connection.tick(now);
    this.context.registry.expire(now, this.context.options.timeout);
  }

  private serveFile(
    request: IncomingMessage,
    response: ServerResponse,
    file: string,
    name: string,
  ): boolean {
    let cached = this.bundles.get(file);
    if (cached === undefined) {
      cached = existsSync(file) ? loadFile(file) : null;
      this.bundles.set(file, cached);
    }
    if (cached === null) {
      this.bundles.delete(file);
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`${name} is not built: run "npm run build"\n`);
      return true;
    }
    const headers = {
      'content-type': name.endsWith('.map')
        ? 'application/json'
        : 'application/javascript; charset=utf-8',
      'cache-control': 'public, max-age=300',
      etag: cached.etag,
    };
    if (request.headers['if-none-match'] === cached.etag) {
      response.writeHead(304, headers);
      response.end();
      return true;
    }
    response.writeHead(200, headers);
    response.end(request.method === 'HEAD' ? undefined : cached.body);
    return true;
  }
}

export function createGateway(options: GatewayOptions): Gateway {
  return new Gateway(options);
}

function resolveSessionOptions(options: GatewayOptions['session'] = {}): ResolvedSessionOptions {
  const maxQueuedBytes = options.maxQueuedBytes ?? 1_048_576;
  return {
    pingInterval: options.pingInterval ?? 25_000,
    timeout: options.timeout ?? 30_000,
    maxQueuedBytes,
    // A resume replays up to maxQueuedBytes at once; the transport may hold that and more
    // (the estimate is rough) before the browser counts as slow.
    maxBufferedBytes: maxQueuedBytes * 2,
    maxSessions: options.maxSessions ?? 50_000,
    maxRetainedBytes: options.maxRetainedBytes ?? 256 * 1_048_576,
  };
}

function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const text = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Service Unavailable'}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

function loadFile(file: string): { body: Buffer; etag: string } {
  const body = readFileSync(file);
  return { body, etag: `"${createHash('sha1').update(body).digest('base64url')}"` };
}

/** The package root: the nearest folder above this file with Perigee's package.json. */
function packageRoot(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(directory, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'perigee')
          return directory;
      } catch {
        // not ours; keep looking
      }
    }
    const parent = dirname(directory);
    if (parent === directory) return process.cwd();
    directory = parent;
  }
}

function clientBundleDirectory(): string {
  return join(packageRoot(), 'dist', 'client');
}

function sockjsClientPath(): string {
  return join(packageRoot(), 'node_modules', 'sockjs-client', 'dist', 'sockjs.min.js');
}
