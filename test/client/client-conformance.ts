import { afterEach, describe, expect, it } from 'vitest';
import type {
  PublishOptions,
  StompClient,
  SubscribeOptions,
  Subscription,
} from '../../src/client/index.js';
import { PerigeeError } from '../../src/errors.js';
import { connect, createPublisher, type TcpClientOptions } from '../../src/publisher/index.js';
import { uniqueName } from '../support/frame-session.js';
import { inbox, once, startTcpProxy, within, type Inbox, type TcpProxy } from './helpers.js';

/**
 * The Node STOMP client's conformance suite: the same cases, through `connect()` and
 * `createPublisher()` over TCP, against every broker the client claims to work with (the embedded
 * broker, RabbitMQ's STOMP plugin, ActiveMQ). Where a broker behaves differently by design, the
 * target says so in `features` and the case that it cannot pass is skipped with the reason in its
 * name. Connections are lost on purpose through a TCP proxy, since external brokers cannot be
 * restarted by a test.
 */

export interface ClientEndpoint {
  readonly host: string;
  readonly port: number;
  readonly login: string;
  readonly passcode: string;
}

export interface ClientFeatures {
  /**
   * Perigee's topic history: a topic resubscribed after a lost connection gets what it missed, and
   * the client reports it as recovered.
   */
  readonly history: boolean;
  /**
   * What the broker does with a NACKed queue message: deliver it again, or (ActiveMQ, whose NACK
   * is a "poison ack") move it to this dead-letter queue when it was sent persistent.
   */
  readonly nack: { readonly redelivers: true } | { readonly deadLetterQueue: string };
}

export interface ClientTarget {
  readonly name: string;
  /** Read when a test runs: the embedded broker only knows its port once it listens. */
  endpoint(): ClientEndpoint;
  /** Headers every SEND and SUBSCRIBE to a queue carries (RabbitMQ: queues that expire). */
  readonly queueHeaders: Readonly<Record<string, string>>;
  readonly features: ClientFeatures;
}

/** Reconnects quickly, so that the cases that cut connections stay short. */
const FAST_RECONNECT = { initialDelay: 20, maxDelay: 100, factor: 2 };

export function describeClientConformance(target: ClientTarget): void {
  const { features } = target;

  describe(`client conformance: ${target.name}`, () => {
    const cleanups: (() => Promise<unknown> | void)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    const urlOf = (endpoint: ClientEndpoint, passcode = endpoint.passcode): string =>
      `stomp://${encodeURIComponent(endpoint.login)}:${encodeURIComponent(passcode)}@${endpoint.host}:${endpoint.port}`;
    const brokerUrl = (): string => urlOf(target.endpoint());

    /** A connected client, disconnected after the test. */
    const client = async (
      options: TcpClientOptions = {},
      url = brokerUrl(),
    ): Promise<StompClient> => {
      const connected = await connect(url, { reconnect: FAST_RECONNECT, ...options });
      cleanups.push(() => connected.disconnect());
      return connected;
    };

    /** A proxy in front of the broker, and a client that connects through it. */
    const proxiedClient = async (): Promise<{ proxy: TcpProxy; client: StompClient }> => {
      const endpoint = target.endpoint();
      const proxy = await startTcpProxy({ host: endpoint.host, port: endpoint.port });
      cleanups.push(() => proxy.close());
      const through = await client({}, urlOf({ ...endpoint, host: '127.0.0.1', port: proxy.port }));
      return { proxy, client: through };
    };

    const topic = (): string => `/topic/${uniqueName('client')}`;
    const queue = (): string => `/queue/${uniqueName('client')}`;
    const headersFor = (destination: string): Record<string, string> =>
      destination.startsWith('/queue/') ? { ...target.queueHeaders } : {};

    /** Subscribes and waits for the broker's RECEIPT, so that what is published next is seen. */
    const subscribe = async (
      subscriber: StompClient,
      destination: string,
      options: SubscribeOptions = {},
    ): Promise<{ box: Inbox; subscription: Subscription }> => {
      const box = inbox();
      const subscription = subscriber.subscribe(destination, box.handler, {
        ...options,
        headers: { ...headersFor(destination), ...options.headers },
      });
      await subscription.ready;
      return { box, subscription };
    };

    /** Publishes and, unless told otherwise, waits for the broker's RECEIPT. */
    const publish = (
      publisher: StompClient,
      destination: string,
      body: string | Uint8Array,
      options: PublishOptions = {},
    ): Promise<void> =>
      publisher.publish(destination, body, {
        receipt: true,
        ...options,
        headers: { ...headersFor(destination), ...options.headers },
      });

    const texts = (box: Inbox): string[] => box.received.map((message) => message.text);

    describe('connecting', () => {
      it('connects with STOMP 1.2 and reports the server’s session', async () => {
        const connected = await client();
        expect(connected.state).toBe('connected');
        expect(connected.version).toBe('1.2');
        expect(connected.sessionId).toBeTruthy();
        expect(connected.server).toBeTruthy();
      });

      it('a wrong passcode fails the first connect instead of retrying', async () => {
        const refused = connect(urlOf(target.endpoint(), 'wrong-passcode'), {
          reconnect: FAST_RECONNECT,
        });
        const error = await refused.then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error).toBeInstanceOf(PerigeeError);
      });
    });

    describe('publish and subscribe', () => {
      it('a publish that awaits its receipt reaches a topic subscriber, with its headers', async () => {
        const [subscriber, publisher] = await Promise.all([client(), client()]);
        const destination = topic();
        const { box } = await subscribe(subscriber, destination);
        await publish(publisher, destination, JSON.stringify({ word: 'héllo' }), {
          headers: { 'content-type': 'application/json', 'x-app-tag': 'seven' },
        });
        const message = await box.next();
        expect(message.json()).toEqual({ word: 'héllo' });
        expect(message.destination).toBe(destination);
        expect(message.headers['content-type']).toBe('application/json');
        expect(message.headers['x-app-tag']).toBe('seven');
        expect(message.messageId).toBeTruthy();
      });

      it('a binary body with NUL bytes arrives byte for byte', async () => {
        const [subscriber, publisher] = await Promise.all([client(), client()]);
        const destination = topic();
        const { box } = await subscribe(subscriber, destination);
        const body = new Uint8Array([0, 1, 2, 0, 255, 10, 13, 0, 0x80]);
        await publish(publisher, destination, body);
        expect([...(await box.next()).body]).toEqual([...body]);
      });

      it('a queue keeps what was published before anyone subscribed', async () => {
        const [consumer, publisher] = await Promise.all([client(), client()]);
        const destination = queue();
        await publish(publisher, destination, 'waited');
        const { box } = await subscribe(consumer, destination);
        expect((await box.next()).text).toBe('waited');
      });

      it('unsubscribe() resolves on the receipt, after which the broker sends that consumer nothing', async () => {
        const [leaver, stayer, publisher] = await Promise.all([client(), client(), client()]);
        const destination = queue();
        const leaving = await subscribe(leaver, destination);
        const staying = await subscribe(stayer, destination);
        await leaving.subscription.unsubscribe();
        // Were the leaver still a consumer of the queue, it would take its share of these.
        const bodies = Array.from({ length: 10 }, (_, i) => `m${i}`);
        for (const body of bodies) await publish(publisher, destination, body);
        for (const body of bodies) expect((await staying.box.next()).text).toBe(body);
        expect(texts(leaving.box)).toEqual([]);
      });

      it('createPublisher() connects on first use and publish resolves on the receipt', async () => {
        const subscriber = await client();
        const destination = topic();
        const { box } = await subscribe(subscriber, destination);
        const publisher = createPublisher(brokerUrl(), { reconnect: FAST_RECONNECT });
        cleanups.push(() => publisher.close());
        expect(publisher.client.state).toBe('idle');
        await publisher.publish(destination, 'lazy', { 'x-app-tag': 'p' });
        expect(publisher.client.state).toBe('connected');
        const message = await box.next();
        expect(message.text).toBe('lazy');
        expect(message.headers['x-app-tag']).toBe('p');
        await publisher.close();
        expect(publisher.client.state).toBe('closed');
      });
    });

    describe('acknowledgements', () => {
      it('client-individual: an ACK settles that message only; the unacked one goes to the next consumer', async () => {
        const [first, publisher] = await Promise.all([client(), client()]);
        const destination = queue();
        const { box } = await subscribe(first, destination, { ack: 'client-individual' });
        await publish(publisher, destination, 'one');
        await publish(publisher, destination, 'two');
        expect((await box.next()).text).toBe('one');
        const two = await box.next();
        expect(two.text).toBe('two');
        two.ack();
        // The DISCONNECT receipt comes after the ACK has been processed.
        await first.disconnect();

        const second = await client();
        const again = await subscribe(second, destination, { ack: 'client-individual' });
        const back = await again.box.next();
        expect(back.text).toBe('one');
        expect(back.redelivered).toBe(true);
        back.ack();
        await publish(publisher, destination, 'marker');
        expect((await again.box.next()).text).toBe('marker');
        expect(texts(again.box)).toEqual(['one', 'marker']);
      });

      it('client: one ACK settles every message delivered before it', async () => {
        const [first, publisher] = await Promise.all([client(), client()]);
        const destination = queue();
        const { box } = await subscribe(first, destination, { ack: 'client' });
        for (const body of ['1', '2', '3']) await publish(publisher, destination, body);
        await box.next();
        await box.next();
        const third = await box.next();
        expect(third.text).toBe('3');
        third.ack();
        await first.disconnect();

        const second = await client();
        const again = await subscribe(second, destination, { ack: 'client' });
        await publish(publisher, destination, 'marker');
        expect((await again.box.next()).text).toBe('marker');
        expect(texts(again.box)).toEqual(['marker']);
      });

      const nackRedelivers = 'redelivers' in features.nack;
      it.skipIf(!nackRedelivers)(
        nackRedelivers
          ? 'NACK hands the message back: it is delivered again, marked redelivered'
          : 'NACK hands the message back (skipped: this broker treats NACK as a poison ack and never redelivers; see the dead-letter case)',
        async () => {
          const [consumer, publisher] = await Promise.all([client(), client()]);
          const destination = queue();
          const { box } = await subscribe(consumer, destination, { ack: 'client-individual' });
          await publish(publisher, destination, 'job');
          const first = await box.next();
          expect(first.redelivered).toBe(false);
          first.nack();
          const again = await box.next();
          expect(again.text).toBe('job');
          expect(again.redelivered).toBe(true);
          again.ack();
          await publish(publisher, destination, 'next');
          expect((await box.next()).text).toBe('next');
          expect(texts(box)).toEqual(['job', 'job', 'next']);
        },
      );

      if ('deadLetterQueue' in features.nack) {
        const deadLetterQueue = features.nack.deadLetterQueue;
        it(`NACK moves a persistent message to ${deadLetterQueue} (this broker’s NACK is a poison ack)`, async () => {
          const [consumer, publisher] = await Promise.all([client(), client()]);
          const destination = queue();
          // The dead-letter queue is shared: this case picks its own message by a header.
          const tag = uniqueName('nack').replace(/-/g, '_');
          const { box } = await subscribe(consumer, destination, { ack: 'client-individual' });
          await publish(publisher, destination, 'poison', {
            headers: { persistent: 'true', perigee_case: tag },
          });
          (await box.next()).nack();
          const dead = await subscribe(consumer, deadLetterQueue, {
            headers: { selector: `perigee_case = '${tag}'` },
          });
          const message = await dead.box.next();
          expect(message.text).toBe('poison');
          expect(message.headers['original-destination']).toBe(destination);
          expect(texts(box)).toEqual(['poison']);
        });
      }
    });

    describe('transactions', () => {
      it('COMMIT delivers the transaction’s sends, which waited until then', async () => {
        const [subscriber, publisher] = await Promise.all([client(), client()]);
        const destination = topic();
        const { box } = await subscribe(subscriber, destination);
        const transaction = publisher.begin();
        await transaction.publish(destination, 'in transaction');
        // Sent after the transactional SEND on the same connection: it arrives first only if
        // the broker held the other back.
        await publish(publisher, destination, 'outside');
        expect((await box.next()).text).toBe('outside');
        await transaction.commit();
        expect((await box.next()).text).toBe('in transaction');
        await expect(transaction.commit()).rejects.toThrow(/is over/);
      });

      it('ABORT drops the transaction’s sends', async () => {
        const [subscriber, publisher] = await Promise.all([client(), client()]);
        const destination = queue();
        const { box } = await subscribe(subscriber, destination);
        const transaction = publisher.begin();
        await transaction.publish(destination, 'aborted', { headers: headersFor(destination) });
        await transaction.abort();
        await publish(publisher, destination, 'marker');
        expect((await box.next()).text).toBe('marker');
        expect(texts(box)).toEqual(['marker']);
        await expect(transaction.publish(destination, 'late')).rejects.toThrow(/is over/);
      });

      it('an ACK in an aborted transaction is undone: the message goes to the next consumer', async () => {
        const [first, publisher] = await Promise.all([client(), client()]);
        const destination = queue();
        const { box } = await subscribe(first, destination, { ack: 'client-individual' });
        await publish(publisher, destination, 'job');
        const job = await box.next();
        const transaction = first.begin();
        job.ack(transaction);
        await transaction.abort();
        await first.disconnect();

        const second = await client();
        const again = await subscribe(second, destination, { ack: 'client-individual' });
        const back = await again.box.next();
        expect(back.text).toBe('job');
        expect(back.redelivered).toBe(true);
      });

      it('an ACK in a committed transaction takes effect', async () => {
        const [first, publisher] = await Promise.all([client(), client()]);
        const destination = queue();
        const { box } = await subscribe(first, destination, { ack: 'client-individual' });
        await publish(publisher, destination, 'job');
        const transaction = first.begin();
        (await box.next()).ack(transaction);
        await transaction.commit();
        await first.disconnect();

        const second = await client();
        const again = await subscribe(second, destination, { ack: 'client-individual' });
        await publish(publisher, destination, 'marker');
        expect((await again.box.next()).text).toBe('marker');
        expect(texts(again.box)).toEqual(['marker']);
      });
    });

    describe('disconnect', () => {
      it('disconnect() resolves only after the broker’s RECEIPT, when all sent before it was processed', async () => {
        const { proxy, client: publisher } = await proxiedClient();
        const destination = queue();
        const bodies = Array.from({ length: 20 }, (_, i) => `m${i}`);
        // No receipts: only the DISCONNECT's receipt says that these were processed.
        for (const body of bodies) void publish(publisher, destination, body, { receipt: false });
        await publisher.disconnect();
        expect(publisher.state).toBe('closed');

        const [connection] = proxy.connections;
        const receiptId = /(?:^|\0|\n)DISCONNECT\n(?:[^\n\0]+\n)*?receipt:([^\n]+)\n/.exec(
          connection!.fromClient,
        )?.[1];
        expect(receiptId).toBeTruthy();
        // Recorded before the proxy passed it on: the client cannot have seen it any earlier.
        expect(connection!.fromServer).toMatch(
          new RegExp(`RECEIPT\n(?:[^\n\0]+\n)*?receipt-id:${receiptId}\n`),
        );
        await expect(publish(publisher, destination, 'too late')).rejects.toThrow(/disconnected/);

        const consumer = await client();
        const { box } = await subscribe(consumer, destination);
        for (const body of bodies) expect((await box.next()).text).toBe(body);
      });
    });

    describe('reconnect', () => {
      it('after a cut, reconnects with growing delays, resubscribes a queue, and sends what waited', async () => {
        const { proxy, client: subscriber } = await proxiedClient();
        const publisher = await client();
        const destination = queue();
        let recovered!: (value: boolean) => void;
        const recovery = new Promise<boolean>((resolve) => (recovered = resolve));
        // Acknowledged by hand: a message the broker hands to the connection being cut, before it
        // notices the cut, is then redelivered instead of lost with it.
        const { box } = await subscribe(subscriber, destination, {
          ack: 'client-individual',
          onRecovery: recovered,
        });
        await publish(publisher, destination, 'before');
        (await box.next()).ack();
        // An ACK has no receipt; one for a later frame on the same connection says it was applied.
        await publish(subscriber, topic(), 'after the ACK');
        const firstSession = subscriber.sessionId;

        const attempts: { attempt: number; delay: number }[] = [];
        let thirdAttempt!: () => void;
        const threeAttempts = new Promise<void>((resolve) => (thirdAttempt = resolve));
        subscriber.on('reconnecting', (attempt, delay) => {
          attempts.push({ attempt, delay });
          if (attempts.length === 3) thirdAttempt();
        });
        const reconnected = once(subscriber, 'connect');
        proxy.refusing = true;
        proxy.cutAll();
        await publish(publisher, destination, 'while down');
        const resent = publish(subscriber, destination, 'sent while down');
        // The first delay follows the cut; two more follow the connections the proxy refused.
        await within(threeAttempts, 'three reconnect attempts');
        proxy.refusing = false;
        await within(reconnected, 'the reconnect');
        await within(resent, 'the RECEIPT for the publish that waited');

        expect(attempts.map(({ attempt }) => attempt)).toEqual([1, 2, 3]);
        for (const { attempt, delay } of attempts) {
          const ceiling = Math.min(
            FAST_RECONNECT.maxDelay,
            FAST_RECONNECT.initialDelay * FAST_RECONNECT.factor ** (attempt - 1),
          );
          expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
          expect(delay).toBeLessThanOrEqual(ceiling);
        }
        expect(subscriber.sessionId).not.toBe(firstSession);
        // A queue keeps what its consumer missed: nothing was lost.
        expect(await within(recovery, 'the resubscription')).toBe(true);
        (await box.next()).ack();
        (await box.next()).ack();
        expect(texts(box).sort()).toEqual(['before', 'sent while down', 'while down']);
      });

      it(
        features.history
          ? 'after a cut, resubscribes a topic and replays what it missed from history (Perigee extension)'
          : 'after a cut, resubscribes a topic and reports that it may have missed messages (no history on this broker)',
        async () => {
          const { proxy, client: subscriber } = await proxiedClient();
          const publisher = await client();
          const destination = topic();
          let recovered!: (value: boolean) => void;
          const recovery = new Promise<boolean>((resolve) => (recovered = resolve));
          const { box, subscription } = await subscribe(subscriber, destination, {
            onRecovery: recovered,
          });
          await publish(publisher, destination, 'before');
          expect((await box.next()).text).toBe('before');

          proxy.refusing = true;
          const down = once(subscriber, 'reconnecting');
          proxy.cutAll();
          await within(down, 'the lost connection');
          await publish(publisher, destination, 'during');
          proxy.refusing = false;
          expect(await within(recovery, 'the resubscription')).toBe(features.history);
          expect(subscription.recovered).toBe(features.history);
          await publish(publisher, destination, 'after');
          expect((await box.next()).text).toBe(features.history ? 'during' : 'after');
          if (features.history) expect((await box.next()).text).toBe('after');
          expect(texts(box)).toEqual(
            features.history ? ['before', 'during', 'after'] : ['before', 'after'],
          );
        },
      );
    });
  });
}
