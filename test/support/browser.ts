import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createAuthorizer, type DestinationRule } from '../../src/auth/index.js';
import { createBroker, EmbeddedBroker, type BrokerOptions } from '../../src/broker/index.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/index.js';
import { TEST_RULES } from './gateway.js';
import { localTool } from './services.js';

/**
 * Real Chromium for the end-to-end tests (test/e2e): Debian's build, driven by playwright-core,
 * which never downloads a browser. One browser per test file, one fresh context per test, and
 * pages served by the same HTTP server as the gateway, so that everything is same-origin as in a
 * real deployment.
 */

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** SERVICES.md's flags for this machine. */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = join(PACKAGE_ROOT, 'test-artifacts', 'e2e');

/**
 * Whether Chromium is installed. When it is not, the caller skips its suites and this prints why;
 * under PERIGEE_REQUIRE_SERVICES=1 (CI) it throws instead, failing the file.
 */
export function chromiumAvailable(): boolean {
  return localTool(
    'Chromium end-to-end',
    existsSync(CHROMIUM_PATH),
    `${CHROMIUM_PATH} is missing (apt-get install chromium)`,
  );
}

/** Chromium for the current test file; each `newPage()` gets its own context, closed after the test. */
export interface ChromiumForFile {
  readonly browser: Browser;
  newPage(): Promise<Page>;
  /** A new page (in its own context) at `url`, once its DOM is ready: see {@link visit}. */
  open(url: string): Promise<Page>;
}

/**
 * Launches one Chromium for the calling file (beforeAll) and closes it (afterAll). `launch()`
 * gives the browser a fresh temporary user-data-dir of its own and deletes it on close.
 */
export function useChromium(): ChromiumForFile {
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_FLAGS],
    });
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close().catch(() => {})));
  });
  afterAll(async () => {
    await browser?.close();
  });
  return {
    get browser(): Browser {
      if (!browser) throw new Error('Chromium is not running (call useChromium() at file level)');
      return browser;
    },
    async newPage() {
      if (!browser) throw new Error('Chromium is not running (call useChromium() at file level)');
      const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
      contexts.push(context);
      const page = await context.newPage();
      watchPage(page);
      return page;
    },
    async open(url) {
      const page = await this.newPage();
      await visit(page, url);
      return page;
    },
  };
}

/**
 * Navigates and waits for DOMContentLoaded, not `load`: a page whose client streams through an
 * htmlfile iframe or polls with JSONP scripts never fires `load` (the stream is a subresource
 * that does not end), exactly as with sockjs-client.
 */
export async function visit(page: Page, url: string): Promise<void> {
  await page.goto(url, { waitUntil: 'domcontentloaded' });
}

const pageLogs = new WeakMap<Page, string[]>();

/** Keeps what the page printed and threw, to explain a failure. */
function watchPage(page: Page): void {
  const log: string[] = [];
  pageLogs.set(page, log);
  page.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => log.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) =>
    log.push(
      `request failed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`,
    ),
  );
}

/** The page's last `lines` console messages, errors and failed requests (for failure messages). */
export function pageLog(page: Page, lines = 40): string {
  const log = pageLogs.get(page) ?? [];
  return log.slice(-lines).join('\n') || '(the page logged nothing)';
}

/**
 * Waits until `expression` is truthy in the page and returns its value. On timeout, the error
 * carries the page's log and state, since a browser failure is otherwise silent. Pages keep what
 * they observed in `window.e2eState`, and may define `window.e2eDescribe()` to summarise a large
 * one.
 */
export async function waitInPage<T>(
  page: Page,
  expression: string,
  timeoutMs = 15_000,
): Promise<T> {
  try {
    const handle = await page.waitForFunction(expression, undefined, {
      timeout: timeoutMs,
      polling: 50,
    });
    return (await handle.jsonValue()) as T;
  } catch (error) {
    const state = await page
      .evaluate<string>(
        'window.e2eDescribe ? window.e2eDescribe() : JSON.stringify(window.e2eState ?? null)',
      )
      .catch(() => 'unavailable');
    throw new Error(
      `${(error as Error).message.split('\n')[0]}\n(waiting for ${expression})\npage state: ${state}\npage log:\n${pageLog(page)}`,
      { cause: error },
    );
  }
}

/** Saves a screenshot under test-artifacts/e2e (git-ignored) and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** A gateway on an embedded broker, sharing one HTTP server with the tests' own pages. */
export interface BrowserTestServer {
  readonly broker: EmbeddedBroker;
  readonly gateway: Gateway;
  readonly server: Server;
  readonly port: number;
  /** `http://127.0.0.1:PORT`, the pages' origin. */
  readonly url: string;
  /** The server's open TCP sockets (pages, scripts and every transport's connections). */
  readonly sockets: Set<Socket>;
  /** Serves `body` at `path` (an HTML page unless `contentType` says otherwise). */
  serve(path: string, body: string, contentType?: string): void;
  /** Serves a file of the repository (e.g. a package's browser bundle) at `path`. */
  serveFile(path: string, file: string): void;
  /** Destroys one of the open sockets at random, as a failing network would; false if none. */
  cutRandomSocket(): boolean;
  /**
   * Loses the next answer to a request whose path matches `path` and whose body (sent in one
   * `end()`, as poll answers are) contains `containing`: its connection dies with the answer in
   * flight, so the server believes it sent it and the browser never sees a byte. Resolves once
   * that has happened.
   */
  loseNextAnswer(path: RegExp, containing: string): Promise<void>;
  close(): Promise<void>;
}

export interface BrowserTestServerOptions {
  /** Options for a new embedded broker, or a broker already started (e.g. listening on TCP). */
  broker?: BrokerOptions | EmbeddedBroker;
  /** `[[destinations]]` rules; default TEST_RULES. */
  rules?: DestinationRule[];
  gateway?: Partial<GatewayOptions>;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
};

export async function startBrowserTestServer(
  options: BrowserTestServerOptions = {},
): Promise<BrowserTestServer> {
  const broker =
    options.broker instanceof EmbeddedBroker ? options.broker : createBroker(options.broker);
  const routes = new Map<string, () => { body: string | Buffer; contentType: string }>();
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const route = routes.get((request.url ?? '/').split('?')[0]!);
    if (!route) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('Not found\n');
      return;
    }
    const { body, contentType } = route();
    response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    response.end(body);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Attached after our request handler exists: the gateway answers its own paths and hands the
  // rest to ours.
  const gateway = createGateway({
    backend: broker,
    server,
    authorizer: createAuthorizer({ rules: options.rules ?? TEST_RULES }),
    ...options.gateway,
  });
  let faults: { path: RegExp; containing: string; done: () => void }[] = [];
  // First of all listeners, so that every answer passes here, including those to requests that
  // were already waiting (a long poll) when a fault was asked for.
  server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0]!;
    const end = response.end.bind(response) as (...args: unknown[]) => ServerResponse;
    response.end = ((...args: unknown[]) => {
      if (faults.length === 0) return end(...args);
      const body = args[0];
      const text = typeof body === 'string' || Buffer.isBuffer(body) ? body.toString() : '';
      const fault = faults.find((f) => f.path.test(path) && text.includes(f.containing));
      if (!fault) return end(...args);
      faults = faults.filter((f) => f !== fault);
      response.socket?.destroy();
      fault.done();
      return response;
    }) as ServerResponse['end'];
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    broker,
    gateway,
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    sockets,
    serve(path, body, contentType = CONTENT_TYPES['.html']!) {
      routes.set(path, () => ({ body, contentType }));
    },
    serveFile(path, file) {
      const contentType = CONTENT_TYPES[extname(file)] ?? 'application/octet-stream';
      routes.set(path, () => ({ body: readFileSync(join(PACKAGE_ROOT, file)), contentType }));
    },
    cutRandomSocket() {
      const open = [...sockets].filter((socket) => !socket.destroyed);
      if (open.length === 0) return false;
      open[Math.floor(Math.random() * open.length)]!.destroy();
      return true;
    },
    loseNextAnswer(path, containing) {
      return new Promise((done) => faults.push({ path, containing, done }));
    },
    async close() {
      await gateway.close({ drainMs: 50 });
      // The gateway did not create this server, so it leaves it to us: upgraded WebSockets are
      // not among the connections `closeAllConnections` knows about, hence the tracked sockets.
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await broker.close({ drainMs: 50 });
    },
  };
}
