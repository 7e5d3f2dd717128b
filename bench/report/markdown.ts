/**
 * The tables for BENCHMARKS.md, written between `<!-- bench:begin -->` and `<!-- bench:end -->`.
 * Only that span is ever rewritten: the rest of the file belongs to people.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { BenchResults, ConfigurationResult } from '../results.js';
import {
  count,
  failureText,
  kilobytes,
  marginalRss,
  measured,
  memoryRowLabel,
  memoryRows,
  ms,
  noMemoryReason,
  okMark,
  percent,
  plain,
  rate,
  targetChecks,
} from './format.js';

export const BEGIN_MARKER = '<!-- bench:begin -->';
export const END_MARKER = '<!-- bench:end -->';

function table(header: string[], align: string[], rows: string[][]): string {
  const escape = (cell: string): string => cell.replaceAll('|', '\\|').replaceAll('\n', ' ');
  return [
    `| ${header.join(' | ')} |`,
    `|${align.join('|')}|`,
    ...rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ].join('\n');
}

function throughputRows(configurations: readonly ConfigurationResult[]): string[][] {
  return configurations.map((c) => {
    const failure = failureText(c);
    if (c.notRun !== undefined)
      return [count(c.clients), c.target, c.transport, failure!, '', '', '', '', '', ''];
    const s = c.summary;
    return [
      count(c.clients),
      c.target,
      c.transport,
      s.deliveriesPerSecond
        ? `${rate(s.deliveriesPerSecond)}${okMark(c, s.deliveriesPerSecond)}`
        : `failed${failure ? `: ${failure}` : ''}`,
      s.deliveriesPerSecond ? `${percent(s.serverCpu)} / ${percent(s.loadGeneratorCpu)}` : '',
      s.p50Ms
        ? `${ms(s.p50Ms)}${okMark(c, s.p50Ms)}${notSustained(c)}`
        : s.deliveriesPerSecond && failure
          ? `failed: ${failure}`
          : '–',
      ms(s.p99Ms),
      plain(s.wireBytesPerDelivery),
      plain(s.cpuMicrosPerDelivery, 1),
      kilobytes(s.rssPerConnection),
    ];
  });
}

function marginalText(
  configurations: readonly ConfigurationResult[],
  configuration: ConfigurationResult,
): string {
  const marginal = marginalRss(configurations, configuration);
  return marginal === undefined
    ? '–'
    : `${(marginal.bytes / 1024).toFixed(1)} (from N=${count(marginal.from)})`;
}

/** Latency measured while a backlog grew is not latency at that load; say so in the cell. */
function notSustained(configuration: ConfigurationResult): string {
  const runs = configuration.summary.latencyNotSustained;
  return runs ? ` (load not sustained in ${runs}/${configuration.runs.length} runs)` : '';
}

const THROUGHPUT_HEADER = [
  'N',
  'row',
  'transport',
  'max deliveries/s',
  'CPU server / load',
  'p50 ms',
  'p99 ms',
  'wire B / delivery',
  'server CPU µs / delivery',
  'RSS KB / conn',
];
const THROUGHPUT_ALIGN = [
  '---:',
  '---',
  '---',
  '---:',
  '---:',
  '---:',
  '---:',
  '---:',
  '---:',
  '---:',
];

export function renderMarkdownSection(results: BenchResults, jsonPath: string): string {
  const machine = results.machine;
  const options = results.options as {
    runs?: number;
    durationSeconds?: number;
    warmupSeconds?: number;
    latencyLoad?: number;
    windowDeliveries?: number;
    pollIntervalMs?: number;
  };
  const out: string[] = ['### Results', ''];
  out.push(
    `Run of ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC: \`${results.command}\`, ${Math.round(results.seconds / 60)} min, commit ${typeof machine.commit === 'string' ? machine.commit : '?'}. ` +
      `Raw figures: \`${jsonPath}\` (and the HTML report beside it).`,
    '',
    `Machine: ${String(machine.cores)} × ${String(machine.cpuModel)}, ${String(machine.memoryGiB)} GiB, Node ${String(machine.node)}, ` +
      `Linux ${String(machine.kernel)}, fd limit ${String(machine.fdLimit)}; ${String(machine.pinned)}. Load average at the end: ${String(machine.loadAverage)}.`,
    '',
    `Method: ${String(options.runs)} run(s) per row, each with fresh connections (their connect is a storm); ` +
      `${String(options.warmupSeconds)} s warm-up, then ${String(options.durationSeconds)} s measured per window. ` +
      `Max deliveries/s: closed loop, the publisher at most ${count(options.windowDeliveries ?? 0)} deliveries ahead of the slowest subscriber. ` +
      `Latency: a fixed ${count(options.latencyLoad ?? 0)} deliveries/s for every row and N, in a window of whole periods of that rate (at least two messages) that opens and closes halfway between two messages. Tables give the median [min–max].`,
  );

  const fanout = measured(results, 'fanout');
  if (fanout.length > 0) {
    out.push(
      '',
      '#### Fan-out: 1 topic, N subscribers',
      '',
      table(THROUGHPUT_HEADER, THROUGHPUT_ALIGN, throughputRows(fanout)),
    );
  }
  const topics = measured(results, 'topics', 'each');
  if (topics.length > 0) {
    out.push(
      '',
      '#### Many topics: N clients, each on its own topic',
      '',
      'A delivery is one message to one client; every round publishes one message to each topic.',
      '',
      table(THROUGHPUT_HEADER, THROUGHPUT_ALIGN, throughputRows(topics)),
    );
  }
  const transports = measured(results, 'transports');
  if (transports.length > 0) {
    out.push(
      '',
      "#### The talk's comparison: every transport at the same load",
      '',
      `Latency, wire bytes and server CPU per delivery are taken at the same fixed load; max deliveries/s in the closed loop. Short polling waits ${count(options.pollIntervalMs ?? 0)} ms after an empty poll, as Perigee's client does.`,
      '',
      table(
        [
          'N',
          'row',
          'transport',
          'p50 ms',
          'p99 ms',
          'max deliveries/s',
          'wire B / delivery',
          'server CPU µs / delivery',
          'RSS KB / conn',
          'lost',
        ],
        ['---:', '---', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:'],
        transports.map((c) => {
          const failure = failureText(c);
          if (c.notRun !== undefined)
            return [count(c.clients), c.target, c.transport, failure!, '', '', '', '', '', ''];
          const s = c.summary;
          return [
            count(c.clients),
            c.target,
            c.transport,
            s.p50Ms
              ? `${ms(s.p50Ms)}${okMark(c, s.p50Ms)}${notSustained(c)}`
              : `failed${failure ? `: ${failure}` : ''}`,
            ms(s.p99Ms),
            rate(s.deliveriesPerSecond),
            plain(s.equalLoadWireBytesPerDelivery),
            plain(s.equalLoadCpuMicrosPerDelivery, 1),
            kilobytes(s.rssPerConnection),
            plain(s.gaps),
          ];
        }),
      ),
    );
  }
  const memory = memoryRows(results);
  if (memory.length > 0) {
    out.push(
      '',
      '#### Memory per idle connection',
      '',
      '(RSS after N subscribed idle connections − RSS before) / N, and the same for the JS heap after a full GC (Node servers only). Every run measures it before publishing. Node servers start afresh for every run, so their baselines are alike: the last column is the cost of one more connection between two N, (RSS after at the larger N − RSS after at the smaller) / (difference in N), which leaves out what the first connections cost once (code, buffers).',
      '',
      table(
        ['row', 'N', 'RSS KB / conn', 'heap KB / conn', 'marginal RSS KB / conn'],
        ['---', '---:', '---:', '---:', '---:'],
        memory.map((c) => [
          memoryRowLabel(c),
          count(c.clients),
          rssCell(c),
          kilobytes(c.summary.heapPerConnection),
          marginalText(memory, c),
        ]),
      ),
    );
    out.push(
      '',
      '#### Connection storm',
      '',
      'N clients connect and subscribe at once (the start of every run); time until the last is subscribed. Clients that fail are counted, then retried.',
      '',
      table(
        ['row', 'N', 'time to all subscribed, ms', 'errors'],
        ['---', '---:', '---:', '---:'],
        [...memory]
          .filter(
            (c) =>
              c.scenarios.includes('storm') ||
              c.clients >= 10_000 ||
              (c.summary.stormErrors?.max ?? 0) > 0,
          )
          .sort((a, b) => a.target.localeCompare(b.target) || a.clients - b.clients)
          .map((c) => [
            c.target,
            count(c.clients),
            c.notRun !== undefined ? `not run: ${c.notRun}` : plain(c.summary.stormMs),
            plain(c.summary.stormErrors),
          ]),
      ),
    );
  }
  const checks = targetChecks(results);
  out.push(
    '',
    "#### The issue's targets, as ratios within this run",
    '',
    table(
      ['metric', 'target', 'measured', 'verdict'],
      ['---', '---', '---:', '---'],
      checks.map((check) => [
        check.metric,
        check.target,
        check.measured,
        check.verdict === 'missed' ? '**missed**' : check.verdict,
      ]),
    ),
  );
  const notRun = Object.entries(results.servers).filter(
    ([, server]) => server.notRun !== undefined,
  );
  const rows: string[] = [];
  for (const [kind, server] of Object.entries(results.servers)) {
    if (server.about) rows.push(`- ${kind}: ${server.about}`);
  }
  if (rows.length > 0) out.push('', 'Servers:', '', ...rows);
  if (notRun.length > 0) {
    out.push(
      '',
      'Did not run:',
      '',
      ...notRun.map(([kind, server]) => `- ${kind}: ${server.notRun!}`),
    );
  }
  const failures = results.configurations.flatMap((c) => {
    const failure = c.notRun === undefined ? failureText(c) : undefined;
    return failure
      ? [
          `- ${c.target} N=${count(c.clients)}${c.topicMode === 'each' ? ' (own topics)' : ''}: ${failure}`,
        ]
      : [];
  });
  if (failures.length > 0) out.push('', 'Failed runs:', '', ...failures);
  return out.join('\n');
}

/**
 * The section as Prettier would write it (aligned tables), so that `npm run lint` stays green
 * after a run. Formatted on its own: the rest of the file is not ours to reformat.
 */
async function formatSection(file: string, section: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    const config = (await prettier.resolveConfig(file)) ?? {};
    return (await prettier.format(section, { ...config, parser: 'markdown' })).trimEnd();
  } catch {
    return section;
  }
}

/**
 * Puts `section` between the markers, re-reading the file just before writing so that edits to
 * other sections made meanwhile survive. Without markers, a new section is added at the end.
 */
export async function updateBenchmarksFile(file: string, section: string): Promise<string> {
  const formatted = await formatSection(file, section);
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const begin = text.indexOf(BEGIN_MARKER);
  const end = text.indexOf(END_MARKER);
  let updated: string;
  if (begin >= 0 && end > begin) {
    updated = `${text.slice(0, begin + BEGIN_MARKER.length)}\n\n${formatted}\n\n${text.slice(end)}`;
  } else {
    updated = `${text.trimEnd()}\n\n## Does it scale?\n\n${BEGIN_MARKER}\n\n${formatted}\n\n${END_MARKER}\n`;
  }
  writeFileSync(file, updated);
  return `Tables written to BENCHMARKS.md (between ${BEGIN_MARKER} and ${END_MARKER}).`;
}

/** A memory table's RSS cell: the figure, or why there is none. */
function rssCell(configuration: ConfigurationResult): string {
  const rss = configuration.summary.rssPerConnection;
  return rss ? kilobytes(rss) : noMemoryReason(configuration);
}
