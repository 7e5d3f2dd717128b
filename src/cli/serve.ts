import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import {
  createAuthorizer,
  jwtAuthenticator,
  usersAuthenticator,
  type Authenticate,
} from '../auth/index.js';
import { createBroker, type EmbeddedBroker } from '../broker/index.js';
import { createGateway, type Gateway } from '../gateway/index.js';
import { PerigeeError } from '../errors.js';
import { formatHostPort, isLoopbackHost, type HostPort } from './address.js';
import type { ServeConfig } from './config.js';
import { landingPage } from './landing.js';

export interface RunningServer {
  broker: EmbeddedBroker;
  gateway: Gateway;
  http: Server;
  httpAddress: AddressInfo;
  stompAddress: AddressInfo | undefined;
  logger: Logger;
  close(): Promise<void>;
}

export function createLogger(level: string): Logger {
  // Human-readable lines on a terminal; JSON lines for log collectors.
  if (process.stdout.isTTY) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname' } },
    });
  }
  return pino({ level });
}

/** Starts the broker's STOMP listener and the HTTP server, as `perigee serve` does. */
export async function startServer(config: ServeConfig, logger: Logger): Promise<RunningServer> {
  const broker = createBroker({ ...config.broker, logger });
  let stompAddress: AddressInfo | undefined;
  if (config.stomp !== 'off') {
    const stomp = config.stomp;
    if (!isLoopbackHost(stomp.host) && !config.broker.users && !config.broker.authenticate) {
      throw new PerigeeError(
        'CONFIG_INVALID',
        `the STOMP listener on ${formatHostPort(stomp)} is reachable from the network and would accept anyone: add [stomp] users to ${config.file ?? 'perigee.toml'}, or use --stomp 127.0.0.1:${stomp.port}`,
      );
    }
    try {
      stompAddress = await broker.listen({ host: stomp.host, port: stomp.port });
    } catch (error) {
      throw portError(
        error,
        stomp,
        '(another STOMP broker?): use --stomp HOST:PORT or --stomp off',
      );
    }
  }
  const http = createServer((request, response) =>
    handleHttp(request, response, config.gateway.prefix, stompAddress),
  );
  const gateway = createGateway({
    backend: broker,
    server: http,
    prefix: config.gateway.prefix,
    allowedOrigins: config.gateway.allowedOrigins,
    session: config.gateway.session,
    sockjs: config.gateway.sockjs,
    limits: config.broker.limits,
    authorizer: createAuthorizer({
      rules: config.gateway.destinations,
      authenticate: browserLogin(config.gateway.auth),
    }),
    access: {
      rules: config.gateway.access,
      selfAddresses: stompAddress ? [`${stompAddress.address}:${stompAddress.port}`] : [],
    },
    logger,
    health: () => ({ broker: broker.stats() }),
    metrics: { access: config.gateway.metrics, more: () => broker.metrics() },
  });
  let httpAddress: AddressInfo;
  try {
    httpAddress = await new Promise<AddressInfo>((resolve, reject) => {
      http.once('error', reject);
      http.listen({ host: config.http.host, port: config.http.port, backlog: 4096 }, () => {
        http.off('error', reject);
        resolve(http.address() as AddressInfo);
      });
    });
  } catch (error) {
    await gateway.close({ drainMs: 0 });
    await broker.close({ drainMs: 0 });
    throw portError(error, config.http, ': use --http HOST:PORT or set PORT');
  }
  logger.info(
    { url: `http://${formatHostPort({ host: httpAddress.address, port: httpAddress.port })}/` },
    'HTTP listening',
  );
  if (stompAddress) {
    logger.info(
      { url: `stomp://${formatHostPort({ host: stompAddress.address, port: stompAddress.port })}` },
      'STOMP listening',
    );
  } else {
    logger.info('STOMP TCP listener off');
  }
  let closing: Promise<void> | undefined;
  if (config.gateway.destinations.length === 0) {
    logger.warn(
      'no [[destinations]] rules: browsers may not subscribe or send anywhere (deny by default)',
    );
  }
  return {
    broker,
    gateway,
    http,
    httpAddress,
    stompAddress,
    logger,
    close() {
      closing ??= (async () => {
        const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
        http.closeIdleConnections();
        // Browsers are told and their sessions end here, synchronously, before the broker goes:
        // the backend's own shutdown ERROR must not be what reaches them.
        const gatewayClosed = gateway.close();
        // Not after the gateway's drain: until the broker closes, its STOMP listener accepts new
        // clients and answers their CONNECT. One turn of the event loop first, though: bytes that
        // arrived with or before the signal are read in this turn, whatever order the poll reports
        // them in, and the broker's close answers what it has read (RECEIPTs, then its ERROR) and
        // drops the rest. So every frame that had arrived when the signal did gets its RECEIPT.
        await new Promise<void>((resolve) => setImmediate(resolve));
        await broker.close();
        await gatewayClosed;
        await httpClosed;
      })();
      return closing;
    },
  };
}

/** The browsers' login check from [auth]: a users table, a JWT check, or none (all anonymous). */
function browserLogin(auth: ServeConfig['gateway']['auth']): Authenticate | undefined {
  const checks: Authenticate[] = [];
  if (auth.jwt) checks.push(jwtAuthenticator(auth.jwt));
  if (auth.users) checks.push(usersAuthenticator(auth.users));
  if (checks.length === 0) return undefined;
  if (checks.length === 1) return checks[0];
  return async (context) => {
    // A bearer token goes to the JWT check; a login and passcode to the users table.
    return context.authorization !== undefined ? checks[0]!(context) : checks[1]!(context);
  };
}

function portError(error: unknown, address: HostPort, advice: string): unknown {
  const code = (error as NodeJS.ErrnoException).code ?? (error as PerigeeError).code;
  const cause = (error as PerigeeError).cause ?? error;
  const causeCode = (cause as NodeJS.ErrnoException).code;
  if (code === 'ADDRESS_IN_USE' || code === 'EADDRINUSE' || causeCode === 'EADDRINUSE') {
    return new PerigeeError(
      'ADDRESS_IN_USE',
      `${address.port} is in use ${advice}`.replace(' :', ':'),
    );
  }
  if (causeCode === 'EADDRNOTAVAIL' || code === 'EADDRNOTAVAIL' || causeCode === 'ENOTFOUND') {
    return new PerigeeError(
      'CONFIG_INVALID',
      `${formatHostPort(address)} is not an address of this machine`,
    );
  }
  if (causeCode === 'EACCES' || code === 'EACCES') {
    return new PerigeeError(
      'CONFIG_INVALID',
      `no permission to listen on ${formatHostPort(address)} (ports below 1024 need privileges)`,
    );
  }
  return error;
}

function handleHttp(
  request: IncomingMessage,
  response: ServerResponse,
  prefix: string,
  stompAddress: AddressInfo | undefined,
): void {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    response.end('Method not allowed\n');
    return;
  }
  if (path === '/') {
    const stomp = stompAddress
      ? `stomp://${formatHostPort({ host: stompAddress.address, port: stompAddress.port })}`
      : 'off';
    response.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-cache',
    });
    response.end(landingPage({ stompUrl: stomp, prefix }));
    return;
  }
  if (path === '/favicon.ico') {
    response.writeHead(204, { 'cache-control': 'public, max-age=86400' });
    response.end();
    return;
  }
  response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
  response.end(`Not found: ${path}\n`);
}
