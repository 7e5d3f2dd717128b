/** Number formats and the derived views shared by the Markdown and HTML reports. */
import { NODE_SERVER_KINDS } from '../catalog.js';
import {
  MEMORY_NOT_READ_NOTE,
  spread,
  type BenchResults,
  type ConfigurationResult,
  type Spread,
} from '../results.js';

const whole = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function count(value: number): string {
  return whole.format(value);
}

export function rate(value: Spread | undefined): string {
  if (!value) return '–';
  return value.n > 1
    ? `${whole.format(value.median)} [${whole.format(value.min)}–${whole.format(value.max)}]`
    : whole.format(value.median);
}

function msText(value: number): string {
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : whole.format(value);
}

export function ms(value: Spread | undefined): string {
  if (!value) return '–';
  return value.n > 1
    ? `${msText(value.median)} [${msText(value.min)}–${msText(value.max)}]`
    : msText(value.median);
}

export function kilobytes(value: Spread | undefined): string {
  if (!value) return '–';
  const kb = (bytes: number): string => (bytes / 1024).toFixed(1);
  return value.n > 1 ? `${kb(value.median)} [${kb(value.min)}–${kb(value.max)}]` : kb(value.median);
}

export function plain(value: Spread | undefined, digits = 0): string {
  if (!value) return '–';
  const text = (number: number): string =>
    digits === 0 ? whole.format(number) : number.toFixed(digits);
  return value.n > 1
    ? `${text(value.median)} [${text(value.min)}–${text(value.max)}]`
    : text(value.median);
}

export function percent(value: Spread | undefined): string {
  return value ? `${Math.round(value.median * 100)}%` : '?';
}

/** "2/3 ok" when some runs failed, so a median of fewer runs is not mistaken for a full one. */
export function okMark(
  configuration: ConfigurationResult,
  spreadValue: Spread | undefined,
): string {
  const total = configuration.runs.length;
  const ok = spreadValue?.n ?? 0;
  return ok === total || total === 0 ? '' : ` (${ok}/${total} ok)`;
}

/**
 * The rows of the memory table and plot: every single-topic row, and an own-topics row where it
 * holds the only reading at its N (RabbitMQ's memory is read on its first run, an own-topics one).
 */
export function memoryRows(results: BenchResults): ConfigurationResult[] {
  return results.configurations
    .filter(
      (c) =>
        c.topicMode === 'one' ||
        (c.summary.rssPerConnection !== undefined &&
          find(results, c.target, c.clients)?.summary.rssPerConnection === undefined),
    )
    .sort((a, b) => a.target.localeCompare(b.target) || a.clients - b.clients);
}

/** A row's name in the memory table and plot. */
export function memoryRowLabel(configuration: ConfigurationResult): string {
  return configuration.topicMode === 'each'
    ? `${configuration.target} (own topics)`
    : configuration.target;
}

/** Why a memory row has no figure. */
export function noMemoryReason(configuration: ConfigurationResult): string {
  if (configuration.notRun !== undefined) return `not run: ${configuration.notRun}`;
  const failure = failureText(configuration);
  if (failure !== undefined) return `failed: ${failure}`;
  return readOnFirstRunOnly(configuration)
    ? 'not read: read on the server’s first run only'
    : 'not read';
}

/** Whether no run read memory because the server had run an earlier row (RabbitMQ). */
export function readOnFirstRunOnly(configuration: ConfigurationResult): boolean {
  return (
    configuration.runs.length > 0 &&
    configuration.runs.every((run) => run.notes.includes(MEMORY_NOT_READ_NOTE))
  );
}

export function failureText(configuration: ConfigurationResult): string | undefined {
  if (configuration.notRun !== undefined) return `not run: ${configuration.notRun}`;
  const reasons = new Set<string>();
  for (const run of configuration.runs) {
    if (run.failure) reasons.add(run.failure);
    if (run.throughput && 'failed' in run.throughput)
      reasons.add(`throughput: ${run.throughput.failed}`);
    if (run.latency && 'failed' in run.latency) reasons.add(`latency: ${run.latency.failed}`);
    if (run.memory && 'failed' in run.memory) reasons.add(`memory: ${run.memory.failed}`);
  }
  return reasons.size === 0 ? undefined : [...reasons].join('; ');
}

export function find(
  results: BenchResults,
  target: string,
  clients: number | undefined,
  mode: 'one' | 'each' = 'one',
): ConfigurationResult | undefined {
  return results.configurations.find(
    (configuration) =>
      configuration.target === target &&
      configuration.topicMode === mode &&
      (clients === undefined || configuration.clients === clients),
  );
}

export function measured(
  results: BenchResults,
  scenario: string,
  mode: 'one' | 'each' = 'one',
): ConfigurationResult[] {
  return results.configurations.filter(
    (configuration) =>
      configuration.scenarios.includes(scenario as never) && configuration.topicMode === mode,
  );
}

/** Median RSS after connecting, over the runs. */
function medianRssAfter(configuration: ConfigurationResult): number | undefined {
  const values = configuration.runs.flatMap((run) =>
    run.memory && !('failed' in run.memory) && run.memory.rssAfter !== null
      ? [run.memory.rssAfter]
      : [],
  );
  return spread(values)?.median;
}

/** RSS per added connection from the next smaller N of the same row (fresh servers only). */
export function marginalRss(
  configurations: readonly ConfigurationResult[],
  configuration: ConfigurationResult,
): { bytes: number; from: number } | undefined {
  if (!NODE_SERVER_KINDS.includes(configuration.server)) return undefined;
  const smaller = configurations
    .filter(
      (c) =>
        c.target === configuration.target &&
        c.topicMode === configuration.topicMode &&
        c.clients < configuration.clients,
    )
    .sort((a, b) => b.clients - a.clients)[0];
  if (!smaller) return undefined;
  const high = medianRssAfter(configuration);
  const low = medianRssAfter(smaller);
  if (high === undefined || low === undefined) return undefined;
  return { bytes: (high - low) / (configuration.clients - smaller.clients), from: smaller.clients };
}

/** Memory per connection is read at this N or more; below it, RSS noise outweighs the figure. */
export const MIN_MEMORY_CLIENTS = 1000;

export interface TargetCheck {
  metric: string;
  target: string;
  measured: string;
  verdict: 'met' | 'missed' | 'not measured';
}

/** The targets, as ratios within this run. */
export function targetChecks(results: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const counts = [
    ...new Set(results.configurations.filter((c) => c.topicMode === 'one').map((c) => c.clients)),
  ].sort((a, b) => b - a);
  /**
   * The largest N at which both rows have the figure, in one topic mode; own topics only where
   * `alsoOwnTopics` and the single topic gave nothing (RabbitMQ's memory is read on its first
   * run, which is an own-topics run).
   */
  const pair = (
    ours: string,
    theirs: string,
    figure: (c: ConfigurationResult) => number | undefined,
    minClients = 1,
    alsoOwnTopics = false,
  ): { clients: number; ours: number; theirs: number; ownTopics: boolean } | undefined => {
    for (const mode of alsoOwnTopics ? (['one', 'each'] as const) : (['one'] as const)) {
      for (const clients of counts.filter((n) => n >= minClients)) {
        const a = find(results, ours, clients, mode);
        const b = find(results, theirs, clients, mode);
        const x = a && figure(a);
        const y = b && figure(b);
        if (x !== undefined && y !== undefined && y > 0) {
          return { clients, ours: x, theirs: y, ownTopics: mode === 'each' };
        }
      }
    }
    return undefined;
  };
  const throughput = (c: ConfigurationResult): number | undefined =>
    c.summary.deliveriesPerSecond?.median;
  const p99 = (c: ConfigurationResult): number | undefined => c.summary.p99Ms?.median;
  const rss = (c: ConfigurationResult): number | undefined => c.summary.rssPerConnection?.median;
  const ratio = (
    metric: string,
    goal: string,
    found: ReturnType<typeof pair>,
    ok: (ratio: number) => boolean,
    unit = '×',
  ): void => {
    if (!found) {
      checks.push({
        metric,
        target: goal,
        measured: 'both rows not measured at one N',
        verdict: 'not measured',
      });
      return;
    }
    const value = found.ours / found.theirs;
    checks.push({
      metric: `${metric} (N=${count(found.clients)}${found.ownTopics ? ', own topics' : ''})`,
      target: goal,
      measured: `${value.toFixed(2)}${unit}`,
      verdict: ok(value) ? 'met' : 'missed',
    });
  };
  ratio(
    'WebSocket STOMP fan-out vs raw socket.write',
    '≥ 1.0×',
    pair('perigee/websocket', 'raw-ws', throughput),
    (value) => value >= 1,
  );
  ratio(
    'p99 at equal load vs raw',
    '≤ 1.2×',
    pair('perigee/websocket', 'raw-ws', p99),
    (value) => value <= 1.2,
  );
  // Below a thousand connections, RSS moves by more than the connections weigh. The verdict is
  // on the cost of an added connection where two N give it, else on the average.
  const idle = counts
    .filter((clients) => clients >= MIN_MEMORY_CLIENTS)
    .map((clients) => find(results, 'perigee/websocket', clients))
    .find((c) => c?.summary.rssPerConnection !== undefined);
  if (idle) {
    const average = idle.summary.rssPerConnection!.median;
    const marginal = marginalRss(results.configurations, idle);
    const judged = marginal?.bytes ?? average;
    checks.push({
      metric: `idle WebSocket session, RSS (N=${count(idle.clients)})`,
      target: '≤ 5 KB',
      measured:
        `${(average / 1024).toFixed(1)} KB average` +
        (marginal
          ? `; ${(marginal.bytes / 1024).toFixed(1)} KB per added connection from N=${count(marginal.from)}`
          : ''),
      verdict: judged <= 5 * 1024 ? 'met' : 'missed',
    });
  } else {
    checks.push({
      metric: 'idle WebSocket session, RSS',
      target: '≤ 5 KB',
      measured: `not measured at N ≥ ${count(MIN_MEMORY_CLIENTS)}`,
      verdict: 'not measured',
    });
  }
  for (const streaming of ['perigee/eventsource', 'perigee/xhr-streaming', 'perigee/htmlfile']) {
    ratio(
      `${streaming} vs raw SSE, deliveries/s`,
      '≥ 1.0×',
      pair(streaming, 'raw-sse', throughput),
      (value) => value >= 1,
    );
  }
  ratio(
    'WebSocket throughput vs socket.io',
    '≥ 2×',
    pair('perigee/websocket', 'socket.io', throughput),
    (value) => value >= 2,
  );
  const rabbit: [string, (c: ConfigurationResult) => number | undefined, boolean][] = [
    ['deliveries/s', throughput, true],
    ['p99', p99, false],
    ['RSS per connection', rss, false],
    ['storm time', (c) => c.summary.stormMs?.median, false],
  ];
  for (const [name, figure, higherIsBetter] of rabbit) {
    ratio(
      `vs RabbitMQ Web-STOMP, ${name}`,
      higherIsBetter ? 'ahead (> 1×)' : 'ahead (< 1×)',
      pair(
        'perigee/websocket',
        'rabbitmq-web-stomp',
        figure,
        figure === rss ? MIN_MEMORY_CLIENTS : 1,
        figure === rss,
      ),
      (value) => (higherIsBetter ? value > 1 : value < 1),
    );
  }
  return checks;
}
