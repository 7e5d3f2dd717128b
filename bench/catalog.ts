/**
 * Every row the benchmark can measure: which server runs (and how), which transport, and which
 * load-generator driver speaks to it. Scenarios pick their rows from here.
 */

/** The server processes the bench can start. */
export type ServerKind =
  | 'raw-ws'
  | 'ws'
  | 'raw-sse'
  | 'socketio'
  | 'sockjs'
  | 'perigee'
  | 'rabbitmq'
  | 'pushpin'
  | 'nchan';

export const NODE_SERVER_KINDS: readonly ServerKind[] = [
  'raw-ws',
  'ws',
  'raw-sse',
  'socketio',
  'sockjs',
  'perigee',
];

/**
 * Servers started afresh for every run, because they start in about a second: each run's memory
 * figure is then what its N connections cost a fresh process. RabbitMQ takes seconds to start and
 * keeps running; a server that ran before reuses the memory an earlier run freed, so its memory is
 * read on its first run only.
 */
export const FRESH_PER_RUN_KINDS: readonly ServerKind[] = [
  ...NODE_SERVER_KINDS,
  'pushpin',
  'nchan',
];

/** SockJS transports, as both sockjs-node and Perigee's `/sockjs` name them in URLs. */
export type SockJSTransport =
  'websocket' | 'xhr-streaming' | 'eventsource' | 'htmlfile' | 'xhr-polling' | 'jsonp-polling';

/** What a client speaks once its transport is open. */
export type Inner =
  /** Nothing: open means subscribed (the topic is in the URL). */
  | 'none'
  /** Subscribed when the server sends {@link READY_TOKEN}; sockjs-node clients first send `sub TOPIC`. */
  | 'ready-token'
  /** STOMP 1.2: CONNECT, SUBSCRIBE with a receipt; subscribed at the RECEIPT. */
  | 'stomp'
  /** engine.io 4 / socket.io 4 packets; subscribed at the namespace CONNECT answer. */
  | 'socketio';

export type DriverSpec =
  | { kind: 'websocket'; path: string; subprotocol?: string; inner: Inner }
  | {
      kind: 'sockjs';
      /** The SockJS root: `/sockjs`, or Perigee's `/poll` for short polling. */
      base: string;
      transport: SockJSTransport;
      inner: 'stomp' | 'ready-token';
      shortPolling?: boolean;
    }
  | { kind: 'sse'; path: string }
  | { kind: 'longpoll'; flavor: 'nchan' | 'pushpin'; path: string };

/** `{topic}` in a path is replaced by the client's topic. */
export const TOPIC_PLACEHOLDER = '{topic}';
export const READY_TOKEN = 'subscribed-ok';

/** Transport labels used in plots and tables (DESIGN.md §4 names, plus the peers' own). */
export type TransportLabel =
  | 'websocket'
  | 'sockjs-websocket'
  | 'eventsource'
  | 'xhr-streaming'
  | 'htmlfile'
  | 'xhr-polling'
  | 'jsonp-polling'
  | 'short-polling'
  | 'long-poll';

export interface TargetInfo {
  id: string;
  server: ServerKind;
  transport: TransportLabel;
  /** `baseline` rows are the Node limit; `peer` rows are what a user would pick instead. */
  group: 'baseline' | 'peer' | 'perigee';
  driver: DriverSpec;
  /** STOMP destination for a topic name (STOMP rows only). */
  destination?: (topic: string) => string;
  /** What serves it, for the report. */
  serverText: string;
  /** What the load generator speaks, for the report. */
  driverText: string;
}

const WS_DRIVER = 'hand-rolled WebSocket client framing on net.Socket';
const SOCKJS_HTTP_DRIVER = 'SockJS framing over node:http requests (receive + xhr_send)';

const perigeeDestination = (topic: string): string => `/bench/${topic}`;

function perigeeSockJS(transport: SockJSTransport): TargetInfo {
  const label: TransportLabel = transport === 'websocket' ? 'sockjs-websocket' : transport;
  return {
    id: `perigee/${label}`,
    server: 'perigee',
    transport: label,
    group: 'perigee',
    driver: { kind: 'sockjs', base: '/sockjs', transport, inner: 'stomp' },
    destination: perigeeDestination,
    serverText: 'createBroker + createGateway (src/), /sockjs',
    driverText:
      transport === 'websocket'
        ? `${WS_DRIVER}, SockJS framing, STOMP 1.2 frames`
        : `${SOCKJS_HTTP_DRIVER}, STOMP 1.2 frames`,
  };
}

function sockjsNode(transport: SockJSTransport): TargetInfo {
  return {
    id: `sockjs-node/${transport}`,
    server: 'sockjs',
    transport: transport === 'websocket' ? 'sockjs-websocket' : transport,
    group: 'peer',
    driver: { kind: 'sockjs', base: '/sockjs', transport, inner: 'ready-token' },
    serverText: 'sockjs (sockjs-node) 0.3, conn.write per client',
    driverText: transport === 'websocket' ? `${WS_DRIVER}, SockJS framing` : SOCKJS_HTTP_DRIVER,
  };
}

const SOCKJS_TRANSPORTS: readonly SockJSTransport[] = [
  'websocket',
  'xhr-streaming',
  'eventsource',
  'htmlfile',
  'xhr-polling',
  'jsonp-polling',
];

const ALL_TARGETS: readonly TargetInfo[] = [
  {
    id: 'raw-ws',
    server: 'raw-ws',
    transport: 'websocket',
    group: 'baseline',
    driver: { kind: 'websocket', path: `/ws?topic=${TOPIC_PLACEHOLDER}`, inner: 'none' },
    serverText: 'node:http upgrade by hand; frame built once per message, socket.write per client',
    driverText: WS_DRIVER,
  },
  {
    id: 'ws',
    server: 'ws',
    transport: 'websocket',
    group: 'baseline',
    driver: { kind: 'websocket', path: `/ws?topic=${TOPIC_PLACEHOLDER}`, inner: 'none' },
    serverText: 'ws 8 WebSocketServer, ws.send per client (no permessage-deflate)',
    driverText: WS_DRIVER,
  },
  {
    id: 'raw-sse',
    server: 'raw-sse',
    transport: 'eventsource',
    group: 'baseline',
    driver: { kind: 'sse', path: `/sse?topic=${TOPIC_PLACEHOLDER}` },
    serverText: 'node:http, text/event-stream; event built once per message, res.write per client',
    driverText: 'node:http GET, SSE stream scanned',
  },
  {
    id: 'socket.io',
    server: 'socketio',
    transport: 'websocket',
    group: 'peer',
    driver: {
      kind: 'websocket',
      path: `/socket.io/?EIO=4&transport=websocket&topic=${TOPIC_PLACEHOLDER}`,
      inner: 'socketio',
    },
    serverText: 'socket.io 4 (transports: websocket), io.to(room).emit',
    driverText: `${WS_DRIVER}, engine.io 4 / socket.io 4 packets`,
  },
  ...SOCKJS_TRANSPORTS.map(sockjsNode),
  {
    id: 'perigee/websocket',
    server: 'perigee',
    transport: 'websocket',
    group: 'perigee',
    driver: { kind: 'websocket', path: '/stomp', subprotocol: 'v12.stomp', inner: 'stomp' },
    destination: perigeeDestination,
    serverText: 'createBroker + createGateway (src/), /stomp, broker.publish in-process',
    driverText: `${WS_DRIVER}, STOMP 1.2 frames`,
  },
  ...SOCKJS_TRANSPORTS.map(perigeeSockJS),
  {
    id: 'perigee/short-polling',
    server: 'perigee',
    transport: 'short-polling',
    group: 'perigee',
    driver: {
      kind: 'sockjs',
      base: '/poll',
      transport: 'xhr-polling',
      inner: 'stomp',
      shortPolling: true,
    },
    destination: perigeeDestination,
    serverText: 'createBroker + createGateway (src/), /poll',
    driverText: `${SOCKJS_HTTP_DRIVER}, STOMP 1.2 frames; waits the poll interval after an empty poll`,
  },
  {
    id: 'rabbitmq-web-stomp',
    server: 'rabbitmq',
    transport: 'websocket',
    group: 'peer',
    driver: { kind: 'websocket', path: '/ws', subprotocol: 'v12.stomp', inner: 'stomp' },
    destination: (topic) => `/topic/${topic}`,
    serverText: 'RabbitMQ rabbitmq_web_stomp (private node, +S 1:1); published over STOMP/TCP',
    driverText: `${WS_DRIVER}, STOMP 1.2 frames`,
  },
  {
    id: 'pushpin/eventsource',
    server: 'pushpin',
    transport: 'eventsource',
    group: 'peer',
    driver: { kind: 'sse', path: `/sse?topic=${TOPIC_PLACEHOLDER}` },
    serverText: 'Pushpin (GRIP Grip-Hold: stream) in front of a Node origin; HTTP publish',
    driverText: 'node:http GET, SSE stream scanned',
  },
  {
    id: 'pushpin/long-poll',
    server: 'pushpin',
    transport: 'long-poll',
    group: 'peer',
    driver: { kind: 'longpoll', flavor: 'pushpin', path: `/lp?topic=${TOPIC_PLACEHOLDER}` },
    serverText: 'Pushpin (GRIP Grip-Hold: response) in front of a Node origin; HTTP publish',
    driverText: 'node:http GET, a new request after each answer',
  },
  {
    id: 'pushpin/websocket',
    server: 'pushpin',
    transport: 'websocket',
    group: 'peer',
    driver: { kind: 'websocket', path: `/ws?topic=${TOPIC_PLACEHOLDER}`, inner: 'ready-token' },
    serverText: 'Pushpin (WebSocket-over-HTTP to a Node origin); HTTP publish',
    driverText: WS_DRIVER,
  },
  {
    id: 'nchan/eventsource',
    server: 'nchan',
    transport: 'eventsource',
    group: 'peer',
    driver: { kind: 'sse', path: `/sub/${TOPIC_PLACEHOLDER}` },
    serverText: 'nginx + nchan, 1 worker; HTTP publish',
    driverText: 'node:http GET (Accept: text/event-stream), SSE stream scanned',
  },
  {
    id: 'nchan/long-poll',
    server: 'nchan',
    transport: 'long-poll',
    group: 'peer',
    driver: { kind: 'longpoll', flavor: 'nchan', path: `/sub/${TOPIC_PLACEHOLDER}` },
    serverText: 'nginx + nchan, 1 worker; HTTP publish',
    driverText: 'node:http GET with If-Modified-Since / If-None-Match of the last answer',
  },
  {
    id: 'nchan/websocket',
    server: 'nchan',
    transport: 'websocket',
    group: 'peer',
    driver: { kind: 'websocket', path: `/sub/${TOPIC_PLACEHOLDER}`, inner: 'none' },
    serverText: 'nginx + nchan, 1 worker; HTTP publish',
    driverText: WS_DRIVER,
  },
];

export type TargetId = string;

export const TARGETS: ReadonlyMap<TargetId, TargetInfo> = new Map(
  ALL_TARGETS.map((target) => [target.id, target]),
);

export function targetInfo(id: TargetId): TargetInfo {
  const info = TARGETS.get(id);
  if (!info) throw new Error(`unknown target ${id}`);
  return info;
}

export const SCENARIOS = ['idle', 'fanout', 'topics', 'storm', 'transports'] as const;
export type Scenario = (typeof SCENARIOS)[number];

const PERIGEE_TRANSPORT_ROWS = ALL_TARGETS.filter((target) => target.group === 'perigee').map(
  (target) => target.id,
);

/**
 * Fan-out rows measured at 10k subscribers and more by default: the reference rows and
 * the ones its targets compare. The rest run at the smaller N, to keep the default under 15 min.
 */
export const LARGE_FANOUT_TARGETS: readonly TargetId[] = [
  'raw-ws',
  'ws',
  'socket.io',
  'perigee/websocket',
  'rabbitmq-web-stomp',
];

/** Which rows each scenario measures by default. */
export const SCENARIO_TARGETS: Readonly<Record<Scenario, readonly TargetId[]>> = {
  idle: ['raw-ws', 'perigee/websocket'],
  fanout: [
    'raw-ws',
    'ws',
    'raw-sse',
    'socket.io',
    'sockjs-node/websocket',
    'perigee/websocket',
    'perigee/eventsource',
    'rabbitmq-web-stomp',
    'pushpin/eventsource',
    'pushpin/websocket',
    'nchan/eventsource',
    'nchan/websocket',
  ],
  topics: ['raw-ws', 'socket.io', 'perigee/websocket', 'rabbitmq-web-stomp'],
  storm: LARGE_FANOUT_TARGETS,
  transports: [
    ...PERIGEE_TRANSPORT_ROWS,
    'raw-sse',
    ...SOCKJS_TRANSPORTS.map((transport) => `sockjs-node/${transport}`),
    'pushpin/long-poll',
    'nchan/long-poll',
  ],
};

/** Rows that `--quick` must produce (with figures, or a reason): the required rows. */
export const REQUIRED_TARGETS: readonly TargetId[] = [
  'raw-ws',
  'ws',
  'socket.io',
  'sockjs-node/websocket',
  'rabbitmq-web-stomp',
  ...PERIGEE_TRANSPORT_ROWS,
];
