/**
 * `npm run quiz:bots -- --game CODE --players N [--transports ws,xhr-polling,…]`: bot players for
 * demos and load. Each bot does what a person's browser does, through the real routes and the real
 * transports: it opens the join page (which gives it a session cookie and a CSRF token), posts the
 * join form, loads the play page, connects to the gateway named in that page's Perigee settings,
 * follows the game on its status topic from the position the page was rendered at, and answers each
 * question with a random choice at a random moment before the deadline. Bots are spread
 * round-robin over the transports; all of them live in this one process.
 *
 * It uses only Perigee's public browser client (the `perigee/client` entry point), given `ws` and
 * `eventsource` for what Node lacks. htmlfile and JSONP polling need a DOM, so bots cannot use them.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import {
  connect,
  type Environment,
  type PerigeeClient,
  type StompMessage,
  type TransportName,
} from '../../src/client/browser/index.js';

/** The transports a Node process can run, in the order bots are dealt them. */
export const BOT_TRANSPORTS = [
  'websocket',
  'sockjs-websocket',
  'eventsource',
  'xhr-streaming',
  'xhr-polling',
  'short-polling',
] as const satisfies readonly TransportName[];
export type BotTransport = (typeof BOT_TRANSPORTS)[number];

const ALIASES: Readonly<Record<string, BotTransport>> = {
  ws: 'websocket',
  sse: 'eventsource',
  polling: 'short-polling',
  'short polling': 'short-polling',
};
const NEED_A_DOM = new Set(['htmlfile', 'jsonp-polling']);

export const EXIT_USAGE = 2;
const EXIT_FAILED = 1;
const EXIT_INTERRUPTED = 130;
/** An answer planned this close to the deadline might arrive after it: bots keep clear of it. */
const DEADLINE_MARGIN_MS = 750;
const MAX_PLAYERS = 5000;

export const HELP_TEXT = `Usage: npm run quiz:bots -- --game CODE [options]

Bot players for the quiz: each joins through the real join form, follows the game over a real
Perigee transport, and answers every question with a random choice before the deadline.

Options:
  --game CODE         the game's 6-character code, as shown on the host's screen (required)
  --url URL           the quiz's address (default http://localhost:8080)
  --players N         how many bots (default 10, at most ${MAX_PLAYERS})
  --transports LIST   transports, dealt round-robin: ${BOT_TRANSPORTS.join(', ')}
                      (ws is websocket, sse eventsource, polling short-polling; default all of them)
  --think MIN-MAX     answer MIN to MAX ms after a question appears (default: any time before
                      the deadline, keeping ${DEADLINE_MARGIN_MS} ms clear of it)
  --ramp MS           pause between two bots joining (default 20)
  --name PREFIX       nicknames are "PREFIX 1", "PREFIX 2"… (default Bot)
  --json              print JSON lines on stdout (a "ready" event, then the summary) instead of text
  --help              this text

Exit status: 0 when every bot joined and played to the end, 1 when some did not, 2 for bad flags,
130 after Ctrl-C.
`;

export interface BotOptions {
  url: string;
  game: string;
  players: number;
  transports: BotTransport[];
  /** Milliseconds after the question appears; undefined: anywhere in the answer window. */
  think: { min: number; max: number } | undefined;
  rampMs: number;
  name: string;
  json: boolean;
}

export class UsageError extends Error {}

export function parseBotOptions(args: string[]): BotOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        url: { type: 'string' },
        game: { type: 'string' },
        players: { type: 'string' },
        transports: { type: 'string' },
        think: { type: 'string' },
        ramp: { type: 'string' },
        name: { type: 'string' },
        json: { type: 'boolean' },
      },
    }));
  } catch (error) {
    // Node's messages run on with advice about '--'; the first sentence says what is wrong.
    const firstSentence = (error as Error).message.split('. ')[0] ?? String(error);
    throw new UsageError(`${firstSentence} (see --help)`);
  }
  if (values.help) return 'help';
  const url = values.url ?? 'http://localhost:8080';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(
      `--url: expected an http(s) address such as http://localhost:8080, got "${url}"`,
    );
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`--url: expected an http(s) address, got "${url}"`);
  }
  if (values.game === undefined) throw new UsageError('--game CODE is required (see --help)');
  const game = values.game.trim().toUpperCase();
  if (!/^[A-Z0-9]{6}$/.test(game)) {
    throw new UsageError(`--game: expected the 6-character game code, got "${values.game}"`);
  }
  const name = values.name ?? 'Bot';
  const players = wholeNumber('--players', values.players, 10, 1, MAX_PLAYERS);
  // The nickname is "name number"; the app allows 24 characters, and a clash adds 5 more.
  if (name.trim() === '' || name.length + 1 + String(players).length + 5 > 24) {
    throw new UsageError(
      `--name: expected 1 to ${18 - String(players).length} characters, got "${name}"`,
    );
  }
  return {
    url: parsed.href.replace(/\/+$/, ''),
    game,
    players,
    transports: transportList(values.transports),
    think: thinkRange(values.think),
    rampMs: wholeNumber('--ramp', values.ramp, 20, 0, 60_000),
    name: name.trim(),
    json: values.json ?? false,
  };
}

function wholeNumber(
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

function transportList(text: string | undefined): BotTransport[] {
  if (text === undefined) return [...BOT_TRANSPORTS];
  const names = text
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  if (names.length === 0) throw new UsageError('--transports: expected at least one transport');
  return names.map((name) => {
    const known = ALIASES[name] ?? BOT_TRANSPORTS.find((transport) => transport === name);
    if (known) return known;
    if (NEED_A_DOM.has(name)) {
      throw new UsageError(
        `--transports: ${name} needs a browser's DOM; bots can use ${BOT_TRANSPORTS.join(', ')}`,
      );
    }
    throw new UsageError(
      `--transports: unknown transport "${name}"; expected some of ${BOT_TRANSPORTS.join(', ')} (or ws)`,
    );
  });
}

function thinkRange(text: string | undefined): { min: number; max: number } | undefined {
  if (text === undefined) return undefined;
  const match = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(text);
  const min = Number(match?.[1]);
  const max = Number(match?.[2] ?? match?.[1]);
  if (!match || min > max || max > 600_000) {
    throw new UsageError(
      `--think: expected MIN-MAX in milliseconds such as 500-4000, got "${text}"`,
    );
  }
  return { min, max };
}

/** What a bot did, for the summary. */
export interface BotReport {
  nickname: string;
  transport: BotTransport;
  joined: boolean;
  /** Subscribed to the game's status on the gateway. */
  live: boolean;
  /** Answers the server accepted. */
  answered: number;
  /** Answers that reached the server after the question closed. */
  late: number;
  correct: number;
  questions: number;
  finished: boolean;
  rank: number | undefined;
  of: number | undefined;
  score: number | undefined;
  reconnects: number;
  errors: string[];
  /** serverNow() − publishedAt of every status message during play, in ms. */
  latencies: number[];
  /** Date.now() − publishedAt of the same messages: exact when the bots share the server's clock. */
  localLatencies: number[];
  /** The client's estimate of the server's clock minus this one, in ms. */
  clockOffset: number | undefined;
}

interface PageData {
  gameId: number;
  playerId: number | null;
  csrf: string;
  status: Status;
  myAnswer: { index: number; choice: number } | null;
  position?: { epoch: string; offset: number };
  statusDestination: string;
}

type Status =
  | { state: 'lobby'; publishedAt: number }
  | {
      state: 'question';
      index: number;
      total: number;
      question: { choices: string[] };
      startedAt: number;
      deadline: number;
      publishedAt: number;
    }
  | {
      state: 'reveal';
      index: number;
      total: number;
      results: { id: number; correct: boolean; score: number }[];
      publishedAt: number;
    }
  | {
      state: 'finished';
      total: number;
      scoreboard: { id: number; score: number }[];
      publishedAt: number;
    };

/** What Node lacks of a browser: `ws` for WebSocket, the eventsource package for EventSource. */
const NODE_ENVIRONMENT: Partial<Environment> = {
  WebSocket: WebSocket as unknown as Environment['WebSocket'],
  EventSource: EventSource as unknown as Environment['EventSource'],
};

class BotError extends Error {}

/** One bot: a cookie jar, the play page's data, and a Perigee client. */
class Bot {
  readonly report: BotReport;
  private readonly cookies = new Map<string, string>();
  private client: PerigeeClient | undefined;
  private page: PageData | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** The question index an answer is planned or sent for. */
  private plannedIndex = -1;
  private stopped = false;
  private settle: (() => void) | undefined;
  /** Resolves when the bot is done: the game finished, it failed, or it was stopped. */
  readonly done: Promise<void>;
  /** Resolves once the bot is subscribed (or has given up). */
  readonly ready: Promise<void>;
  private markReady: (() => void) | undefined;

  constructor(
    private readonly options: BotOptions,
    nickname: string,
    transport: BotTransport,
  ) {
    this.report = {
      nickname,
      transport,
      joined: false,
      live: false,
      answered: 0,
      late: 0,
      correct: 0,
      questions: 0,
      finished: false,
      rank: undefined,
      of: undefined,
      score: undefined,
      reconnects: 0,
      errors: [],
      latencies: [],
      localLatencies: [],
      clockOffset: undefined,
    };
    this.done = new Promise((resolve) => (this.settle = resolve));
    this.ready = new Promise((resolve) => (this.markReady = resolve));
  }

  /** Joins the game; throws a BotError when the app refuses (no such game, a taken nickname…). */
  async join(): Promise<void> {
    const code = encodeURIComponent(this.options.game);
    const form = await this.request(`/join?code=${code}`);
    const csrf = /name="_csrf" value="([^"]*)"/.exec(await form.text())?.[1];
    if (!csrf) throw new BotError('the join page has no CSRF token');
    let response = await this.postJoin(csrf, this.report.nickname);
    if (response.status === 409) {
      const problem = problemsIn(await response.text());
      if (!problem.includes('already called')) throw new BotError(`cannot join: ${problem}`);
      // Another run of bots took the name: keep the number, add a random tag.
      this.report.nickname = `${this.report.nickname}-${randomBytes(2).toString('hex')}`;
      response = await this.postJoin(csrf, this.report.nickname);
    }
    const location = response.headers.get('location');
    if (response.status !== 303 || !location?.includes('/play')) {
      const problem = problemsIn(await response.text());
      throw new BotError(`cannot join: ${problem || `HTTP ${response.status} from POST /join`}`);
    }
    await response.body?.cancel();
    this.report.joined = true;
    const playUrl = new URL(location, `${this.options.url}/`).href;
    const play = await this.request(playUrl);
    const html = await play.text();
    if (!play.ok) throw new BotError(`the play page answered HTTP ${play.status}`);
    this.page = jsonScript<PageData>(html, 'quiz-page');
    const settings = jsonScript<{ url: string }>(html, 'perigee-settings');
    this.connect(new URL(settings.url, playUrl).href);
  }

  private postJoin(csrf: string, nickname: string): Promise<Response> {
    return this.request('/join', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf, code: this.options.game, nickname }).toString(),
    });
  }

  /** Follows the game as the page script does: subscribe since the rendered position. */
  private connect(gatewayUrl: string): void {
    // Stopped (Ctrl-C) while the join was on its way: leave without connecting.
    if (this.stopped) return;
    const page = this.page!;
    if (page.myAnswer && page.status.state === 'question') this.plannedIndex = page.myAnswer.index;
    const client = connect(gatewayUrl, {
      transports: [this.report.transport],
      env: NODE_ENVIRONMENT,
    });
    this.client = client;
    client.on('state', (change) => {
      if (change.state === 'reconnecting') this.report.reconnects++;
      if (change.state === 'closed' && !this.stopped) {
        this.fail(`the connection closed: ${change.reason ?? 'no reason given'}`);
      }
    });
    client.on('error', (error) => this.report.errors.push(error.message));
    const subscription = client.subscribe(
      page.statusDestination,
      (message) => this.onStatus(message),
      {
        since: page.position,
        onRecovery: (recovered) => {
          // The gateway could not replay what was missed: reload the page's state, as a page would.
          if (!recovered) void this.reload();
        },
      },
    );
    subscription.ready.then(
      () => {
        this.report.live = true;
        this.markReady?.();
      },
      (error: unknown) => this.fail(`cannot subscribe: ${String(error)}`),
    );
    this.apply(page.status);
  }

  private onStatus(message: StompMessage): void {
    let status: Status;
    try {
      status = message.json<Status>();
    } catch {
      this.report.errors.push('a status message was not JSON');
      return;
    }
    // The lobby's updates are left out: a bot that subscribes after others joined gets them
    // replayed, late by design.
    if (this.client && status.state !== 'lobby') {
      const now = Date.now();
      const offset = this.client.core.serverTimeOffset;
      this.report.clockOffset = offset;
      this.report.latencies.push(now + offset - status.publishedAt);
      this.report.localLatencies.push(now - status.publishedAt);
    }
    this.apply(status);
  }

  private apply(status: Status): void {
    if (this.stopped) return;
    switch (status.state) {
      case 'lobby':
        return;
      case 'question':
        this.report.questions = status.total;
        if (this.plannedIndex < status.index) this.plan(status);
        return;
      case 'reveal': {
        const mine = status.results.find((result) => result.id === this.page?.playerId);
        if (mine) this.report.score = mine.score;
        return;
      }
      case 'finished': {
        this.report.questions = status.total;
        const rank = status.scoreboard.findIndex((entry) => entry.id === this.page?.playerId);
        if (rank >= 0) {
          this.report.rank = rank + 1;
          this.report.score = status.scoreboard[rank]!.score;
        }
        this.report.of = status.scoreboard.length;
        this.report.finished = true;
        void this.stop();
        return;
      }
    }
  }

  /** Picks a moment before the deadline, by the server's clock, and answers then. */
  private plan(status: Extract<Status, { state: 'question' }>): void {
    this.plannedIndex = status.index;
    const now = this.client?.serverNow() ?? Date.now();
    const latest = status.deadline - DEADLINE_MARGIN_MS;
    const think = this.options.think;
    const from = status.startedAt + (think?.min ?? Math.min(500, latest - status.startedAt));
    const to = think ? status.startedAt + think.max : latest;
    const at = Math.min(latest, from + Math.random() * Math.max(0, to - from));
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        void this.answer(status.index, Math.floor(Math.random() * status.question.choices.length));
      },
      Math.max(0, at - now),
    );
    this.timers.add(timer);
  }

  private async answer(index: number, choice: number): Promise<void> {
    if (this.stopped || !this.page) return;
    try {
      const response = await this.request(`/games/${this.page.gameId}/answer`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'x-csrf-token': this.page.csrf,
        },
        body: JSON.stringify({ index, choice }),
      });
      const result = (await response.json()) as { correct?: boolean; error?: string };
      if (response.ok) {
        this.report.answered++;
        if (result.correct) this.report.correct++;
      } else if (response.status === 409 && /too late/i.test(result.error ?? '')) {
        this.report.late++;
      } else {
        this.report.errors.push(
          `answer to question ${index + 1}: ${result.error ?? `HTTP ${response.status}`}`,
        );
      }
    } catch (error) {
      if (!this.stopped)
        this.report.errors.push(`answer to question ${index + 1}: ${describe(error)}`);
    }
  }

  /** The page's state again, after a gap the gateway could not replay. */
  private async reload(): Promise<void> {
    if (this.stopped || !this.page) return;
    try {
      const response = await this.request(`/games/${this.page.gameId}/play`);
      const page = jsonScript<PageData>(await response.text(), 'quiz-page');
      if (page.myAnswer && page.status.state === 'question')
        this.plannedIndex = page.myAnswer.index;
      this.apply(page.status);
    } catch (error) {
      this.report.errors.push(`reloading the page: ${describe(error)}`);
    }
  }

  fail(message: string): void {
    if (this.stopped) return;
    this.report.errors.push(message);
    void this.stop();
  }

  /** Leaves: cancels planned answers and disconnects. Safe to call more than once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.markReady?.();
    const client = this.client;
    if (client && client.state !== 'closed') {
      await withTimeout(client.disconnect(), 2000).catch(() => undefined);
    }
    this.settle?.();
  }

  /** A browser's request: this bot's cookies, redirects left to the caller. */
  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    const url = new URL(path, `${this.options.url}/`);
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) {
      headers.set(
        'cookie',
        [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; '),
      );
    }
    let response: Response;
    try {
      response = await fetch(url, { ...init, headers, redirect: 'manual' });
    } catch (error) {
      throw new BotError(`cannot reach ${url.origin}: ${describe(error)}`);
    }
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const equals = pair?.indexOf('=') ?? -1;
      if (pair && equals > 0)
        this.cookies.set(pair.slice(0, equals).trim(), pair.slice(equals + 1));
    }
    return response;
  }
}

function jsonScript<T>(html: string, id: string): T {
  const match = new RegExp(`<script type="application/json" id="${id}">([\\s\\S]*?)</script>`).exec(
    html,
  );
  if (!match) throw new BotError(`the page has no #${id} data`);
  return JSON.parse(match[1]!) as T;
}

/** The problems a form page lists, as one line of text. */
function problemsIn(html: string): string {
  const items = [...html.matchAll(/<li>([\s\S]*?)<\/li>/g)].map((match) =>
    decodeEntities(match[1]!.replace(/<[^>]*>/g, '').trim()),
  );
  return items.join(' ');
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCodePoint(Number(code)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile of sorted samples. */
export function percentile(sorted: readonly number[], fraction: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil(fraction * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export interface BotsSummary {
  game: string;
  url: string;
  players: number;
  joined: number;
  live: number;
  finished: number;
  answered: number;
  late: number;
  errors: number;
  interrupted: boolean;
  /** Status delivery during play: serverNow() − publishedAt, as the pages measure it. */
  latency: LatencyFigures | undefined;
  /** The same by this machine's clock (Date.now() − publishedAt). */
  localLatency: LatencyFigures | undefined;
  byTransport: Record<
    string,
    {
      bots: number;
      joined: number;
      finished: number;
      answered: number;
      errors: number;
      latency: LatencyFigures | undefined;
      localLatency: LatencyFigures | undefined;
    }
  >;
  bots: Omit<BotReport, 'latencies' | 'localLatencies'>[];
}

export interface LatencyFigures {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export function latencyFigures(values: readonly number[]): LatencyFigures | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5)!,
    p99: percentile(sorted, 0.99)!,
    max: sorted[sorted.length - 1]!,
  };
}

export function summarize(options: BotOptions, bots: Bot[], interrupted: boolean): BotsSummary {
  const reports = bots.map((bot) => bot.report);
  const byTransport: BotsSummary['byTransport'] = {};
  for (const report of reports) {
    const entry = (byTransport[report.transport] ??= {
      bots: 0,
      joined: 0,
      finished: 0,
      answered: 0,
      errors: 0,
      latency: undefined,
      localLatency: undefined,
    });
    entry.bots++;
    if (report.joined) entry.joined++;
    if (report.finished) entry.finished++;
    entry.answered += report.answered;
    entry.errors += report.errors.length;
  }
  for (const [transport, entry] of Object.entries(byTransport)) {
    const mine = reports.filter((report) => report.transport === transport);
    entry.latency = latencyFigures(mine.flatMap((report) => report.latencies));
    entry.localLatency = latencyFigures(mine.flatMap((report) => report.localLatencies));
  }
  const sum = (pick: (report: BotReport) => number): number =>
    reports.reduce((total, report) => total + pick(report), 0);
  return {
    game: options.game,
    url: options.url,
    players: options.players,
    joined: reports.filter((report) => report.joined).length,
    live: reports.filter((report) => report.live).length,
    finished: reports.filter((report) => report.finished).length,
    answered: sum((report) => report.answered),
    late: sum((report) => report.late),
    errors: sum((report) => report.errors.length),
    interrupted,
    latency: latencyFigures(reports.flatMap((report) => report.latencies)),
    localLatency: latencyFigures(reports.flatMap((report) => report.localLatencies)),
    byTransport,
    bots: reports.map(
      ({ latencies: _latencies, localLatencies: _localLatencies, ...rest }) => rest,
    ),
  };
}

export function formatSummary(summary: BotsSummary): string {
  const lines: string[] = [];
  const questions = Math.max(0, ...summary.bots.map((bot) => bot.questions));
  lines.push(
    `${summary.interrupted ? 'Interrupted. ' : ''}Game ${summary.game} at ${summary.url}: ` +
      `${summary.joined}/${summary.players} bots joined, ${summary.finished} played to the end; ` +
      `${summary.answered} answers accepted${questions ? ` (${questions} questions)` : ''}, ` +
      `${summary.late} too late, ${summary.errors} errors.`,
  );
  const ms = (value: number): string => `${value.toFixed(1)} ms`;
  for (const [transport, entry] of Object.entries(summary.byTransport)) {
    lines.push(
      `  ${transport.padEnd(16)} ${entry.joined}/${entry.bots} joined, ${entry.finished} finished, ` +
        `${entry.answered} answers, ${entry.errors} errors` +
        (entry.latency
          ? `; delivery p50 ${ms(entry.latency.p50)}, p99 ${ms(entry.latency.p99)}`
          : ''),
    );
  }
  if (summary.latency) {
    lines.push(
      `  status delivery during play (serverNow − publishedAt), ${summary.latency.count} messages: ` +
        `p50 ${ms(summary.latency.p50)}, p99 ${ms(summary.latency.p99)}, max ${ms(summary.latency.max)}`,
    );
  }
  const ranked = summary.bots
    .filter((bot) => bot.rank !== undefined)
    .sort((a, b) => a.rank! - b.rank!);
  const shown = summary.bots.length <= 20 ? summary.bots : ranked.slice(0, 5);
  if (shown.length > 0) {
    lines.push(summary.bots.length <= 20 ? 'Bots:' : 'Best bots:');
    for (const bot of shown) {
      const place =
        bot.rank !== undefined ? `#${bot.rank} of ${bot.of}` : bot.joined ? 'no result' : 'not in';
      lines.push(
        `  ${bot.nickname.padEnd(14)} ${bot.transport.padEnd(16)} ${place.padEnd(12)} ` +
          `${String(bot.score ?? 0).padStart(5)} pts, ${bot.answered} answered (${bot.correct} right)` +
          (bot.errors.length > 0 ? `; ${bot.errors[0]}` : ''),
      );
    }
  }
  const failing = summary.bots.filter((bot) => bot.errors.length > 0);
  if (failing.length > 0 && summary.bots.length > 20) {
    lines.push(`Errors (first of ${failing.length} bots):`);
    for (const bot of failing.slice(0, 5)) lines.push(`  ${bot.nickname}: ${bot.errors[0]}`);
  }
  return lines.join('\n');
}

/**
 * Runs the bots until the game finishes (or `signal` aborts) and returns what they did. The
 * first bot joins alone, so that a wrong address or code fails once, not N times.
 */
export async function runBots(
  options: BotOptions,
  events: {
    onReady?: (summary: { joined: number; live: number }) => void;
    log?: (line: string) => void;
  } = {},
  signal?: AbortSignal,
): Promise<BotsSummary> {
  const log = events.log ?? (() => {});
  const bots: Bot[] = [];
  const stopAll = (): void => {
    for (const bot of bots) void bot.stop();
  };
  signal?.addEventListener('abort', stopAll, { once: true });
  try {
    for (let n = 1; n <= options.players && !signal?.aborted; n++) {
      const transport = options.transports[(n - 1) % options.transports.length]!;
      const bot = new Bot(options, `${options.name} ${n}`, transport);
      bots.push(bot);
      const joining = bot.join().catch((error: unknown) => bot.fail(describe(error)));
      if (n === 1) {
        await joining;
        if (!bot.report.joined) {
          await bot.stop();
          throw new BotError(bot.report.errors[0] ?? 'the first bot could not join');
        }
        log(`${bot.report.nickname} joined game ${options.game} over ${transport}`);
      }
      if (options.rampMs > 0 && n < options.players) await sleep(options.rampMs);
    }
    await Promise.all(bots.map((bot) => bot.ready));
    const joined = bots.filter((bot) => bot.report.joined).length;
    const live = bots.filter((bot) => bot.report.live).length;
    if (!signal?.aborted) {
      log(`${joined}/${options.players} bots joined, ${live} live; waiting for the game to end…`);
      events.onReady?.({ joined, live });
    }
    await Promise.all(bots.map((bot) => bot.done));
  } finally {
    signal?.removeEventListener('abort', stopAll);
  }
  return summarize(options, bots, signal?.aborted ?? false);
}

export async function main(args: string[]): Promise<number> {
  let options: BotOptions | 'help';
  try {
    options = parseBotOptions(args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`quiz:bots: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
  if (options === 'help') {
    process.stdout.write(HELP_TEXT);
    return 0;
  }
  const json = options.json;
  const abort = new AbortController();
  const interrupt = (): void => {
    if (abort.signal.aborted) process.exit(EXIT_INTERRUPTED);
    process.stderr.write('\nquiz:bots: leaving the game (Ctrl-C again to quit at once)…\n');
    abort.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  let summary: BotsSummary;
  try {
    summary = await runBots(
      options,
      {
        log: (line) => process.stderr.write(`quiz:bots: ${line}\n`),
        onReady: (counts) => {
          if (json) process.stdout.write(`${JSON.stringify({ event: 'ready', ...counts })}\n`);
        },
      },
      abort.signal,
    );
  } catch (error) {
    if (!(error instanceof BotError)) throw error;
    process.stderr.write(`quiz:bots: ${error.message}\n`);
    return EXIT_FAILED;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
  if (json) {
    const full = { event: 'summary', ...summary };
    process.stdout.write(`${JSON.stringify(full)}\n`);
  } else {
    process.stdout.write(`${formatSummary(summary)}\n`);
  }
  if (summary.interrupted) return EXIT_INTERRUPTED;
  return summary.joined === options.players && summary.finished === options.players
    ? 0
    : EXIT_FAILED;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
