import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../../examples/quiz/accounts.js';
import type { BotsSummary } from '../../examples/quiz/bots.js';
import { saveQuiz } from '../../examples/quiz/quizzes.js';
import { startQuiz, type RunningQuiz } from '../support/quiz.js';

/**
 * `npm run quiz:bots` (examples/quiz/bots.ts) as a user runs it: a separate process against the
 * real quiz on a free port, joining through the join form and following the game over every
 * transport a Node process has. The smoke version of the load run: six bots, three questions.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BOTS = join(ROOT, 'examples', 'quiz', 'bots.ts');
const ALL_TRANSPORTS = [
  'websocket',
  'sockjs-websocket',
  'eventsource',
  'xhr-streaming',
  'xhr-polling',
  'short-polling',
];

interface BotsProcess {
  /** JSON lines printed so far on stdout. */
  events: Record<string, unknown>[];
  stderr(): string;
  /** Resolves when the process printed the event. */
  event(name: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

function runBots(args: string[]): BotsProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', BOTS, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    stdout += text;
    let newline;
    while ((newline = stdout.indexOf('\n')) >= 0) {
      const line = stdout.slice(0, newline);
      stdout = stdout.slice(newline + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>);
      for (const waiter of waiters.splice(0)) waiter();
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => (stderr += text));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const waiter of waiters.splice(0)) waiter();
      resolve({ code, signal });
    }),
  );
  return {
    events,
    stderr: () => stderr,
    exited,
    kill: (signal) => child.kill(signal),
    event(name, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "${name}" event within ${timeoutMs} ms; stderr:\n${stderr}`)),
          timeoutMs,
        );
        const check = (): void => {
          const found = events.find((event) => event.event === name);
          if (found) {
            clearTimeout(timer);
            resolve(found);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            reject(new Error(`the bots exited before "${name}"; stderr:\n${stderr}`));
          } else {
            waiters.push(check);
          }
        };
        check();
      });
    },
  };
}

describe('quiz bots', () => {
  let quiz: RunningQuiz;
  let hostId: number;
  let quizId: number;

  beforeAll(async () => {
    quiz = await startQuiz({ revealMs: 200 });
    const host = await createUser(quiz.app.database.db, 'bot-host', 'a-long-password');
    hostId = host!.id;
    quizId = await saveQuiz(
      quiz.app.database.db,
      hostId,
      'Bots at play',
      [0, 1, 2].map((n) => ({
        text: `Question ${n + 1}`,
        choices: ['red', 'blue', 'yellow', 'green'],
        correct: n % 4,
        seconds: 10,
      })),
    );
  });

  afterAll(async () => {
    await quiz?.close();
  });

  it('join through the real routes, play over every Node transport, and finish the game', async () => {
    const game = await quiz.app.games.create(quizId, hostId);
    const bots = runBots([
      '--url',
      quiz.url,
      '--game',
      game.code.toLowerCase(),
      '--players',
      '6',
      '--transports',
      'ws,sockjs-websocket,eventsource,xhr-streaming,xhr-polling,short-polling',
      '--think',
      '0-300',
      '--ramp',
      '0',
      '--json',
    ]);
    try {
      const ready = await bots.event('ready');
      expect(ready).toMatchObject({ joined: 6, live: 6 });
      const players = await quiz.app.games.players(game.id);
      expect(players.map((player) => player.nickname).sort()).toEqual(
        ['Bot 1', 'Bot 2', 'Bot 3', 'Bot 4', 'Bot 5', 'Bot 6'].sort(),
      );

      await quiz.app.games.start(game.id, hostId);
      const summary = (await bots.event('summary', 60_000)) as unknown as BotsSummary;
      const { code } = await bots.exited;
      expect(code, bots.stderr()).toBe(0);
      expect(summary).toMatchObject({ players: 6, joined: 6, live: 6, finished: 6, errors: 0 });
      expect(Object.keys(summary.byTransport).sort()).toEqual([...ALL_TRANSPORTS].sort());
      for (const bot of summary.bots) {
        expect(bot, bot.nickname).toMatchObject({
          joined: true,
          finished: true,
          answered: 3,
          late: 0,
          questions: 3,
          of: 6,
          errors: [],
        });
        expect(bot.rank).toBeGreaterThanOrEqual(1);
      }
      expect(summary.latency?.count).toBeGreaterThan(0);

      // The server saw it the same way: three answers from each player, and a finished game.
      const answers = await quiz.app.database.db
        .selectFrom('answers')
        .select(['player_id', 'question_index'])
        .where('game_id', '=', game.id)
        .execute();
      expect(answers).toHaveLength(18);
      const byPlayer = new Map<number, number>();
      for (const answer of answers)
        byPlayer.set(answer.player_id, (byPlayer.get(answer.player_id) ?? 0) + 1);
      expect([...byPlayer.values()]).toEqual([3, 3, 3, 3, 3, 3]);
      expect((await quiz.app.games.status(game.id))?.state).toBe('finished');
      const ranks = summary.bots.map((bot) => bot.rank).sort();
      expect(ranks).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      bots.kill('SIGKILL');
    }
  }, 90_000);

  it('leave cleanly on Ctrl-C, with a summary and exit status 130', async () => {
    const game = await quiz.app.games.create(quizId, hostId);
    const bots = runBots(['--url', quiz.url, '--game', game.code, '--players', '3', '--json']);
    try {
      await bots.event('ready');
      bots.kill('SIGINT');
      const summary = (await bots.event('summary', 10_000)) as unknown as BotsSummary;
      const { code } = await bots.exited;
      expect(code).toBe(130);
      expect(summary).toMatchObject({ interrupted: true, joined: 3, finished: 0, errors: 0 });
      expect(bots.stderr()).toContain('leaving the game');
    } finally {
      bots.kill('SIGKILL');
    }
  });

  it('say what is wrong with bad flags in one line, and exit with status 2', async () => {
    const cases: [string[], string][] = [
      [['--players', '3'], '--game'],
      [['--game', 'ABC'], '--game'],
      [['--game', 'ABCDEF', '--players', 'many'], '--players'],
      [['--game', 'ABCDEF', '--players', '0'], '--players'],
      [['--game', 'ABCDEF', '--transports', 'carrier-pigeon'], 'carrier-pigeon'],
      [['--game', 'ABCDEF', '--transports', 'htmlfile'], 'htmlfile'],
      [['--game', 'ABCDEF', '--think', '900-100'], '--think'],
      [['--game', 'ABCDEF', '--url', 'ftp://example.com'], '--url'],
      [['--game', 'ABCDEF', '--volume', '11'], '--volume'],
    ];
    await Promise.all(
      cases.map(async ([args, mentioned]) => {
        const bots = runBots(args);
        const { code } = await bots.exited;
        const lines = bots.stderr().trimEnd().split('\n');
        expect({ args, code, lines: lines.length }).toEqual({ args, code: 2, lines: 1 });
        expect(lines[0]).toContain(mentioned);
        expect(bots.events).toEqual([]);
      }),
    );
  }, 60_000);

  it('stop at once when the game does not exist', async () => {
    const bots = runBots(['--url', quiz.url, '--game', 'ZZZZZZ', '--players', '5']);
    const { code } = await bots.exited;
    expect(code).toBe(1);
    expect(bots.stderr()).toContain('No game has the code ZZZZZZ');
  });
});
