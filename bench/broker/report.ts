/** Summaries across runs, and the table printed at the end (Markdown, for BENCHMARKS.md). */
import type { LoadResult, LoadSuccess } from './spec.js';

export interface RunRecord {
  run: number;
  throughput: LoadResult;
  latency: LoadResult;
  /** Things that happened around the run (a broker restart). */
  notes: string[];
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface ConfigurationSummary {
  target: string;
  subscribers: number;
  /** Set when the configuration did not run at all. */
  notRun?: string;
  runs: RunRecord[];
  throughputOk: number;
  latencyOk: number;
  deliveriesPerSecond?: Spread;
  serverCpu?: number;
  loadGeneratorCpu?: number;
  p50Ms?: Spread;
  p99Ms?: Spread;
  latencyLoad?: number;
  failures: string[];
}

export function spread(values: readonly number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

function successes(results: readonly LoadResult[]): LoadSuccess[] {
  return results.filter((result): result is LoadSuccess => result.ok);
}

export function summarize(
  target: string,
  subscribers: number,
  runs: RunRecord[],
  latencyLoad: number,
): ConfigurationSummary {
  const throughput = successes(runs.map((run) => run.throughput));
  const latency = successes(runs.map((run) => run.latency)).filter((result) => result.latency);
  const failures = runs.flatMap((run) =>
    [run.throughput, run.latency].flatMap((result) =>
      result.ok ? [] : [`run ${run.run} ${result.measurement}: ${result.reason}`],
    ),
  );
  const serverCpu = spread(
    throughput.flatMap((result) => (result.serverCpu === null ? [] : [result.serverCpu])),
  );
  return {
    target,
    subscribers,
    runs,
    throughputOk: throughput.length,
    latencyOk: latency.length,
    deliveriesPerSecond: spread(throughput.map((result) => result.deliveriesPerSecond)),
    serverCpu: serverCpu?.median,
    loadGeneratorCpu: spread(throughput.map((result) => result.loadGeneratorCpu))?.median,
    p50Ms: spread(latency.map((result) => result.latency!.p50Ms)),
    p99Ms: spread(latency.map((result) => result.latency!.p99Ms)),
    latencyLoad,
    failures,
  };
}

const wholeNumber = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function formatRate(value: Spread | undefined): string {
  if (!value) return '';
  return `${wholeNumber.format(value.median)} [${wholeNumber.format(value.min)}–${wholeNumber.format(value.max)}]`;
}

function formatMs(value: Spread | undefined): string {
  if (!value) return '';
  const ms = (x: number): string => (x < 10 ? x.toFixed(2) : x.toFixed(1));
  return `${ms(value.median)} [${ms(value.min)}–${ms(value.max)}]`;
}

function percent(value: number | undefined): string {
  return value === undefined ? '?' : `${Math.round(value * 100)}%`;
}

/** "2/3 ok" when some runs failed, so a median of fewer runs is not mistaken for a full one. */
function okMark(ok: number, total: number): string {
  return ok === total ? '' : ` (${ok}/${total} ok)`;
}

export function formatTable(summaries: readonly ConfigurationSummary[]): string {
  const header = [
    '| K | target | max deliveries/s, median [min–max] | CPU server / load gen | p50 ms [min–max] | p99 ms [min–max] | latency measured at |',
    '|---:|---|---:|---:|---:|---:|---:|',
  ];
  const rows = summaries.map((summary) => {
    const cells = [String(summary.subscribers), summary.target];
    if (summary.notRun !== undefined) {
      cells.push(`not run: ${summary.notRun}`, '', '', '', '');
      return `| ${cells.join(' | ')} |`;
    }
    const total = summary.runs.length;
    cells.push(
      summary.deliveriesPerSecond
        ? `${formatRate(summary.deliveriesPerSecond)}${okMark(summary.throughputOk, total)}`
        : 'failed',
      summary.deliveriesPerSecond
        ? `${percent(summary.serverCpu)} / ${percent(summary.loadGeneratorCpu)}`
        : '',
      summary.p50Ms ? `${formatMs(summary.p50Ms)}${okMark(summary.latencyOk, total)}` : 'failed',
      summary.p99Ms ? formatMs(summary.p99Ms) : 'failed',
      `${wholeNumber.format(summary.latencyLoad ?? 0)} deliveries/s`,
    );
    return `| ${cells.join(' | ')} |`;
  });
  return [...header, ...rows].join('\n');
}

/** Embedded versus RabbitMQ per K, and the acceptance check at K=100. */
export function formatComparison(summaries: readonly ConfigurationSummary[]): string[] {
  const lines: string[] = [];
  const counts = [...new Set(summaries.map((summary) => summary.subscribers))];
  for (const subscribers of counts) {
    const find = (target: string): ConfigurationSummary | undefined =>
      summaries.find((summary) => summary.target === target && summary.subscribers === subscribers);
    const embedded = find('embedded');
    const rabbitmq = find('rabbitmq');
    const ours = embedded?.deliveriesPerSecond?.median;
    const theirs = rabbitmq?.deliveriesPerSecond?.median;
    if (ours === undefined || theirs === undefined) continue;
    const ratio = ours / theirs;
    const ourP99 = embedded?.p99Ms?.median;
    const theirP99 = rabbitmq?.p99Ms?.median;
    const p99Text =
      ourP99 === undefined || theirP99 === undefined
        ? 'p99 not compared (a latency run failed)'
        : `p99 ${ourP99.toFixed(2)} ms vs ${theirP99.toFixed(2)} ms`;
    let line = `K=${subscribers}: embedded/RabbitMQ = ${ratio.toFixed(1)}× deliveries/s; ${p99Text}`;
    if (subscribers === 100) {
      const met =
        ratio >= 1.5 && ourP99 !== undefined && theirP99 !== undefined && ourP99 <= theirP99;
      line += `. Target (≥ 1.5×, p99 no worse): ${met ? 'met' : 'NOT met'}`;
    }
    lines.push(line);
  }
  return lines;
}
