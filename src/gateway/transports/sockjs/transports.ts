import { eventSourceRoute } from './eventsource.js';
import { htmlFileRoute } from './htmlfile.js';
import { jsonpRoute, jsonpSendRoute } from './jsonp-polling.js';
import type { SessionRoute } from './routes.js';
import type { SockJSTransportName } from './types.js';
import { webSocketHttpRoute } from './websocket.js';
import { xhrPollingRoute } from './xhr-polling.js';
import { xhrSendRoute } from './xhr-send.js';
import { xhrStreamingRoute } from './xhr-streaming.js';

/**
 * Which session URLs each transport serves (sockjs-node `lib/transport/list.js`). xhr_send is the
 * sending half of every transport that receives through XHR, EventSource or htmlfile.
 */
const ROUTES_BY_TRANSPORT: Readonly<Record<SockJSTransportName, readonly SessionRoute[]>> = {
  websocket: [webSocketHttpRoute],
  'xhr-streaming': [xhrStreamingRoute, xhrSendRoute],
  'xhr-polling': [xhrPollingRoute, xhrSendRoute],
  eventsource: [eventSourceRoute, xhrSendRoute],
  htmlfile: [htmlFileRoute, xhrSendRoute],
  'jsonp-polling': [jsonpRoute, jsonpSendRoute],
};

/** The session routes of the enabled transports, by URL segment; others answer 404. */
export function sessionRoutes(
  enabled: ReadonlySet<SockJSTransportName>,
  webSocketEnabled: boolean,
): ReadonlyMap<string, SessionRoute> {
  const routes = new Map<string, SessionRoute>();
  for (const name of enabled) {
    if (name === 'websocket' && !webSocketEnabled) continue;
    for (const route of ROUTES_BY_TRANSPORT[name]) routes.set(route.segment, route);
  }
  return routes;
}
