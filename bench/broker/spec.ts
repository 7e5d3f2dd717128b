/** What the orchestrator (main.ts) asks of one load-generator process, and what it reports back. */

export type Measurement = 'throughput' | 'latency';

export interface StompTarget {
  host: string;
  port: number;
  /** CONNECT's `host` header: RabbitMQ reads it as the virtual host. */
  virtualHost: string;
  login?: string;
  passcode?: string;
}

export interface LoadSpec {
  measurement: Measurement;
  target: StompTarget;
  destination: string;
  subscribers: number;
  warmupMs: number;
  durationMs: number;
  /** Throughput: messages the publisher may be ahead of the slowest subscriber. */
  window: number;
  /** Latency: deliveries per second across all subscribers (the publish rate times K). */
  deliveriesPerSecond: number;
  /** The broker's process, to measure the CPU it used during the window; 0 if unknown. */
  serverPid: number;
  /** Kernel clock ticks per second, the unit of /proc/PID/stat times. */
  clockTicks: number;
  /** The load generator gives up (and reports why) after this long. */
  deadlineMs: number;
}

export interface LatencySummary {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface LoadSuccess {
  ok: true;
  measurement: Measurement;
  /** MESSAGE frames received by all subscribers during the measured window. */
  deliveries: number;
  seconds: number;
  deliveriesPerSecond: number;
  /** Messages published during the measured window. */
  published: number;
  latency?: LatencySummary;
  /** Share of one core used during the window; null when it could not be read. */
  serverCpu: number | null;
  loadGeneratorCpu: number;
}

export interface LoadFailure {
  ok: false;
  measurement: Measurement;
  reason: string;
}

export type LoadResult = LoadSuccess | LoadFailure;
