import { randomInt } from 'node:crypto';
import { jsonForHtml, type Publisher, type StreamPosition } from '../../src/index.js';
import type { Db, GameState } from './db.js';
import { loadQuiz, type Quiz } from './quizzes.js';

/**
 * Games: the lobby, the server's clock that runs each question, answers and scores, and what is
 * pushed to browsers. The clock lives here, never in a browser. Every change is published whole
 * on `/games/{id}/status` (and the player list on `/games/{id}/players`), so that a page can
 * render from any one message; `publishedAt` lets pages measure how long delivery took.
 */

/** How long the right answer and the scores stay on screen before the next question. */
export const REVEAL_MS = 6000;
/**
 * The live answer count goes out at most this often. Publishing the whole state on every answer
 * would send players × answers messages per question (40,000 for 200 players), where a few a
 * second look just as live.
 */
export const ANSWER_COUNT_INTERVAL_MS = 250;
const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

export class GameError extends Error {}

/** The game asked for does not exist (a 404, where other game errors are a 409). */
export class NoSuchGameError extends GameError {
  constructor() {
    super('There is no such game.');
  }
}

export interface PlayerSummary {
  id: number;
  nickname: string;
  score: number;
}

export interface PlayerResult {
  id: number;
  nickname: string;
  choice: number | null;
  correct: boolean;
  points: number;
  score: number;
}

export type GameStatus =
  | { state: 'lobby'; gameId: number; code: string; title: string; total: number; players: number }
  | {
      state: 'question';
      gameId: number;
      title: string;
      index: number;
      total: number;
      question: { text: string; choices: string[]; seconds: number };
      startedAt: number;
      deadline: number;
      answered: number;
      players: number;
    }
  | {
      state: 'reveal';
      gameId: number;
      title: string;
      index: number;
      total: number;
      question: { text: string; choices: string[]; seconds: number };
      correct: number;
      results: PlayerResult[];
      scoreboard: PlayerSummary[];
      nextAt: number;
      last: boolean;
    }
  | {
      state: 'finished';
      gameId: number;
      title: string;
      total: number;
      podium: PlayerSummary[];
      scoreboard: PlayerSummary[];
      /** The host ended it before its last question was over: the scores are those so far. */
      endedEarly: boolean;
      /** How many questions were asked (all of them, unless it ended early). */
      asked: number;
    };

export type Published<T> = T & { publishedAt: number };

interface Runtime {
  gameId: number;
  code: string;
  quiz: Quiz;
  authorId: number;
  state: GameState;
  index: number;
  /** The host ended the game before its last question was over. */
  endedEarly: boolean;
  startedAt: number;
  endsAt: number;
  /** Players who answered the current question. */
  answered: Set<number>;
  /**
   * Answers accepted but not yet in the database. On PostgreSQL each write may run on its own
   * pool connection, so the reveal waits for these before it reads the answers back.
   */
  answerWrites: Set<Promise<unknown>>;
  /** A start is under way (between its checks and the first question). */
  starting: boolean;
  timer: NodeJS.Timeout | undefined;
  /** A pending publish of the answer count, and when the last one went out. */
  countTimer: NodeJS.Timeout | undefined;
  countPublishedAt: number;
}

export interface GameRow {
  id: number;
  code: string;
  quizId: number;
  authorId: number;
  state: GameState;
}

export function statusDestination(gameId: number): string {
  return `/games/${gameId}/status`;
}

export function playersDestination(gameId: number): string {
  return `/games/${gameId}/players`;
}

/** Runs every game: their clocks, their answers, and what is published about them. */
export class Games {
  private readonly db: Db;
  private readonly publisher: Publisher;
  private readonly runtimes = new Map<number, Runtime>();
  private readonly positionOf: (destination: string) => StreamPosition | undefined;
  /** How long the right answer stays on screen before the next question. */
  private readonly revealMs: number;
  private readonly answerCountIntervalMs: number;

  constructor(
    db: Db,
    publisher: Publisher,
    positionOf: (destination: string) => StreamPosition | undefined,
    options: { revealMs?: number; answerCountIntervalMs?: number } = {},
  ) {
    this.db = db;
    this.publisher = publisher;
    this.positionOf = positionOf;
    this.revealMs = options.revealMs ?? REVEAL_MS;
    this.answerCountIntervalMs = options.answerCountIntervalMs ?? ANSWER_COUNT_INTERVAL_MS;
  }

  /** Picks up the games a previous run left half played, with their clocks. */
  async resumeAll(): Promise<void> {
    const rows = await this.db
      .selectFrom('games')
      .selectAll()
      .where('state', 'in', ['question', 'reveal'])
      .execute();
    for (const row of rows) {
      const runtime = await this.runtime(row.id);
      if (runtime) this.schedule(runtime);
    }
  }

  async create(quizId: number, authorId: number): Promise<GameRow> {
    const quiz = await loadQuiz(this.db, quizId);
    if (!quiz) throw new GameError('There is no such quiz.');
    if (quiz.authorId !== authorId) throw new ForbiddenError('That quiz is not yours to host.');
    if (quiz.questions.length === 0) throw new GameError('That quiz has no questions yet.');
    const now = Date.now();
    for (let attempt = 0; ; attempt++) {
      const code = Array.from(
        { length: 6 },
        () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)],
      ).join('');
      const taken = await this.db
        .selectFrom('games')
        .select('id')
        .where('code', '=', code)
        .executeTakeFirst();
      if (taken && attempt < 10) continue;
      const row = await this.db
        .insertInto('games')
        .values({
          quiz_id: quizId,
          author_id: authorId,
          code,
          state: 'lobby',
          current_index: -1,
          phase_started_at: now,
          phase_ends_at: now,
          created_at: now,
        })
        .returning(['id', 'code', 'quiz_id', 'author_id', 'state'])
        .executeTakeFirstOrThrow();
      return {
        id: row.id,
        code: row.code,
        quizId: row.quiz_id,
        authorId: row.author_id,
        state: row.state,
      };
    }
  }

  async find(gameId: number): Promise<GameRow | undefined> {
    const row = await this.db
      .selectFrom('games')
      .selectAll()
      .where('id', '=', gameId)
      .executeTakeFirst();
    return (
      row && {
        id: row.id,
        code: row.code,
        quizId: row.quiz_id,
        authorId: row.author_id,
        state: row.state,
      }
    );
  }

  async findByCode(code: string): Promise<GameRow | undefined> {
    const row = await this.db
      .selectFrom('games')
      .selectAll()
      .where('code', '=', code.trim().toUpperCase())
      .executeTakeFirst();
    return (
      row && {
        id: row.id,
        code: row.code,
        quizId: row.quiz_id,
        authorId: row.author_id,
        state: row.state,
      }
    );
  }

  async gamesOf(
    authorId: number,
  ): Promise<{ id: number; code: string; title: string; state: GameState }[]> {
    return this.db
      .selectFrom('games')
      .innerJoin('quizzes', 'quizzes.id', 'games.quiz_id')
      .select(['games.id', 'games.code', 'quizzes.title', 'games.state'])
      .where('games.author_id', '=', authorId)
      .orderBy('games.id', 'desc')
      .limit(20)
      .execute();
  }

  /** The player a browser session already is in a game, if any. */
  async playerOf(gameId: number, sessionId: string): Promise<PlayerSummary | undefined> {
    const row = await this.db
      .selectFrom('players')
      .select(['id', 'nickname', 'score'])
      .where('game_id', '=', gameId)
      .where('session_id', '=', sessionId)
      .executeTakeFirst();
    return row;
  }

  async join(
    gameId: number,
    sessionId: string,
    userId: number | null,
    nickname: string,
  ): Promise<PlayerSummary> {
    const existing = await this.playerOf(gameId, sessionId);
    if (existing) return existing;
    const game = await this.find(gameId);
    if (!game) throw new NoSuchGameError();
    if (game.state === 'finished') throw new GameError('That game is over.');
    const clash = await this.db
      .selectFrom('players')
      .select('id')
      .where('game_id', '=', gameId)
      .where('nickname', '=', nickname)
      .executeTakeFirst();
    if (clash)
      throw new GameError(`Someone in this game is already called ${nickname}. Pick another name.`);
    const player = await this.db
      .insertInto('players')
      .values({
        game_id: gameId,
        session_id: sessionId,
        user_id: userId,
        nickname,
        score: 0,
        joined_at: Date.now(),
      })
      .returning(['id', 'nickname', 'score'])
      .executeTakeFirstOrThrow();
    await this.publishPlayers(gameId);
    return player;
  }

  /** A player's answer to one question, if they gave one. */
  async answerOf(
    gameId: number,
    playerId: number,
    index: number,
  ): Promise<{ index: number; choice: number } | null> {
    const row = await this.db
      .selectFrom('answers')
      .select('choice_index')
      .where('game_id', '=', gameId)
      .where('player_id', '=', playerId)
      .where('question_index', '=', index)
      .executeTakeFirst();
    return row ? { index, choice: row.choice_index } : null;
  }

  async players(gameId: number): Promise<PlayerSummary[]> {
    return this.db
      .selectFrom('players')
      .select(['id', 'nickname', 'score'])
      .where('game_id', '=', gameId)
      .orderBy('score', 'desc')
      .orderBy('joined_at')
      .execute();
  }

  /** The talk's `game_start`: author only; a game starts once, and only with players. */
  async start(gameId: number, userId: number): Promise<void> {
    const runtime = await this.runtime(gameId);
    if (!runtime) throw new NoSuchGameError();
    if (runtime.authorId !== userId) throw new ForbiddenError();
    // Decided and claimed before any await, so that of two starts at once (a double click, two
    // tabs) only one gets past this line; the state itself changes only after the players check.
    if (runtime.state === 'finished') throw new GameError('This game is over.');
    if (runtime.state !== 'lobby' || runtime.starting)
      throw new GameError('This game has already started.');
    runtime.starting = true;
    try {
      if ((await this.playerCount(gameId)) === 0)
        throw new GameError('Nobody has joined yet: share the code first.');
      await this.beginQuestion(runtime, 0);
    } finally {
      runtime.starting = false;
    }
  }

  /**
   * The host ends the game now: from its lobby (nobody plays it; the quiz may be edited again) or
   * mid-game (the answers given so far count, and the scores stand). Pages show the end at once.
   */
  async end(gameId: number, userId: number): Promise<void> {
    const runtime = await this.runtime(gameId);
    if (!runtime) throw new NoSuchGameError();
    if (runtime.authorId !== userId) throw new ForbiddenError();
    if (runtime.state === 'finished') throw new GameError('This game is already over.');
    // Between a start's checks and its first question the game is neither in its lobby nor
    // running; ending it then would race the start. It takes a moment.
    if (runtime.starting) throw new GameError('This game is starting: end it once it is on.');
    // Decided before any await: no answer is accepted and no clock fires from here on.
    const wasPlaying = runtime.state !== 'lobby';
    runtime.state = 'finished';
    runtime.endedEarly = true;
    clearTimeout(runtime.timer);
    clearTimeout(runtime.countTimer);
    if (wasPlaying) {
      await Promise.allSettled(runtime.answerWrites);
      await this.scoreAnswers(runtime);
    }
    await this.finish(runtime);
  }

  /** Records an answer: one per player per question, before the deadline. */
  async answer(
    gameId: number,
    sessionId: string,
    index: number,
    choice: number,
  ): Promise<{ correct: boolean; points: number }> {
    const runtime = await this.runtime(gameId);
    if (!runtime) throw new NoSuchGameError();
    const player = await this.playerOf(gameId, sessionId);
    if (!player) throw new GameError('Join the game before answering.');
    const now = Date.now();
    if (runtime.state !== 'question' || runtime.index !== index || now > runtime.endsAt) {
      throw new GameError('Too late: this question is closed.');
    }
    const question = runtime.quiz.questions[index]!;
    if (!Number.isInteger(choice) || choice < 0 || choice >= question.choices.length) {
      throw new GameError('That is not one of the choices.');
    }
    // Decided before any await, so two quick answers from one player cannot both pass.
    if (runtime.answered.has(player.id))
      throw new GameError('You have already answered this question.');
    runtime.answered.add(player.id);
    const correct = choice === question.correct;
    // Right answers score 500 to 1000 points: the faster, the more.
    const remaining = Math.max(0, runtime.endsAt - now) / (runtime.endsAt - runtime.startedAt);
    const points = correct ? Math.round(500 + 500 * remaining) : 0;
    // Registered in the same turn as the decision above, so a reveal that closes the question
    // from now on knows to wait for this answer.
    const write = this.db
      .insertInto('answers')
      .values({
        game_id: gameId,
        player_id: player.id,
        question_index: index,
        choice_index: choice,
        correct: correct ? 1 : 0,
        points,
        answered_at: now,
      })
      .execute();
    runtime.answerWrites.add(write);
    try {
      await write;
    } finally {
      runtime.answerWrites.delete(write);
    }
    const total = await this.playerCount(gameId);
    if (runtime.answered.size >= total) {
      await this.reveal(runtime);
    } else {
      this.publishAnswerCount(runtime);
    }
    return { correct, points };
  }

  /**
   * Publishes the state with its new answer count: at once if the last count went out long
   * enough ago, otherwise once the interval is over, with whatever the count is by then.
   */
  private publishAnswerCount(runtime: Runtime): void {
    if (runtime.countTimer) return;
    const wait = runtime.countPublishedAt + this.answerCountIntervalMs - Date.now();
    const publish = (): void => {
      runtime.countTimer = undefined;
      // The question may have closed meanwhile; then its reveal said everything.
      if (runtime.state !== 'question') return;
      runtime.countPublishedAt = Date.now();
      this.publishStatus(runtime).catch((error: unknown) =>
        console.error('quiz: publishing the answer count failed', error),
      );
    };
    if (wait <= 0) publish();
    else runtime.countTimer = setTimeout(publish, wait);
  }

  private async playerCount(gameId: number): Promise<number> {
    const row = await this.db
      .selectFrom('players')
      .select(({ fn }) => fn.countAll<number>().as('count'))
      .where('game_id', '=', gameId)
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /** The game as it is now, in the shape of its status messages: what a page renders first. */
  async status(gameId: number): Promise<Published<GameStatus> | undefined> {
    const runtime = await this.runtime(gameId);
    return runtime && this.describe(runtime);
  }

  /** Where the game's status topic stands: a page rendered now subscribes since it. */
  position(gameId: number): StreamPosition | undefined {
    return this.positionOf(statusDestination(gameId));
  }

  /**
   * A game of the quiz that is not over (in its lobby or being played), if there is one. Its
   * questions must not change under it: a running game reads them from the quiz, and so does a
   * game resumed after a restart.
   */
  async unfinishedGameOf(quizId: number): Promise<{ id: number; code: string } | undefined> {
    return this.db
      .selectFrom('games')
      .select(['id', 'code'])
      .where('quiz_id', '=', quizId)
      .where('state', '!=', 'finished')
      .orderBy('id')
      .executeTakeFirst();
  }

  /** Where the game's players topic stands, for the same purpose as {@link position}. */
  playersPosition(gameId: number): StreamPosition | undefined {
    return this.positionOf(playersDestination(gameId));
  }

  /** How many games are held in memory: in their lobby or being played. */
  get running(): number {
    return this.runtimes.size;
  }

  /** Whether the game is held in memory (for monitoring and tests: finished games are not). */
  inMemory(gameId: number): boolean {
    return this.runtimes.has(gameId);
  }

  /** Stops every clock (the server is shutting down; resumeAll picks them up next time). */
  stop(): void {
    for (const runtime of this.runtimes.values()) {
      clearTimeout(runtime.timer);
      clearTimeout(runtime.countTimer);
    }
    this.runtimes.clear();
  }

  private async runtime(gameId: number): Promise<Runtime | undefined> {
    const cached = this.runtimes.get(gameId);
    if (cached) return cached;
    const row = await this.db
      .selectFrom('games')
      .selectAll()
      .where('id', '=', gameId)
      .executeTakeFirst();
    if (!row) return undefined;
    const quiz = await loadQuiz(this.db, row.quiz_id);
    if (!quiz) return undefined;
    const answered = new Set<number>();
    if (row.state === 'question') {
      const rows = await this.db
        .selectFrom('answers')
        .select('player_id')
        .where('game_id', '=', gameId)
        .where('question_index', '=', row.current_index)
        .execute();
      for (const answer of rows) answered.add(answer.player_id);
    }
    const again = this.runtimes.get(gameId);
    if (again) return again; // another request loaded it meanwhile
    const runtime: Runtime = {
      gameId,
      code: row.code,
      quiz,
      authorId: row.author_id,
      state: row.state,
      index: row.current_index,
      endedEarly: row.ended_early === 1,
      startedAt: row.phase_started_at,
      endsAt: row.phase_ends_at,
      answered,
      answerWrites: new Set(),
      starting: false,
      timer: undefined,
      countTimer: undefined,
      countPublishedAt: 0,
    };
    // A finished game never changes again: it is read from the database each time it is asked
    // for, rather than held for as long as the server runs.
    if (runtime.state !== 'finished') this.runtimes.set(gameId, runtime);
    return runtime;
  }

  private schedule(runtime: Runtime): void {
    clearTimeout(runtime.timer);
    if (runtime.state !== 'question' && runtime.state !== 'reveal') return;
    const delay = Math.max(0, runtime.endsAt - Date.now());
    runtime.timer = setTimeout(() => {
      const next = runtime.state === 'question' ? this.reveal(runtime) : this.advance(runtime);
      next.catch((error: unknown) => console.error('quiz: the game clock failed', error));
    }, delay);
  }

  private async beginQuestion(runtime: Runtime, index: number): Promise<void> {
    const question = runtime.quiz.questions[index]!;
    const now = Date.now();
    runtime.state = 'question';
    runtime.index = index;
    runtime.startedAt = now;
    runtime.endsAt = now + question.seconds * 1000;
    runtime.answered = new Set();
    await this.save(runtime);
    this.schedule(runtime);
    await this.publishStatus(runtime);
  }

  private async reveal(runtime: Runtime): Promise<void> {
    if (runtime.state !== 'question') return;
    // Closed at once, so no answer is accepted from here on; then the answers accepted before
    // are waited for, or the results and scores read below could miss one still being written.
    runtime.state = 'reveal';
    // When the last answer closes the question early, the question's own timer is still set: it
    // must not fire during the waits below and take this reveal for the end of one.
    clearTimeout(runtime.timer);
    await Promise.allSettled(runtime.answerWrites);
    const now = Date.now();
    runtime.startedAt = now;
    runtime.endsAt = now + this.revealMs;
    await this.scoreAnswers(runtime);
    await this.save(runtime);
    this.schedule(runtime);
    await this.publishStatus(runtime);
  }

  /** Sets every player's score from their answers (a sum, so that nothing counts twice). */
  private async scoreAnswers(runtime: Runtime): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const totals = await trx
        .selectFrom('answers')
        .select(({ fn }) => ['player_id', fn.sum<number>('points').as('total')])
        .where('game_id', '=', runtime.gameId)
        .groupBy('player_id')
        .execute();
      for (const row of totals) {
        await trx
          .updateTable('players')
          .set({ score: Number(row.total) })
          .where('id', '=', row.player_id)
          .execute();
      }
    });
  }

  private async advance(runtime: Runtime): Promise<void> {
    if (runtime.state !== 'reveal') return;
    const next = runtime.index + 1;
    if (next < runtime.quiz.questions.length) {
      await this.beginQuestion(runtime, next);
      return;
    }
    runtime.state = 'finished';
    clearTimeout(runtime.countTimer);
    await this.finish(runtime);
  }

  /** Saves a game that is over, lets go of it, and tells its pages. */
  private async finish(runtime: Runtime): Promise<void> {
    runtime.startedAt = Date.now();
    runtime.endsAt = runtime.startedAt;
    await this.save(runtime);
    // Over, and saved: nothing will change it again, so it is no longer held in memory. Until
    // this line requests use this runtime; after it, they load the finished game from the
    // database (never a half-saved one: the row says finished before the runtime goes).
    this.runtimes.delete(runtime.gameId);
    await this.publishStatus(runtime);
  }

  private async save(runtime: Runtime): Promise<void> {
    await this.db
      .updateTable('games')
      .set({
        state: runtime.state,
        current_index: runtime.index,
        phase_started_at: runtime.startedAt,
        phase_ends_at: runtime.endsAt,
        ended_early: runtime.endedEarly ? 1 : 0,
      })
      .where('id', '=', runtime.gameId)
      // Over is over: a write a clock issued just before the host ended the game must not land
      // after the end and bring it back.
      .where('state', '!=', 'finished')
      .execute();
  }

  private async describe(runtime: Runtime): Promise<Published<GameStatus>> {
    const publishedAt = Date.now();
    const base = {
      gameId: runtime.gameId,
      title: runtime.quiz.title,
      total: runtime.quiz.questions.length,
      publishedAt,
    };
    const question = runtime.quiz.questions[runtime.index];
    const shown = question && {
      text: question.text,
      choices: question.choices,
      seconds: question.seconds,
    };
    switch (runtime.state) {
      case 'lobby':
        return {
          ...base,
          state: 'lobby',
          code: runtime.code,
          players: (await this.players(runtime.gameId)).length,
        };
      case 'question':
        return {
          ...base,
          state: 'question',
          index: runtime.index,
          question: shown!,
          startedAt: runtime.startedAt,
          deadline: runtime.endsAt,
          answered: runtime.answered.size,
          players: await this.playerCount(runtime.gameId),
        };
      case 'reveal': {
        const players = await this.players(runtime.gameId);
        const answers = await this.db
          .selectFrom('answers')
          .select(['player_id', 'choice_index', 'correct', 'points'])
          .where('game_id', '=', runtime.gameId)
          .where('question_index', '=', runtime.index)
          .execute();
        const byPlayer = new Map(answers.map((answer) => [answer.player_id, answer]));
        return {
          ...base,
          state: 'reveal',
          index: runtime.index,
          question: shown!,
          correct: question!.correct,
          results: players.map((player) => {
            const answer = byPlayer.get(player.id);
            return {
              id: player.id,
              nickname: player.nickname,
              choice: answer ? answer.choice_index : null,
              correct: answer?.correct === 1,
              points: answer?.points ?? 0,
              score: player.score,
            };
          }),
          scoreboard: players,
          nextAt: runtime.endsAt,
          last: runtime.index + 1 >= runtime.quiz.questions.length,
        };
      }
      case 'finished': {
        const players = await this.players(runtime.gameId);
        return {
          ...base,
          state: 'finished',
          podium: players.slice(0, 3),
          scoreboard: players,
          endedEarly: runtime.endedEarly,
          // An early end during a question counts that question as asked: its answers scored.
          asked: runtime.endedEarly ? runtime.index + 1 : base.total,
        };
      }
    }
  }

  private async publishStatus(runtime: Runtime): Promise<void> {
    const status = await this.describe(runtime);
    // JSON with <, > and & escaped: still plain JSON to any reader, but no markup in the bytes, so
    // a transport or a page that puts a message into HTML cannot turn a nickname into a tag.
    await this.publisher.publish(statusDestination(runtime.gameId), jsonForHtml(status), {
      'content-type': 'application/json',
    });
  }

  private async publishPlayers(gameId: number): Promise<void> {
    const players = await this.players(gameId);
    await this.publisher.publish(
      playersDestination(gameId),
      jsonForHtml({ gameId, players, publishedAt: Date.now() }),
      { 'content-type': 'application/json' },
    );
    const runtime = this.runtimes.get(gameId);
    if (runtime?.state === 'lobby') await this.publishStatus(runtime);
    // During a question, "x of N answered" counts the newcomer too. Through the answer-count
    // throttle, so that a crowd joining at once does not send a status per join.
    else if (runtime?.state === 'question') this.publishAnswerCount(runtime);
  }
}

export class ForbiddenError extends Error {
  constructor(message = 'Only the quiz author can do that.') {
    super(message);
  }
}
