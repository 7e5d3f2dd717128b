/**
 * Perigee's public server API. Everything an application needs, and nothing else: the embedded
 * broker, the gateway and its authorization, the Node STOMP client and publisher, the shared
 * types and the error table. The browser client is /perigee.js (src/client/browser).
 */
export { createBroker, EmbeddedBroker } from './broker/index.js';
export type {
  AuthenticateHook,
  BrokerLogger,
  BrokerOptions,
  BrokerStats,
  Credentials,
  ListenOptions,
  QueueOverflowPolicy,
  SlowConsumerPolicy,
} from './broker/index.js';
export {
  clientScriptTags,
  createGateway,
  Gateway,
  jsonForHtml,
  TRANSPORT_NAMES,
} from './gateway/index.js';
export type {
  ClientScriptOptions,
  GatewayLogger,
  GatewayOptions,
  MetricsAccess,
  TransportName,
} from './gateway/index.js';
export { renderMetrics, type Metric, type MetricSample } from './metrics.js';
export {
  AccessRules,
  createAuthorizer,
  jwtAuthenticator,
  usersAuthenticator,
} from './auth/index.js';
export type {
  AccessDecision,
  Action,
  Audience,
  Authenticate,
  Authorizer,
  AuthorizerOptions,
  ConnectContext,
  DestinationRule,
  JwtOptions,
} from './auth/index.js';
export { connect, createClient, createPublisher, parseStompUrl } from './publisher/index.js';
export type { TcpClientOptions, TcpPublisher } from './publisher/index.js';
export { StompClient } from './client/index.js';
export type {
  AckMode,
  ClientOptions,
  ClientSocket,
  PublishOptions,
  StompMessage,
  SubscribeOptions,
  Subscription,
  Transaction,
} from './client/index.js';
export type { Backend, BackendChannel, Principal, Publisher, StreamPosition } from './backend.js';
export type { Frame, Header, StompVersion, ParserLimits } from './protocol/index.js';
export { errorTable, PerigeeError, type ErrorCode } from './errors.js';
