/**
 * What the orchestrator (main.ts), the publishers (a Node server under test, or the publisher
 * adapter of an external one) and the load generator say to each other over child_process IPC.
 */
import type { TargetId } from './catalog.js';

/** `one`: every client on the same topic (fan-out). `each`: client i alone on topic i. */
export type TopicMode = 'one' | 'each';

export interface TopicPlan {
  mode: TopicMode;
  /** Topic names: `${prefix}` for `one`, `${prefix}-${i}` for `each`. */
  prefix: string;
  clients: number;
}

export function topicName(plan: TopicPlan, client: number): string {
  return plan.mode === 'one' ? plan.prefix : `${plan.prefix}-${client}`;
}

/** Orchestrator → publisher. Requests with an `id` get a {@link PublisherReply}. */
export type PublisherCommand =
  | { id: number; cmd: 'prepare'; topics: TopicPlan }
  /** Publish until `upTo` messages (fan-out) or rounds (one message to every topic) are out. */
  | { cmd: 'credit'; upTo: number }
  | { id: number; cmd: 'rate'; perSecond: number }
  | { id: number; cmd: 'halt' }
  /** RSS and heap after a full GC; Node servers only. */
  | { id: number; cmd: 'memory' }
  /** Resolves once the server itself counts this many subscribers (for clients that cannot tell). */
  | { id: number; cmd: 'subscribers'; count: number; timeoutMs: number }
  | { id: number; cmd: 'stop' };

export type PublisherReply =
  | { id: number; ok: true; sent?: number; rss?: number; heapUsed?: number; note?: string }
  | { id: number; ok: false; error: string };

/** The first message of a publisher process. */
export interface PublisherReady {
  type: 'ready';
  port: number;
  /** Anything the report should say about the server (versions, settings). */
  about: string;
}

export interface StormFigures {
  /** From the first connect to the last subscription confirmed, all attempted at once. */
  ms: number;
  /** Clients that failed in the storm (then retried one by one, so the runs still have N). */
  errors: number;
  firstError?: string;
  /** Clients that failed in the storm and again when retried. */
  lost: number;
  /** Clients of the storm that were still not subscribed at its deadline. */
  timedOut?: number;
}

export interface LatencyFigures {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Log-bucketed histogram: [upper bound in ms, count], ascending; enough for a CDF. */
  histogram: [number, number][];
}

export interface ThroughputFigures {
  deliveries: number;
  seconds: number;
  deliveriesPerSecond: number;
  /** Bytes both ways on every load-generator socket, per delivered message; null if none arrived. */
  wireBytesPerDelivery: number | null;
  /** Server CPU µs per delivered message (all of the server's processes); null if unreadable. */
  serverCpuMicrosPerDelivery: number | null;
  /** Share of one core used by the server and by the load generator during the window. */
  serverCpu: number | null;
  loadGeneratorCpu: number;
  /** Messages a client never received (a gap in its sequence); polling peers may drop some. */
  gaps: number;
}

/** The fixed-load window: latency, and the costs at that same load. */
export interface LatencyWindow extends LatencyFigures {
  wireBytesPerDelivery: number | null;
  serverCpuMicrosPerDelivery: number | null;
  deliveriesPerSecond: number;
  gaps: number;
  /** Whether the server delivered at least 90% of the fixed load; if not, latency includes a backlog. */
  sustained: boolean;
}

export interface LoadOutcome {
  ok: boolean;
  reason?: string;
  storm?: StormFigures;
  throughput?: ThroughputFigures | { failed: string };
  latency?: LatencyWindow | { failed: string };
}

/** Load generator → orchestrator. */
export type LoadMessage =
  | { type: 'connected'; storm: StormFigures; connected: number }
  | { type: 'publish-credit' }
  | { type: 'position'; value: number }
  | { type: 'publish-rate'; perSecond: number }
  | { type: 'halt' }
  | { type: 'outcome'; outcome: LoadOutcome };

/** Orchestrator → load generator. */
export type LoadCommand =
  | { type: 'start' }
  | { type: 'halted'; sent: number }
  | { type: 'publish-started' }
  | { type: 'finish' };

export interface LoadSpec {
  target: TargetId;
  host: string;
  port: number;
  topics: TopicPlan;
  /** Empty: connect, hold for the memory reading, close (idle and storm). */
  phases: ('throughput' | 'latency')[];
  warmupMs: number;
  throughputMs: number;
  /** Publishing at the fixed rate before the latency window; see latencyWindow() in runner.ts. */
  latencyWarmupMs: number;
  latencyMs: number;
  /** Messages (or rounds) per second during the latency phase. */
  latencyRate: number;
  serverPids: number[];
  clockTicks: number;
  /** Short polling: the wait after an empty poll, as Perigee's client does. */
  pollIntervalMs: number;
  /** Storm connects per client are given this long. */
  connectTimeoutMs: number;
}
