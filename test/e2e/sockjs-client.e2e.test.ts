import { until } from '../gateway/transport-conformance.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
 * Third-party browser clients against our SockJS layer: sockjs-client 1.6 (the copy the gateway
 * serves at /sockjs.min.js, which /sockjs/iframe.html loads too) carrying STOMP for
 * @stomp/stompjs 7, over each of sockjs-client's nine transports that run outside Internet
 * Explorer (the two xdr-* ones are IE only). Node covers three of them
 * (test/gateway/transports.conformance.test.ts); the iframe-based, htmlfile and JSONP ones need a
 * real browser.
 */

const SOCKJS_TRANSPORTS = [
  'websocket',
  'xhr-streaming',
  'eventsource',
  'iframe-eventsource',
  'htmlfile',
  'iframe-htmlfile',
  'xhr-polling',
  'iframe-xhr-polling',
  'jsonp-polling',
] as const;

const MESSAGES = 1000;

/**
 * The page: stompjs over `new SockJS(origin + '/sockjs', null, { transports: [name] })`,
 * reconnecting after 100 ms (a refused SEND ends the session; the test then disconnects the new
 * one cleanly), heart-beats off. It subscribes
 * to /feed/e2e with a receipt and keeps what it sees in `window.e2eState`.
 */
const PAGE = `<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>sockjs-client + stompjs e2e</title>
  <script src="/sockjs.min.js"></script>
  <script src="/vendor/stomp.umd.min.js"></script>
  <style>body { font: 14px sans-serif; margin: 2em; } pre { background: #f4f4f4; padding: 1em; max-height: 20em; overflow: hidden; }</style>
</head>
<body>
  <h1>@stomp/stompjs over sockjs-client <code id="transport">?</code></h1>
  <p>SockJS transport in use: <b id="used">none yet</b>. Messages received: <b id="count">0</b>.</p>
  <pre id="log"></pre>
  <script>
    const wanted = new URLSearchParams(location.search).get('transport');
    document.getElementById('transport').textContent = wanted;
    const state = (window.e2eState = {
      connected: false,
      subscribed: false,
      transport: null,
      received: [],
      errors: [],
      closes: [],
    });
    const log = (line) => (document.getElementById('log').textContent += line + '\\n');
    let sockjs;
    const client = new StompJs.Client({
      webSocketFactory: () => (sockjs = new SockJS(location.origin + '/sockjs', null, { transports: [wanted] })),
      reconnectDelay: 100,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
    });
    window.e2eClient = client;
    client.onConnect = (frame) => {
      state.connected = true;
      state.connects = (state.connects || 0) + 1;
      state.transport = sockjs.transport;
      document.getElementById('used').textContent = sockjs.transport;
      log('CONNECTED, STOMP ' + frame.headers.version + ', session ' + frame.headers.session);
      client.watchForReceipt('subscribed', () => {
        state.subscribed = true;
        log('RECEIPT for the SUBSCRIBE');
      });
      client.subscribe('/feed/e2e', (message) => {
        state.received.push(message.body);
        document.getElementById('count').textContent = String(state.received.length);
      }, { receipt: 'subscribed' });
    };
    client.onStompError = (frame) => {
      state.errors.push(frame.headers.message);
      log('ERROR: ' + frame.headers.message);
    };
    client.onWebSocketClose = (event) => {
      state.closes.push(event.code + ' ' + event.reason);
      log('closed: ' + event.code + ' ' + event.reason);
    };
    client.activate();
    let receipts = 0;
    window.e2ePublishWithReceipt = (destination, body) =>
      new Promise((resolve) => {
        const receipt = 'publish-' + ++receipts;
        client.watchForReceipt(receipt, () => resolve(receipt));
        client.publish({ destination, body, headers: { receipt } });
      });
    window.e2ePublish = (destination, body) => client.publish({ destination, body });
  </script>
</body>
</html>`;

interface PageState {
  transport: string | null;
  errors: string[];
  closes: string[];
}

describe.skipIf(!chromiumAvailable())('@stomp/stompjs over sockjs-client in Chromium', () => {
  const chromium = useChromium();
  let site: BrowserTestServer;
  let listener: ChannelFrameSession;

  beforeAll(async () => {
    site = await startBrowserTestServer();
    site.serve('/e2e/sockjs.html', PAGE);
    site.serveFile(
      '/vendor/stomp.umd.min.js',
      'node_modules/@stomp/stompjs/bundles/stomp.umd.min.js',
    );
    listener = await ChannelFrameSession.open(site.broker, 'listener');
    listener.send('SUBSCRIBE', { id: 'chat', destination: '/chat/sockjs', receipt: 'chat' });
    await listener.receipt('chat');
  });
  afterAll(async () => {
    listener?.close();
    await site?.close();
  });

  for (const transport of SOCKJS_TRANSPORTS) {
    it(`${transport}: subscribes with a receipt, receives ${MESSAGES} in order, publishes, gets the ERROR for a refused SEND, and disconnects cleanly`, async () => {
      const page = await chromium.open(`${site.url}/e2e/sockjs.html?transport=${transport}`);
      await waitInPage(page, 'window.e2eState.subscribed');
      expect((await page.evaluate<PageState>('window.e2eState')).transport).toBe(transport);

      for (let i = 0; i < MESSAGES; i++) site.broker.publishNow('/feed/e2e', String(i));
      const received = await waitInPage<string[]>(
        page,
        `window.e2eState.received.length >= ${MESSAGES} && window.e2eState.received`,
      );
      expect(received).toEqual(Array.from({ length: MESSAGES }, (_, i) => String(i)));
      if (transport === 'iframe-htmlfile') await screenshot(page, 'sockjs-client-iframe-htmlfile');

      const body = `hello from sockjs-client over ${transport}`;
      await page.evaluate(`window.e2ePublishWithReceipt('/chat/sockjs', ${JSON.stringify(body)})`);
      expect(text(await listener.nextOf('MESSAGE'))).toBe(body);

      await page.evaluate(`window.e2ePublish('/feed/e2e', 'browsers may not write here')`);
      const errors = await waitInPage<string[]>(
        page,
        'window.e2eState.errors.length > 0 && window.e2eState.errors',
      );
      expect(errors).toEqual([
        expect.stringMatching(/SEND to \/feed\/e2e refused by \[\[destinations\]\] rule 1/),
      ]);

      // stompjs reconnects on a new session; then it disconnects cleanly (DISCONNECT, RECEIPT)
      // and the gateway ends that session at once.
      await waitInPage(page, 'window.e2eState.connects >= 2 && window.e2eClient.connected');
      const before = site.gateway.stats().sessions;
      await page.evaluate('window.e2eClient.deactivate()');
      expect(await page.evaluate<boolean>('window.e2eClient.connected')).toBe(false);
      await until(() => site.gateway.stats().sessions === before - 1);
    });
  }
});
