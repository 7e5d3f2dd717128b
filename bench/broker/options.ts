import { parseArgs } from 'node:util';

export const TARGET_NAMES = ['embedded', 'rabbitmq'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export interface BenchOptions {
  help: boolean;
  runs: number;
  subscriberCounts: number[];
  targets: TargetName[];
  warmupSeconds: number;
  durationSeconds: number;
  /** Deliveries per second (all subscribers together) during the latency measurement. */
  latencyDeliveriesPerSecond: number;
  window: number;
  rabbitmqUrl: string;
  cpuProfile: boolean;
}

/**
 * About a third of the fewest deliveries/s RabbitMQ reached on one core here at any K (13–17k at
 * K=1 and K=100): a load both targets carry without queueing, so latency is not a backlog.
 */
const DEFAULT_LATENCY_RATE = 5000;
/** Deep enough to batch well, and at ~300 bytes a frame far below the broker's 1 MiB cap. */
const DEFAULT_WINDOW = 500;
const DEFAULT_RABBITMQ_URL = 'stomp://guest:guest@127.0.0.1:61623';
/** The machine's 20,000 descriptors, less what the broker and the rest need. */
const MAX_SUBSCRIBERS = 9000;

export const HELP_TEXT = `Usage: npm run bench:broker -- [options]

One publisher and K subscribers on one topic over TCP, 100-byte bodies. For each target and K:
  max throughput  closed loop, the publisher at most --window messages ahead of the slowest
                  subscriber; deliveries/s = MESSAGE frames received by all subscribers / time
  latency         a fixed --rate of deliveries/s for every target; p50/p99 over all deliveries
The broker runs on core 0, the load generator on core 1. Raw figures go to bench/results/.

Options:
  --runs N            runs per configuration; the table shows the median and min-max (default 3)
  --k LIST            subscriber counts (default 1,10,100)
  --targets LIST      embedded,rabbitmq (default both)
  --duration S        measured seconds per measurement, after --warmup (default 5)
  --warmup S          seconds before measuring (default 1)
  --rate N            deliveries/s during the latency measurement (default ${DEFAULT_LATENCY_RATE})
  --window N          messages the publisher may be ahead in the throughput run (default ${DEFAULT_WINDOW})
  --rabbitmq-url URL  RabbitMQ's STOMP listener (default ${DEFAULT_RABBITMQ_URL},
                      or PERIGEE_TEST_RABBITMQ_URL)
  --cpu-prof          profile the embedded broker (node --cpu-prof) and print its top functions
  --help              this text
`;

export class UsageError extends Error {}

export function parseOptions(args: string[]): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        runs: { type: 'string' },
        k: { type: 'string' },
        targets: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        rate: { type: 'string' },
        window: { type: 'string' },
        'rabbitmq-url': { type: 'string' },
        'cpu-prof': { type: 'boolean' },
      },
    }));
  } catch (error) {
    // Node's messages run on with advice about '--'; the first sentence says what is wrong.
    const firstSentence = (error as Error).message.split('. ')[0] ?? String(error);
    throw new UsageError(`${firstSentence} (see --help)`);
  }
  const rabbitmqUrl =
    values['rabbitmq-url'] ?? process.env.PERIGEE_TEST_RABBITMQ_URL ?? DEFAULT_RABBITMQ_URL;
  parseStompUrl(rabbitmqUrl, '--rabbitmq-url');
  return {
    help: values.help ?? false,
    runs: integer('--runs', values.runs, 3, 1, 100),
    subscriberCounts: integerList('--k', values.k ?? '1,10,100', 1, MAX_SUBSCRIBERS),
    targets: targetList(values.targets ?? TARGET_NAMES.join(',')),
    warmupSeconds: seconds('--warmup', values.warmup, 1, 0),
    durationSeconds: seconds('--duration', values.duration, 5, 0.1),
    latencyDeliveriesPerSecond: integer('--rate', values.rate, DEFAULT_LATENCY_RATE, 1, 10_000_000),
    window: integer('--window', values.window, DEFAULT_WINDOW, 1, 100_000),
    rabbitmqUrl,
    cpuProfile: values['cpu-prof'] ?? false,
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
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > 3600) {
    throw new UsageError(`${flag}: expected seconds from ${min} to 3600, got "${text}"`);
  }
  return value;
}

function integerList(flag: string, text: string, min: number, max: number): number[] {
  const values = text.split(',').map((part) => integer(flag, part, 0, min, max));
  return [...new Set(values)];
}

function targetList(text: string): TargetName[] {
  const names = text.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!(TARGET_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(
        `--targets: unknown target "${name}" (known: ${TARGET_NAMES.join(', ')})`,
      );
    }
  }
  return [...new Set(names as TargetName[])];
}

export interface StompUrl {
  host: string;
  port: number;
  login: string | undefined;
  passcode: string | undefined;
  virtualHost: string;
}

/** `stomp://login:passcode@host:port[/vhost]`; the virtual host defaults to RabbitMQ's `/`. */
export function parseStompUrl(text: string, flag: string): StompUrl {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${flag}: not a URL: "${text}"`);
  }
  if (url.protocol !== 'stomp:' || url.hostname === '' || url.port === '') {
    throw new UsageError(`${flag}: expected stomp://LOGIN:PASSCODE@HOST:PORT, got "${text}"`);
  }
  const path = decodeURIComponent(url.pathname.slice(1));
  return {
    host: url.hostname,
    port: Number(url.port),
    login: url.username === '' ? undefined : decodeURIComponent(url.username),
    passcode: url.password === '' ? undefined : decodeURIComponent(url.password),
    virtualHost: path === '' ? '/' : path,
  };
}
