/**
 * `npm run bench:quiz`: the quiz under load. A 5-question game with 200 bot players and 3 Chromium
 * players; the pages measure how long each status update takes from the server's publish to the
 * page (game.js keeps `window.quizLatencies`), and this prints p50/p99 across the pages.
 *
 * The quiz app runs in this process, on core 0. The bots (examples/quiz/bots.ts, the same program
 * as `npm run quiz:bots`) run in a child process and Chromium in its own, both on core 1, so that
 * the load does not starve the server of CPU, much as players' devices would not share its CPU.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Session as InspectorSession } from 'node:inspector';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createUser } from '../../examples/quiz/accounts.js';
import { createQuizApp, type QuizApp } from '../../examples/quiz/app.js';
import {
  latencyFigures as figures,
  type BotsSummary,
  type LatencyFigures,
} from '../../examples/quiz/bots.js';
import { saveQuiz } from '../../examples/quiz/quizzes.js';
import { buildClient } from '../../scripts/build-client.js';
import { formatProfileSummary, summarizeProfile } from '../broker/profile.js';
import { HELP_TEXT, parseOptions, UsageError, type QuizBenchOptions } from './options.js';

const EXIT_USAGE = 2;
const EXIT_FAILED = 1;
const EXIT_INTERRUPTED = 130;
const SERVER_CORE = '0';
const LOAD_CORE = '1';
const CHROMIUM_PATH = '/usr/bin/chromium';
/** SERVICES.md's flags for this machine (as test/support/browser.ts). */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BOTS_SCRIPT = join(ROOT, 'examples', 'quiz', 'bots.ts');
const RESULTS = join(process.cwd(), 'bench', 'results');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'bench');

type Figures = LatencyFigures;

interface PageRecord {
  nickname: string;
  transport: string;
  /** Status updates the page handled during the game. */
  received: number;
  /**
   * The page's estimate of (server clock − its clock) at the end of the game. Both clocks are this
   * machine's, so the true offset is 0 and the estimate's error adds to game.js's figures.
   */
  clockOffsetMs: number;
  /** Whether the estimate changed during the game (a reconnect). */
  clockOffsetChanged: boolean;
  podium: string[];
  /** What game.js records: client.serverNow() − publishedAt. */
  latency: Figures | undefined;
  /** The same moment by the page's own clock, Date.now() − publishedAt: the true delay here. */
  localLatency: Figures | undefined;
  /** Every update's delay by the page's clock and its state, in the order they came (JSON file). */
  raw: [number, string][];
}

interface RunRecord {
  run: number;
  ok: boolean;
  failure?: string;
  gameMs: number;
  /** Status messages the server published during the game. */
  published: number;
  answers: number;
  expectedAnswers: number;
  pages: PageRecord[];
  /** All pages' updates together, as game.js records them. */
  pageLatency: Figures | undefined;
  /** All pages' updates together, by the one clock this machine has. */
  pageLocalLatency: Figures | undefined;
  bots: Omit<BotsSummary, 'bots'> | undefined;
  botFailures: string[];
  serverCpu: number;
  botsCpu: number | undefined;
  serverEventLoopDelayP99Ms: number;
  joinMs: number;
  /**
   * The machine's 1-minute load average before the run and right after the game. This bench's own
   * processes account for about 1; much more means something else competed for the two cores.
   */
  loadBefore: number;
  loadAfter: number;
}

let pinned = false;

/**
 * Puts this process on `core`. With `allThreads` false only the main thread moves, which is the
 * thread that forks children: processes started afterwards (Chromium, the bots) inherit the mask.
 */
function pinSelf(core: string, allThreads: boolean): void {
  execFileSync('taskset', [...(allThreads ? ['-a'] : []), '-p', '-c', core, String(process.pid)], {
    stdio: 'ignore',
  });
}

function canPin(): boolean {
  if (cpus().length < 2) return false;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** utime + stime of a process, in seconds (Linux). */
function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

class BotsChild {
  readonly child: ChildProcess;
  readonly events: Record<string, unknown>[] = [];
  private stderr = '';
  private readonly waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(args: string[], pin: boolean) {
    const node = [process.execPath, '--import', 'tsx', BOTS_SCRIPT, ...args];
    this.child = pin
      ? spawn('taskset', ['-c', LOAD_CORE, ...node], {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(node[0]!, node.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (text: string) => {
      buffered += text;
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.startsWith('{')) this.events.push(JSON.parse(line) as Record<string, unknown>);
        this.wake();
      }
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => (this.stderr += text));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.wake();
        resolve(code);
      }),
    );
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  event(name: string, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`the bots printed no "${name}" within ${timeoutMs} ms: ${this.lastWords()}`),
          ),
        timeoutMs,
      );
      const check = (): void => {
        const found = this.events.find((event) => event.event === name);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          clearTimeout(timer);
          reject(new Error(`the bots exited before "${name}": ${this.lastWords()}`));
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  lastWords(): string {
    return this.stderr.trim().split('\n').slice(-3).join(' / ') || '(nothing on stderr)';
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** The inspector's CPU profiler on this process (the server), from now until `stop`. */
async function startProfiler(): Promise<{ stop(file: string): Promise<void> }> {
  const session = new InspectorSession();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) =>
      session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
    );
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 500 });
  await post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      session.disconnect();
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify(profile));
    },
  };
}

/** Answers like a person: a random choice, some time after the question appears. */
const AUTO_ANSWER = `(({ min, max }) => {
  let planned = -1;
  window.benchAnswered = 0;
  setInterval(() => {
    const game = document.getElementById('game');
    if (!game || game.dataset.state !== 'question') return;
    const progress = game.querySelector('.progress');
    const index = Number(/(\\d+)/.exec(progress ? progress.textContent : '')?.[1]);
    if (!index || index === planned) return;
    planned = index;
    setTimeout(() => {
      const buttons = [...document.querySelectorAll('#game button.choice:not([disabled])')];
      if (buttons.length === 0) return;
      buttons[Math.floor(Math.random() * buttons.length)].click();
      window.benchAnswered++;
    }, min + Math.random() * (max - min));
  }, 50);
})`;

/**
 * game.js pushes serverNow() − publishedAt onto window.quizLatencies; at that same moment this
 * notes the client's clock offset, so that Date.now() − publishedAt follows (the offset is the
 * only difference).
 */
const RECORD_LOCAL_CLOCK = `(() => {
  window.benchLocalLatencies = [];
  window.benchOffsets = [];
  window.benchStates = [];
  window.quizLatencies.push = function (...values) {
    const offset = window.quizClient.core.serverTimeOffset;
    for (const value of values) {
      window.benchLocalLatencies.push(value - offset);
      window.benchOffsets.push(offset);
      // game.js renders the update right after recording it: its state is known a moment later.
      queueMicrotask(() => window.benchStates.push(document.getElementById('game').dataset.state));
    }
    return Array.prototype.push.apply(this, values);
  };
})()`;

async function joinInBrowser(
  browser: Browser,
  url: string,
  code: string,
  nickname: string,
  transport: string | undefined,
  contexts: BrowserContext[],
): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(`${url}/join?code=${code}`, { waitUntil: 'domcontentloaded' });
  await page.fill('#nickname', nickname);
  await Promise.all([
    page.waitForURL(/\/games\/\d+\/play/, { waitUntil: 'domcontentloaded' }),
    page.click('button[type=submit]'),
  ]);
  if (transport) {
    await page.goto(`${page.url()}?transports=${transport}`, { waitUntil: 'domcontentloaded' });
  }
  await page.waitForSelector('#connection[data-state=open]', { timeout: 20_000 });
  return page;
}

async function playOneGame(
  options: QuizBenchOptions,
  run: number,
  browser: Browser,
  progress: (line: string) => void,
  cleanups: (() => Promise<void> | void)[],
): Promise<RunRecord> {
  const loadBefore = loadavg()[0]!;
  const folder = mkdtempSync(join(tmpdir(), 'perigee-bench-quiz-'));
  cleanups.push(() => rmSync(folder, { recursive: true, force: true }));
  const app: QuizApp = await createQuizApp({
    stomp: 'off',
    revealMs: options.revealMs,
    sqliteFile: join(folder, 'quiz.db'),
  });
  cleanups.push(() => app.close());
  await app.fastify.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
  const { port } = app.fastify.server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  const db = app.database.db;
  const host = await createUser(db, 'bench-host', 'bench-password');
  const quizId = await saveQuiz(
    db,
    host!.id,
    'Quiz under load',
    Array.from({ length: options.questions }, (_, n) => ({
      text: `Question ${n + 1}: which colour?`,
      choices: ['Red', 'Blue', 'Yellow', 'Green'],
      correct: n % 4,
      seconds: options.seconds,
    })),
  );
  const game = await app.games.create(quizId, host!.id);
  const statusDestination = `/games/${game.id}/status`;

  const contexts: BrowserContext[] = [];
  cleanups.push(async () => {
    await Promise.all(contexts.map((context) => context.close().catch(() => undefined)));
  });
  const pages: Page[] = [];
  const pageNames: string[] = [];
  for (let n = 1; n <= options.browsers; n++) {
    const transport = options.browserTransports.length
      ? options.browserTransports[(n - 1) % options.browserTransports.length]
      : undefined;
    const nickname = `Browser ${n}`;
    pages.push(await joinInBrowser(browser, url, game.code, nickname, transport, contexts));
    pageNames.push(nickname);
  }
  for (const page of pages) await page.evaluate(`${AUTO_ANSWER}(${JSON.stringify(options.think)})`);

  const joinStarted = Date.now();
  let bots: BotsChild | undefined;
  if (options.players > 0) {
    bots = new BotsChild(
      [
        '--url',
        url,
        '--game',
        game.code,
        '--players',
        String(options.players),
        '--transports',
        options.transports.join(','),
        '--think',
        `${options.think.min}-${options.think.max}`,
        '--json',
      ],
      options.pin && pinned,
    );
    const child = bots;
    cleanups.push(() => child.kill());
    progress(`run ${run}: ${options.players} bots joining game ${game.code}…`);
    const ready = await bots.event('ready', 120_000 + options.players * 100);
    if (ready.joined !== options.players || ready.live !== options.players) {
      throw new Error(
        `only ${String(ready.joined)} bots joined and ${String(ready.live)} went live of ${options.players}: ${bots.lastWords()}`,
      );
    }
  }
  const joinMs = Date.now() - joinStarted;
  const players = await app.games.players(game.id);
  if (players.length !== options.players + options.browsers) {
    throw new Error(
      `${players.length} players in the game, not ${options.players + options.browsers}`,
    );
  }

  // Only the game's updates count: the lobby's come while everyone is still joining. Once no
  // page has had one for a while, the lobby is quiet and the count is where the game begins.
  const counts = (): Promise<number[]> =>
    Promise.all(pages.map((page) => page.evaluate<number>('window.quizLatencies.length')));
  let before = await counts();
  for (let quiet = 0; quiet < 3;) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = await counts();
    quiet = now.every((count, index) => count === before[index]) ? quiet + 1 : 0;
    before = now;
  }
  // Beside each figure game.js records, the same delay by the page's own clock (this machine's
  // one clock): game.js's figure less the client's estimate of the server's clock offset.
  for (const page of pages) await page.evaluate(RECORD_LOCAL_CLOCK);
  const positionBefore = app.broker.position(statusDestination);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const cpuBefore = process.cpuUsage();
  const botsCpuBefore = bots?.child.pid ? processCpuSeconds(bots.child.pid) : undefined;
  const started = Date.now();
  progress(`run ${run}: ${players.length} players; the game starts`);
  const profiler = options.cpuProfile ? await startProfiler() : undefined;
  await app.games.start(game.id, host!.id);

  const gameBudgetMs = options.questions * (options.seconds * 1000 + options.revealMs) + 60_000;
  await Promise.all(
    pages.map((page) =>
      page.waitForSelector('#game[data-state=finished] .podium li', { timeout: gameBudgetMs }),
    ),
  );
  const gameMs = Date.now() - started;
  const loadAfter = loadavg()[0]!;
  const cpu = process.cpuUsage(cpuBefore);
  if (profiler) {
    const file = join(
      RESULTS,
      `quiz-run${run}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`,
    );
    await profiler.stop(file);
    progress(`run ${run}: server profile ${relative(process.cwd(), file)}`);
    progress(formatProfileSummary(summarizeProfile(file, 20)));
  }
  loop.disable();
  const botsCpuAfter = bots?.child.pid ? processCpuSeconds(bots.child.pid) : undefined;
  const positionAfter = app.broker.position(statusDestination);
  const published =
    positionBefore && positionAfter ? positionAfter.offset - positionBefore.offset : Number.NaN;

  let botsSummary: BotsSummary | undefined;
  if (bots) {
    botsSummary = (await bots.event('summary', 30_000)) as unknown as BotsSummary;
    await bots.exited;
  }

  const pageRecords: PageRecord[] = [];
  const allPageLatencies: number[] = [];
  const allLocalLatencies: number[] = [];
  for (const [index, page] of pages.entries()) {
    const observed = await page.evaluate<{
      latencies: number[];
      local: number[];
      offsets: number[];
      states: string[];
      transport: string;
      podium: string[];
    }>(`({
      latencies: window.quizLatencies,
      local: window.benchLocalLatencies,
      offsets: window.benchOffsets,
      states: window.benchStates,
      transport: window.quizClient.transport,
      podium: [...document.querySelectorAll('.podium .name')].map((node) => node.textContent),
    })`);
    const latencies = observed.latencies.slice(before[index]);
    allPageLatencies.push(...latencies);
    allLocalLatencies.push(...observed.local);
    pageRecords.push({
      nickname: pageNames[index]!,
      transport: observed.transport,
      received: latencies.length,
      clockOffsetMs: observed.offsets[observed.offsets.length - 1] ?? Number.NaN,
      clockOffsetChanged: new Set(observed.offsets).size > 1,
      podium: observed.podium,
      latency: figures(latencies),
      localLatency: figures(observed.local),
      raw: observed.local.map((value, index) => [value, observed.states[index] ?? '?']),
    });
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  await pages[0]!.screenshot({
    path: join(ARTIFACTS, `quiz-run${run}-podium.png`),
    fullPage: false,
  });

  const answers = await db
    .selectFrom('answers')
    .select(({ fn }) => fn.countAll<number>().as('count'))
    .where('game_id', '=', game.id)
    .executeTakeFirstOrThrow();
  const expectedAnswers = (options.players + options.browsers) * options.questions;
  const failures: string[] = [];
  if (Number(answers.count) !== expectedAnswers)
    failures.push(`${answers.count} answers recorded, not ${expectedAnswers}`);
  for (const record of pageRecords) {
    if (record.received !== published)
      failures.push(`${record.nickname} handled ${record.received} of ${published} updates`);
    if (record.podium.length === 0) failures.push(`${record.nickname} shows no podium`);
  }
  const botFailures: string[] = [];
  if (botsSummary) {
    if (botsSummary.finished !== options.players)
      botFailures.push(`${botsSummary.finished} of ${options.players} bots played to the end`);
    if (botsSummary.errors > 0) {
      const first = botsSummary.bots.find((bot) => bot.errors.length > 0);
      botFailures.push(
        `${botsSummary.errors} bot errors, e.g. ${first?.nickname}: ${first?.errors[0]}`,
      );
    }
  }
  failures.push(...botFailures);
  const { bots: _perBot, ...botsTotals } = botsSummary ?? { bots: undefined };
  return {
    run,
    ok: failures.length === 0,
    failure: failures.length > 0 ? failures.join('; ') : undefined,
    gameMs,
    published,
    answers: Number(answers.count),
    expectedAnswers,
    pages: pageRecords,
    pageLatency: figures(allPageLatencies),
    pageLocalLatency: figures(allLocalLatencies),
    bots: botsSummary ? (botsTotals as Omit<BotsSummary, 'bots'>) : undefined,
    botFailures,
    serverCpu: (cpu.user + cpu.system) / 1000 / gameMs,
    botsCpu:
      botsCpuBefore !== undefined && botsCpuAfter !== undefined
        ? ((botsCpuAfter - botsCpuBefore) * 1000) / gameMs
        : undefined,
    serverEventLoopDelayP99Ms: loop.percentile(99) / 1e6,
    joinMs,
    loadBefore,
    loadAfter,
  };
}

const ms = (value: number | undefined): string =>
  value === undefined || Number.isNaN(value)
    ? '–'
    : value < 10
      ? value.toFixed(1)
      : value.toFixed(0);
const percent = (value: number | undefined): string =>
  value === undefined ? '–' : `${Math.round(value * 100)}%`;

function median(values: number[]): { median: number; min: number; max: number } | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return {
    median: sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
  };
}

function spreadText(values: number[]): string {
  const spread = median(values);
  if (!spread) return '–';
  return values.length === 1
    ? ms(spread.median)
    : `${ms(spread.median)} [${ms(spread.min)}–${ms(spread.max)}]`;
}

function formatReport(options: QuizBenchOptions, runs: RunRecord[], machine: string[]): string {
  const lines: string[] = [];
  lines.push(
    `${options.players} bots + ${options.browsers} Chromium pages, ${options.questions} questions of ${options.seconds} s, ` +
      `answers ${options.think.min}-${options.think.max} ms after each question appears, reveal ${options.revealMs} ms`,
  );
  lines.push(...machine);
  lines.push('');
  lines.push(
    'Delay from publish to page, ms: "clock" is Date.now() − publishedAt in the page (one clock, the true delay);',
  );
  lines.push(
    '"game.js" is what the page script records, client.serverNow() − publishedAt (adds the error of the client\'s clock-offset estimate).',
  );
  lines.push('');
  lines.push(
    '| run | game | status msgs | answers | page updates | pages p50 (clock) | pages p99 (clock) | pages max (clock) | pages p50 (game.js) | pages p99 (game.js) | bot updates | bots p50 (clock) | bots p99 (clock) | server CPU | server loop p99 | bots CPU |',
  );
  lines.push(
    '| --: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const run of runs) {
    const local = run.pageLocalLatency;
    const botsLocal = run.bots?.localLatency;
    lines.push(
      `| ${run.run}${run.ok ? '' : ' ✗'} | ${(run.gameMs / 1000).toFixed(1)} s | ${run.published} | ${run.answers}/${run.expectedAnswers} | ` +
        `${local?.count ?? 0} | ${ms(local?.p50)} | ${ms(local?.p99)} | ${ms(local?.max)} | ` +
        `${ms(run.pageLatency?.p50)} | ${ms(run.pageLatency?.p99)} | ` +
        `${botsLocal?.count ?? '–'} | ${ms(botsLocal?.p50)} | ${ms(botsLocal?.p99)} | ` +
        `${percent(run.serverCpu)} | ${ms(run.serverEventLoopDelayP99Ms)} | ${percent(run.botsCpu)} |`,
    );
  }
  const done = runs.filter((run) => run.pageLocalLatency && run.pageLatency);
  if (done.length > 0) {
    lines.push('');
    lines.push(`Median [min–max] of ${done.length} run(s), ms:`);
    lines.push(
      `  pages (clock)    p50 ${spreadText(done.map((run) => run.pageLocalLatency!.p50))}, ` +
        `p99 ${spreadText(done.map((run) => run.pageLocalLatency!.p99))}`,
    );
    lines.push(
      `  pages (game.js)  p50 ${spreadText(done.map((run) => run.pageLatency!.p50))}, ` +
        `p99 ${spreadText(done.map((run) => run.pageLatency!.p99))}`,
    );
    const botRuns = done.filter((run) => run.bots?.localLatency);
    if (botRuns.length > 0) {
      lines.push(
        `  bots (clock)     p50 ${spreadText(botRuns.map((run) => run.bots!.localLatency!.p50))}, ` +
          `p99 ${spreadText(botRuns.map((run) => run.bots!.localLatency!.p99))}`,
      );
    }
  }
  lines.push('');
  for (const run of runs) {
    lines.push(`run ${run.run}:`);
    for (const page of run.pages) {
      lines.push(
        `  ${page.nickname} (${page.transport}): ${page.received} updates; clock p50 ${ms(page.localLatency?.p50)}, ` +
          `p99 ${ms(page.localLatency?.p99)}; game.js p50 ${ms(page.latency?.p50)}, p99 ${ms(page.latency?.p99)}; ` +
          `clock-offset estimate ${page.clockOffsetMs.toFixed(1)} ms${page.clockOffsetChanged ? ' (changed during the game)' : ''}; ` +
          `podium ${page.podium.join(', ')}`,
      );
    }
    if (run.bots) {
      lines.push(
        `  bots: ${run.bots.joined}/${run.bots.players} joined and live in ${(run.joinMs / 1000).toFixed(1)} s, ` +
          `${run.bots.finished} finished, ${run.bots.answered} answers, ${run.bots.late} late, ${run.bots.errors} errors`,
      );
      for (const [name, entry] of Object.entries(run.bots.byTransport)) {
        lines.push(
          `    ${name.padEnd(16)} ${entry.finished}/${entry.bots} finished; clock p50 ${ms(entry.localLatency?.p50)}, ` +
            `p99 ${ms(entry.localLatency?.p99)}, max ${ms(entry.localLatency?.max)}`,
        );
      }
    }
    lines.push(
      `  load average (1 min) ${run.loadBefore.toFixed(1)} before, ${run.loadAfter.toFixed(1)} after the game` +
        (run.loadAfter > 3 || run.loadBefore > 1.5
          ? ': other work competed for the cores, so these figures overstate the delays'
          : ''),
    );
    if (run.failure) lines.push(`  FAILED: ${run.failure}`);
  }
  return lines.join('\n');
}

export async function main(args: string[]): Promise<void> {
  let options: QuizBenchOptions;
  try {
    options = parseOptions(args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`bench:quiz: ${error.message}\n`);
      process.exit(EXIT_USAGE);
    }
    throw error;
  }
  if (options.help) {
    process.stdout.write(HELP_TEXT);
    return;
  }
  const progress = (line: string): void => void process.stderr.write(`bench:quiz: ${line}\n`);

  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanUp = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch {
        // Cleaning up after a failure: the failure is what gets reported.
      }
    }
  };
  let interrupted = false;
  const interrupt = (): void => {
    if (interrupted) process.exit(EXIT_INTERRUPTED);
    interrupted = true;
    progress('interrupted: cleaning up (Ctrl-C again to quit at once)');
    void cleanUp().finally(() => process.exit(EXIT_INTERRUPTED));
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);

  await buildClient();
  // Chromium and the bots inherit the load core from this thread; the server then moves to its own.
  if (options.pin && canPin()) {
    pinSelf(LOAD_CORE, false);
    pinned = true;
  } else if (options.pin) {
    progress('taskset or a second core is missing: running unpinned');
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  const browserCleanup = async (): Promise<void> => browser.close();
  if (pinned) pinSelf(SERVER_CORE, true);

  const cpuList = cpus();
  const machine = [
    `Machine: ${cpuList.length} × ${cpuList[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB (${Math.round(freemem() / 2 ** 30)} GiB free); ` +
      `Node ${process.version}; Chromium ${browser.version()}; ` +
      (pinned
        ? `server (this process) on core ${SERVER_CORE}, bots and Chromium on core ${LOAD_CORE}`
        : 'unpinned'),
  ];
  progress(machine[0]!);

  const load = loadavg()[0]!;
  if (load > 1.5) {
    progress(
      `the machine is busy (1-minute load average ${load.toFixed(1)} on ${cpuList.length} cores): other work will inflate the delays`,
    );
  }
  const runs: RunRecord[] = [];
  let failed = false;
  try {
    for (let run = 1; run <= options.runs; run++) {
      try {
        const record = await playOneGame(options, run, browser, progress, cleanups);
        runs.push(record);
        progress(
          `run ${run}: ${record.ok ? 'done' : `FAILED (${record.failure})`} in ${(record.gameMs / 1000).toFixed(1)} s; ` +
            `pages p50 ${ms(record.pageLatency?.p50)} ms, p99 ${ms(record.pageLatency?.p99)} ms over ${record.pageLatency?.count ?? 0} updates`,
        );
        if (!record.ok) failed = true;
      } catch (error) {
        if (interrupted) return;
        failed = true;
        progress(`run ${run} FAILED: ${(error as Error).message}`);
        runs.push({
          run,
          ok: false,
          failure: (error as Error).message,
          gameMs: 0,
          published: 0,
          answers: 0,
          expectedAnswers: (options.players + options.browsers) * options.questions,
          pages: [],
          pageLatency: undefined,
          pageLocalLatency: undefined,
          bots: undefined,
          botFailures: [],
          serverCpu: 0,
          botsCpu: undefined,
          serverEventLoopDelayP99Ms: Number.NaN,
          joinMs: 0,
          loadBefore: Number.NaN,
          loadAfter: loadavg()[0]!,
        });
      } finally {
        await cleanUp();
      }
    }
  } finally {
    await browserCleanup();
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }

  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, `quiz-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ command: `npm run bench:quiz${args.length ? ` -- ${args.join(' ')}` : ''}`, options, machine, runs }, null, 2)}\n`,
  );
  process.stdout.write(
    `${formatReport(options, runs, machine)}\n\nRaw figures: ${relative(process.cwd(), file)}\n`,
  );
  if (failed) process.exitCode = EXIT_FAILED;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
