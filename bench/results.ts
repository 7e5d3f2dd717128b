/** The shape of bench/results/<timestamp>.json, and the summaries across runs. */
import type { Scenario, ServerKind, TargetId, TransportLabel } from './catalog.js';
import type {
  LatencyWindow,
  LoadOutcome,
  StormFigures,
  ThroughputFigures,
  TopicMode,
} from './ipc.js';

export interface MemoryFigures {
  rssBefore: number | null;
  rssAfter: number | null;
  heapBefore: number | null;
  heapAfter: number | null;
  /** (RSS after N idle connections − RSS before) / N, bytes. */
  rssPerConnection: number | null;
  /** Heap used after a full GC, the same way; null where the server has no JS heap. */
  heapPerConnection: number | null;
}

/** A run's note when a server that ran an earlier run was not read for memory (runner.ts). */
export const MEMORY_NOT_READ_NOTE = 'memory not read: the server ran an earlier run';

export interface RunRecord {
  run: number;
  memory?: MemoryFigures | { failed: string };
  storm?: StormFigures;
  throughput?: LoadOutcome['throughput'];
  latency?: LoadOutcome['latency'];
  /** Why the whole run failed, if it did. */
  failure?: string;
  notes: string[];
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many runs gave a figure. */
  n: number;
}

export interface ConfigurationSummary {
  deliveriesPerSecond?: Spread;
  serverCpu?: Spread;
  loadGeneratorCpu?: Spread;
  cpuMicrosPerDelivery?: Spread;
  wireBytesPerDelivery?: Spread;
  p50Ms?: Spread;
  p99Ms?: Spread;
  /** At the fixed load: bytes and server CPU per delivery. */
  equalLoadWireBytesPerDelivery?: Spread;
  equalLoadCpuMicrosPerDelivery?: Spread;
  gaps?: Spread;
  rssPerConnection?: Spread;
  heapPerConnection?: Spread;
  stormMs?: Spread;
  stormErrors?: Spread;
  /** Runs whose latency window delivered under 90% of the fixed load (a backlog formed). */
  latencyNotSustained?: number;
  /** All runs' latency histograms merged: [upper bound ms, count]. */
  latencyHistogram?: [number, number][];
}

export interface ConfigurationResult {
  target: TargetId;
  server: ServerKind;
  transport: TransportLabel;
  group: 'baseline' | 'peer' | 'perigee';
  serverText: string;
  driverText: string;
  clients: number;
  topicMode: TopicMode;
  phases: ('throughput' | 'latency')[];
  scenarios: Scenario[];
  /** Credit window in messages (rounds) for the closed loop. */
  window: number;
  /** Messages (rounds) per second in the latency window. */
  latencyRate: number;
  /** Set when the configuration could not run at all. */
  notRun?: string;
  runs: RunRecord[];
  summary: ConfigurationSummary;
}

export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  seconds: number;
  command: string;
  options: Record<string, unknown>;
  machine: Record<string, unknown>;
  servers: Record<string, { about?: string; notRun?: string; notes: string[] }>;
  configurations: ConfigurationResult[];
  notes: string[];
}

export function spread(values: readonly number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

function okThroughput(run: RunRecord): ThroughputFigures | undefined {
  return run.throughput && !('failed' in run.throughput) ? run.throughput : undefined;
}

function okLatency(run: RunRecord): LatencyWindow | undefined {
  return run.latency && !('failed' in run.latency) ? run.latency : undefined;
}

function okMemory(run: RunRecord): MemoryFigures | undefined {
  return run.memory && !('failed' in run.memory) ? run.memory : undefined;
}

function collect<T>(
  runs: readonly RunRecord[],
  pick: (run: RunRecord) => T | undefined,
  value: (item: T) => number | null,
): number[] {
  const out: number[] = [];
  for (const run of runs) {
    const item = pick(run);
    if (item === undefined) continue;
    const number = value(item);
    if (number !== null && Number.isFinite(number)) out.push(number);
  }
  return out;
}

export function summarize(runs: readonly RunRecord[]): ConfigurationSummary {
  const summary: ConfigurationSummary = {};
  const put = <K extends keyof ConfigurationSummary>(
    key: K,
    value: ConfigurationSummary[K],
  ): void => {
    if (value !== undefined) summary[key] = value;
  };
  put('deliveriesPerSecond', spread(collect(runs, okThroughput, (t) => t.deliveriesPerSecond)));
  put('serverCpu', spread(collect(runs, okThroughput, (t) => t.serverCpu)));
  put('loadGeneratorCpu', spread(collect(runs, okThroughput, (t) => t.loadGeneratorCpu)));
  put(
    'cpuMicrosPerDelivery',
    spread(collect(runs, okThroughput, (t) => t.serverCpuMicrosPerDelivery)),
  );
  put('wireBytesPerDelivery', spread(collect(runs, okThroughput, (t) => t.wireBytesPerDelivery)));
  put('p50Ms', spread(collect(runs, okLatency, (l) => l.p50Ms)));
  put('p99Ms', spread(collect(runs, okLatency, (l) => l.p99Ms)));
  put(
    'equalLoadWireBytesPerDelivery',
    spread(collect(runs, okLatency, (l) => l.wireBytesPerDelivery)),
  );
  put(
    'equalLoadCpuMicrosPerDelivery',
    spread(collect(runs, okLatency, (l) => l.serverCpuMicrosPerDelivery)),
  );
  put(
    'gaps',
    spread(
      runs.flatMap((run) => {
        const throughput = okThroughput(run);
        const latency = okLatency(run);
        return throughput || latency ? [(throughput?.gaps ?? 0) + (latency?.gaps ?? 0)] : [];
      }),
    ),
  );
  put('rssPerConnection', spread(collect(runs, okMemory, (m) => m.rssPerConnection)));
  put('heapPerConnection', spread(collect(runs, okMemory, (m) => m.heapPerConnection)));
  put(
    'stormMs',
    spread(
      collect(
        runs,
        (run) => run.storm,
        (s) => s.ms,
      ),
    ),
  );
  put(
    'stormErrors',
    spread(
      collect(
        runs,
        (run) => run.storm,
        (s) => s.errors,
      ),
    ),
  );
  const notSustained = runs.filter((run) => okLatency(run)?.sustained === false).length;
  if (notSustained > 0) summary.latencyNotSustained = notSustained;
  const merged = new Map<number, number>();
  for (const run of runs) {
    for (const [upper, count] of okLatency(run)?.histogram ?? []) {
      const key = Number(upper.toPrecision(6));
      merged.set(key, (merged.get(key) ?? 0) + count);
    }
  }
  if (merged.size > 0) summary.latencyHistogram = [...merged.entries()].sort((a, b) => a[0] - b[0]);
  return summary;
}
