/**
 * `npm run bench` / `perigee bench`: "Does it scale?". This process only orchestrates: each server
 * under test runs pinned to core 0, each run's load generator pinned to core 1, and every figure
 * goes to bench/results/<timestamp>.json, an HTML report beside it, and the marked section of
 * BENCHMARKS.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FRESH_PER_RUN_KINDS, TARGETS, type ServerKind } from './catalog.js';
import { bundleChildScripts, hasTaskset, LOAD_CORE, SERVER_CORE } from './children.js';
import { HELP_TEXT, parseOptions, UsageError, type BenchOptions } from './options.js';
import { clockTicks } from './procfs.js';
import { renderHtml } from './report/html.js';
import { renderMarkdownSection, updateBenchmarksFile } from './report/markdown.js';
import type { BenchResults, ConfigurationResult, RunRecord } from './results.js';
import { summarize } from './results.js';
import { buildPlan, runOnce, type Configuration } from './runner.js';
import {
  createServerUnderTest,
  NotAvailable,
  profileNodeServers,
  type ServerUnderTest,
} from './servers/controllers.js';

const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

/** A bar on a terminal (one rewritten line); a line per step elsewhere (CI logs, pipes). */
class Progress {
  private readonly interactive = process.stderr.isTTY === true;
  private readonly startedAt = Date.now();

  constructor(private readonly total: number) {}

  step(done: number, text: string): void {
    const width = 24;
    const filled = this.total === 0 ? width : Math.round((done / this.total) * width);
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const eta = done > 0 ? Math.round((elapsed / done) * (this.total - done)) : undefined;
    const clock = `${formatSeconds(elapsed)}${eta === undefined ? '' : ` (~${formatSeconds(eta)} left)`}`;
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ${clock} ${text}`;
    if (this.interactive) {
      const columns = process.stderr.columns || 120;
      process.stderr.write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
    } else {
      process.stderr.write(`${line}\n`);
    }
  }

  note(text: string): void {
    if (this.interactive) process.stderr.write(`\r\x1b[2K${text}\n`);
    else process.stderr.write(`${text}\n`);
  }

  done(): void {
    if (this.interactive) process.stderr.write('\r\x1b[2K');
  }
}

function formatSeconds(seconds: number): string {
  const whole = Math.round(seconds);
  return whole >= 60
    ? `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`
    : `${whole}s`;
}

function describeRun(record: RunRecord): string {
  if (record.failure) return `failed: ${record.failure}`;
  const parts: string[] = [];
  if (record.storm) parts.push(`storm ${Math.round(record.storm.ms)} ms`);
  if (record.memory && !('failed' in record.memory) && record.memory.rssPerConnection !== null) {
    parts.push(`${(record.memory.rssPerConnection / 1024).toFixed(1)} KB/conn`);
  }
  if (record.throughput) {
    parts.push(
      'failed' in record.throughput
        ? `throughput failed: ${record.throughput.failed}`
        : `${Math.round(record.throughput.deliveriesPerSecond).toLocaleString('en-US')} deliveries/s`,
    );
  }
  if (record.latency) {
    parts.push(
      'failed' in record.latency
        ? `latency failed: ${record.latency.failed}`
        : `p50 ${record.latency.p50Ms.toFixed(2)} ms p99 ${record.latency.p99Ms.toFixed(2)} ms`,
    );
  }
  return parts.join(', ');
}

function machineFacts(): Record<string, unknown> {
  let kernel = '';
  try {
    kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  } catch {
    // not Linux
  }
  let fdLimit = '';
  try {
    fdLimit = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  } catch {
    // unknown
  }
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel,
    fdLimit,
    pinned: hasTaskset()
      ? `servers on core ${SERVER_CORE}, load generator on core ${LOAD_CORE}`
      : 'not pinned (taskset missing)',
    loadAverage: readFileSync('/proc/loadavg', 'utf8').trim(),
  };
}

function gitCommit(): string | undefined {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', 'src'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return dirty === '' ? commit : `${commit} (src/ modified)`;
  } catch {
    return undefined;
  }
}

function printList(): void {
  const lines = ['Rows (target: server | load-generator driver):'];
  for (const info of TARGETS.values()) {
    lines.push(`  ${info.id.padEnd(26)} ${info.serverText} | ${info.driverText}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function main(args: string[]): Promise<void> {
  let options: BenchOptions & { list: boolean };
  try {
    options = parseOptions(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\n`);
    process.exitCode = EXIT_USAGE;
    return;
  }
  if (options.help) {
    process.stdout.write(HELP_TEXT);
    return;
  }
  if (options.list) {
    printList();
    return;
  }
  if (options.reportFrom !== undefined) {
    await rebuildReports(options.reportFrom, options.markdown && args.includes('--markdown'));
    return;
  }
  await runBench(options, args);
}

/** Runs the plan; returns the results file's path. Exported for the smoke test. */
export async function runBench(
  options: BenchOptions,
  args: string[] = [],
): Promise<{ json: string; html: string }> {
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  // Relative to where the command runs (the repository root under npm), so that `perigee bench`
  // from the built copy writes to the same bench/results/.
  const resultsDirectory = options.resultsDirectory ?? join(process.cwd(), 'bench', 'results');
  const plan = buildPlan(options);
  await bundleChildScripts(['load/loadgen', 'servers/node-server', 'servers/adapter']);
  if (options.cpuProfileDirectory) profileNodeServers(resolve(options.cpuProfileDirectory));
  const ticks = clockTicks();
  const totalSteps = plan.reduce((sum) => sum + options.runs, 0);
  const progress = new Progress(totalSteps);
  const kills = new Set<() => void>();
  const running = new Set<ServerUnderTest>();

  // Ctrl-C must not leave servers behind (a private RabbitMQ node, nginx, Pushpin).
  const onSignal = (signal: NodeJS.Signals): void => {
    progress.done();
    for (const kill of kills) kill();
    for (const server of running) server.stopNow();
    process.stderr.write(`bench: interrupted by ${signal}; servers stopped\n`);
    process.exit(EXIT_INTERRUPTED);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (!hasTaskset())
    progress.note('bench: taskset is missing: servers and load generator run unpinned');

  const results: ConfigurationResult[] = [];
  const servers: BenchResults['servers'] = {};
  const notes: string[] = [];
  let step = 0;
  const context = {
    options,
    clockTicks: ticks,
    register(kill: () => void) {
      kills.add(kill);
      return () => kills.delete(kill);
    },
  };

  const byServer = new Map<ServerKind, Configuration[]>();
  for (const configuration of plan) {
    const list = byServer.get(configuration.server) ?? [];
    list.push(configuration);
    byServer.set(configuration.server, list);
  }

  try {
    for (const [kind, configurations] of byServer) {
      const entry: BenchResults['servers'][string] = { notes: [] };
      servers[kind] = entry;
      let server: ServerUnderTest | undefined = createServerUnderTest(kind);
      progress.step(step, `starting ${kind} …`);
      try {
        running.add(server);
        try {
          await server.start();
        } catch (first) {
          if (first instanceof NotAvailable) throw first;
          // External servers occasionally fail to come up for reasons of the moment (an Erlang
          // CLI that cannot reach epmd in time, say): one more try before the rows go unmeasured.
          server.stopNow();
          running.delete(server);
          entry.notes.push(`the first start failed and was retried: ${(first as Error).message}`);
          server = createServerUnderTest(kind);
          running.add(server);
          await server.start();
        }
        entry.about = server.about;
      } catch (error) {
        server.stopNow();
        running.delete(server);
        entry.notRun = (error as Error).message;
        if (!(error instanceof NotAvailable)) progress.note(`bench: ${kind}: ${entry.notRun}`);
        server = undefined;
      }
      for (const configuration of configurations) {
        const label = `${configuration.target} N=${configuration.clients}${configuration.topicMode === 'each' ? ' (own topics)' : ''}`;
        const runs: RunRecord[] = [];
        if (!server) {
          step += options.runs;
          results.push({
            ...configuration,
            notRun: entry.notRun ?? 'not started',
            runs,
            summary: {},
          });
          continue;
        }
        for (let run = 1; run <= options.runs; run++) {
          // Two failed runs in a row say what a third would: the time goes to rows that measure.
          // A storm whose deadline passed with most clients still waiting says it at once: the
          // next run would meet a server still working off this one's backlog (RabbitMQ at 10k
          // took none of a second 10,000). Refusals are not that: they can differ run to run.
          const last = runs.at(-1);
          const tooSlow = (last?.storm?.timedOut ?? 0) > configuration.clients / 2;
          if (tooSlow || (run > 2 && last?.failure && runs.at(-2)?.failure)) {
            entry.notes.push(
              `${label}: run ${run} not made after ${tooSlow ? 'a storm that most clients could not join in time' : 'two failed runs in a row'}`,
            );
            step += options.runs - run + 1;
            break;
          }
          progress.step(step, `${label} run ${run}/${options.runs} …`);
          // Servers that start in about a second start afresh for every run: runs stay
          // independent, and no run's heap or sockets weigh on the next one's memory baseline.
          // RabbitMQ takes seconds to start and keeps running.
          const fresh = FRESH_PER_RUN_KINDS.includes(kind) && server.used;
          if (fresh || !server.alive()) {
            const died = !server.alive();
            await server.stop().catch(() => {});
            running.delete(server);
            server = createServerUnderTest(kind);
            running.add(server);
            try {
              await server.start();
              if (died) entry.notes.push(`restarted before ${label} run ${run}: it had died`);
            } catch (error) {
              runs.push({
                run,
                failure: `the server could not be (re)started: ${(error as Error).message}`,
                notes: [],
              });
              step++;
              continue;
            }
          }
          const firstRunOfServer = !server.used;
          server.used = true;
          const record = await runOnce(server, configuration, run, context, firstRunOfServer);
          runs.push(record);
          step++;
          progress.step(step, `${label} run ${run}/${options.runs}: ${describeRun(record)}`);
          if (!process.stderr.isTTY) continue;
          if (record.failure) progress.note(`  ${label} run ${run}: ${record.failure}`);
        }
        results.push({ ...configuration, runs, summary: summarize(runs) });
      }
      if (server) {
        await server.stop().catch(() => {});
        entry.notes.push(...server.notes);
        running.delete(server);
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.done();
  }

  const finishedAt = new Date();
  const commit = gitCommit();
  const output: BenchResults = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    command: `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
    options: { ...options },
    machine: { ...machineFacts(), commit },
    servers,
    configurations: results,
    notes,
  };
  mkdirSync(resultsDirectory, { recursive: true });
  const jsonFile = join(resultsDirectory, `${stamp}.json`);
  const htmlFile = join(resultsDirectory, `${stamp}.html`);
  writeFileSync(jsonFile, `${JSON.stringify(output, null, 2)}\n`);
  writeFileSync(htmlFile, renderHtml(output, relative(resultsDirectory, jsonFile)));
  const section = renderMarkdownSection(output, relative(process.cwd(), jsonFile));
  let markdownNote = '';
  if (options.markdown) {
    markdownNote = await updateBenchmarksFile(join(process.cwd(), 'BENCHMARKS.md'), section);
  }
  process.stdout.write(
    [
      section,
      '',
      `Raw figures: ${relative(process.cwd(), jsonFile)}`,
      `Report:      ${relative(process.cwd(), htmlFile)}`,
      markdownNote,
      `Took ${formatSeconds(output.seconds)}.`,
      '',
    ]
      .filter((line) => line !== undefined)
      .join('\n'),
  );
  return { json: jsonFile, html: htmlFile };
}

/** The HTML report (and the Markdown tables) again, from a results file: no run. */
async function rebuildReports(file: string, markdown: boolean): Promise<void> {
  let results: BenchResults;
  try {
    results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  } catch (error) {
    process.stderr.write(
      `bench: cannot read ${file}: ${(error as Error).message.split('\n')[0]}\n`,
    );
    process.exitCode = EXIT_USAGE;
    return;
  }
  const htmlFile = file.replace(/\.json$/, '') + '.html';
  writeFileSync(htmlFile, renderHtml(results, basename(file)));
  const section = renderMarkdownSection(results, relative(process.cwd(), file));
  const note = markdown
    ? await updateBenchmarksFile(join(process.cwd(), 'BENCHMARKS.md'), section)
    : '';
  process.stdout.write(`${section}\n\nReport: ${relative(process.cwd(), htmlFile)}\n${note}\n`);
}

function isDirectRun(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isDirectRun()) await main(process.argv.slice(2));
