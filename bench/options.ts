import { parseArgs } from 'node:util';
import { SCENARIOS, TARGETS, type Scenario, type TargetId } from './catalog.js';

/** The machine's hard limit is 20,000 descriptors per process; each side keeps some for itself. */
export const MAX_CLIENTS = 19_900;

export interface BenchOptions {
  help: boolean;
  quick: boolean;
  full: boolean;
  scenarios: Scenario[];
  /** Only these rows (ids, or a server prefix such as `perigee`); undefined = each scenario's own. */
  targets: TargetId[] | undefined;
  /** Only rows on these transports. */
  transports: string[] | undefined;
  /** Client counts per scenario. */
  clients: Record<Scenario, number[]>;
  runs: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Deliveries per second in every latency window, whatever the target and N. */
  latencyLoad: number;
  /** Deliveries the publisher may be ahead of the slowest subscriber in the closed loop. */
  windowDeliveries: number;
  pollIntervalMs: number;
  resultsDirectory: string | undefined;
  /** Only re-render the reports (HTML, Markdown) from this results file. */
  reportFrom: string | undefined;
  /** Rewrite the marked section of BENCHMARKS.md (default: yes, except with --quick). */
  markdown: boolean;
  /** Write a CPU profile of every Node server under test into this folder. */
  cpuProfileDirectory: string | undefined;
}

const DEFAULT_CLIENTS: Record<Scenario, number[]> = {
  idle: [MAX_CLIENTS],
  fanout: [1000, 10_000],
  topics: [1000],
  storm: [10_000],
  transports: [1000],
};

const QUICK_CLIENTS: Record<Scenario, number[]> = {
  idle: [300],
  fanout: [100],
  topics: [50],
  storm: [100],
  transports: [100],
};

const FULL_CLIENTS: Record<Scenario, number[]> = {
  idle: [1000, 10_000, MAX_CLIENTS],
  fanout: [1000, 10_000, MAX_CLIENTS],
  topics: [1000, 10_000],
  storm: [1000, 10_000, MAX_CLIENTS],
  transports: [1000, 10_000],
};

export const HELP_TEXT = `Usage: npm run bench -- [options]      (or: perigee bench [options])

"Does it scale?": Perigee's transports side by side with the Node limit (raw socket.write, ws.send,
raw SSE) and the peers (socket.io, sockjs-node, RabbitMQ Web-STOMP, Pushpin, nchan). Each server
runs pinned to core 0, the load generator to core 1, each run in fresh processes and connections.

Scenarios (--scenarios, default all):
  idle        memory per idle connection (RSS and heap after GC) at ${DEFAULT_CLIENTS.idle.join(', ')} clients;
              every other scenario also records it at its own N
  fanout      1 topic, N subscribers (N = ${DEFAULT_CLIENTS.fanout.join(', ')}): max deliveries/s (closed loop),
              p50/p99 latency at a fixed load equal for every target
  topics      N clients, each alone on its own topic (the quiz's per-player pattern), N = ${DEFAULT_CLIENTS.topics.join(', ')}
  storm       N clients connect and subscribe at once (N = ${DEFAULT_CLIENTS.storm.join(', ')}): time and errors;
              the connect phase of every run is such a storm too
  transports  the talk's comparison: Perigee on every transport (short polling to WebSocket) and the
              same transports of sockjs-node, at N = ${DEFAULT_CLIENTS.transports.join(', ')}: latency, deliveries/s, wire
              bytes and server CPU per delivered message, memory per connection

Options:
  --scenarios LIST      idle,fanout,topics,storm,transports
  --targets LIST        rows to run: ids (raw-ws, ws, raw-sse, socket.io, perigee/websocket, ...) or
                        a server prefix (perigee, sockjs-node, pushpin, nchan); see --list
  --transports LIST     only rows on these transports (websocket, eventsource, xhr-streaming, ...)
  --n LIST              client counts for every selected scenario (max ${MAX_CLIENTS})
  --runs N              runs per configuration; tables show the median [min–max] (default 3)
  --duration S          measured seconds of each throughput and latency window (default 1)
  --warmup S            seconds of publishing before a window is measured (default 0.3)
  --latency-load N      deliveries/s in every latency window (default 5000)
  --window N            deliveries the publisher may be ahead of the slowest subscriber (default 20000)
  --poll-interval MS    short polling's wait after an empty poll, as Perigee's client (default 1000)
  --results-dir DIR     where the JSON and HTML go (default bench/results)
  --report-from FILE    run nothing: rebuild the HTML report (and, with --markdown, the tables)
                        from a results JSON
  --no-markdown         do not rewrite the marked section of BENCHMARKS.md
  --markdown            rewrite it even with --quick
  --cpu-prof DIR        write a CPU profile of each Node server's run (node --cpu-prof) into DIR
  --quick               ~1 minute smoke run: small N, 1 run, short windows, every required row
  --full                the whole matrix: every row in every scenario, N up to ${MAX_CLIENTS}
  --list                print the rows and what each uses, then exit
  --help                this text

The broker-only benchmark (embedded broker vs RabbitMQ over STOMP/TCP) is: npm run bench:broker
`;

export class UsageError extends Error {}

export function parseOptions(args: string[]): BenchOptions & { list: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        quick: { type: 'boolean' },
        full: { type: 'boolean' },
        list: { type: 'boolean' },
        scenarios: { type: 'string' },
        targets: { type: 'string' },
        transports: { type: 'string' },
        n: { type: 'string' },
        runs: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        'latency-load': { type: 'string' },
        window: { type: 'string' },
        'poll-interval': { type: 'string' },
        'results-dir': { type: 'string' },
        'report-from': { type: 'string' },
        markdown: { type: 'boolean' },
        'no-markdown': { type: 'boolean' },
        'cpu-prof': { type: 'string' },
      },
    }));
  } catch (error) {
    // Node's messages run on with advice about '--'; the first sentence says what is wrong.
    const firstSentence = (error as Error).message.split('. ')[0] ?? String(error);
    throw new UsageError(`${firstSentence} (see --help)`);
  }
  const quick = values.quick ?? false;
  const full = values.full ?? false;
  if (quick && full) throw new UsageError('--quick and --full exclude each other');
  const base = quick ? QUICK_CLIENTS : full ? FULL_CLIENTS : DEFAULT_CLIENTS;
  const fixedClients =
    values.n === undefined ? undefined : integerList('--n', values.n, 1, MAX_CLIENTS);
  const clients = Object.fromEntries(
    SCENARIOS.map((scenario) => [scenario, fixedClients ?? base[scenario]]),
  ) as Record<Scenario, number[]>;
  if (values.markdown && values['no-markdown']) {
    throw new UsageError('--markdown and --no-markdown exclude each other');
  }
  return {
    help: values.help ?? false,
    list: values.list ?? false,
    quick,
    full,
    scenarios: scenarioList(values.scenarios),
    targets: values.targets === undefined ? undefined : targetList(values.targets),
    transports: values.transports === undefined ? undefined : transportList(values.transports),
    clients,
    runs: integer('--runs', values.runs, quick ? 1 : 3, 1, 100),
    warmupSeconds: seconds('--warmup', values.warmup, quick ? 0.2 : 0.3, 0),
    durationSeconds: seconds('--duration', values.duration, quick ? 0.5 : 1, 0.2),
    latencyLoad: integer('--latency-load', values['latency-load'], 5000, 1, 10_000_000),
    windowDeliveries: integer('--window', values.window, 20_000, 1, 10_000_000),
    pollIntervalMs: integer('--poll-interval', values['poll-interval'], 1000, 0, 60_000),
    resultsDirectory: values['results-dir'],
    reportFrom: values['report-from'],
    markdown: values.markdown ?? (values['no-markdown'] ? false : !quick),
    cpuProfileDirectory: values['cpu-prof'],
  };
}

function integer(
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
    throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

function seconds(flag: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > 600) {
    throw new UsageError(`${flag}: expected seconds from ${min} to 600, got "${text}"`);
  }
  return value;
}

function integerList(flag: string, text: string, min: number, max: number): number[] {
  return [...new Set(text.split(',').map((part) => integer(flag, part, 0, min, max)))];
}

function scenarioList(text: string | undefined): Scenario[] {
  if (text === undefined) return [...SCENARIOS];
  const names = text.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      throw new UsageError(
        `--scenarios: unknown scenario "${name}" (known: ${SCENARIOS.join(', ')})`,
      );
    }
  }
  return [...new Set(names as Scenario[])];
}

function targetList(text: string): TargetId[] {
  const out = new Set<TargetId>();
  for (const name of text.split(',').map((part) => part.trim())) {
    const matches = [...TARGETS.keys()].filter((id) => id === name || id.startsWith(`${name}/`));
    if (matches.length === 0) {
      throw new UsageError(`--targets: unknown row "${name}" (see --list)`);
    }
    for (const id of matches) out.add(id);
  }
  return [...out];
}

function transportList(text: string): string[] {
  const known = new Set([...TARGETS.values()].map((target) => target.transport));
  const names = text.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!known.has(name as never)) {
      throw new UsageError(
        `--transports: unknown transport "${name}" (known: ${[...known].join(', ')})`,
      );
    }
  }
  return names;
}
