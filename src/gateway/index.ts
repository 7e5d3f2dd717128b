/** The gateway: browsers' STOMP over WebSocket, SockJS and polling, on any Backend. */
export { createGateway, Gateway, type GatewayOptions } from './gateway.js';
export type { GatewayLogger } from './context.js';
export { OriginPolicy } from './origin.js';
export type { MetricsAccess } from './metrics.js';
export { TRANSPORT_NAMES, type Transport, type TransportName } from './transport.js';
export { clientScriptTags, jsonForHtml, type ClientScriptOptions } from './html.js';
