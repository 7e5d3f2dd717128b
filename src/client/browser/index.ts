/**
 * The browser client: `Perigee.connect(url, options)` and the talk's `STOMPClient`.
 * Bundled by esbuild as /perigee.js (global `Perigee`) and /perigee.mjs.
 */
export { connect, PerigeeClient } from './perigee.js';
export type {
  ConnectionState,
  PerigeeOptions,
  PerigeeSubscribeOptions,
  RouteHandler,
  StateChange,
  Unsubscribe,
} from './perigee.js';
export { STOMPClient, type CompatFrame, type OrbitedSettings } from './compat.js';
export { DEFAULT_ORDER as TRANSPORTS, type TransportName } from './transports/index.js';
export type { StompMessage } from '../client.js';
export type { Environment } from './environment.js';
export const version = '0.1.0';
