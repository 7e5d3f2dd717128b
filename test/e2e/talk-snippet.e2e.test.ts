import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker } from '../../src/broker/index.js';
import {
  chromiumAvailable,
  screenshot,
  startBrowserTestServer,
  useChromium,
  waitInPage,
  type BrowserTestServer,
} from '../support/browser.js';
import { until } from '../gateway/transport-conformance.js';

/**
 * The talk's Django `<head>` snippet (shared/seed, "Django base template"), run in Chromium
 * against Perigee with only the changes DESIGN.md §4 promises: its three script URLs point at
 * /perigee-orbited.js, and its one typo (the missing quote in `debug(Lost Connection`) is fixed.
 */

/** The snippet exactly as on the slide, typo included. */
const TALK_SNIPPET = `<script>document.domain = document.domain;</script>
<script src="{{ ORBITED_MEDIA_URL }}Orbited.js"></script>
<script type="text/javascript">
Orbited.settings.port = {{ ORBITED_PORT }};
Orbited.settings.hostname = "{{ ORBITED_HOST }}";
Orbited.settings.streaming = true;

TCPSocket = Orbited.TCPSocket;
</script>

<script src="{{ ORBITED_MEDIA_URL }}JSON.js"></script>
<script 
src="{{ ORBITED_MEDIA_URL }}protocols/stomp/stomp.js"></script>
 <script>
$(document).ready(function() {
    stomp = new STOMPClient();
    stomp.onopen = function() { debug('Connected.');};
    stomp.onclose = function(c) { debug(Lost Connection, Code: '+c);};
    stomp.onerror = function(error){ debug("Error: " + error);};
    stomp.onerrorframe = function(frame){ debug("Error: " + frame.body);};
    stomp.onconnectedframe = function() {
        {% if game %}
        stomp.subscribe('/games/{{ game.id }}/status'); 
        stomp.subscribe('/games/{{ game.id }}/players');
       {% else %}// subscribe to other channels...{% endif %} 
    };
    stomp.onmessageframe = function(frame){
        // frame.headers.destination for channel, frame.body for JSON data
        destpatterns.dispatch(frame);
    };
    stomp.connect('{{ STOMP_HOST }}', {{ STOMP_PORT }});
});
</script>`;

/** Replaces `from` with `to`, insisting that it is there: the snippet's edits stay exactly these. */
function edit(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`the snippet has no ${JSON.stringify(from)}`);
  return text.split(from).join(to);
}

/** The snippet as Django would render it for game 1, with Perigee's script URL and the typo fixed. */
function renderSnippet(variables: Record<string, string | number>): string {
  let html = TALK_SNIPPET;
  for (const script of ['Orbited.js', 'JSON.js', 'protocols/stomp/stomp.js'])
    html = edit(html, `{{ ORBITED_MEDIA_URL }}${script}`, '/perigee-orbited.js');
  html = edit(html, "debug(Lost Connection, Code: '+c)", "debug('Lost Connection, Code: '+c)");
  // `{% if game %}`: there is a game.
  html = html.replace(/\{% if game %\}([\s\S]*?)\{% else %\}[\s\S]*?\{% endif %\}/, '$1');
  html = html.replace(/\{\{ ([\w.]+) \}\}/g, (_, name: string) => {
    const value = variables[name];
    if (value === undefined) throw new Error(`no value for {{ ${name} }}`);
    return String(value);
  });
  return html;
}

/**
 * The quiz page around the snippet. As in the talk, the page supplies `$` (only jQuery's
 * `$(document).ready`) and `debug`, and its own code routes frames with `destpatterns`, which
 * /perigee-orbited.js defines; the page registers its routes before the snippet runs, so the
 * snippet's three further loads of the script must keep them.
 */
function quizPage(snippet: string): string {
  return `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>PyCon quiz: game 1</title>
<style>body { font: 14px sans-serif; margin: 2em; } pre { background: #f4f4f4; padding: 1em; min-height: 8em; }</style>
<script>
  window.e2eState = { debug: [], status: [], players: [] };
  function $(target) {
    return {
      ready: function (callback) {
        if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', callback);
        else setTimeout(callback);
      },
    };
  }
  function debug(line) {
    window.e2eState.debug.push(line);
    document.getElementById('debug').textContent += line + '\\n';
  }
</script>
<script src="/perigee-orbited.js"></script>
<script>
  destpatterns.add('/games/:id/status', function (frame, params) {
    window.e2eState.status.push({ id: params.id, destination: frame.headers.destination, body: frame.body });
    document.getElementById('status').textContent = frame.body;
  });
  destpatterns.add('/games/:id/players', function (frame, params) {
    window.e2eState.players.push({ id: params.id, destination: frame.headers.destination, body: frame.body });
    document.getElementById('players').textContent = frame.body;
  });
</script>
${snippet}
</head>
<body>
<h1>PyCon quiz: game 1</h1>
<p>Status: <b id="status">waiting</b></p>
<p>Players: <b id="players">none yet</b></p>
<pre id="debug"></pre>
</body>
</html>`;
}

interface Routed {
  id: string;
  destination: string;
  body: string;
}

describe.skipIf(!chromiumAvailable())("the talk's <head> snippet in Chromium", () => {
  const chromium = useChromium();
  let site: BrowserTestServer;
  let stompPort: number;

  beforeAll(async () => {
    // The snippet names the broker by its STOMP address, so the broker listens on TCP as well.
    const broker = createBroker();
    stompPort = (await broker.listen({ port: 0 })).port;
    site = await startBrowserTestServer({
      broker,
      rules: [
        { pattern: '/games/*/status', subscribe: 'anyone', send: 'nobody' },
        { pattern: '/games/*/players', subscribe: 'anyone', send: 'nobody' },
      ],
      gateway: { access: { selfAddresses: [`127.0.0.1:${stompPort}`] } },
    });
    const snippet = renderSnippet({
      ORBITED_PORT: site.port,
      ORBITED_HOST: '127.0.0.1',
      STOMP_HOST: '127.0.0.1',
      STOMP_PORT: stompPort,
      'game.id': 1,
    });
    site.serve('/games/1', quizPage(snippet));
  });
  afterAll(() => site?.close());

  it('connects, subscribes to the game, and routes its frames with destpatterns', async () => {
    const page = await chromium.open(`${site.url}/games/1`);
    await waitInPage(page, "window.e2eState.debug.includes('Connected.')");
    // Both SUBSCRIBEs of onconnectedframe have reached the broker once it holds both topics.
    await until(() => site.broker.stats().topics === 2, 10_000);

    const status = JSON.stringify({ state: 'started', question: 1 });
    const players = JSON.stringify({ players: ['ada', 'grace'] });
    site.broker.publishNow('/games/1/status', status, { 'content-type': 'application/json' });
    site.broker.publishNow('/games/1/players', players, { 'content-type': 'application/json' });
    await waitInPage(
      page,
      'window.e2eState.status.length >= 1 && window.e2eState.players.length >= 1',
    );
    const routed = await page.evaluate<{ status: Routed[]; players: Routed[]; debug: string[] }>(
      'window.e2eState',
    );
    expect(routed.status).toEqual([{ id: '1', destination: '/games/1/status', body: status }]);
    expect(routed.players).toEqual([{ id: '1', destination: '/games/1/players', body: players }]);
    expect(routed.debug).toEqual(['Connected.']);
    await screenshot(page, 'talk-snippet');
  });

  it('reports a STOMPClient.connect to a broker no [access] rule allows through onerror and onerrorframe', async () => {
    const page = await chromium.open(`${site.url}/games/1`);
    await waitInPage(page, "window.e2eState.debug.includes('Connected.')");
    // A second client, written the talk's way, naming a broker that nothing allows.
    await page.evaluate(`(() => {
      const refused = (window.e2eRefused = { opened: false, errors: [], errorFrames: [] });
      const other = new STOMPClient();
      other.onopen = function () { refused.opened = true; debug('Connected to stomp.invalid?!'); };
      other.onerror = function (error) { refused.errors.push(error); debug('Error: ' + error); };
      other.onerrorframe = function (frame) { refused.errorFrames.push(frame.body); };
      other.connect('stomp.invalid', 61613);
    })()`);
    const outcome = await waitInPage<{ opened: boolean; errors: string[]; errorFrames: string[] }>(
      page,
      '(window.e2eRefused.opened || window.e2eRefused.errors.length > 0) && window.e2eRefused',
    );
    await screenshot(page, 'talk-snippet-refused-connect');
    expect(outcome.opened, 'the gateway let the browser reach stomp.invalid:61613').toBe(false);
    expect(outcome.errors[0]).toMatch(/stomp\.invalid:61613/);
    expect(outcome.errorFrames[0]).toMatch(/stomp\.invalid:61613/);
  });
});
