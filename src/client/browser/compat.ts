import type { PerigeeError } from '../../errors.js';
import type { StompMessage } from '../client.js';
import { connect, type PerigeeClient, type PerigeeOptions, type Unsubscribe } from './perigee.js';
import type { TransportName } from './transports/index.js';

/** A frame as the talk's callbacks see it: `frame.headers.destination`, `frame.body` (text). */
export interface CompatFrame {
  readonly command: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** `Orbited.settings` of the talk's template: where the gateway is. */
export interface OrbitedSettings {
  hostname?: string;
  port?: number;
  protocol?: string;
  /** false: never use streaming transports. */
  streaming?: boolean;
  /** Perigee's addition: the gateway's path prefix. */
  prefix?: string;
}

/**
 * The talk's `STOMPClient` (Orbited's stomp.js), on Perigee: the same callbacks (`onopen`,
 * `onclose`, `onerror`, `onerrorframe`, `onconnectedframe`, `onmessageframe`) and calls
 * (`connect(host, port)`, `subscribe(destination)`, `send`). `connect` names the broker, as in
 * Orbited; the gateway checks it against its `[access]` rules.
 */
export class STOMPClient {
  onopen: (() => void) | null = null;
  onclose: ((code: number) => void) | null = null;
  onerror: ((error: string) => void) | null = null;
  onerrorframe: ((frame: CompatFrame) => void) | null = null;
  onconnectedframe: ((frame: CompatFrame) => void) | null = null;
  onmessageframe: ((frame: CompatFrame) => void) | null = null;
  onreceiptframe: ((frame: CompatFrame) => void) | null = null;

  #client: PerigeeClient | undefined;
  readonly #subscriptions = new Map<string, Unsubscribe>();
  readonly #settings: () => OrbitedSettings;
  readonly #extra: PerigeeOptions;

  constructor(settings: () => OrbitedSettings = () => ({}), extra: PerigeeOptions = {}) {
    this.#settings = settings;
    this.#extra = extra;
  }

  /** Connects to the broker at host:port through the gateway, with an optional login. */
  connect(host: string, port: number, login?: string, passcode?: string): void {
    const settings = this.#settings();
    const streaming = settings.streaming !== false;
    const options: PerigeeOptions = {
      ...this.#extra,
      login,
      passcode,
      connectHeaders: { ...this.#extra.connectHeaders, 'x-perigee-upstream': `${host}:${port}` },
    };
    if (!streaming) {
      options.exclude = ['eventsource', 'xhr-streaming', 'htmlfile'] satisfies TransportName[];
    }
    const client = connect(gatewayUrl(settings), options);
    this.#client = client;
    let opened = false;
    client.core.on('connect', (info) => {
      if (!opened) {
        opened = true;
        this.onopen?.();
      }
      this.onconnectedframe?.({ command: 'CONNECTED', headers: info.headers, body: '' });
    });
    client.core.on('disconnect', (reason) => this.onclose?.(closeCode(reason)));
    client.on('error', (error) => {
      this.onerror?.(error.message);
      this.onerrorframe?.({
        command: 'ERROR',
        headers: { message: error.message },
        body: error.message,
      });
    });
  }

  subscribe(destination: string, headers: Readonly<Record<string, string>> = {}): void {
    const client = this.#requireClient();
    if (this.#subscriptions.has(destination)) return;
    const { ack, ...rest } = headers;
    this.#subscriptions.set(
      destination,
      client.subscribe(destination, (message) => this.onmessageframe?.(toCompatFrame(message)), {
        ack: ack === 'client' || ack === 'client-individual' ? ack : 'auto',
        headers: rest,
      }),
    );
  }

  unsubscribe(destination: string): void {
    const cancel = this.#subscriptions.get(destination);
    this.#subscriptions.delete(destination);
    void cancel?.();
  }

  /**
   * Sends a message. Orbited's order was `send(body, destination, headers)`; `send(destination,
   * body)` works too: the argument that starts with "/" is the destination.
   */
  send(first: string, second: string, headers: Readonly<Record<string, string>> = {}): void {
    const [destination, body] =
      first.startsWith('/') && !second.startsWith('/') ? [first, second] : [second, first];
    this.#requireClient()
      .publish(destination, body, headers)
      .catch((error: PerigeeError) => this.onerror?.(error.message));
  }

  disconnect(): void {
    const client = this.#client;
    this.#client = undefined;
    void client?.disconnect();
  }

  #requireClient(): PerigeeClient {
    if (!this.#client) throw new Error('STOMPClient: call connect(host, port) first');
    return this.#client;
  }
}

function toCompatFrame(message: StompMessage): CompatFrame {
  return { command: 'MESSAGE', headers: message.headers, body: message.text };
}

function closeCode(reason: PerigeeError): number {
  const match = /code (\d+)/.exec(reason.message);
  return match ? Number(match[1]) : reason.closeCode;
}

function gatewayUrl(settings: OrbitedSettings): string {
  const location = (
    globalThis as { location?: { protocol: string; hostname: string; port: string } }
  ).location;
  const protocol = settings.protocol ?? location?.protocol ?? 'http:';
  const hostname = settings.hostname ?? location?.hostname ?? 'localhost';
  const port = settings.port ?? (location?.port ? Number(location.port) : undefined);
  const scheme = protocol.endsWith(':') ? protocol : `${protocol}:`;
  return `${scheme}//${hostname}${port ? `:${port}` : ''}${settings.prefix ?? ''}`;
}
