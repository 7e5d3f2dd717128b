import type { IncomingMessage } from 'node:http';
import { PerigeeError } from '../../../errors.js';
import {
  SOCKJS_TRANSPORT_NAMES,
  type SockJSLogger,
  type SockJSServerOptions,
  type SockJSTransportName,
} from './types.js';

/** sockjs-client 1.x from a CDN, as sockjs-node defaults to; deployments without internet set their own. */
const DEFAULT_SOCKJS_URL = 'https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js';

export interface ResolvedOptions {
  readonly prefix: string;
  readonly responseLimit: number;
  readonly heartbeatDelay: number;
  readonly disconnectDelay: number;
  /** Both SockJS websocket and raw websocket. */
  readonly webSocketEnabled: boolean;
  readonly cookieNeeded: boolean;
  readonly sockjsUrl: string;
  readonly maxPostBytes: number;
  readonly maxWebSocketMessageBytes: number;
  readonly shortPolling: boolean;
  readonly transports: ReadonlySet<SockJSTransportName>;
  readonly allowOrigin: ((origin: string, request: IncomingMessage) => boolean) | undefined;
  readonly log: SockJSLogger;
}

const silent: SockJSLogger = { debug() {}, warn() {} };

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new PerigeeError('CONFIG_INVALID', `SockJS ${name} must be a positive number`);
  }
  return value;
}

/** Checks options once, when the server is built, so that a typo fails at startup. */
export function resolveOptions(options: SockJSServerOptions): ResolvedOptions {
  const prefix = options.prefix.replace(/\/+$/, '');
  if (prefix !== '' && !prefix.startsWith('/')) {
    throw new PerigeeError(
      'CONFIG_INVALID',
      `SockJS prefix must start with "/": ${options.prefix}`,
    );
  }
  const transports = new Set(options.transports ?? SOCKJS_TRANSPORT_NAMES);
  for (const name of transports) {
    if (!(SOCKJS_TRANSPORT_NAMES as readonly string[]).includes(name)) {
      throw new PerigeeError('CONFIG_INVALID', `unknown SockJS transport: ${String(name)}`);
    }
  }
  return {
    prefix,
    responseLimit: positive('responseLimit', options.responseLimit, 128 * 1024),
    heartbeatDelay: positive('heartbeatDelay', options.heartbeatDelay, 25_000),
    disconnectDelay: positive('disconnectDelay', options.disconnectDelay, 5_000),
    webSocketEnabled: options.websocket !== false && transports.has('websocket'),
    cookieNeeded: options.cookieNeeded === true,
    sockjsUrl: options.sockjsUrl ?? DEFAULT_SOCKJS_URL,
    maxPostBytes: positive('maxPostBytes', options.maxPostBytes, 128 * 1024),
    maxWebSocketMessageBytes: positive(
      'maxWebSocketMessageBytes',
      options.maxWebSocketMessageBytes,
      128 * 1024,
    ),
    shortPolling: options.pollingMode === 'short',
    transports,
    allowOrigin: options.allowOrigin,
    log: options.log ?? silent,
  };
}
