import { parseArgs } from 'node:util';
import { BOT_TRANSPORTS, type BotTransport } from '../../examples/quiz/bots.js';

/** What the browsers may be asked to use (the page's `?transports=`); all of them run in Chromium. */
export const BROWSER_TRANSPORTS = [
  'websocket',
  'sockjs-websocket',
  'eventsource',
  'xhr-streaming',
  'htmlfile',
  'xhr-polling',
  'jsonp-polling',
  'short-polling',
] as const;
export type BrowserTransport = (typeof BROWSER_TRANSPORTS)[number];

export interface QuizBenchOptions {
  help: boolean;
  runs: number;
  players: number;
  browsers: number;
  questions: number;
  /** Seconds per question. */
  seconds: number;
  revealMs: number;
  /** When bots and browsers answer, in ms after the question appears. */
  think: { min: number; max: number };
  transports: BotTransport[];
  /** One per browser, round-robin; empty: each page picks for itself, as a real browser does. */
  browserTransports: BrowserTransport[];
  pin: boolean;
  /** Profile the server during each game; the profile goes to bench/results/. */
  cpuProfile: boolean;
}

export const DEFAULTS = {
  runs: 3,
  players: 200,
  browsers: 3,
  questions: 5,
  seconds: 10,
  revealMs: 2000,
  think: { min: 1000, max: 8000 },
};

export const HELP_TEXT = `Usage: npm run bench:quiz -- [options]

The quiz under load: the quiz app (in this process, SQLite in a temporary folder) plays a game
with ${DEFAULTS.players} bot players (npm run quiz:bots, in a child process) and ${DEFAULTS.browsers} Chromium players.
Each page records, for every status update, the delay from the server's publish to the page's
handler (client.serverNow() - publishedAt). The bench reports p50/p99/max over the game's
updates in all pages, and the same seen from the bots.

The server runs on core 0; Chromium, the bots and the page clicks on core 1 (taskset).

Options:
  --runs N                 games, each with a fresh app, pages and bots (default ${DEFAULTS.runs})
  --players N              bot players (default ${DEFAULTS.players})
  --browsers N             Chromium players (default ${DEFAULTS.browsers})
  --questions N            questions in the game (default ${DEFAULTS.questions})
  --seconds S              seconds per question (default ${DEFAULTS.seconds})
  --reveal MS              how long the answer stays up before the next question (default ${DEFAULTS.revealMs})
  --think MIN-MAX          players answer MIN to MAX ms after a question appears
                           (default ${DEFAULTS.think.min}-${DEFAULTS.think.max})
  --transports LIST        the bots' transports, round-robin (default all ${BOT_TRANSPORTS.length}: ${BOT_TRANSPORTS.join(',')})
  --browser-transports L   the pages' transports, one per page round-robin (default: the
                           client's own choice, WebSocket in Chromium)
  --no-pin                 leave CPU placement to the OS
  --cpu-prof               profile the server during each game and print its top functions
  --help                   this text
`;

export class UsageError extends Error {}

export function parseOptions(args: string[]): QuizBenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        runs: { type: 'string' },
        players: { type: 'string' },
        browsers: { type: 'string' },
        questions: { type: 'string' },
        seconds: { type: 'string' },
        reveal: { type: 'string' },
        think: { type: 'string' },
        transports: { type: 'string' },
        'browser-transports': { type: 'string' },
        'no-pin': { type: 'boolean' },
        'cpu-prof': { type: 'boolean' },
      },
    }));
  } catch (error) {
    const firstSentence = (error as Error).message.split('. ')[0] ?? String(error);
    throw new UsageError(`${firstSentence} (see --help)`);
  }
  const seconds = integer('--seconds', values.seconds, DEFAULTS.seconds, 5, 120);
  const think = thinkRange(values.think, seconds);
  return {
    help: values.help ?? false,
    runs: integer('--runs', values.runs, DEFAULTS.runs, 1, 20),
    players: integer('--players', values.players, DEFAULTS.players, 0, 5000),
    browsers: integer('--browsers', values.browsers, DEFAULTS.browsers, 1, 20),
    questions: integer('--questions', values.questions, DEFAULTS.questions, 1, 50),
    seconds,
    revealMs: integer('--reveal', values.reveal, DEFAULTS.revealMs, 100, 60_000),
    think,
    transports: list('--transports', values.transports, BOT_TRANSPORTS, [
      ...BOT_TRANSPORTS,
    ]) as BotTransport[],
    browserTransports: list(
      '--browser-transports',
      values['browser-transports'],
      BROWSER_TRANSPORTS,
      [],
    ) as BrowserTransport[],
    pin: !(values['no-pin'] ?? false),
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

function thinkRange(text: string | undefined, seconds: number): { min: number; max: number } {
  // Everyone answers well before the deadline, so that each question ends when the last answer
  // arrives and every player's every answer counts.
  const latest = seconds * 1000 - 1500;
  if (text === undefined) {
    return { min: Math.min(DEFAULTS.think.min, latest), max: Math.min(DEFAULTS.think.max, latest) };
  }
  const match = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(text);
  const min = Number(match?.[1]);
  const max = Number(match?.[2]);
  if (!match || min > max || max > latest) {
    throw new UsageError(
      `--think: expected MIN-MAX in ms with MAX at most ${latest} (--seconds less 1.5 s), got "${text}"`,
    );
  }
  return { min, max };
}

function list(
  flag: string,
  text: string | undefined,
  known: readonly string[],
  fallback: string[],
): string[] {
  if (text === undefined) return fallback;
  const names = text
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .map((name) => (name === 'ws' ? 'websocket' : name))
    .filter((name) => name !== '');
  if (names.length === 0) throw new UsageError(`${flag}: expected at least one transport`);
  for (const name of names) {
    if (!known.includes(name)) {
      throw new UsageError(
        `${flag}: unknown transport "${name}"; expected some of ${known.join(', ')}`,
      );
    }
  }
  return names;
}
