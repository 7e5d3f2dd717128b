import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateChange } from '../../src/client/browser/index.js';
import { collector, nodeClient, startGateway, type TestGateway } from '../support/gateway.js';
import { nginxAvailable, startNginx, type ReverseProxy } from '../support/nginx.js';

/**
 * Behind a proxy that buffers responses, a stream delivers nothing until the proxy's buffer
 * fills. The client must notice, fall back to polling, and lose nothing; behind a proxy that
 * passes streams through, it must stay on streaming.
 */

const available = nginxAvailable();
// Node has no DOM, so htmlfile and JSONP are not in the running; WebSocket is, and fails through
// this nginx (it does not pass upgrades), which is the common case the fallback must handle.
const ORDER = ['websocket', 'eventsource', 'xhr-streaming', 'xhr-polling'] as const;

describe.runIf(available)('behind nginx', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(() => gateway.close());

  for (const buffering of [true, false]) {
    describe(`with proxy_buffering ${buffering ? 'on' : 'off'}`, () => {
      let proxy: ReverseProxy;
      beforeAll(async () => {
        proxy = await startNginx(gateway.port, buffering);
      });
      afterAll(() => proxy.stop());

      it(
        buffering
          ? 'detects the stall, falls back to polling, and delivers every message'
          : 'stays on streaming',
        async () => {
          const browser = nodeClient(`http://127.0.0.1:${proxy.port}`, {
            transports: [...ORDER],
            streamingTimeout: 1500,
          });
          const states: StateChange[] = [];
          browser.on('state', (change) => states.push(change));
          try {
            const inbox = collector();
            await browser.subscribe('/feed/proxied', inbox.handler).ready;
            for (let i = 0; i < 100; i++) gateway.broker.publishNow('/feed/proxied', String(i));
            const bodies = (await inbox.waitFor(100)).map((message) => message.text);
            expect(bodies).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
            if (buffering) {
              expect(browser.transport).toBe('xhr-polling');
              expect(states.some((change) => /buffering proxy/.test(change.reason ?? ''))).toBe(
                true,
              );
            } else {
              expect(browser.transport).toBe('eventsource');
              expect(states.some((change) => /buffering proxy/.test(change.reason ?? ''))).toBe(
                false,
              );
            }
          } finally {
            await browser.disconnect();
          }
        },
        30_000,
      );
    });
  }
});
