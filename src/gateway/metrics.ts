import type { IncomingMessage, ServerResponse } from 'node:http';
import { readdirSync } from 'node:fs';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { counter, gauge, renderMetrics, type Metric } from '../metrics.js';
import { TRANSPORT_NAMES } from './transport.js';

/**
 * `/metrics`: Prometheus text exposition (format 0.0.4). Built at scrape time from the gateway's
 * counters and gauges and whatever the embedder adds (the embedded broker's figures), so that no
 * per-message path pays for it beyond a counter increment.
 */

/**
 * Who may read `/metrics`:
 * - `off` (default): the gateway does not serve it; the path is left to the application.
 * - `loopback`: requests from this machine only. One that names a proxy (`Forwarded`, `Via`,
 *   `X-Forwarded-*`, `X-Real-IP`) is refused, since behind a local reverse proxy every client
 *   looks local. A proxy that adds none of these headers defeats the check: do not route
 *   `/metrics` through one.
 * - `open`: anyone who reaches the gateway (put the scraper's network rules in front of it).
 */
export type MetricsAccess = 'loopback' | 'open' | 'off';

/** Events the gateway counts for `/metrics`; one increment each, off the per-message path. */
export interface GatewayCounters {
  connectionsOpened: number;
  sessionsOpened: number;
  sessionsResumed: number;
  /** Resumes refused because the session no longer held what the browser missed. */
  resumesTooLate: number;
  /** Connections dropped because the browser did not keep up (it reconnects and resumes). */
  slowConsumerDisconnects: number;
  heartBeatTimeouts: number;
}

export function newGatewayCounters(): GatewayCounters {
  return {
    connectionsOpened: 0,
    sessionsOpened: 0,
    sessionsResumed: 0,
    resumesTooLate: 0,
    slowConsumerDisconnects: 0,
    heartBeatTimeouts: 0,
  };
}

const PROXY_HEADERS = /^(forwarded|via|x-forwarded-[a-z-]+|x-real-ip)$/;

function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

/** Why `request` may not read `/metrics` under `access`, or undefined when it may. */
export function metricsRefusal(
  request: IncomingMessage,
  access: Exclude<MetricsAccess, 'off'>,
): { status: number; reason: string } | undefined {
  if (request.method !== 'GET' && request.method !== 'HEAD')
    return { status: 405, reason: 'Method not allowed: metrics are read with GET' };
  if (access === 'open') return undefined;
  const allowOthers =
    'to let other hosts read them, set [metrics] access = "open" in perigee.toml (metrics.access in createGateway)';
  if (!isLoopback(request.socket.remoteAddress))
    return { status: 403, reason: `Metrics are served to this machine only; ${allowOthers}` };
  const relayed = Object.keys(request.headers).find((name) => PROXY_HEADERS.test(name));
  if (relayed !== undefined)
    return {
      status: 403,
      reason: `Metrics are served to this machine only, and this request came through a proxy (its ${relayed} header); ${allowOthers}`,
    };
  return undefined;
}

export interface GatewayFigures {
  /** Open connections, by transport name. */
  connectionsByTransport: ReadonlyMap<string, number>;
  sessions: { attached: number; detached: number };
  counters: GatewayCounters;
}

export function gatewayMetrics(figures: GatewayFigures): Metric[] {
  // Every transport a browser may use (DESIGN.md §4) has a series, 0 while unused.
  const byTransport = new Map<string, number>(TRANSPORT_NAMES.map((name) => [name, 0]));
  for (const [name, count] of figures.connectionsByTransport) byTransport.set(name, count);
  const { counters } = figures;
  return [
    gauge(
      'perigee_gateway_connections',
      'Open browser connections, by transport.',
      [...byTransport].map(([transport, value]) => ({ labels: { transport }, value })),
    ),
    gauge(
      'perigee_gateway_sessions',
      'Gateway sessions: attached to a connection, or detached and waiting for a resume.',
      [
        { labels: { state: 'attached' }, value: figures.sessions.attached },
        { labels: { state: 'detached' }, value: figures.sessions.detached },
      ],
    ),
    counter(
      'perigee_gateway_connections_opened_total',
      'Browser connections accepted (before CONNECT).',
      counters.connectionsOpened,
    ),
    counter(
      'perigee_gateway_sessions_opened_total',
      'New gateway sessions (a CONNECT that did not resume).',
      counters.sessionsOpened,
    ),
    counter(
      'perigee_gateway_sessions_resumed_total',
      'CONNECTs that resumed a detached session without loss.',
      counters.sessionsResumed,
    ),
    counter(
      'perigee_gateway_resumes_too_late_total',
      'Resumes refused because the session no longer held every message the browser missed.',
      counters.resumesTooLate,
    ),
    counter(
      'perigee_gateway_slow_consumer_disconnects_total',
      'Connections dropped because the browser did not keep up (it reconnects and resumes).',
      counters.slowConsumerDisconnects,
    ),
    counter(
      'perigee_gateway_heart_beat_timeouts_total',
      'Connections closed because the browser went silent past its heart-beat.',
      counters.heartBeatTimeouts,
    ),
  ];
}

/** How often the loop-delay probe runs; a delay shorter than this may go unseen. */
const LOOP_PROBE_MS = 20;

/**
 * The process's own figures under the usual Prometheus names, and the event loop's: in a
 * real-time server a busy loop is late delivery for everyone, so it is worth a graph. The delay
 * comes from a probe timer that notes how late it runs (`monitorEventLoopDelay` records the gaps
 * between its own timer's runs, which hides a single long block behind its resolution); the
 * utilization is Node's own measure of the time the loop spent working.
 */
export class ProcessMetrics {
  private readonly startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  private readonly probe: NodeJS.Timeout;
  private expectedAt = performance.now() + LOOP_PROBE_MS;
  /** The longest delay since the previous scrape, in ms. */
  private worstDelay = 0;
  private utilizationFrom: EventLoopUtilization = performance.eventLoopUtilization();

  constructor() {
    this.probe = setInterval(() => {
      const now = performance.now();
      this.worstDelay = Math.max(this.worstDelay, now - this.expectedAt);
      this.expectedAt = now + LOOP_PROBE_MS;
    }, LOOP_PROBE_MS);
    this.probe.unref();
  }

  stop(): void {
    clearInterval(this.probe);
  }

  collect(): Metric[] {
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    // A probe that is due counts as late already: a loop blocked right now shows.
    const worstDelay = Math.max(this.worstDelay, performance.now() - this.expectedAt, 0);
    const utilization = performance.eventLoopUtilization(this.utilizationFrom).utilization;
    this.worstDelay = 0;
    this.utilizationFrom = performance.eventLoopUtilization();
    const metrics: Metric[] = [
      counter(
        'process_cpu_seconds_total',
        'User and system CPU time spent, in seconds.',
        (cpu.user + cpu.system) / 1e6,
      ),
      gauge('process_resident_memory_bytes', 'Resident memory size, in bytes.', [
        { value: memory.rss },
      ]),
      gauge('process_start_time_seconds', 'Start time of the process, in seconds since 1970.', [
        { value: this.startSeconds },
      ]),
      gauge('nodejs_heap_used_bytes', 'V8 heap in use, in bytes.', [{ value: memory.heapUsed }]),
      gauge('nodejs_heap_total_bytes', 'V8 heap reserved, in bytes.', [
        { value: memory.heapTotal },
      ]),
      gauge(
        'nodejs_eventloop_delay_max_seconds',
        `The longest the event loop kept a timer waiting since the previous scrape (checked every ${LOOP_PROBE_MS} ms, so a shorter wait may read low).`,
        [{ value: worstDelay / 1000 }],
      ),
      gauge(
        'nodejs_eventloop_utilization_ratio',
        'Share of the time since the previous scrape the event loop spent working (0 to 1).',
        [{ value: Number.isFinite(utilization) ? utilization : 0 }],
      ),
    ];
    const openFds = countOpenFds();
    if (openFds !== undefined)
      metrics.push(gauge('process_open_fds', 'Open file descriptors.', [{ value: openFds }]));
    return metrics;
  }
}

/** Open descriptors, where the system says (Linux's /proc); undefined elsewhere. */
function countOpenFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

/** Answers a scrape. */
export function sendMetrics(
  request: IncomingMessage,
  response: ServerResponse,
  metrics: readonly Metric[],
): void {
  const body = renderMetrics(metrics);
  response.writeHead(200, {
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}
