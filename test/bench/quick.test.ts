import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REQUIRED_TARGETS, TARGETS } from '../../bench/catalog.js';
import type { BenchResults, ConfigurationResult } from '../../bench/results.js';

/**
 * `npm run bench -- --quick`, as a user runs it, so that the harness cannot rot: the structure of
 * what it writes, never its timings (DESIGN.md §8: performance is measured, not asserted).
 */

const MAIN = new URL('../../bench/main.ts', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;
const requireServices = process.env.PERIGEE_REQUIRE_SERVICES === '1';
const resultsDirectory = mkdtempSync(join(tmpdir(), 'perigee-bench-test-'));
afterAll(() => rmSync(resultsDirectory, { recursive: true, force: true }));

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function bench(args: string[]): Promise<Finished> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** A figure, or a failure that says why: never a silent gap. */
function expectFigureOrReason(value: unknown, what: string): void {
  if (typeof value === 'object' && value !== null && 'failed' in value) {
    expect(typeof value.failed, what).toBe('string');
    expect(String(value.failed).length, what).toBeGreaterThan(0);
  } else {
    expect(value, what).toBeTypeOf('object');
  }
}

function expectRowMeasuredOrExplained(row: ConfigurationResult): void {
  if (row.notRun !== undefined) {
    expect(row.notRun.length, `${row.target}: reason it did not run`).toBeGreaterThan(0);
    expect(row.runs).toEqual([]);
    return;
  }
  expect(row.runs.length, `${row.target}: runs`).toBeGreaterThan(0);
  for (const run of row.runs) {
    if (run.failure !== undefined) {
      expect(run.failure.length, `${row.target}: failure reason`).toBeGreaterThan(0);
      continue;
    }
    expect(run.storm?.ms, `${row.target}: storm time`).toBeTypeOf('number');
    expectFigureOrReason(run.memory, `${row.target}: memory`);
    if (run.memory && !('failed' in run.memory)) {
      expect(run.memory.rssPerConnection, `${row.target}: RSS per connection`).toBeTypeOf('number');
    }
    if (!row.phases.includes('throughput')) continue;
    expectFigureOrReason(run.throughput, `${row.target}: throughput`);
    if (run.throughput && !('failed' in run.throughput)) {
      expect(run.throughput.deliveriesPerSecond, `${row.target}: deliveries/s`).toBeTypeOf(
        'number',
      );
      expect(Number.isFinite(run.throughput.deliveriesPerSecond)).toBe(true);
    } else {
      // A failed throughput window ends the run: there is no latency window after it.
      continue;
    }
    expectFigureOrReason(run.latency, `${row.target}: latency`);
    if (run.latency && !('failed' in run.latency)) {
      expect(run.latency.p50Ms, `${row.target}: p50`).toBeTypeOf('number');
      expect(run.latency.p99Ms, `${row.target}: p99`).toBeTypeOf('number');
      expect(run.latency.histogram.length, `${row.target}: histogram`).toBeGreaterThan(0);
    }
  }
}

describe('npm run bench', () => {
  it('says what is wrong with a bad flag in one line, and exits 2', async () => {
    const result = await bench(['--no-such-flag']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^bench: .*no-such-flag/);
  });

  it('rejects an unknown row by name', async () => {
    const result = await bench(['--targets', 'nope']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown row "nope"/);
  });

  it('prints its help', async () => {
    const result = await bench(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/--scenarios/);
    expect(result.stdout).toMatch(/--quick/);
  });

  it('--quick writes every required row, the JSON and an HTML report with plots', async () => {
    const result = await bench(['--quick', '--results-dir', resultsDirectory]);
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    // A smoke run's figures never land in the documentation.
    expect(result.stdout).not.toMatch(/Tables written to BENCHMARKS\.md/);

    const files = readdirSync(resultsDirectory);
    const json = files.find((name) => name.endsWith('.json'));
    const html = files.find((name) => name.endsWith('.html'));
    expect(json).toBeDefined();
    expect(html).toBeDefined();
    const results = JSON.parse(readFileSync(join(resultsDirectory, json!), 'utf8')) as BenchResults;
    expect(results.machine.cores).toBeTypeOf('number');
    for (const target of REQUIRED_TARGETS) {
      const row = results.configurations.find(
        (configuration) =>
          configuration.target === target && configuration.scenarios.includes('fanout'),
      );
      expect(row, `required row ${target}`).toBeDefined();
      expectRowMeasuredOrExplained(row!);
      // Node servers are devDependencies: they always run.
      if (TARGETS.get(target)!.server !== 'rabbitmq' || requireServices) {
        expect(row!.notRun, `${target} must run`).toBeUndefined();
      }
    }
    for (const row of results.configurations) expectRowMeasuredOrExplained(row);
    // Peers that cannot run are named with the reason.
    for (const [kind, server] of Object.entries(results.servers)) {
      expect(server.about ?? server.notRun, `server ${kind}`).toBeTypeOf('string');
    }
    expect(results.configurations.some((row) => row.topicMode === 'each')).toBe(true);

    const page = readFileSync(join(resultsDirectory, html!), 'utf8');
    expect(page).toMatch(/<svg[^>]*>/);
    expect(page).toMatch(/deliveries\/s vs subscribers/);
    expect(page).toMatch(/Latency CDF/);
    expect(page).toMatch(/Memory per idle connection/);
    expect(page).toMatch(/Wire bytes per delivered message/);
    expect(page).toMatch(/<table>/);
    expect(result.stdout).toMatch(/Fan-out: 1 topic, N subscribers/);
  }, 360_000);
});
