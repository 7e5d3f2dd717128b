/**
 * `npm run bench:broker`: the embedded broker against RabbitMQ's STOMP plugin, one publisher and K
 * subscribers on one topic. This process only orchestrates: the broker runs on core 0 and a fresh
 * load-generator process (loadgen.ts) on core 1 for each measurement.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  HELP_TEXT,
  parseOptions,
  parseStompUrl,
  UsageError,
  type BenchOptions,
} from './options.js';
import { formatProfileSummary, summarizeProfiles, type ProfileSummary } from './profile.js';
import {
  formatComparison,
  formatTable,
  summarize,
  type ConfigurationSummary,
  type RunRecord,
} from './report.js';
import type { LoadResult, LoadSpec, Measurement } from './spec.js';
import { BODY_BYTES } from './wire.js';
import {
  clockTicks,
  EmbeddedTarget,
  hasTaskset,
  LOAD_GENERATOR_CORE,
  pinnedNodeCommand,
  RabbitMqTarget,
  SERVER_CORE,
  type BenchTarget,
} from './targets.js';

const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;
/** Connecting and subscribing K clients, and the drain after a latency run, on top of the timed part. */
const SETUP_ALLOWANCE_MS = 15_000;
const DRAIN_ALLOWANCE_MS = 5_000;
/** Past the load generator's own deadline, the orchestrator kills it as hung. */
const KILL_GRACE_MS = 10_000;

// Relative to where the command runs (the repository root under npm), not to this file, so that
// `perigee bench` from the built copy writes to the same bench/results/.
const resultsDirectory = join(process.cwd(), 'bench', 'results');

/** Rewrites one status line on a terminal; prints one line per update elsewhere. */
class Progress {
  private readonly interactive = process.stderr.isTTY;

  update(text: string): void {
    if (this.interactive) process.stderr.write(`\r\x1b[2K${text}`);
    else process.stderr.write(`${text}\n`);
  }

  done(): void {
    if (this.interactive) process.stderr.write('\r\x1b[2K');
  }
}

function randomDestination(): string {
  return `/topic/bench.${randomBytes(6).toString('hex')}`;
}

/** One measurement in a fresh load-generator process, killed if it outlives its deadline. */
function runLoadGenerator(spec: LoadSpec, children: Set<() => void>): Promise<LoadResult> {
  const { command, args } = pinnedNodeCommand(LOAD_GENERATOR_CORE, 'loadgen');
  const child = spawn(command, [...args, JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const kill = (): void => {
    child.kill('SIGKILL');
  };
  children.add(kill);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const limitMs = spec.deadlineMs + KILL_GRACE_MS;
  let hung = false;
  const killer = setTimeout(() => {
    hung = true;
    kill();
  }, limitMs);
  return new Promise<LoadResult>((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      children.delete(kill);
      const failed = (reason: string): void =>
        resolve({ ok: false, measurement: spec.measurement, reason });
      if (hung) return failed(`hung: the load generator was killed after ${limitMs / 1000} s`);
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as LoadResult);
      } catch {
        const detail =
          stderr
            .trim()
            .split('\n')
            .find((text) => text.trim() !== '') ?? '';
        failed(`the load generator ended (${code ?? signal}) without a result: ${detail}`);
      }
    });
  });
}

function specFor(
  options: BenchOptions,
  target: BenchTarget,
  subscribers: number,
  measurement: Measurement,
  ticks: number,
): LoadSpec {
  const warmupMs = options.warmupSeconds * 1000;
  const durationMs = options.durationSeconds * 1000;
  return {
    measurement,
    target: target.stomp,
    destination: randomDestination(),
    subscribers,
    warmupMs,
    durationMs,
    window: options.window,
    deliveriesPerSecond: options.latencyDeliveriesPerSecond,
    serverPid: target.pid,
    clockTicks: ticks,
    deadlineMs: SETUP_ALLOWANCE_MS + warmupMs + durationMs + DRAIN_ALLOWANCE_MS,
  };
}

function describeResult(result: LoadResult): string {
  if (!result.ok) return `failed: ${result.reason}`;
  const rate = `${Math.round(result.deliveriesPerSecond).toLocaleString('en-US')} deliveries/s`;
  if (!result.latency) return rate;
  return `${rate}, p50 ${result.latency.p50Ms.toFixed(2)} ms, p99 ${result.latency.p99Ms.toFixed(2)} ms`;
}

function machineFacts(rabbitmqVersion: string | undefined): Record<string, unknown> {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    rabbitmq: rabbitmqVersion,
    pinned: hasTaskset()
      ? `server on core ${SERVER_CORE}, load generator on core ${LOAD_GENERATOR_CORE}`
      : 'not pinned (taskset missing)',
  };
}

export async function main(args: string[]): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseOptions(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench:broker: ${error.message}\n`);
    process.exitCode = EXIT_USAGE;
    return;
  }
  if (options.help) {
    process.stdout.write(HELP_TEXT);
    return;
  }

  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const profileDirectory = options.cpuProfile
    ? join(resultsDirectory, `profile-${stamp}`)
    : undefined;
  const ticks = clockTicks();
  const progress = new Progress();
  const children = new Set<() => void>();
  const activeTargets = new Set<BenchTarget>();

  // Ctrl-C must not leave RabbitMQ squeezed onto one core.
  const onSignal = (signal: NodeJS.Signals): void => {
    progress.done();
    for (const kill of children) kill();
    for (const target of activeTargets) target.stopNow();
    process.stderr.write(`bench:broker: interrupted by ${signal}; brokers stopped or restored\n`);
    process.exit(EXIT_INTERRUPTED);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  if (!hasTaskset()) {
    process.stderr.write(
      'bench:broker: taskset is missing: server and load generator run unpinned\n',
    );
  }

  const summaries: ConfigurationSummary[] = [];
  const notes: string[] = [];
  let rabbitmqVersion: string | undefined;
  let embeddedVersion: string | undefined;
  let embeddedStats: unknown[] = [];
  const steps = options.targets.length * options.subscriberCounts.length * options.runs * 2;
  let step = 0;

  // Checked before anything runs, so that the one-line reason comes first.
  const rabbitmq = options.targets.includes('rabbitmq')
    ? new RabbitMqTarget(parseStompUrl(options.rabbitmqUrl, '--rabbitmq-url'))
    : undefined;
  const rabbitmqUnreachable = await rabbitmq?.check();
  if (rabbitmqUnreachable !== undefined) {
    process.stderr.write(
      `bench:broker: ${rabbitmqUnreachable}; running the embedded broker only\n`,
    );
  }

  const notRun = (name: string, reason: string): void => {
    for (const subscribers of options.subscriberCounts) {
      summaries.push({
        ...summarize(name, subscribers, [], options.latencyDeliveriesPerSecond),
        notRun: reason,
      });
    }
    step += options.subscriberCounts.length * options.runs * 2;
  };

  try {
    for (const name of options.targets) {
      let target: BenchTarget;
      if (rabbitmq && name === 'rabbitmq') {
        if (rabbitmqUnreachable !== undefined) {
          notRun(name, rabbitmqUnreachable.split(';')[0]!);
          continue;
        }
        rabbitmqVersion = rabbitmq.serverVersion;
        activeTargets.add(rabbitmq);
        rabbitmq.start();
        target = rabbitmq;
      } else {
        const embedded = new EmbeddedTarget(profileDirectory);
        activeTargets.add(embedded);
        try {
          await embedded.start();
        } catch (error) {
          embedded.stopNow();
          activeTargets.delete(embedded);
          const reason = `the embedded broker did not start: ${(error as Error).message}`;
          process.stderr.write(`bench:broker: ${reason}\n`);
          notRun(name, reason);
          continue;
        }
        embeddedVersion = embedded.serverVersion;
        target = embedded;
      }
      try {
        for (const subscribers of options.subscriberCounts) {
          const runs: RunRecord[] = [];
          for (let run = 1; run <= options.runs; run++) {
            const record: RunRecord = {
              run,
              throughput: { ok: false, measurement: 'throughput', reason: 'not run' },
              latency: { ok: false, measurement: 'latency', reason: 'not run' },
              notes: [],
            };
            for (const measurement of ['throughput', 'latency'] as const) {
              step++;
              const label = `[${step}/${steps}] ${target.name} K=${subscribers} run ${run}/${options.runs} ${measurement}`;
              progress.update(`${label} …`);
              try {
                const restarted = await target.ensureRunning();
                if (restarted) record.notes.push(restarted);
              } catch (error) {
                const reason = `the broker could not be restarted: ${(error as Error).message}`;
                record[measurement] = { ok: false, measurement, reason };
                progress.update(`${label}: failed: ${reason}`);
                continue;
              }
              const spec = specFor(options, target, subscribers, measurement, ticks);
              record[measurement] = await runLoadGenerator(spec, children);
              progress.update(`${label}: ${describeResult(record[measurement])}`);
            }
            runs.push(record);
          }
          summaries.push(
            summarize(target.name, subscribers, runs, options.latencyDeliveriesPerSecond),
          );
        }
      } finally {
        await target.stop();
        activeTargets.delete(target);
        notes.push(...target.notes);
        if (target instanceof EmbeddedTarget) embeddedStats = target.finalStats;
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.done();
  }

  const profiles: ProfileSummary[] = profileDirectory ? summarizeProfiles(profileDirectory) : [];
  const table = formatTable(summaries);
  const comparison = formatComparison(summaries);
  const machine = machineFacts(rabbitmqVersion);
  mkdirSync(resultsDirectory, { recursive: true });
  const resultsFile = join(resultsDirectory, `broker-${stamp}.json`);
  writeFileSync(
    resultsFile,
    `${JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        command: `npm run bench:broker${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
        machine: { ...machine, embedded: embeddedVersion },
        options: { ...options, rabbitmqUrl: redactPasscode(options.rabbitmqUrl) },
        bodyBytes: BODY_BYTES,
        summaries,
        comparison,
        notes,
        embeddedBrokerStats: embeddedStats,
        profiles,
      },
      null,
      2,
    )}\n`,
  );

  const out: string[] = [
    `Machine: ${String(machine.cores)} × ${String(machine.cpuModel)}, Node ${process.version}` +
      (rabbitmqVersion ? `, ${rabbitmqVersion}` : '') +
      `; ${String(machine.pinned)}.`,
    `Throughput: closed loop, window ${options.window} messages. Latency: ${options.latencyDeliveriesPerSecond.toLocaleString('en-US')} deliveries/s for every target and K.`,
    `${options.runs} run(s) each, ${options.warmupSeconds} s warm-up + ${options.durationSeconds} s measured.`,
    '',
    table,
    '',
    ...comparison,
  ];
  const failures = summaries.flatMap((summary) =>
    summary.failures.map((failure) => `${summary.target} K=${summary.subscribers} ${failure}`),
  );
  if (failures.length > 0) out.push('', 'Failed runs:', ...failures.map((line) => `  ${line}`));
  if (notes.length > 0) out.push('', 'Notes:', ...notes.map((line) => `  ${line}`));
  for (const profile of profiles) out.push('', formatProfileSummary(profile));
  out.push('', `Raw figures: ${relative(process.cwd(), resultsFile)}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Results files are shared; passcodes stay out of them. */
function redactPasscode(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@/]*@/, '$1:***@');
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
