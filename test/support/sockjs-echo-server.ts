import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import {
  SockJSServer,
  type SockJSConnection,
  type SockJSServerOptions,
} from '../../src/gateway/transports/sockjs/index.js';

/**
 * The services the SockJS protocol suite expects (sockjs-protocol 0.3.3, "To run this tests server
 * pointed by base_url needs to support following services"), mounted as sockjs-node's own test
 * server mounts them:
 *
 * - `/echo`: echo, with the response limit lowered to 4096 bytes as the suite asks;
 * - `/close`: every session closes at once with `3000 "Go away!"`;
 * - `/disabled_websocket_echo`: echo without websocket;
 * - `/cookie_needed_echo`: echo with `cookie_needed` and the JSESSIONID cookie.
 *
 * The iframe page loads sockjs-client from this server (`/sockjs.min.js`): there is no internet.
 *
 * Run it: `node --import tsx test/support/sockjs-echo-server.ts 8081`
 * (then `SOCKJS_URL=http://127.0.0.1:8081 python sockjs-protocol-0.3.3.py`).
 */

export const SOCKJS_CLIENT_PATH = '/sockjs.min.js';

export interface EchoServer {
  readonly port: number;
  close(): Promise<void>;
}

const echo = (connection: SockJSConnection): void => {
  connection.onmessage = (message) => connection.send(message);
};

const goAway = (connection: SockJSConnection): void => {
  connection.close(3000, 'Go away!');
};

export async function startEchoServer(
  port = 0,
  overrides: Partial<SockJSServerOptions> = {},
): Promise<EchoServer> {
  const clientScript = readFileSync(
    createRequire(import.meta.url).resolve('sockjs-client/dist/sockjs.min.js'),
  );
  const common = {
    heartbeatDelay: 25_000,
    disconnectDelay: 5_000,
    sockjsUrl: SOCKJS_CLIENT_PATH,
    ...overrides,
  };
  const services = [
    new SockJSServer({ ...common, prefix: '/echo', responseLimit: 4096 }, echo),
    new SockJSServer({ ...common, prefix: '/close' }, goAway),
    new SockJSServer({ ...common, prefix: '/disabled_websocket_echo', websocket: false }, echo),
    new SockJSServer({ ...common, prefix: '/cookie_needed_echo', cookieNeeded: true }, echo),
  ];

  const serveClientScript = (request: IncomingMessage, response: ServerResponse): void => {
    response.writeHead(200, {
      'Content-Type': 'application/javascript; charset=UTF-8',
      'Content-Length': clientScript.length,
      'Cache-Control': 'public, max-age=31536000',
    });
    response.end(request.method === 'HEAD' ? undefined : clientScript);
  };

  const server = createServer((request, response) => {
    if (services.some((service) => service.handleRequest(request, response))) return;
    if (request.url?.split('?')[0] === SOCKJS_CLIENT_PATH) {
      serveClientScript(request, response);
      return;
    }
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
    response.end('Not found\n');
  });
  server.on('upgrade', (request: IncomingMessage, socket, head: Buffer) => {
    if (services.some((service) => service.handleUpgrade(request, socket, head))) return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const service of services) service.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const isMain =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;

if (isMain) {
  const port = Number(process.argv[2] ?? 8081);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    console.error(`usage: sockjs-echo-server.ts [PORT]: not a port: ${process.argv[2]}`);
    process.exit(2);
  }
  startEchoServer(port).then(
    (server) => {
      console.log(`SockJS echo server on http://127.0.0.1:${server.port}`);
      const stop = (): void => {
        void server.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (error: NodeJS.ErrnoException) => {
      console.error(
        error.code === 'EADDRINUSE'
          ? `${port} is in use: pass another port (0 picks a free one)`
          : `cannot start the SockJS echo server: ${error.message}`,
      );
      process.exit(1);
    },
  );
}
