/**
 * The page `perigee serve` shows at `/`: what is running, and a live console on the gateway (pick
 * a transport, subscribe, publish), so that a newcomer sees messages move before writing code.
 */

export function landingPage(options: { stompUrl: string; prefix: string }): string {
  const stomp = escapeHtml(options.stompUrl);
  const prefix = escapeHtml(options.prefix);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Perigee</title>
<style>
  :root { color-scheme: light dark; --accent: #3b5bdb; --muted: #5c5f66; --line: #d0d4dc; --bg-soft: #f3f4f7; }
  @media (prefers-color-scheme: dark) { :root { --muted: #a6a9b2; --line: #3a3d45; --bg-soft: #22252b; } }
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2.5rem auto; padding: 0 1rem; }
  h1 { margin: 0 0 .25rem; font-size: 1.9rem; }
  .lead { color: var(--muted); margin-top: 0; }
  code, pre { background: var(--bg-soft); border-radius: 6px; }
  code { padding: .1em .35em; }
  pre { padding: .8rem 1rem; overflow-x: auto; }
  fieldset { border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.2rem 1.2rem; margin: 1.5rem 0; }
  legend { font-weight: 600; padding: 0 .4rem; }
  label { display: block; font-size: .9rem; margin: .6rem 0 .25rem; }
  .row { display: flex; gap: .5rem; flex-wrap: wrap; }
  .row > input, .row > select { flex: 1 1 12rem; }
  input, select, button { font: inherit; padding: .55rem .75rem; border-radius: 8px; border: 1px solid var(--line); min-height: 44px; box-sizing: border-box; }
  button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
  button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid #f59f00; outline-offset: 2px; }
  #state { font-weight: 600; }
  #state[data-state="open"] { color: #2b8a3e; }
  #state[data-state="reconnecting"], #state[data-state="connecting"] { color: #e67700; }
  #state[data-state="closed"] { color: #c92a2a; }
  #log { list-style: none; padding: 0; margin: .8rem 0 0; max-height: 16rem; overflow-y: auto; font-family: ui-monospace, monospace; font-size: .9rem; }
  #log li { padding: .3rem .1rem; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
  #log .error { color: #c92a2a; }
  .muted { color: var(--muted); font-size: .9rem; }
</style>
</head>
<body>
<h1>Perigee is running</h1>
<p class="lead">STOMP for browsers over every transport, on an embedded broker.</p>

<fieldset>
  <legend>Live console</legend>
  <p aria-live="polite">Connection: <span id="state" data-state="connecting">connecting…</span> <span id="transport" class="muted"></span></p>
  <label for="transport-choice">Transport</label>
  <div class="row">
    <select id="transport-choice">
      <option value="">automatic (best first, with fallback)</option>
      <option>websocket</option><option>sockjs-websocket</option><option>eventsource</option>
      <option>xhr-streaming</option><option>htmlfile</option><option>xhr-polling</option>
      <option>jsonp-polling</option><option>short-polling</option>
    </select>
    <button id="reconnect" type="button">Reconnect</button>
  </div>
  <form id="subscribe-form">
    <label for="destination">Destination</label>
    <div class="row">
      <input id="destination" value="/demo/chat" autocomplete="off" required>
      <button type="submit">Subscribe</button>
    </div>
  </form>
  <form id="publish-form">
    <label for="body">Message</label>
    <div class="row">
      <input id="body" placeholder="Hello, world" autocomplete="off" required>
      <button type="submit">Publish</button>
    </div>
  </form>
  <ul id="log" aria-live="polite" aria-label="Messages and events"></ul>
  <p class="muted">Open this page in a second tab and publish: both tabs get the message. The demo
  configuration lets browsers subscribe and publish under <code>/demo/**</code>; everything else is
  denied, as it is by default.</p>
</fieldset>

<h2>Use it</h2>
<p>From a page:</p>
<pre><code>&lt;script src="${prefix}/perigee.js"&gt;&lt;/script&gt;
&lt;script&gt;
  const client = Perigee.connect('${prefix || '/'}');
  client.subscribe('/demo/chat', (message) =&gt; console.log(message.text));
  client.publish('/demo/chat', 'hello');
&lt;/script&gt;</code></pre>
<p>From any STOMP client, on <code>${stomp}</code>, for example:</p>
<pre><code>npm run perigee -- publish /demo/chat 'hello from the command line'</code></pre>
<p class="muted">Health and counters: <a href="${prefix}/healthz"><code>${prefix}/healthz</code></a>; for Prometheus, <code>${prefix}/metrics</code> once <code>[metrics] access</code> allows it</p>

<script src="${prefix}/perigee.js"></script>
<script>
(function () {
  var base = location.origin + '${prefix}';
  var log = document.getElementById('log');
  var stateText = document.getElementById('state');
  var transportText = document.getElementById('transport');
  var choice = document.getElementById('transport-choice');
  var client, subscriptions = [];
  function line(text, isError) {
    var item = document.createElement('li');
    item.textContent = new Date().toLocaleTimeString() + '  ' + text;
    if (isError) item.className = 'error';
    log.prepend(item);
  }
  function start() {
    var options = choice.value ? { transports: [choice.value] } : {};
    client = Perigee.connect(base, options);
    client.on('state', function (change) {
      stateText.textContent = change.state;
      stateText.dataset.state = change.state;
      transportText.textContent = change.transport ? 'via ' + change.transport : '';
      if (change.reason) line(change.state + ': ' + change.reason, change.state !== 'open');
    });
    client.on('error', function (error) { line(error.message, true); });
    subscribe('/demo/chat');
  }
  function subscribe(destination) {
    var cancel = client.subscribe(destination, function (message) {
      line(message.destination + ': ' + message.text);
    });
    cancel.ready.then(function () { line('subscribed to ' + destination); }, function (error) { line(error.message, true); });
    subscriptions.push(cancel);
  }
  document.getElementById('subscribe-form').addEventListener('submit', function (event) {
    event.preventDefault();
    subscribe(document.getElementById('destination').value.trim());
  });
  document.getElementById('publish-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var input = document.getElementById('body');
    var destination = document.getElementById('destination').value.trim();
    client.publish(destination, input.value).then(function () { input.value = ''; }, function (error) { line(error.message, true); });
  });
  document.getElementById('reconnect').addEventListener('click', function () {
    subscriptions = [];
    client.disconnect().then(start, start);
  });
  start();
})();
</script>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}
