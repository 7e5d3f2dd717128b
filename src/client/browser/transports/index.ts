import type { ClientSocket } from '../../socket.js';
import type { Environment } from '../environment.js';
import { EventSourceSocket } from './eventsource.js';
import { HtmlFileSocket } from './htmlfile.js';
import { JsonpPollingSocket } from './jsonp-polling.js';
import { SockJSWebSocketSocket } from './sockjs-websocket.js';
import { StompWebSocket } from './websocket.js';
import { XhrPollingSocket } from './xhr-polling.js';
import { XhrStreamingSocket } from './xhr-streaming.js';

export { BUFFERED_CLOSE_CODE } from './sockjs.js';

/** Transport names, as everywhere in Perigee (DESIGN.md §4). */
export type TransportName =
  | 'websocket'
  | 'sockjs-websocket'
  | 'eventsource'
  | 'xhr-streaming'
  | 'htmlfile'
  | 'xhr-polling'
  | 'jsonp-polling'
  | 'short-polling';

/** The order tried by default: the best first. sockjs-websocket and short-polling only on request. */
export const DEFAULT_ORDER: readonly TransportName[] = [
  'websocket',
  'eventsource',
  'xhr-streaming',
  'htmlfile',
  'xhr-polling',
  'jsonp-polling',
];

/** Streams that a buffering proxy can hold back; polling answers end, so proxies pass them. */
export const STREAMING: ReadonlySet<TransportName> = new Set([
  'eventsource',
  'xhr-streaming',
  'htmlfile',
]);

export interface TransportSettings {
  /** The gateway's HTTP base URL, absolute, without a trailing slash. */
  baseUrl: string;
  env: Environment;
  /** How long a stream may take to deliver its first frame before it counts as buffered. */
  streamingTimeout: number;
  /** Short polling: the wait between two empty polls. */
  pollInterval: number;
}

/** Whether `name` can run here (htmlfile and JSONP need a DOM; the rest need their API). */
export function isAvailable(name: TransportName, env: Environment): boolean {
  switch (name) {
    case 'websocket':
    case 'sockjs-websocket':
      return env.WebSocket !== undefined;
    case 'eventsource':
      return env.EventSource !== undefined && env.fetch !== undefined;
    case 'xhr-streaming':
    case 'xhr-polling':
    case 'short-polling':
      return env.fetch !== undefined;
    case 'htmlfile':
    case 'jsonp-polling':
      return env.document !== undefined && env.fetch !== undefined;
  }
}

export function openTransport(name: TransportName, settings: TransportSettings): ClientSocket {
  const { baseUrl, env, streamingTimeout, pollInterval } = settings;
  const sockjs = { baseUrl: `${baseUrl}/sockjs`, env, openTimeout: 0 };
  const streaming = { ...sockjs, openTimeout: streamingTimeout };
  switch (name) {
    case 'websocket':
      return new StompWebSocket(baseUrl, env);
    case 'sockjs-websocket':
      return new SockJSWebSocketSocket(sockjs);
    case 'eventsource':
      return new EventSourceSocket(streaming);
    case 'xhr-streaming':
      return new XhrStreamingSocket(streaming);
    case 'htmlfile':
      return new HtmlFileSocket(streaming);
    case 'xhr-polling':
      return new XhrPollingSocket(sockjs);
    case 'jsonp-polling':
      return new JsonpPollingSocket(sockjs);
    case 'short-polling':
      return new XhrPollingSocket({
        baseUrl: `${baseUrl}/poll`,
        env,
        openTimeout: 0,
        pollInterval,
      });
  }
}
