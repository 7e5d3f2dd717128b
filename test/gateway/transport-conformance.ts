import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChannelFrameSession, text } from '../support/frame-session.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

/**
 * The conformance suite every browser transport runs, whatever drives it: our client (Node, and
 * Chromium), @stomp/stompjs over /stomp, and sockjs-client carrying STOMP. The gateway's rules
 * (test/support/gateway.ts) let anyone read /feed/** and write /chat/**, and nobody else write.
 */

/** What a client under test must do; each driver maps it onto its own API. */
export interface ConformanceClient {
  /** Subscribes and resolves once the server confirmed it. */
  subscribe(destination: string): Promise<Inbox>;
  /** Publishes and resolves once the server accepted it. */
  publish(destination: string, body: string): Promise<void>;
  /** Publishes where the rules forbid it; resolves with the ERROR's message. */
  publishRefused(destination: string, body: string): Promise<string>;
  disconnect(): Promise<void>;
}

export interface Inbox {
  /** Resolves with the first `count` message bodies received, in arrival order. */
  bodies(count: number, timeoutMs?: number): Promise<string[]>;
}

export type OpenClient = (gateway: TestGateway) => Promise<ConformanceClient>;

export function describeTransportConformance(name: string, open: OpenClient): void {
  describe(`transport conformance: ${name}`, () => {
    let gateway: TestGateway;
    const clients: ConformanceClient[] = [];
    beforeAll(async () => {
      gateway = await startGateway();
    });
    afterAll(() => gateway.close());
    afterEach(async () => {
      await Promise.all(
        clients.splice(0).map((client) => client.disconnect().catch(() => undefined)),
      );
    });
    const client = async (): Promise<ConformanceClient> => {
      const opened = await open(gateway);
      clients.push(opened);
      return opened;
    };

    it('connects, subscribes, and receives 1,000 messages in order', async () => {
      const browser = await client();
      const inbox = await browser.subscribe('/feed/numbers');
      for (let i = 0; i < 1000; i++) gateway.broker.publishNow('/feed/numbers', String(i));
      const bodies = await inbox.bodies(1000, 30_000);
      expect(bodies).toEqual(Array.from({ length: 1000 }, (_, i) => String(i)));
    });

    it('delivers bodies of every frame-length class whole (under 126 B, 16-bit, 64-bit lengths)', async () => {
      // RFC 6455 §5.2 encodes a payload's length in 7 bits, 16 bits or 64 bits; a batch crosses
      // all three, alone or with the messages queued with it in one turn.
      const browser = await client();
      const inbox = await browser.subscribe('/feed/sizes');
      const sizes = [1, 60, 125, 126, 200, 65_535, 65_536, 70_000, 200_000];
      const bodies = sizes.map((size, i) => `${i}:`.padEnd(size, 'éxxxxxxxx'));
      for (const body of bodies) gateway.broker.publishNow('/feed/sizes', body);
      expect(await inbox.bodies(bodies.length, 30_000)).toEqual(bodies);
      for (const body of bodies) {
        gateway.broker.publishNow('/feed/sizes', body);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect((await inbox.bodies(2 * bodies.length, 30_000)).slice(bodies.length)).toEqual(bodies);
    });

    it('delivers text that JSON escapes or browsers mangle, intact, alone and in one batch', async () => {
      // SockJS frames are JSON: quotes, backslashes and control characters are escaped, and the
      // protocol's escapable_by_server ranges (U+2028, U+FFFF, surrogates…) must arrive unchanged.
      const browser = await client();
      const inbox = await browser.subscribe('/feed/text');
      const bodies = [
        'quote " backslash \\ slash / tab \t newline \n',
        'line separator \u2028 paragraph \u2029 zero width \u200c\u200f joiner \u2060',
        'emoji 😀 and han 漢字 and \ufff0\ufffd',
        '</script><!-- -->',
        '\u0001\u001f\u007f',
      ];
      for (const body of bodies) gateway.broker.publishNow('/feed/text', body);
      for (const body of bodies) {
        gateway.broker.publishNow('/feed/text', body);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(await inbox.bodies(2 * bodies.length, 30_000)).toEqual([...bodies, ...bodies]);
    });

    it('publishes where the rules allow', async () => {
      const listener = await ChannelFrameSession.open(gateway.broker, 'listener');
      listener.send('SUBSCRIBE', { id: 'l', destination: '/chat/room', receipt: 'l' });
      await listener.receipt('l');
      const browser = await client();
      await browser.publish('/chat/room', 'hello from the browser');
      expect(text(await listener.nextOf('MESSAGE'))).toBe('hello from the browser');
      listener.close();
    });

    it('gets a refused publish as an ERROR that names the rule', async () => {
      const browser = await client();
      const message = await browser.publishRefused('/feed/numbers', 'browsers may not write here');
      expect(message).toMatch(/SEND to \/feed\/numbers refused by \[\[destinations\]\] rule 1/);
    });

    it('disconnects cleanly', async () => {
      const browser = await client();
      await browser.subscribe('/feed/quiet');
      const before = gateway.gateway.stats().sessions;
      await browser.disconnect();
      clients.splice(clients.indexOf(browser), 1);
      // The session is gone at once: DISCONNECT ends it; nothing waits for a resume.
      await until(() => gateway.gateway.stats().sessions === before - 1);
      expect(gateway.gateway.stats().sessions).toBe(before - 1);
    });
  });
}

/** Polls `condition` until it holds (for state another process reaches asynchronously). */
export async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
