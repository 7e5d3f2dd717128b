/**
 * The STOMP client core, shared by Node (over TCP, see publisher/) and browsers (the gateway's
 * transports). The socket is injected.
 */
export {
  StompClient,
  type AckMode,
  type ClientOptions,
  type ClientState,
  type PublishOptions,
  type ReconnectOptions,
  type StompMessage,
  type SubscribeOptions,
  type Subscription,
  type Transaction,
} from './client.js';
export type { ClientSocket, SocketFactory } from './socket.js';
