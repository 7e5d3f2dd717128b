import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type EmbeddedBroker } from '../../src/broker/index.js';
import { PerigeeError } from '../../src/errors.js';
import { connect, parseStompUrl } from '../../src/publisher/index.js';
import { ACTIVEMQ_URL, RABBITMQ_URL, stompService } from '../support/services.js';
import { describeClientConformance, type ClientEndpoint } from './client-conformance.js';

/** The client conformance suite against each broker the client claims to work with. */

function endpointOf(url: string): ClientEndpoint {
  const { host, port, login, passcode } = parseStompUrl(url);
  return { host, port, login: login ?? '', passcode: passcode ?? '' };
}

describe('embedded broker', () => {
  let broker: EmbeddedBroker;
  let port = 0;
  beforeAll(async () => {
    // A users table, so that the wrong-passcode case is refused as it is elsewhere.
    broker = createBroker({ users: { guest: 'guest' } });
    port = (await broker.listen({ port: 0 })).port;
  });
  afterAll(() => broker.close({ drainMs: 100 }));

  describeClientConformance({
    name: 'embedded broker over TCP',
    endpoint: () => ({ host: '127.0.0.1', port, login: 'guest', passcode: 'guest' }),
    queueHeaders: {},
    features: { history: true, nack: { redelivers: true } },
  });
});

const rabbitmq = await stompService('RabbitMQ STOMP', RABBITMQ_URL);
describe.runIf(rabbitmq)('RabbitMQ', () => {
  describeClientConformance({
    name: 'RabbitMQ',
    endpoint: () => endpointOf(RABBITMQ_URL),
    // Queues the tests create vanish five minutes after their last use.
    queueHeaders: { 'x-expires': '300000' },
    features: { history: false, nack: { redelivers: true } },
  });

  it('a publish RabbitMQ refuses with an ERROR that names no receipt fails with that ERROR, after a few tries, with a growing backoff', async () => {
    const client = await connect(RABBITMQ_URL, {
      reconnect: { initialDelay: 20, maxDelay: 1000, factor: 4 },
    });
    const delays: number[] = [];
    client.on('reconnecting', (_attempt, delay) => delays.push(delay));
    try {
      // RabbitMQ knows no such destination type; its ERROR carries no receipt-id.
      const refused = await client.publish('/nowhere/x', 'lost', { receipt: true }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(PerigeeError);
      expect((refused as PerigeeError).message).toMatch(/destination/i);
      // Each connection died right after CONNECTED, so the backoff did not start over.
      expect(delays.length).toBeGreaterThanOrEqual(2);
      expect(delays.length).toBeLessThanOrEqual(3);
      expect(delays[1]!).toBeGreaterThanOrEqual(40);
      // The client is still usable.
      await client.publish('/topic/perigee-still-works', 'ok', { receipt: true });
    } finally {
      await client.disconnect();
    }
  });
});

const activemq = await stompService('ActiveMQ', ACTIVEMQ_URL);
describe.runIf(activemq)('ActiveMQ', () => {
  describeClientConformance({
    name: 'ActiveMQ',
    endpoint: () => endpointOf(ACTIVEMQ_URL),
    queueHeaders: {},
    features: { history: false, nack: { deadLetterQueue: '/queue/ActiveMQ.DLQ' } },
  });
});
