import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransportName } from '../../src/client/browser/index.js';
import {
  chromiumAvailable,
  startBrowserTestServer,
  useChromium,
  waitInPage,
  type BrowserTestServer,
} from '../support/browser.js';
import { OVER_LIMIT_FRAMES, refusedByServer, TEST_LIMITS } from '../support/limits.js';

/**
 * A STOMP frame over the limits, sent by our client in Chromium through the two transports that
 * need a DOM (the Node tests in test/gateway/bad-input.test.ts cover the others): each gets the
 * limit's own ERROR, and the gateway keeps serving on that same transport.
 */

const TRANSPORTS: readonly TransportName[] = ['htmlfile', 'jsonp-polling'];

/**
 * `window.e2eOverLimit` connects on one transport without reconnecting, sends one SEND and says
 * how the server answered; `window.e2eListen` connects a fresh client, subscribes to /feed/alive
 * and keeps what arrives in `window.e2eState.alive`.
 */
const PAGE = `<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>Perigee e2e: frames over the limits</title>
  <script src="/perigee.js"></script>
</head>
<body>
  <h1>Frames over the limits</h1>
  <script>
    const state = (window.e2eState = { alive: [] });
    window.e2eOverLimit = async (transport, body, headers) => {
      const client = Perigee.connect(location.origin, { transports: [transport], reconnect: false });
      await client.ready;
      const used = client.transport;
      try {
        await client.publish('/chat/big', body, headers);
        return { used, accepted: true };
      } catch (error) {
        return { used, accepted: false, code: error.code, message: error.message };
      }
    };
    window.e2eListen = async (transport) => {
      const client = Perigee.connect(location.origin, { transports: [transport] });
      await client.subscribe('/feed/alive', (message) => state.alive.push(message.text)).ready;
      return client.transport;
    };
  </script>
</body>
</html>`;

type Outcome =
  | { used: string; accepted: true }
  | { used: string; accepted: false; code: string; message: string };

describe.skipIf(!chromiumAvailable())('frames over the limits, from Chromium', () => {
  const chromium = useChromium();
  let site: BrowserTestServer;

  beforeAll(async () => {
    site = await startBrowserTestServer({ gateway: { limits: TEST_LIMITS } });
    site.serve('/e2e/bad-input.html', PAGE);
  });
  afterAll(async () => {
    await site?.close();
  });

  for (const transport of TRANSPORTS) {
    for (const frame of OVER_LIMIT_FRAMES) {
      it(`${transport}: ${frame.name} gets its ERROR; the gateway keeps serving`, async () => {
        const page = await chromium.open(`${site.url}/e2e/bad-input.html`);
        const args = [transport, frame.body, frame.headers].map((arg) => JSON.stringify(arg));
        const outcome = await page.evaluate<Outcome>(`window.e2eOverLimit(${args.join(', ')})`);
        expect(outcome.used).toBe(transport);
        expect(outcome.accepted).toBe(false);
        if (outcome.accepted) return;
        expect(outcome.code).toBe('SERVER_ERROR');
        expect(outcome.message).toMatch(refusedByServer(frame.code));

        const listening = await page.evaluate<string>(
          `window.e2eListen(${JSON.stringify(transport)})`,
        );
        expect(listening).toBe(transport);
        site.broker.publishNow('/feed/alive', 'alive');
        expect(
          await waitInPage<string[]>(
            page,
            'window.e2eState.alive.length > 0 && window.e2eState.alive',
          ),
        ).toEqual(['alive']);
      });
    }
  }
});
