/** The embedded STOMP broker. */
export { createBroker, EmbeddedBroker, type ListenOptions } from './broker.js';
export {
  SERVER_NAME,
  type AuthenticateHook,
  type BrokerLogger,
  type BrokerOptions,
  type BrokerStats,
  type Credentials,
  type SlowConsumerPolicy,
} from './core.js';
export type { QueueOverflowPolicy } from './queues.js';
export type { AckMode } from './subscription.js';
