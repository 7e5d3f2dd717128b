/**
 * Perigee's server side of the SockJS 0.3.3 protocol, as a reusable layer: mount a
 * {@link SockJSServer} on an `http.Server` and get one {@link SockJSConnection} per session.
 */
export { escapeMessageText } from './framing.js';
export { SockJSServer } from './server.js';
export { SOCKJS_TRANSPORT_NAMES } from './types.js';
export type {
  SockJSConnection,
  SockJSConnectionTransport,
  SockJSLogger,
  SockJSServerOptions,
  SockJSTransportName,
} from './types.js';
