import { until } from '../gateway/transport-conformance.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransportName } from '../../src/client/browser/index.js';
import {
  chromiumAvailable,
  screenshot,
  startBrowserTestServer,
  useChromium,
  waitInPage,
  type BrowserTestServer,
} from '../support/browser.js';
import { ChannelFrameSession, text } from '../support/frame-session.js';

/**
 * Our client (/perigee.js) in Chromium, forced onto each of its eight transports in turn: the
 * browser half of the transport conformance suite (test/gateway/transport-conformance.ts), with
 * htmlfile and JSONP polling, which need a real DOM.
 */

const TRANSPORTS: readonly TransportName[] = [
  'websocket',
  'sockjs-websocket',
  'eventsource',
  'xhr-streaming',
  'htmlfile',
  'xhr-polling',
  'jsonp-polling',
  'short-polling',
];

const MESSAGES = 1000;

/**
 * The page: connects on the transport named in its query string, subscribes to /feed/e2e, and
 * keeps what it sees in `window.e2eState`; `window.e2ePublish` publishes and says how it went.
 */
const PAGE = `<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>Perigee e2e: one transport</title>
  <script src="/perigee.js"></script>
  <style>body { font: 14px sans-serif; margin: 2em; } pre { background: #f4f4f4; padding: 1em; }</style>
</head>
<body>
  <h1>Perigee over <code id="transport">?</code></h1>
  <p>State: <b id="state">connecting</b>. Messages received: <b id="count">0</b>.</p>
  <pre id="log"></pre>
  <script>
    const wanted = new URLSearchParams(location.search).get('transport');
    document.getElementById('transport').textContent = wanted;
    const state = (window.e2eState = { open: false, transport: null, subscribed: false, received: [] });
    const log = (line) => (document.getElementById('log').textContent += line + '\\n');
    const client = Perigee.connect(location.origin, { transports: [wanted], debug: log });
    window.e2eClient = client;
    client.on('state', (change) => {
      document.getElementById('state').textContent = change.state + ' via ' + change.transport;
      if (change.state === 'open') {
        state.open = true;
        state.transport = client.transport;
      }
    });
    client.subscribe('/feed/e2e', (message) => {
      state.received.push(message.text);
      document.getElementById('count').textContent = String(state.received.length);
    }).ready.then(() => (state.subscribed = true), (error) => log('subscribe failed: ' + error.message));
    window.e2ePublish = (destination, body) =>
      client.publish(destination, body).then(
        () => ({ accepted: true }),
        (error) => ({ accepted: false, message: error.message }),
      );
  </script>
</body>
</html>`;

type PublishOutcome = { accepted: true } | { accepted: false; message: string };

describe.skipIf(!chromiumAvailable())('our client in Chromium, on each transport', () => {
  const chromium = useChromium();
  let site: BrowserTestServer;
  let listener: ChannelFrameSession;

  beforeAll(async () => {
    site = await startBrowserTestServer();
    site.serve('/e2e/transport.html', PAGE);
    listener = await ChannelFrameSession.open(site.broker, 'listener');
    listener.send('SUBSCRIBE', { id: 'chat', destination: '/chat/e2e', receipt: 'chat' });
    await listener.receipt('chat');
  });
  afterAll(async () => {
    listener?.close();
    await site?.close();
  });

  for (const transport of TRANSPORTS) {
    it(`${transport}: receives ${MESSAGES} messages in order, publishes, hears a refusal, disconnects cleanly`, async () => {
      const page = await chromium.open(`${site.url}/e2e/transport.html?transport=${transport}`);
      await waitInPage(page, 'window.e2eState.open && window.e2eState.subscribed');
      expect(await page.evaluate<string>('window.e2eClient.transport')).toBe(transport);

      for (let i = 0; i < MESSAGES; i++) site.broker.publishNow('/feed/e2e', String(i));
      const received = await waitInPage<string[]>(
        page,
        `window.e2eState.received.length >= ${MESSAGES} && window.e2eState.received`,
      );
      expect(received).toEqual(Array.from({ length: MESSAGES }, (_, i) => String(i)));
      if (transport === 'htmlfile') await screenshot(page, 'transport-htmlfile');

      const body = `hello over ${transport}`;
      const accepted = await page.evaluate<PublishOutcome>(
        `window.e2ePublish('/chat/e2e', ${JSON.stringify(body)})`,
      );
      expect(accepted).toEqual({ accepted: true });
      expect(text(await listener.nextOf('MESSAGE'))).toBe(body);

      // Last: an ERROR ends the server session (STOMP 1.2 §ERROR).
      const refused = await page.evaluate<PublishOutcome>(
        `window.e2ePublish('/feed/e2e', 'browsers may not write here')`,
      );
      expect(refused.accepted).toBe(false);
      expect(refused.accepted ? '' : refused.message).toMatch(
        /SEND to \/feed\/e2e refused by \[\[destinations\]\] rule 1/,
      );

      // The ERROR ended that session; the client comes back on a new one by itself, and the
      // gateway holds just that one. Then it disconnects cleanly: the gateway ends the session at
      // once instead of holding it for a resume.
      await waitInPage(page, "window.e2eClient.state === 'open'");
      await until(() => site.gateway.stats().sessions === 1);
      await page.evaluate('window.e2eClient.disconnect()');
      expect(await page.evaluate<string>('window.e2eClient.state')).toBe('closed');
      await until(() => site.gateway.stats().sessions === 0);
    });
  }
});
