import { afterAll, beforeAll, describe } from 'vitest';
import { createBroker, type EmbeddedBroker } from '../../src/broker/index.js';
import { parseStompUrl } from '../../src/publisher/index.js';
import { ChannelFrameSession, TcpFrameSession } from '../support/frame-session.js';
import { ACTIVEMQ_URL, RABBITMQ_URL, stompService } from '../support/services.js';
import {
  describeBackendConformance,
  type ConformanceTarget,
  type TargetFeatures,
} from './backend-conformance.js';

const STRICT: TargetFeatures = {
  tcp: true,
  perigee: true,
  errorClosesConnection: true,
  errorCarriesReceiptId: true,
  nackRequeues: true,
  strictRoundRobin: true,
  stripsReceiptHeader: true,
  refusesDuplicateSubscription: true,
  requiresSubscriptionId: true,
  refusesUnknownAck: true,
  refusesDuplicateTransaction: true,
  prefetchCount: true,
  errorListsVersions: true,
};

function tcpTarget(
  name: string,
  endpoint: () => { host: string; port: number },
  features: TargetFeatures,
  queueHeaders: Record<string, string> = {},
): ConformanceTarget {
  return {
    name,
    features,
    queueHeaders,
    connect: (options = {}) =>
      TcpFrameSession.connect({ ...endpoint(), login: 'guest', passcode: 'guest', ...options }),
    openSocket: () => TcpFrameSession.openSocket(endpoint().port, endpoint().host),
  };
}

describe('embedded broker', () => {
  let broker: EmbeddedBroker;
  let port = 0;
  beforeAll(async () => {
    // Heart-beats of 1 s keep the heart-beat cases short; the login makes CONNECT checks real.
    broker = createBroker({ heartBeat: [1000, 1000], users: { guest: 'guest' } });
    port = (await broker.listen({ port: 0 })).port;
  });
  afterAll(() => broker.close({ drainMs: 100 }));

  describeBackendConformance(
    tcpTarget('embedded broker over TCP', () => ({ host: '127.0.0.1', port }), STRICT),
  );
  describeBackendConformance({
    name: 'embedded broker over an in-process channel',
    features: { ...STRICT, tcp: false },
    queueHeaders: {},
    connect: () => ChannelFrameSession.open(broker),
  });
});

const rabbitmq = await stompService('RabbitMQ STOMP', RABBITMQ_URL);
describe.runIf(rabbitmq)('RabbitMQ', () => {
  // Queues are declared with x-expires so that the ones the tests create vanish once unused.
  describeBackendConformance(
    tcpTarget(
      'RabbitMQ',
      () => parseStompUrl(RABBITMQ_URL),
      {
        ...STRICT,
        perigee: false,
        // RabbitMQ keeps the connection open after most ERRORs and sends them without receipt-id.
        errorClosesConnection: false,
        errorCarriesReceiptId: false,
        // It copies every SEND header, receipt included, into MESSAGE.
        stripsReceiptHeader: false,
        // It names a subscription without id after its destination, and ignores a repeated BEGIN.
        requiresSubscriptionId: false,
        refusesDuplicateTransaction: false,
      },
      { 'x-expires': '300000' },
    ),
  );
});

const activemq = await stompService('ActiveMQ', ACTIVEMQ_URL);
describe.runIf(activemq)('ActiveMQ', () => {
  describeBackendConformance(
    tcpTarget('ActiveMQ', () => parseStompUrl(ACTIVEMQ_URL), {
      ...STRICT,
      perigee: false,
      // ActiveMQ keeps the connection open after most ERRORs.
      errorClosesConnection: false,
      // A NACKed non-persistent message is discarded, not redelivered.
      nackRequeues: false,
      // Consumers prefetch, so one may take several queue messages in a row.
      strictRoundRobin: false,
      // It accepts a second SUBSCRIBE with the same id, and a repeated BEGIN.
      refusesDuplicateSubscription: false,
      refusesDuplicateTransaction: false,
      // Its prefetch header is activemq.prefetchSize, not prefetch-count.
      prefetchCount: false,
      // Its ERROR for an unsupported version has no version header.
      errorListsVersions: false,
    }),
  );
});
