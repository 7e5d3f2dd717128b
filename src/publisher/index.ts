/**
 * The Node side of the STOMP client: the shared core over TCP, for apps, scripts and the CLI.
 */
import type { Publisher } from '../backend.js';
import { StompClient, type ClientOptions } from '../client/index.js';
import { PerigeeError } from '../errors.js';
import { TcpClientSocket, type TcpEndpoint } from './tcp-socket.js';

export type TcpClientOptions = Omit<ClientOptions, 'socket'>;

/** A broker address, `stomp://[login:passcode@]host[:port]`; `stomp+ssl://` or `stomps://` for TLS. */
export function parseStompUrl(url: string): TcpEndpoint & { login?: string; passcode?: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PerigeeError(
      'USAGE',
      `"${url}" is not a URL; expected stomp://[login:passcode@]host[:port]`,
    );
  }
  const tls = parsed.protocol === 'stomp+ssl:' || parsed.protocol === 'stomps:';
  if (parsed.protocol !== 'stomp:' && !tls) {
    throw new PerigeeError(
      'USAGE',
      `"${url}": the scheme must be stomp://, stomp+ssl:// or stomps://`,
    );
  }
  if (!parsed.hostname) throw new PerigeeError('USAGE', `"${url}" names no host`);
  const endpoint: TcpEndpoint & { login?: string; passcode?: string } = {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port ? Number(parsed.port) : 61613,
    tls,
  };
  if (parsed.username) endpoint.login = decodeURIComponent(parsed.username);
  if (parsed.password) endpoint.passcode = decodeURIComponent(parsed.password);
  return endpoint;
}

/** A client for `url` that has not connected yet: call `connect()` (or just use it). */
export function createClient(url: string, options: TcpClientOptions = {}): StompClient {
  const endpoint = parseStompUrl(url);
  return new StompClient({
    login: endpoint.login,
    passcode: endpoint.passcode,
    ...options,
    socket: () => new TcpClientSocket(endpoint),
  });
}

/** Connects to a STOMP broker over TCP; resolves once CONNECTED. */
export async function connect(url: string, options: TcpClientOptions = {}): Promise<StompClient> {
  const client = createClient(url, options);
  await client.connect();
  return client;
}

/** A {@link Publisher} over TCP whose `publish` resolves when the broker's RECEIPT arrives. */
export interface TcpPublisher extends Publisher {
  readonly client: StompClient;
  close(): Promise<void>;
}

/**
 * A publisher that connects on first use and reconnects on its own. If the broker cannot be
 * reached at all, that `publish` rejects and the next one tries afresh.
 */
export function createPublisher(url: string, options: TcpClientOptions = {}): TcpPublisher {
  let client = createClient(url, options);
  let connecting: Promise<void> | undefined;
  const ensureConnected = (): Promise<void> => {
    connecting ??= client.connect().catch((error: unknown) => {
      client = createClient(url, options);
      connecting = undefined;
      throw error;
    });
    return connecting;
  };
  return {
    get client() {
      return client;
    },
    async publish(destination, body, headers) {
      await ensureConnected();
      await client.publish(destination, body, { headers, receipt: true });
    },
    close: () => client.disconnect(),
  };
}

export { TcpClientSocket, type TcpEndpoint } from './tcp-socket.js';
