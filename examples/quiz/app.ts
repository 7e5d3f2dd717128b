import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import nunjucks from 'nunjucks';
import {
  clientScriptTags,
  createAuthorizer,
  createBroker,
  createGateway,
  jsonForHtml,
  type EmbeddedBroker,
  type Gateway,
} from '../../src/index.js';
import {
  checkLogin,
  createSession,
  createUser,
  csrfMatches,
  deleteSession,
  loadSession,
  registrationProblems,
  SESSION_DAYS,
  type BrowserSession,
} from './accounts.js';
import { openDatabase, type Db, type OpenedDatabase } from './db.js';
import {
  ForbiddenError,
  GameError,
  Games,
  NoSuchGameError,
  playersDestination,
  statusDestination,
} from './games.js';
import {
  deleteQuiz,
  gameCountOf,
  loadQuiz,
  quizProblems,
  quizzesOf,
  SAMPLE_QUIZ,
  saveQuiz,
  type QuestionInput,
  type Quiz,
} from './quizzes.js';

/**
 * The PyCon quiz, rebuilt on Perigee (the talk's pyconquiz): accounts, quizzes, and live games
 * whose state the server pushes to every player. It uses only Perigee's public API: the embedded
 * broker publishes game state, the gateway carries it to browsers over whatever transport they
 * manage, and the access rules let browsers read their game but never write to it.
 */

const here = dirname(fileURLToPath(import.meta.url));
/** Views and static files live next to the sources (examples/quiz), also when run from dist. */
const root = here.includes(`${join('dist', 'examples')}`)
  ? here.replace(join('dist', 'examples'), 'examples')
  : here;

const SESSION_COOKIE = 'quiz_session';

declare module 'fastify' {
  interface FastifyRequest {
    browserSession: BrowserSession;
  }
}

export interface QuizOptions {
  /** postgres://… for PostgreSQL; SQLite otherwise. */
  databaseUrl?: string;
  sqliteFile?: string;
  /** The embedded broker's STOMP TCP listener, or off. */
  stomp?: { host: string; port: number } | 'off';
  /** Extra gateway settings (tests shorten timeouts). */
  session?: { timeout?: number; pingInterval?: number };
  /** How long the right answer stays on screen before the next question (tests shorten it). */
  revealMs?: number;
  logger?: boolean;
}

export interface QuizApp {
  fastify: FastifyInstance;
  broker: EmbeddedBroker;
  gateway: Gateway;
  games: Games;
  database: OpenedDatabase;
  stompAddress: string | undefined;
  close(): Promise<void>;
}

export async function createQuizApp(options: QuizOptions = {}): Promise<QuizApp> {
  const database = await openDatabase({
    databaseUrl: options.databaseUrl,
    sqliteFile: options.sqliteFile ?? join(process.cwd(), 'data', 'quiz.db'),
  });
  const db = database.db;
  const broker = createBroker({ history: 200 });
  let stompAddress: string | undefined;
  if (options.stomp !== 'off') {
    const address = await broker.listen(options.stomp ?? { host: '127.0.0.1', port: 61613 });
    stompAddress = `${address.address}:${address.port}`;
  }
  const games = new Games(db, broker, (destination) => broker.position(destination), {
    revealMs: options.revealMs,
  });
  await games.resumeAll();

  const fastify = Fastify({
    logger: options.logger ?? false,
    trustProxy: false,
    bodyLimit: 64 * 1024,
  });
  await fastify.register(fastifyCookie);
  await fastify.register(fastifyFormbody);

  const gateway = createGateway({
    backend: broker,
    server: fastify.server,
    session: options.session,
    authorizer: createAuthorizer({
      // Browsers read their game; only the app publishes to it (the talk's `game.start()`).
      rules: [
        { pattern: '/games/*/status', subscribe: 'anyone', send: 'nobody' },
        { pattern: '/games/*/players', subscribe: 'anyone', send: 'nobody' },
      ],
    }),
    access: { selfAddresses: stompAddress ? [stompAddress] : [] },
    // `/metrics` for Prometheus (this machine only): the gateway's, the broker's, and the games'.
    metrics: {
      access: 'loopback',
      more: () => [
        ...broker.metrics(),
        {
          name: 'quiz_games_running',
          help: 'Games in their lobby or being played (held in memory).',
          type: 'gauge',
          samples: [{ value: games.running }],
        },
      ],
    },
  });

  const views = new nunjucks.Environment(new nunjucks.FileSystemLoader(join(root, 'views')), {
    autoescape: true,
    throwOnUndefined: false,
  });
  // The template helper: the client's script tags and settings, as the talk's template tag did.
  views.addGlobal('perigee', () => new nunjucks.runtime.SafeString(clientScriptTags()));
  views.addFilter('json', (value: unknown) => new nunjucks.runtime.SafeString(jsonForHtml(value)));

  const render = (
    reply: FastifyReply,
    template: string,
    context: Record<string, unknown> = {},
    status = 200,
  ): FastifyReply => {
    const request = reply.request;
    const html = views.render(template, {
      user: request.browserSession.user,
      csrf: request.browserSession.csrfToken,
      ...context,
    });
    return reply.status(status).type('text/html; charset=utf-8').send(html);
  };

  fastify.addHook('onRequest', async (request, reply) => {
    // Pages are not framed, sniffed or given another page's referrer; scripts come from here only.
    void reply.headers({
      'content-security-policy':
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
    });
    let session = await loadSession(db, request.cookies[SESSION_COOKIE]);
    if (!session) {
      session = await createSession(db);
      setSessionCookie(request, reply, session.id);
    }
    request.browserSession = session;
  });

  // Every state-changing request carries the session's CSRF token: a form field or a header.
  fastify.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'POST') return;
    const body = request.body as Record<string, unknown> | undefined;
    const token = request.headers['x-csrf-token'] ?? body?._csrf;
    if (!csrfMatches(request.browserSession, token)) {
      const message =
        'This form has expired or did not come from this site. Reload the page and try again.';
      if (wantsJson(request)) return reply.status(403).send({ error: message });
      return render(reply, 'error.njk', { title: 'Please try again', message }, 403);
    }
  });

  fastify.get('/static/:file', async (request, reply) => {
    const { file } = request.params as { file: string };
    if (!/^[\w.-]+\.(css|js|svg)$/.test(file)) return reply.status(404).send('Not found');
    const content = staticFile(file);
    if (content === undefined) return reply.status(404).send('Not found');
    const type = file.endsWith('.css')
      ? 'text/css'
      : file.endsWith('.svg')
        ? 'image/svg+xml'
        : 'application/javascript';
    return reply.type(`${type}; charset=utf-8`).header('cache-control', 'no-cache').send(content);
  });

  fastify.get('/', async (request, reply) => {
    const user = request.browserSession.user;
    return render(reply, 'home.njk', {
      quizzes: user ? await quizzesOf(db, user.id) : [],
      hosted: user ? await games.gamesOf(user.id) : [],
      code: textOf((request.query as { code?: unknown }).code),
    });
  });

  // Accounts.
  // Where to go after signing up: a newcomer sent to log in (`/login?next=…`) who follows "Sign
  // up" instead still lands on the page that sent them.
  fastify.get('/register', async (request, reply) =>
    render(reply, 'register.njk', {
      values: {},
      next: safeNext(textOf((request.query as { next?: unknown }).next)),
    }),
  );
  fastify.post('/register', async (request, reply) => {
    const form = request.body as Record<string, unknown>;
    const username = textOf(form.username).trim();
    const password = textOf(form.password);
    const next = safeNext(textOf(form.next));
    const problems = registrationProblems(username, password, textOf(form.confirm));
    if (problems.length > 0)
      return render(reply, 'register.njk', { problems, values: { username }, next }, 400);
    const user = await createUser(db, username, password);
    if (!user)
      return render(
        reply,
        'register.njk',
        {
          problems: [`The name ${username} is taken. Choose another.`],
          values: { username },
          next,
        },
        409,
      );
    await startSession(request, reply, db, user);
    return reply.redirect(next, 303);
  });
  fastify.get('/login', async (request, reply) =>
    render(reply, 'login.njk', {
      values: {},
      next: safeNext(textOf((request.query as { next?: unknown }).next)),
    }),
  );
  fastify.post('/login', async (request, reply) => {
    const form = request.body as Record<string, unknown>;
    const username = textOf(form.username).trim();
    const next = safeNext(textOf(form.next));
    const user = await checkLogin(db, username, textOf(form.password));
    if (!user) {
      return render(
        reply,
        'login.njk',
        {
          problems: ['That name and password do not match.'],
          values: { username },
          next,
        },
        401,
      );
    }
    await startSession(request, reply, db, user);
    return reply.redirect(next, 303);
  });
  fastify.post('/logout', async (request, reply) => {
    await deleteSession(db, request.browserSession.id);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/', 303);
  });

  // Quizzes.
  const requireUser = (request: FastifyRequest, reply: FastifyReply): number | undefined => {
    const user = request.browserSession.user;
    if (!user) {
      if (wantsJson(request)) void reply.status(401).send({ error: 'Log in first.' });
      else void reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
      return undefined;
    }
    return user.id;
  };
  fastify.get('/quizzes/new', async (request, reply) => {
    if (requireUser(request, reply) === undefined) return reply;
    return render(reply, 'quiz-edit.njk', { quiz: { title: '', questions: [] } });
  });
  fastify.post('/quizzes', async (request, reply) => {
    const userId = requireUser(request, reply);
    if (userId === undefined) return reply;
    const { title, questions } = quizFromForm(request.body as Record<string, unknown>);
    const problems = quizProblems(title, questions);
    if (problems.length > 0) {
      return render(
        reply,
        'quiz-edit.njk',
        { problems, quiz: { title, questions: editorView(questions) } },
        400,
      );
    }
    await saveQuiz(db, userId, title, questions);
    return reply.redirect('/', 303);
  });
  /** The quiz the URL names, if the user may change it; otherwise the page that says why. */
  async function ownQuiz(
    request: FastifyRequest,
    reply: FastifyReply,
    action: 'edit' | 'delete',
  ): Promise<Quiz | undefined> {
    const userId = requireUser(request, reply);
    if (userId === undefined) return undefined;
    const id = idOf(request);
    const quiz = id === undefined ? undefined : await loadQuiz(db, id);
    if (!quiz) {
      await render(
        reply,
        'error.njk',
        { title: 'No such quiz', message: 'That quiz does not exist.' },
        404,
      );
      return undefined;
    }
    if (quiz.authorId !== userId) {
      await render(
        reply,
        'error.njk',
        { title: 'Not yours', message: `Only its author can ${action} a quiz.` },
        403,
      );
      return undefined;
    }
    return quiz;
  }
  /** Why a quiz cannot change now: a game of it that is not over reads its questions. */
  async function lockedBecause(quizId: number): Promise<string | undefined> {
    const unfinished = await games.unfinishedGameOf(quizId);
    return unfinished
      ? `A game of this quiz is open or being played (code ${unfinished.code}): end that game first, from its host page.`
      : undefined;
  }

  fastify.get('/quizzes/:id/edit', async (request, reply) => {
    const quiz = await ownQuiz(request, reply, 'edit');
    if (!quiz) return reply;
    return render(reply, 'quiz-edit.njk', {
      quiz: { ...quiz, questions: editorView(quiz.questions) },
    });
  });
  fastify.post('/quizzes/:id', async (request, reply) => {
    const existing = await ownQuiz(request, reply, 'edit');
    if (!existing) return reply;
    const id = existing.id;
    const { title, questions } = quizFromForm(request.body as Record<string, unknown>);
    const problems = quizProblems(title, questions);
    // A game in progress reads its questions from the quiz (again after a restart): changing them
    // would change the game under its players. The edits stay in the form, to save later.
    const locked = await lockedBecause(id);
    if (locked) problems.unshift(locked);
    if (problems.length > 0) {
      return render(
        reply,
        'quiz-edit.njk',
        { problems, quiz: { id, title, questions: editorView(questions) } },
        locked ? 409 : 400,
      );
    }
    await saveQuiz(db, existing.authorId, title, questions, id);
    return reply.redirect('/', 303);
  });
  // Deleting asks first, on a page of its own (no script needed): it takes the quiz's games too.
  fastify.get('/quizzes/:id/delete', async (request, reply) => {
    const quiz = await ownQuiz(request, reply, 'delete');
    if (!quiz) return reply;
    const locked = await lockedBecause(quiz.id);
    return render(
      reply,
      'quiz-delete.njk',
      { quiz, games: await gameCountOf(db, quiz.id), problems: locked ? [locked] : [] },
      locked ? 409 : 200,
    );
  });
  fastify.post('/quizzes/:id/delete', async (request, reply) => {
    const quiz = await ownQuiz(request, reply, 'delete');
    if (!quiz) return reply;
    if (await deleteQuiz(db, quiz.id, database.kind)) return reply.redirect('/', 303);
    const locked = await lockedBecause(quiz.id);
    return render(
      reply,
      'quiz-delete.njk',
      {
        quiz,
        games: await gameCountOf(db, quiz.id),
        problems: [locked ?? 'The quiz could not be deleted. Try again.'],
      },
      409,
    );
  });
  fastify.post('/quizzes/:id/host', async (request, reply) => {
    const userId = requireUser(request, reply);
    if (userId === undefined) return reply;
    try {
      const game = await games.create(idOf(request) ?? 0, userId);
      return reply.redirect(`/games/${game.id}`, 303);
    } catch (error) {
      if (error instanceof ForbiddenError)
        return render(reply, 'error.njk', { title: 'Cannot host', message: error.message }, 403);
      if (error instanceof GameError)
        return render(reply, 'error.njk', { title: 'Cannot host', message: error.message }, 404);
      throw error;
    }
  });
  fastify.post('/sample/host', async (request, reply) => {
    const userId = requireUser(request, reply);
    if (userId === undefined) return reply;
    // Each author gets their own copy of the sample, to play and to edit.
    const mine = await quizzesOf(db, userId);
    const quizId =
      mine.find((quiz) => quiz.title === SAMPLE_QUIZ.title)?.id ??
      (await saveQuiz(db, userId, SAMPLE_QUIZ.title, SAMPLE_QUIZ.questions));
    const game = await games.create(quizId, userId);
    return reply.redirect(`/games/${game.id}`, 303);
  });

  // Joining.
  fastify.get('/g/:code', async (request, reply) =>
    reply.redirect(
      `/join?code=${encodeURIComponent((request.params as { code: string }).code)}`,
      303,
    ),
  );
  fastify.get('/join', async (request, reply) => {
    const code = textOf((request.query as { code?: unknown }).code).toUpperCase();
    return render(reply, 'join.njk', {
      values: { code, nickname: request.browserSession.user?.username ?? '' },
    });
  });
  fastify.post('/join', async (request, reply) => {
    const form = request.body as Record<string, unknown>;
    const code = textOf(form.code).trim().toUpperCase();
    const nickname = textOf(form.nickname).trim();
    const values = { code, nickname };
    const problems: string[] = [];
    if (!/^[A-Z0-9]{6}$/.test(code))
      problems.push('Enter the 6-character code shown on the host’s screen.');
    if (nickname.length < 1 || nickname.length > 24)
      problems.push('Choose a nickname of 1 to 24 characters.');
    if (problems.length > 0) return render(reply, 'join.njk', { problems, values }, 400);
    const game = await games.findByCode(code);
    if (!game)
      return render(
        reply,
        'join.njk',
        { problems: [`No game has the code ${code}.`], values },
        404,
      );
    try {
      await games.join(
        game.id,
        request.browserSession.id,
        request.browserSession.user?.id ?? null,
        nickname,
      );
    } catch (error) {
      if (error instanceof GameError)
        return render(reply, 'join.njk', { problems: [error.message], values }, 409);
      throw error;
    }
    return reply.redirect(`/games/${game.id}/play`, 303);
  });

  // Games.
  const gamePage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    role: 'host' | 'player',
  ): Promise<FastifyReply> => {
    const gameId = idOf(request);
    const game = gameId === undefined ? undefined : await games.find(gameId);
    if (gameId === undefined || !game)
      return render(
        reply,
        'error.njk',
        { title: 'No such game', message: 'That game does not exist.' },
        404,
      );
    const player = await games.playerOf(gameId, request.browserSession.id);
    if (role === 'host' && game.authorId !== request.browserSession.user?.id) {
      return reply.redirect(player ? `/games/${gameId}/play` : `/join?code=${game.code}`, 303);
    }
    if (role === 'player' && !player) return reply.redirect(`/join?code=${game.code}`, 303);
    // Rendered at known positions of the status and players topics, taken before the reads
    // below; the page subscribes to each since its position, so it gets exactly what happened
    // after this render: no gap (a player who joins meanwhile is replayed), no duplicate.
    const position = games.position(gameId);
    const playersPosition = games.playersPosition(gameId);
    const status = await games.status(gameId);
    // A player who reloads after answering sees the answer locked in, not the buttons again.
    const myAnswer =
      player && status?.state === 'question'
        ? await games.answerOf(gameId, player.id, status.index)
        : null;
    const players = await games.players(gameId);
    const host = request.headers.host ?? 'localhost:8080';
    const origin = `${request.protocol}://${host}`;
    return render(reply, role === 'host' ? 'host.njk' : 'play.njk', {
      game,
      status,
      players,
      player,
      joinUrl: `${origin}/g/${game.code}`,
      page: {
        role,
        gameId,
        code: game.code,
        playerId: player?.id ?? null,
        myAnswer,
        status,
        players,
        position,
        playersPosition,
        serverTime: Date.now(),
        csrf: request.browserSession.csrfToken,
        statusDestination: statusDestination(gameId),
        playersDestination: playersDestination(gameId),
      },
    });
  };
  fastify.get('/games/:id', (request, reply) => gamePage(request, reply, 'host'));
  fastify.get('/games/:id/play', (request, reply) => gamePage(request, reply, 'player'));

  // The host's two controls, `game_start` and its end. Both answer JSON to game.js.
  const hostAction =
    (act: (gameId: number, userId: number) => Promise<void>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const user = request.browserSession.user;
      if (!user) return reply.status(401).send({ error: 'Log in first.' });
      try {
        const gameId = idOf(request);
        if (gameId === undefined) throw new NoSuchGameError();
        await act(gameId, user.id);
        return reply.send({});
      } catch (error) {
        if (error instanceof ForbiddenError)
          return reply.status(403).send({ error: error.message });
        if (error instanceof NoSuchGameError)
          return reply.status(404).send({ error: error.message });
        if (error instanceof GameError) return reply.status(409).send({ error: error.message });
        throw error;
      }
    };
  fastify.post(
    '/games/:id/start',
    hostAction((gameId, userId) => games.start(gameId, userId)),
  );
  fastify.post(
    '/games/:id/end',
    hostAction((gameId, userId) => games.end(gameId, userId)),
  );
  fastify.post('/games/:id/answer', async (request, reply) => {
    const body = request.body as { index?: unknown; choice?: unknown } | undefined;
    const index = Number(body?.index);
    const choice = Number(body?.choice);
    if (!Number.isInteger(index) || !Number.isInteger(choice)) {
      return reply
        .status(400)
        .send({ error: 'An answer needs the question index and the choice.' });
    }
    try {
      const gameId = idOf(request);
      if (gameId === undefined) throw new NoSuchGameError();
      const result = await games.answer(gameId, request.browserSession.id, index, choice);
      return reply.send(result);
    } catch (error) {
      if (error instanceof NoSuchGameError) return reply.status(404).send({ error: error.message });
      if (error instanceof GameError) return reply.status(409).send({ error: error.message });
      throw error;
    }
  });

  fastify.setNotFoundHandler(async (request, reply) => {
    if (wantsJson(request)) return reply.status(404).send({ error: 'Not found.' });
    return render(
      reply,
      'error.njk',
      { title: 'Not found', message: 'There is nothing at this address.' },
      404,
    );
  });
  fastify.setErrorHandler(async (error, request, reply) => {
    // Bad input gets its 4xx; anything else is logged here and never shown to the browser.
    const status =
      typeof (error as { statusCode?: number }).statusCode === 'number'
        ? (error as { statusCode: number }).statusCode
        : 500;
    if (status >= 500) console.error('quiz: request failed', error);
    const message =
      status >= 500
        ? 'Something went wrong on our side. Try again in a moment.'
        : (error as Error).message;
    if (wantsJson(request)) return reply.status(status).send({ error: message });
    return render(
      reply,
      'error.njk',
      { title: status >= 500 ? 'Sorry' : 'That did not work', message },
      status,
    );
  });

  return {
    fastify,
    broker,
    gateway,
    games,
    database,
    stompAddress,
    async close() {
      games.stop();
      await gateway.close({ drainMs: 100 });
      await fastify.close();
      await broker.close({ drainMs: 100 });
      await database.close();
    },
  };
}

function wantsJson(request: FastifyRequest): boolean {
  return (
    (request.headers.accept ?? '').includes('application/json') ||
    (request.headers['content-type'] ?? '').includes('application/json')
  );
}

function setSessionCookie(request: FastifyRequest, reply: FastifyReply, id: string): void {
  void reply.setCookie(SESSION_COOKIE, id, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: request.protocol === 'https',
    maxAge: SESSION_DAYS * 86_400,
  });
}

/** Logging in starts a new session: the old id, which others may have seen, is dropped. */
async function startSession(
  request: FastifyRequest,
  reply: FastifyReply,
  db: Db,
  user: { id: number; username: string },
): Promise<void> {
  await deleteSession(db, request.browserSession.id);
  const session = await createSession(db, user);
  setSessionCookie(request, reply, session.id);
  request.browserSession = session;
}

/** A form field or query parameter as text: a repeated or missing one counts as empty. */
function textOf(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * The `:id` of a quiz or game address, or undefined when it cannot be one: ids are positive
 * integers that fit PostgreSQL's integer (`abc` or `99999999999` must be a 404, not a query error).
 */
function idOf(request: FastifyRequest): number | undefined {
  const { id } = request.params as { id?: string };
  return id !== undefined && /^[1-9]\d{0,8}$/.test(id) ? Number(id) : undefined;
}

/** Where to go after a login: only a path on this site. */
function safeNext(next: string | undefined): string {
  return next && /^\/(?!\/)[\w/?=&%.-]*$/.test(next) ? next : '/';
}

interface EditedQuestion extends QuestionInput {
  /** The four choice slots of the editor, and which slot is marked right. */
  slots: string[];
  correctSlot: number;
}

/** Questions as the editor shows them: four slots each, the right one marked. */
function editorView(questions: readonly (QuestionInput | EditedQuestion)[]): EditedQuestion[] {
  return questions.map((question) => {
    if ('slots' in question) return question;
    const slots = [...question.choices, '', '', '', ''].slice(0, 4);
    return { ...question, slots, correctSlot: question.correct };
  });
}

/** The quiz editor's fields: title, and q{n}.text / q{n}.choice{0-3} / q{n}.correct / q{n}.seconds. */
function quizFromForm(form: Record<string, unknown>): {
  title: string;
  questions: EditedQuestion[];
} {
  const field = (name: string): string => (typeof form[name] === 'string' ? form[name] : '');
  const questions: EditedQuestion[] = [];
  for (let n = 0; n < 52; n++) {
    if (!(`q${n}.text` in form)) continue;
    const text = field(`q${n}.text`);
    // The editor has four slots; a form that sends more gets told, not silently cut to four.
    let slotCount = 4;
    for (let c = 4; c < 20; c++) if (`q${n}.choice${c}` in form) slotCount = c + 1;
    const choices = Array.from({ length: slotCount }, (_, c) => field(`q${n}.choice${c}`));
    if (
      text.trim() === '' &&
      choices.every((choice) => choice.trim() === '') &&
      field(`q${n}.remove`) === ''
    )
      continue;
    if (field(`q${n}.remove`) === 'on') continue;
    // The right answer is given among all the slots; count it among the filled ones.
    // No slot marked is a problem to report, not slot 0.
    const markedField = field(`q${n}.correct`);
    const marked = /^\d+$/.test(markedField) ? Number(markedField) : -1;
    const filledBefore = choices
      .slice(0, Math.max(0, marked))
      .filter((choice) => choice.trim() !== '').length;
    const correct = choices[marked]?.trim() ? filledBefore : -1;
    questions.push({
      text,
      choices,
      correct,
      seconds: Number(field(`q${n}.seconds`) || '20'),
      slots: choices,
      correctSlot: marked,
    });
  }
  return { title: field('title'), questions };
}

/** Files found in public/, kept once read; misses are not kept, so the cache cannot grow unbounded. */
const staticCache = new Map<string, string>();
function staticFile(file: string): string | undefined {
  let content = staticCache.get(file);
  if (content === undefined) {
    try {
      content = readFileSync(join(root, 'public', file), 'utf8');
    } catch {
      return undefined;
    }
    staticCache.set(file, content);
  }
  return content;
}
