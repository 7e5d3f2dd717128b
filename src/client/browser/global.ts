/**
 * The entry of /perigee.js: puts the client on `window.Perigee`. Assigning the global directly,
 * instead of letting the bundler wrap module exports, keeps the bundle smaller.
 */
import { STOMPClient } from './compat.js';
import { connect, PerigeeClient } from './perigee.js';
import { DEFAULT_ORDER } from './transports/index.js';

(globalThis as unknown as Record<string, unknown>).Perigee = {
  connect,
  PerigeeClient,
  STOMPClient,
  TRANSPORTS: DEFAULT_ORDER,
  version: '0.1.0',
};
