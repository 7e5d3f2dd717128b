import { mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ANSWER_COUNT_INTERVAL_MS,
  type GameStatus,
  type PlayerSummary,
} from '../../examples/quiz/games.js';
import type { EmbeddedBroker } from '../../src/broker/index.js';
import { getHeader, type Frame } from '../../src/protocol/index.js';
import { nodeClient } from '../support/gateway.js';
import { postgresAvailable, startQuiz, type RunningQuiz } from '../support/quiz.js';

/**
 * Every route of the quiz app (examples/quiz/app.ts), over real HTTP against the real app, on
 * SQLite and again on PostgreSQL. Browsers are simulated by a small cookie jar; forms carry the
 * CSRF token read from the page, as a browser would send it.
 */

const databases = [
  { database: 'sqlite' as const, available: true },
  { database: 'postgres' as const, available: await postgresAvailable() },
];

const SESSION_COOKIE = 'quiz_session';
const CSRF_REFUSAL = 'This form has expired or did not come from this site.';

// --- A browser: a cookie jar, forms and AJAX calls -------------------------------------------

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  /** The redirect target, for 3xx answers. */
  location: string | null;
  setCookies: string[];
}

class Browser {
  readonly cookies = new Map<string, string>();

  constructor(private readonly base: string) {}

  async send(
    path: string,
    init: {
      method?: string;
      form?: Record<string, string> | [string, string][];
      json?: unknown;
      headers?: Record<string, string>;
    } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...init.headers };
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    } else if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      headers.accept = 'application/json';
      body = JSON.stringify(init.json);
    }
    const response = await fetch(new URL(path, this.base), {
      method: init.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      body,
      redirect: 'manual',
    });
    const setCookies = response.headers.getSetCookie();
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const equals = pair.indexOf('=');
      const name = pair.slice(0, equals);
      const value = pair.slice(equals + 1);
      const expired = attributes.some(
        (attribute) =>
          /^max-age=0$/i.test(attribute) ||
          (/^expires=/i.test(attribute) && Date.parse(attribute.slice(8)) <= Date.now()),
      );
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return {
      status: response.status,
      headers: response.headers,
      text: await response.text(),
      location: response.headers.get('location'),
      setCookies,
    };
  }

  get(path: string, headers?: Record<string, string>): Promise<Reply> {
    return this.send(path, { headers });
  }

  /** Posts a form with this session's CSRF token, unless `_csrf` is given (or set to null). */
  async post(path: string, form: Record<string, string | null> = {}): Promise<Reply> {
    const fields: Record<string, string> = {};
    for (const [name, value] of Object.entries(form)) if (value !== null) fields[name] = value;
    if (!('_csrf' in form)) fields._csrf = await this.token();
    return this.send(path, { form: fields });
  }

  /** An AJAX POST as game.js sends it: JSON, the token in x-csrf-token (unless null). */
  async ajax(path: string, json: unknown = {}, token?: string | null): Promise<Reply> {
    const csrf = token === undefined ? await this.token() : token;
    return this.send(path, { json, headers: csrf === null ? {} : { 'x-csrf-token': csrf } });
  }

  /** The CSRF token of this browser's session, read from a form as a browser would. */
  async token(): Promise<string> {
    return csrfOf((await this.get('/join')).text);
  }

  get session(): string | undefined {
    return this.cookies.get(SESSION_COOKIE);
  }

  /** The same person (the same cookies) at another address: the server, restarted on a new port. */
  at(base: string): Browser {
    const moved = new Browser(base);
    for (const [name, value] of this.cookies) moved.cookies.set(name, value);
    return moved;
  }
}

/** Attributes of each `<input>` of a page, values as written (still HTML-escaped). */
function inputsOf(html: string): Record<string, string>[] {
  return [...html.matchAll(/<input\b([^>]*)>/g)].map((tag) => {
    const attributes: Record<string, string> = {};
    for (const [, name, value] of tag[1]!.matchAll(/([\w:.-]+)(?:="([^"]*)")?/g))
      attributes[name!] = value ?? '';
    return attributes;
  });
}

/** The value of the form field `name` as the page writes it (checked one, for radio buttons). */
function fieldValue(html: string, name: string): string | undefined {
  const fields = inputsOf(html).filter((input) => input.name === name);
  const field = fields.find((input) => input.type !== 'radio' || 'checked' in input);
  return field?.value;
}

/** The inner HTML of the element with this id. */
function elementHtml(html: string, id: string): string | undefined {
  return new RegExp(`<(\\w+)\\b[^>]*\\bid="${id}"[^>]*>([\\s\\S]*?)</\\1>`).exec(html)?.[2];
}

/** The ids of the quizzes a page links to for editing. */
function quizIds(html: string): number[] {
  return [
    ...new Set([...html.matchAll(/href="\/quizzes\/(\d+)\/edit"/g)].map((m) => Number(m[1]))),
  ];
}

function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('the page has no form with a CSRF token');
  return match[1]!;
}

interface GamePage {
  role: 'host' | 'player';
  gameId: number;
  code: string;
  playerId: number | null;
  csrf: string;
  status: GameStatus & { publishedAt: number };
  players: PlayerSummary[];
}

/** The state a game page embeds for game.js (`<script id="quiz-page">`). */
function pageData(html: string): GamePage {
  const match = /<script type="application\/json" id="quiz-page">([^<]*)<\/script>/.exec(html);
  if (!match) throw new Error('the page embeds no game state');
  return JSON.parse(match[1]!) as GamePage;
}

function json<T = { error?: string }>(reply: Reply): T {
  expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
  return JSON.parse(reply.text) as T;
}

/** A request with its path sent exactly as written (fetch would normalize `..`). */
function rawGet(url: string, path: string): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: hostname, port, path, method: 'GET' }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.on('error', reject);
    request.end();
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `probe` returns a value; the time limit only guards against a hang. */
async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const limit = Date.now() + 20_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > limit) throw new Error(`gave up waiting for ${what}`);
    await sleep(100);
  }
}

/** A message the app published on a game's topic, its JSON body parsed. */
interface Published {
  destination: string;
  body: Record<string, unknown> & { state?: string; publishedAt?: number };
}

interface Follower {
  /** Every message so far, in the order they came. */
  readonly messages: Published[];
  /** The first message at or after `from` that `match` accepts (waits for it). */
  next(what: string, match: (message: Published) => boolean, from?: number): Promise<Published>;
  close(): void;
}

/**
 * Subscribes to a game's topics on the app's broker, as an in-process subscriber (what a browser
 * would get, minus the transport), once the broker has confirmed each subscription.
 */
async function follow(broker: EmbeddedBroker, destinations: string[]): Promise<Follower> {
  const messages: Published[] = [];
  const receipts = new Set<string>();
  const channel = await broker.open({ id: 'follower', anonymous: false }, (frame: Frame) => {
    if (frame.command === 'RECEIPT') receipts.add(getHeader(frame, 'receipt-id') ?? '');
    if (frame.command !== 'MESSAGE') return;
    messages.push({
      destination: getHeader(frame, 'destination') ?? '',
      body: JSON.parse(new TextDecoder().decode(frame.body)) as Published['body'],
    });
  });
  destinations.forEach((destination, n) =>
    channel.send({
      command: 'SUBSCRIBE',
      headers: [
        ['id', String(n)],
        ['destination', destination],
        ['receipt', `subscribed-${n}`],
      ],
      body: new Uint8Array(),
    }),
  );
  await until('the subscriptions', () =>
    Promise.resolve(destinations.every((_, n) => receipts.has(`subscribed-${n}`)) || undefined),
  );
  return {
    messages,
    next: (what, match, from = 0) =>
      until(what, () => Promise.resolve(messages.slice(from).find(match))),
    close: () => channel.close(),
  };
}

// --- The quiz, as its users drive it ----------------------------------------------------------

interface QuestionFields {
  text: string;
  choices: string[];
  correct?: number | string | null;
  seconds?: number | string;
}

function quizForm(title: string, questions: QuestionFields[]): Record<string, string> {
  const form: Record<string, string> = { title };
  questions.forEach((question, n) => {
    form[`q${n}.text`] = question.text;
    question.choices.forEach((choice, c) => (form[`q${n}.choice${c}`] = choice));
    if (question.correct !== null) form[`q${n}.correct`] = String(question.correct ?? 0);
    form[`q${n}.seconds`] = String(question.seconds ?? 20);
  });
  return form;
}

/** Problems a form page lists, as text. */
function problemsOf(html: string): string[] {
  const box = /<div\b[^>]*class="problems"[^>]*>([\s\S]*?)<\/div>/.exec(html);
  if (!box) return [];
  return [...box[1]!.matchAll(/<li\b[^>]*>([\s\S]*?)<\/li>/g)].map((match) => match[1]!.trim());
}

describe.each(databases)('quiz routes on $database', ({ database, available }) => {
  describe.skipIf(!available)(`every route (${database})`, () => {
    let quiz: RunningQuiz;
    let counter = 0;
    const name = (prefix: string) => `${prefix}_${++counter}`;

    beforeAll(async () => {
      quiz = await startQuiz({ database });
    });
    afterAll(async () => {
      await quiz?.close();
    });

    const browser = () => new Browser(quiz.url);

    async function registered(prefix = 'user'): Promise<Browser & { username: string }> {
      const user = Object.assign(browser(), { username: name(prefix) });
      const reply = await user.post('/register', {
        username: user.username,
        password: 'correct horse',
        confirm: 'correct horse',
      });
      expect(reply.status).toBe(303);
      return user;
    }

    async function createQuiz(
      author: Browser,
      title: string,
      questions: QuestionFields[],
    ): Promise<number> {
      const reply = await author.post('/quizzes', quizForm(title, questions));
      expect(reply.status, problemsOf(reply.text).join(' ')).toBe(303);
      // The home page lists the author's quizzes; the new one has the highest id.
      const ids = quizIds((await author.get('/')).text);
      expect(ids.length).toBeGreaterThan(0);
      return Math.max(...ids);
    }

    const twoChoices = (seconds = 20): QuestionFields[] => [
      { text: 'Pick the first', choices: ['First', 'Second'], correct: 0, seconds },
    ];

    async function hostGame(
      author: Browser,
      questions = twoChoices(),
      title = name('Quiz'),
    ): Promise<{ gameId: number; code: string; quizId: number }> {
      const quizId = await createQuiz(author, title, questions);
      const reply = await author.post(`/quizzes/${quizId}/host`);
      expect(reply.status).toBe(303);
      const gameId = Number(/^\/games\/(\d+)$/.exec(reply.location ?? '')?.[1]);
      expect(gameId).toBeGreaterThan(0);
      const page = pageData((await author.get(`/games/${gameId}`)).text);
      return { gameId, code: page.code, quizId };
    }

    async function joined(code: string, nickname: string): Promise<Browser> {
      const guest = browser();
      const reply = await guest.post('/join', { code, nickname });
      expect(reply.status, problemsOf(reply.text).join(' ')).toBe(303);
      expect(reply.location).toMatch(/^\/games\/\d+\/play$/);
      return guest;
    }

    async function statusOf(host: Browser, gameId: number): Promise<GamePage['status']> {
      const reply = await host.get(`/games/${gameId}`);
      expect(reply.status).toBe(200);
      return pageData(reply.text).status;
    }

    // --- static files and the basics ---------------------------------------------------------

    it('serves the static files with their types, and nothing else from disk', async () => {
      const visitor = browser();
      const css = await visitor.get('/static/quiz.css');
      expect(css.status).toBe(200);
      expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
      const js = await visitor.get('/static/game.js');
      expect(js.status).toBe(200);
      expect(js.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
      expect(js.text).toContain('quiz-page');
      const svg = await visitor.get('/static/icon.svg');
      expect(svg.status).toBe(200);
      expect(svg.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
      expect((await visitor.get('/static/missing.css')).status).toBe(404);

      for (const path of [
        '/static/../app.ts',
        '/static/../../package.json',
        '/static/..%2Fapp.ts',
        '/static/..%2F..%2Fpackage.json',
        '/static/%2e%2e%2fdb.ts',
        '/static/%2E%2E%2F%2E%2E%2Fpackage.json',
        '/static/..%5Capp.ts',
        '/static/....%2F%2Fapp.ts',
        '/static/quiz.css%00.js',
        '/static/%2Fetc%2Fpasswd',
        '/static/app.ts',
        '/static/..js',
        '/static/.%2E%2Fviews%2Fbase.njk',
      ]) {
        const reply = await rawGet(quiz.url, path);
        expect(reply.status, path).toBe(404);
        expect(reply.text, path).not.toContain('createQuizApp');
        expect(reply.text, path).not.toContain('"name": "perigee"');
        expect(reply.text, path).not.toContain('root:');
      }
    });

    it('renders the home page with safe headers and an httpOnly, SameSite session cookie', async () => {
      const visitor = browser();
      const home = await visitor.get('/');
      expect(home.status).toBe(200);
      expect(home.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(home.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(home.headers.get('x-content-type-options')).toBe('nosniff');
      expect(home.text).toContain('Sign up to host');
      const cookie = home.setCookies.find((line) => line.startsWith(`${SESSION_COOKIE}=`));
      expect(cookie).toBeDefined();
      expect(cookie).toMatch(/;\s*HttpOnly/i);
      expect(cookie).toMatch(/;\s*SameSite=Lax/i);
      expect(cookie).toMatch(/;\s*Path=\//i);
      // The same session on the next visit: no new cookie.
      expect((await visitor.get('/')).setCookies).toEqual([]);

      // The code given in the address is shown back escaped.
      const prefilled = await visitor.get(`/?code=${encodeURIComponent('"><script>x()</script>')}`);
      expect(prefilled.text).not.toContain('<script>x()');
      expect(fieldValue(prefilled.text, 'code')).toBe('&quot;&gt;&lt;script&gt;x()&lt;/script&gt;');
    });

    it('answers unknown addresses with 404, as a page or as JSON', async () => {
      const visitor = browser();
      const page = await visitor.get('/no/such/page');
      expect(page.status).toBe(404);
      expect(page.text).toContain('There is nothing at this address.');
      const api = await visitor.get('/no/such/page', { accept: 'application/json' });
      expect(api.status).toBe(404);
      expect(json(api)).toEqual({ error: 'Not found.' });
    });

    // --- accounts ----------------------------------------------------------------------------

    it('registers an account in a new session, and refuses a taken name clearly', async () => {
      const visitor = browser();
      const form = await visitor.get('/register');
      expect(form.status).toBe(200);
      expect(fieldValue(form.text, 'username')).toBe('');
      const anonymous = visitor.session;
      const username = name('Alice');
      const created = await visitor.post('/register', {
        username,
        password: 'correct horse',
        confirm: 'correct horse',
      });
      expect(created.status).toBe(303);
      expect(created.location).toBe('/');
      const cookie = created.setCookies.find((line) => line.startsWith(`${SESSION_COOKIE}=`));
      expect(cookie).toMatch(/;\s*HttpOnly/i);
      expect(cookie).toMatch(/;\s*SameSite=Lax/i);
      // Logging in never keeps the session id that was handed out before it.
      expect(visitor.session).toBeDefined();
      expect(visitor.session).not.toBe(anonymous);
      expect((await visitor.get('/')).text).toMatch(
        new RegExp(`Signed in as\\s*<strong[^>]*>${username}</strong>`),
      );

      const again = await browser().post('/register', {
        username,
        password: 'another password',
        confirm: 'another password',
      });
      expect(again.status).toBe(409);
      expect(problemsOf(again.text)).toEqual([`The name ${username} is taken. Choose another.`]);
      expect(fieldValue(again.text, 'username')).toBe(username);
    });

    it('sends a newcomer who signs up from the login page on to where they were going', async () => {
      const visitor = browser();
      const login = await visitor.get('/login?next=%2Fquizzes%2Fnew');
      const signUp = /New here\? <a href="([^"]*)"/.exec(login.text)?.[1];
      expect(signUp).toBe('/register?next=%2Fquizzes%2Fnew');
      const form = await visitor.get(signUp!);
      expect(fieldValue(form.text, 'next')).toBe('/quizzes/new');
      expect(form.text).toContain('href="/login?next=%2Fquizzes%2Fnew"');
      // A refused attempt keeps it too.
      const refused = await visitor.post('/register', {
        username: 'ab',
        password: 'correct horse',
        confirm: 'correct horse',
        next: '/quizzes/new',
      });
      expect(refused.status).toBe(400);
      expect(fieldValue(refused.text, 'next')).toBe('/quizzes/new');
      const created = await visitor.post('/register', {
        username: name('Dora'),
        password: 'correct horse',
        confirm: 'correct horse',
        next: '/quizzes/new',
      });
      expect(created.status).toBe(303);
      expect(created.location).toBe('/quizzes/new');
      // Only paths on this site: anything else goes home.
      const elsewhere = await browser().post('/register', {
        username: name('Eve'),
        password: 'correct horse',
        confirm: 'correct horse',
        next: '//evil.example/',
      });
      expect(elsewhere.location).toBe('/');
    });

    it('explains what is wrong with a registration', async () => {
      const visitor = browser();
      const short = await visitor.post('/register', {
        username: 'ab',
        password: 'short',
        confirm: 'short',
      });
      expect(short.status).toBe(400);
      expect(problemsOf(short.text)).toEqual([
        'Choose a name of 3 to 32 letters, digits, dots, dashes or underscores.',
        'Use a password of at least 8 characters.',
      ]);
      const mismatch = await visitor.post('/register', {
        username: name('bob'),
        password: 'correct horse',
        confirm: 'correct horsf',
      });
      expect(mismatch.status).toBe(400);
      expect(problemsOf(mismatch.text)).toEqual(['The two passwords do not match.']);
      const html = await visitor.post('/register', {
        username: '<b>x</b>',
        password: 'correct horse',
        confirm: 'correct horse',
      });
      expect(html.status).toBe(400);
      expect(html.text).not.toContain('<b>x</b>');
      expect(fieldValue(html.text, 'username')).toBe('&lt;b&gt;x&lt;/b&gt;');
    });

    it('gives one of two simultaneous registrations of a name the clear refusal, not an error', async () => {
      const username = name('twin');
      const form = { username, password: 'correct horse', confirm: 'correct horse' };
      const [first, second] = [browser(), browser()];
      const tokens = await Promise.all([first.token(), second.token()]);
      const replies = await Promise.all([
        first.post('/register', { ...form, _csrf: tokens[0] }),
        second.post('/register', { ...form, _csrf: tokens[1] }),
      ]);
      expect(replies.map((reply) => reply.status).sort()).toEqual([303, 409]);
      const refused = replies.find((reply) => reply.status === 409)!;
      expect(problemsOf(refused.text)).toEqual([`The name ${username} is taken. Choose another.`]);
    });

    it('logs in, refusing a wrong password or an unknown name with a clear message', async () => {
      const user = await registered('carol');
      const visitor = browser();
      const form = await visitor.get('/login?next=%2Fquizzes%2Fnew');
      expect(form.status).toBe(200);
      expect(fieldValue(form.text, 'next')).toBe('/quizzes/new');

      const wrong = await visitor.post('/login', {
        username: user.username,
        password: 'wrong horse!',
      });
      expect(wrong.status).toBe(401);
      expect(problemsOf(wrong.text)).toEqual(['That name and password do not match.']);
      expect(fieldValue(wrong.text, 'username')).toBe(user.username);
      expect(wrong.text).not.toContain('Signed in as');
      const unknown = await visitor.post('/login', {
        username: name('nobody'),
        password: 'correct horse',
      });
      expect(unknown.status).toBe(401);
      expect(problemsOf(unknown.text)).toEqual(['That name and password do not match.']);

      const before = visitor.session;
      const anonymousToken = await visitor.token();
      const ok = await visitor.post('/login', {
        username: user.username,
        password: 'correct horse',
        next: '/quizzes/new',
      });
      expect(ok.status).toBe(303);
      expect(ok.location).toBe('/quizzes/new');
      expect(visitor.session).not.toBe(before);
      expect(ok.setCookies.join('\n')).toMatch(/HttpOnly/i);
      expect((await visitor.get('/quizzes/new')).status).toBe(200);
      // The token of the session before the login is no longer good.
      const stale = await visitor.post('/quizzes', {
        ...quizForm('Stale', twoChoices()),
        _csrf: anonymousToken,
      });
      expect(stale.status).toBe(403);

      // Only a path on this site is a place to go next.
      for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
        const elsewhere = browser();
        const reply = await elsewhere.post('/login', {
          username: user.username,
          password: 'correct horse',
          next,
        });
        expect(reply.status, next).toBe(303);
        expect(reply.location, next).toBe('/');
      }
    });

    it('logs out: the session ends, and the old cookie no longer signs anyone in', async () => {
      const user = await registered('dave');
      const oldSession = user.session!;
      // Without the token, logging out is refused and the session lives on.
      const refused = await user.post('/logout', { _csrf: null });
      expect(refused.status).toBe(403);
      expect((await user.get('/')).text).toContain('Signed in as');

      const out = await user.post('/logout');
      expect(out.status).toBe(303);
      expect(out.location).toBe('/');
      const cleared = out.setCookies.find((line) => line.startsWith(`${SESSION_COOKIE}=`));
      expect(cleared).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/i);
      expect(user.session).toBeUndefined();
      expect((await user.get('/')).text).not.toContain('Signed in as');

      // Someone who kept the old cookie is not signed in either.
      const replay = browser();
      replay.cookies.set(SESSION_COOKIE, oldSession);
      const home = await replay.get('/');
      expect(home.text).not.toContain('Signed in as');
      expect(replay.session).not.toBe(oldSession);
      expect((await replay.get('/quizzes/new')).status).toBe(303);
    });

    it('takes a repeated form field or query parameter as bad input, not as a crash', async () => {
      const visitor = browser();
      for (const path of ['/?code=A&code=B', '/join?code=A&code=B', '/login?next=/a&next=/b']) {
        const reply = await visitor.get(path);
        expect(reply.status, path).toBe(200);
      }
      const token = await visitor.token();
      const cases: [string, [string, string][], number][] = [
        [
          '/register',
          [
            ['username', 'twice_a'],
            ['username', 'twice_b'],
            ['password', 'correct horse'],
            ['confirm', 'correct horse'],
          ],
          400,
        ],
        [
          '/login',
          [
            ['username', 'a'],
            ['username', 'b'],
            ['password', 'x'],
            ['password', 'y'],
          ],
          401,
        ],
        [
          '/join',
          [
            ['code', 'ABCDEF'],
            ['code', 'GHJKLM'],
            ['nickname', 'Twice'],
          ],
          400,
        ],
      ];
      for (const [path, fields, status] of cases) {
        const reply = await visitor.send(path, { form: [['_csrf', token], ...fields] });
        expect(reply.status, path).toBe(status);
        expect(problemsOf(reply.text).length, path).toBeGreaterThan(0);
      }
      // A repeated token is no token.
      const tokens = await visitor.send('/join', {
        form: [
          ['_csrf', token],
          ['_csrf', token],
          ['code', 'ABCDEF'],
          ['nickname', 'Twice'],
        ],
      });
      expect(tokens.status).toBe(403);
    });

    // --- CSRF --------------------------------------------------------------------------------

    it('refuses every form posted without the session token, or with a wrong one', async () => {
      const author = await registered('erin');
      const quizId = await createQuiz(author, name('Csrf quiz'), twoChoices());
      const { code } = await hostGame(author);
      const other = browser();
      const othersToken = await other.token();
      const forms: [string, Record<string, string>][] = [
        [
          '/register',
          { username: name('mallory'), password: 'x'.repeat(10), confirm: 'x'.repeat(10) },
        ],
        ['/login', { username: author.username, password: 'correct horse' }],
        ['/logout', {}],
        ['/quizzes', quizForm(name('Forged'), twoChoices())],
        [`/quizzes/${quizId}`, quizForm('Forged title', twoChoices())],
        [`/quizzes/${quizId}/host`, {}],
        [`/quizzes/${quizId}/delete`, {}],
        ['/sample/host', {}],
        ['/join', { code, nickname: 'forged' }],
      ];
      const gamesBefore = (await author.get('/')).text.match(/href="\/games\/\d+"/g)?.length;
      for (const [path, form] of forms) {
        for (const token of [null, '', 'not-the-token', othersToken, `${await author.token()}x`]) {
          const reply = await author.post(path, { ...form, _csrf: token });
          expect(reply.status, `${path} with ${token}`).toBe(403);
          expect(reply.headers.get('content-type')).toMatch(/^text\/html/);
          expect(reply.text).toContain(CSRF_REFUSAL);
        }
      }
      // Nothing happened: still signed in, the quiz keeps its title, no game was added.
      const home = (await author.get('/')).text;
      expect(home).toContain('Signed in as');
      expect(home).not.toContain('Forged');
      expect(home.match(/href="\/games\/\d+"/g)?.length).toBe(gamesBefore);
      // The token of the session itself works.
      expect((await author.post(`/quizzes/${quizId}/host`)).status).toBe(303);
    });

    it('refuses the AJAX posts without the session token, or with a wrong one', async () => {
      const author = await registered('frank');
      const { gameId, code } = await hostGame(author);
      const guest = await joined(code, 'Guest');
      const othersToken = await browser().token();
      for (const [who, path, body] of [
        [author, `/games/${gameId}/start`, {}],
        [author, `/games/${gameId}/end`, {}],
        [guest, `/games/${gameId}/answer`, { index: 0, choice: 0 }],
      ] as const) {
        for (const token of [null, '', 'wrong', othersToken]) {
          const reply = await who.ajax(path, body, token);
          expect(reply.status, `${path} with ${token}`).toBe(403);
          expect(json(reply).error).toContain(CSRF_REFUSAL);
        }
        // A token in the JSON body is checked too.
        const inBody = await who.ajax(path, { ...body, _csrf: othersToken }, null);
        expect(inBody.status).toBe(403);
      }
      expect((await statusOf(author, gameId)).state).toBe('lobby');
    });

    // --- quizzes -----------------------------------------------------------------------------

    it('lets only a signed-in user write a quiz, and lists it', async () => {
      const visitor = browser();
      const anonymous = await visitor.get('/quizzes/new');
      expect(anonymous.status).toBe(303);
      expect(anonymous.location).toBe('/login?next=%2Fquizzes%2Fnew');
      const post = await visitor.post('/quizzes', quizForm('Anonymous', twoChoices()));
      expect(post.status).toBe(303);
      expect(post.location).toMatch(/^\/login\?next=/);

      const author = await registered('gina');
      const form = await author.get('/quizzes/new');
      expect(form.status).toBe(200);
      expect(fieldValue(form.text, 'q0.choice3')).toBe('');
      const title = name('Capitals');
      const id = await createQuiz(author, title, [
        { text: 'Capital of France?', choices: ['Lyon', 'Paris', '', ''], correct: 1, seconds: 10 },
        { text: 'Capital of Italy?', choices: ['', 'Rome', 'Milan'], correct: 1, seconds: 30 },
      ]);
      const home = (await author.get('/')).text;
      expect(home).toMatch(new RegExp(`${title}[^·]*· 2 questions`));
      const edit = await author.get(`/quizzes/${id}/edit`);
      expect(edit.status).toBe(200);
      expect(fieldValue(edit.text, 'title')).toBe(title);
      expect(fieldValue(edit.text, 'q0.text')).toBe('Capital of France?');
      expect(fieldValue(edit.text, 'q0.choice1')).toBe('Paris');
      expect(fieldValue(edit.text, 'q0.correct')).toBe('1');
      expect(fieldValue(edit.text, 'q0.seconds')).toBe('10');
      // The second question's right answer is Rome, the first filled slot after compaction.
      expect(fieldValue(edit.text, 'q1.correct')).toBe('0');
      expect(fieldValue(edit.text, 'q1.choice0')).toBe('Rome');
      expect(fieldValue(edit.text, 'q1.seconds')).toBe('30');
    });

    it('explains what is wrong with a quiz form', async () => {
      const author = await registered('hank');
      const cases: [string, Record<string, string>, string[]][] = [
        ['no title', quizForm('', twoChoices()), ['Give the quiz a title.']],
        ['no questions', { title: 'Empty' }, ['Add at least one question.']],
        [
          'fewer than 2 choices',
          quizForm('One choice', [{ text: 'Q', choices: ['Only', '', '', ''], correct: 0 }]),
          ['Question 1 needs 2 to 4 choices.'],
        ],
        [
          'more than 4 choices',
          quizForm('Five choices', [{ text: 'Q', choices: ['A', 'B', 'C', 'D', 'E'], correct: 0 }]),
          ['Question 1 needs 2 to 4 choices.'],
        ],
        [
          'no right choice marked',
          quizForm('Unmarked', [{ text: 'Q', choices: ['A', 'B'], correct: null }]),
          ['Question 1: mark which choice is right.'],
        ],
        [
          'the right choice left empty',
          quizForm('Empty right', [{ text: 'Q', choices: ['A', 'B', '', ''], correct: 3 }]),
          ['Question 1: mark which choice is right.'],
        ],
        [
          'a right choice out of range',
          quizForm('Out of range', [{ text: 'Q', choices: ['A', 'B'], correct: 'x' }]),
          ['Question 1: mark which choice is right.'],
        ],
        ...[3, 121, 'abc', 7.5, -10].map((seconds): [string, Record<string, string>, string[]] => [
          `${seconds} seconds`,
          quizForm('Seconds', [{ text: 'Q', choices: ['A', 'B'], correct: 0, seconds }]),
          ['Question 1: allow between 5 and 120 seconds.'],
        ]),
        [
          'a question without text',
          quizForm('No text', [{ text: ' ', choices: ['A', 'B'], correct: 0 }]),
          ['Question 1 has no text.'],
        ],
      ];
      for (const [what, form, problems] of cases) {
        const reply = await author.post('/quizzes', form);
        expect(reply.status, what).toBe(400);
        expect(problemsOf(reply.text), what).toEqual(problems);
        // What was typed is shown again, to be fixed.
        if (form.title) expect(fieldValue(reply.text, 'title'), what).toBe(form.title);
      }
      expect(quizIds((await author.get('/')).text)).toEqual([]);
    });

    it('lets only its author edit a quiz (403), and says when there is none (404)', async () => {
      const author = await registered('ivy');
      const title = name('Original');
      const id = await createQuiz(author, title, twoChoices());
      const other = await registered('jack');

      const peek = await other.get(`/quizzes/${id}/edit`);
      expect(peek.status).toBe(403);
      expect(peek.text).toContain('Only its author can edit a quiz.');
      expect(peek.text).not.toContain('Pick the first');
      const overwrite = await other.post(`/quizzes/${id}`, quizForm('Hijacked', twoChoices()));
      expect(overwrite.status).toBe(403);
      expect(overwrite.text).toContain('Only its author can edit a quiz.');

      for (const missing of ['999999', 'abc', '99999999999', '1.5', '-1']) {
        const page = await author.get(`/quizzes/${missing}/edit`);
        expect(page.status, missing).toBe(404);
        const save = await author.post(`/quizzes/${missing}`, quizForm('X', twoChoices()));
        expect(save.status, missing).toBe(404);
      }

      const anonymous = browser();
      const login = await anonymous.get(`/quizzes/${id}/edit`);
      expect(login.status).toBe(303);
      expect(login.location).toBe(`/login?next=${encodeURIComponent(`/quizzes/${id}/edit`)}`);
      const anonymousSave = await anonymous.post(`/quizzes/${id}`, quizForm('X', twoChoices()));
      expect(anonymousSave.status).toBe(303);
      expect(anonymousSave.location).toMatch(/^\/login\?next=/);

      // The author edits: a bad form is explained, a good one saved, a removed question gone.
      const bad = await author.post(`/quizzes/${id}`, quizForm('', twoChoices()));
      expect(bad.status).toBe(400);
      expect(problemsOf(bad.text)).toEqual(['Give the quiz a title.']);
      expect(bad.text).toContain(`action="/quizzes/${id}"`);
      const form = quizForm(`${title} v2`, [
        { text: 'Kept', choices: ['A', 'B'], correct: 1 },
        { text: 'Removed', choices: ['C', 'D'], correct: 0 },
      ]);
      const saved = await author.post(`/quizzes/${id}`, { ...form, 'q1.remove': 'on' });
      expect(saved.status).toBe(303);
      const edit = (await author.get(`/quizzes/${id}/edit`)).text;
      expect(fieldValue(edit, 'title')).toBe(`${title} v2`);
      expect(fieldValue(edit, 'q0.text')).toBe('Kept');
      expect(fieldValue(edit, 'q0.correct')).toBe('1');
      expect(fieldValue(edit, 'q1.text')).toBe('');
      expect(edit).not.toContain('Removed');
      expect((await author.get('/')).text).not.toContain('Hijacked');
    });

    it('hosts a game of the author’s own quiz, or of the sample', async () => {
      const author = await registered('kate');
      const { gameId, code, quizId } = await hostGame(author);
      expect(code).toMatch(/^[A-Z0-9]{6}$/);
      const host = await author.get(`/games/${gameId}`);
      expect(host.status).toBe(200);
      expect(elementHtml(host.text, 'join-code')).toBe(code);
      expect(host.text).toContain(`/g/${code}`);
      const page = pageData(host.text);
      expect(page).toMatchObject({ role: 'host', gameId, code, playerId: null });
      expect(page.status).toMatchObject({ state: 'lobby', players: 0, total: 1 });

      const other = await registered('leo');
      const stolen = await other.post(`/quizzes/${quizId}/host`);
      expect(stolen.status).toBe(403);
      expect(stolen.text).toContain('That quiz is not yours to host.');
      for (const missing of ['999999', 'abc', '99999999999']) {
        const reply = await author.post(`/quizzes/${missing}/host`);
        expect(reply.status, missing).toBe(404);
        expect(reply.text, missing).toContain('There is no such quiz.');
      }
      const anonymous = await browser().post(`/quizzes/${quizId}/host`);
      expect(anonymous.status).toBe(303);
      expect(anonymous.location).toMatch(/^\/login\?next=/);

      const sample = await author.post('/sample/host');
      expect(sample.status).toBe(303);
      expect(sample.location).toMatch(/^\/games\/\d+$/);
      const again = await author.post('/sample/host');
      expect(again.location).not.toBe(sample.location);
      const home = (await author.get('/')).text;
      // One copy of the sample, however often it is hosted: two quizzes in all.
      expect(quizIds(home)).toHaveLength(2);
      expect(home).toMatch(/Python and the real-time web[^·]*· 10 questions/);
      const samplePage = pageData((await author.get(sample.location!)).text);
      expect(samplePage.status).toMatchObject({ state: 'lobby', total: 10 });
      expect((await browser().post('/sample/host')).status).toBe(303);
    });

    // --- joining -----------------------------------------------------------------------------

    it('joins a game by its code, with clear errors for a bad code or nickname', async () => {
      const author = await registered('mia');
      const { gameId, code } = await hostGame(author);
      const guest = browser();

      const short = await guest.get(`/g/${code.toLowerCase()}`);
      expect(short.status).toBe(303);
      expect(short.location).toBe(`/join?code=${code.toLowerCase()}`);
      const form = await guest.get(short.location!);
      expect(form.status).toBe(200);
      expect(fieldValue(form.text, 'code')).toBe(code);
      const odd = await guest.get('/g/%22%3E%3Cscript%3E');
      expect(odd.location).toBe('/join?code=%22%3E%3Cscript%3E');
      const oddForm = await guest.get(odd.location!);
      expect(oddForm.text).not.toContain('"><SCRIPT>');
      expect(fieldValue(oddForm.text, 'code')).toBe('&quot;&gt;&lt;SCRIPT&gt;');

      const badFormat = await guest.post('/join', { code: 'AB', nickname: 'Zed' });
      expect(badFormat.status).toBe(400);
      expect(problemsOf(badFormat.text)).toEqual([
        'Enter the 6-character code shown on the host’s screen.',
      ]);
      const unknownCode = code === 'ZZZZZZ' ? 'YYYYYY' : 'ZZZZZZ';
      const unknown = await guest.post('/join', { code: unknownCode, nickname: 'Zed' });
      expect(unknown.status).toBe(404);
      expect(problemsOf(unknown.text)).toEqual([`No game has the code ${unknownCode}.`]);
      expect(fieldValue(unknown.text, 'nickname')).toBe('Zed');
      for (const nickname of ['', '   ', 'x'.repeat(25)]) {
        const reply = await guest.post('/join', { code, nickname });
        expect(reply.status).toBe(400);
        expect(problemsOf(reply.text)).toEqual(['Choose a nickname of 1 to 24 characters.']);
      }

      const ok = await guest.post('/join', { code: ` ${code.toLowerCase()} `, nickname: 'Zed' });
      expect(ok.status).toBe(303);
      expect(ok.location).toBe(`/games/${gameId}/play`);
      // Joining again from the same browser is the same player.
      const again = await guest.post('/join', { code, nickname: 'Zed again' });
      expect(again.location).toBe(`/games/${gameId}/play`);
      const clash = await browser().post('/join', { code, nickname: 'Zed' });
      expect(clash.status).toBe(409);
      expect(problemsOf(clash.text)).toEqual([
        'Someone in this game is already called Zed. Pick another name.',
      ]);

      const play = await guest.get(`/games/${gameId}/play`);
      expect(play.status).toBe(200);
      expect(elementHtml(play.text, 'nickname')).toBe('Zed');
      const page = pageData(play.text);
      expect(page.role).toBe('player');
      expect(page.players.map((player) => player.nickname)).toEqual(['Zed']);
      // A signed-in player's nickname is filled in from the account.
      const member = await registered('nia');
      expect(fieldValue((await member.get(`/join?code=${code}`)).text, 'nickname')).toBe(
        member.username,
      );
    });

    it('sends each visitor of a game page where they belong, and 404s unknown games', async () => {
      const author = await registered('olga');
      const { gameId, code } = await hostGame(author);
      const guest = await joined(code, 'Pat');
      const stranger = await registered('quinn');

      const hostAsGuest = await guest.get(`/games/${gameId}`);
      expect(hostAsGuest.status).toBe(303);
      expect(hostAsGuest.location).toBe(`/games/${gameId}/play`);
      const hostAsStranger = await stranger.get(`/games/${gameId}`);
      expect(hostAsStranger.status).toBe(303);
      expect(hostAsStranger.location).toBe(`/join?code=${code}`);
      const playAsStranger = await stranger.get(`/games/${gameId}/play`);
      expect(playAsStranger.status).toBe(303);
      expect(playAsStranger.location).toBe(`/join?code=${code}`);
      expect((await browser().get(`/games/${gameId}`)).location).toBe(`/join?code=${code}`);

      for (const missing of ['999999', 'abc', '99999999999', '0', '1e3']) {
        for (const path of [`/games/${missing}`, `/games/${missing}/play`]) {
          const reply = await author.get(path);
          expect(reply.status, path).toBe(404);
          expect(reply.text, path).toContain('That game does not exist.');
        }
      }
    });

    // --- starting and answering --------------------------------------------------------------

    it('starts a game: 401 signed out, 403 for anyone but the author, errors as JSON', async () => {
      const author = await registered('rita');
      const { gameId, code } = await hostGame(author);
      const start = `/games/${gameId}/start`;

      const anonymous = await browser().ajax(start);
      expect(anonymous.status).toBe(401);
      expect(json(anonymous)).toEqual({ error: 'Log in first.' });
      const other = await registered('sam');
      const forbidden = await other.ajax(start);
      expect(forbidden.status).toBe(403);
      expect(json(forbidden)).toEqual({ error: 'Only the quiz author can do that.' });

      const empty = await author.ajax(start);
      expect(empty.status).toBe(409);
      expect(json(empty)).toEqual({ error: 'Nobody has joined yet: share the code first.' });
      expect((await statusOf(author, gameId)).state).toBe('lobby');

      const guest = await joined(code, 'Tess');
      const guestStart = await guest.ajax(start);
      expect(guestStart.status).toBe(401);
      expect(json(guestStart).error).toBe('Log in first.');
      expect((await other.ajax(start)).status).toBe(403);

      const started = await author.ajax(start);
      expect(started.status).toBe(200);
      expect(json(started)).toEqual({});
      const status = await statusOf(author, gameId);
      expect(status).toMatchObject({ state: 'question', index: 0, players: 1, answered: 0 });

      const twice = await author.ajax(start);
      expect(twice.status).toBe(409);
      expect(json(twice)).toEqual({ error: 'This game has already started.' });

      for (const missing of ['999999', 'abc', '99999999999']) {
        const reply = await author.ajax(`/games/${missing}/start`);
        expect(reply.status, missing).toBe(404);
        expect(json(reply).error, missing).toBe('There is no such game.');
      }
    });

    it('scores answers: fast right beats slow right, wrong scores 0; double and late answers are refused', async () => {
      const author = await registered('uma');
      const { gameId, code } = await hostGame(author, [
        {
          text: 'Which is right?',
          choices: ['Right', 'Wrong', 'Also wrong'],
          correct: 0,
          seconds: 5,
        },
      ]);
      const fast = await joined(code, 'Fast');
      const slow = await joined(code, 'Slow');
      const wrong = await joined(code, 'Wrong');
      const late = await joined(code, 'Late');
      const answer = `/games/${gameId}/answer`;

      const early = await fast.ajax(answer, { index: 0, choice: 0 });
      expect(early.status).toBe(409);
      expect(json(early)).toEqual({ error: 'Too late: this question is closed.' });

      expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({});
      const question = await statusOf(author, gameId);
      if (question.state !== 'question') throw new Error(`the game is in ${question.state}`);
      expect(question.question).toEqual({
        text: 'Which is right?',
        choices: ['Right', 'Wrong', 'Also wrong'],
        seconds: 5,
      });
      expect(question).not.toHaveProperty('correct');

      const first = json<{ correct: boolean; points: number }>(
        await fast.ajax(answer, { index: 0, choice: 0 }),
      );
      expect(first.correct).toBe(true);
      const double = await fast.ajax(answer, { index: 0, choice: 1 });
      expect(double.status).toBe(409);
      expect(json(double)).toEqual({ error: 'You have already answered this question.' });

      // A reloaded page shows the answer locked in.
      const reloaded = pageData((await fast.get(`/games/${gameId}/play`)).text);
      expect(reloaded).toMatchObject({ myAnswer: { index: 0, choice: 0 } });

      // Slow answers a good while after Fast (a wait, not a measurement).
      await sleep(1000);
      const second = json<{ correct: boolean; points: number }>(
        await slow.ajax(answer, { index: 0, choice: 0 }),
      );
      expect(second.correct).toBe(true);
      const third = json<{ correct: boolean; points: number }>(
        await wrong.ajax(answer, { index: 0, choice: 2 }),
      );
      expect(third).toEqual({ correct: false, points: 0 });
      expect(first.points).toBeGreaterThan(second.points);
      expect(second.points).toBeGreaterThanOrEqual(500);
      expect(first.points).toBeLessThanOrEqual(1000);

      // Bad answers are refused without using up the player's answer.
      const outOfRange = await late.ajax(answer, { index: 0, choice: 3 });
      expect(outOfRange.status).toBe(409);
      expect(json(outOfRange)).toEqual({ error: 'That is not one of the choices.' });
      const otherQuestion = await late.ajax(answer, { index: 1, choice: 0 });
      expect(otherQuestion.status).toBe(409);
      expect(json(otherQuestion)).toEqual({ error: 'Too late: this question is closed.' });
      for (const body of [{}, { index: 0 }, { choice: 0 }, { index: 'x', choice: 0 }]) {
        const reply = await late.ajax(answer, body);
        expect(reply.status).toBe(400);
        expect(json(reply)).toEqual({
          error: 'An answer needs the question index and the choice.',
        });
      }
      const outsider = await browser().ajax(answer, { index: 0, choice: 0 });
      expect(outsider.status).toBe(409);
      expect(json(outsider)).toEqual({ error: 'Join the game before answering.' });
      const missing = await late.ajax('/games/999999/answer', { index: 0, choice: 0 });
      expect(missing.status).toBe(404);
      expect(json(missing)).toEqual({ error: 'There is no such game.' });

      const counted = await statusOf(author, gameId);
      expect(counted).toMatchObject({ state: 'question', answered: 3, players: 4 });

      // Late waits past the deadline the server reported, then answers.
      await sleep(Math.max(0, question.deadline - Date.now()) + 100);
      const tooLate = await late.ajax(answer, { index: 0, choice: 0 });
      expect(tooLate.status).toBe(409);
      expect(json(tooLate)).toEqual({ error: 'Too late: this question is closed.' });

      const finished = await until('the game to finish', async () => {
        const status = await statusOf(author, gameId);
        return status.state === 'finished' ? status : undefined;
      });
      const scores = Object.fromEntries(
        finished.scoreboard.map((player) => [player.nickname, player.score]),
      );
      expect(scores).toEqual({ Fast: first.points, Slow: second.points, Wrong: 0, Late: 0 });
      expect(finished.scoreboard.slice(0, 2).map((player) => player.nickname)).toEqual([
        'Fast',
        'Slow',
      ]);
      expect(finished.podium.map((player) => player.nickname)).toEqual(
        finished.scoreboard.slice(0, 3).map((player) => player.nickname),
      );
      expect(elementHtml((await fast.get(`/games/${gameId}/play`)).text, 'score')).toBe(
        String(first.points),
      );

      // After the end: no answers, no restart, no joining.
      expect((await late.ajax(answer, { index: 0, choice: 0 })).status).toBe(409);
      expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({
        error: 'This game is over.',
      });
      const over = await browser().post('/join', { code, nickname: 'Latecomer' });
      expect(over.status).toBe(409);
      expect(problemsOf(over.text)).toEqual(['That game is over.']);
    });

    // --- escaping ----------------------------------------------------------------------------

    it('escapes nicknames and titles with HTML in every page and in what it publishes', async () => {
      const author = await registered('vera');
      const title = '<script>alert("t")</script> & co';
      const { gameId, code } = await hostGame(
        author,
        [{ text: '<b>Bold?</b>', choices: ['<i>yes</i>', '"no"'], correct: 0, seconds: 30 }],
        title,
      );
      const tag = '<img src=x onerror=f(1)>';
      const quotes = `"'&<b>x</b>`;
      const raw = [tag, quotes, '<script>alert', '<b>', '<i>yes'];
      const assertEscaped = (html: string, where: string) => {
        for (const text of raw) expect(html, `${where} shows ${text} raw`).not.toContain(text);
        expect(html, where).not.toContain(`"'&`);
      };

      // What the app publishes, as a subscriber of the game's topics receives it.
      const published: { destination: string; body: string }[] = [];
      const channel = await quiz.app.broker.open(
        { id: 'test', anonymous: false },
        (frame: Frame) => {
          if (frame.command === 'MESSAGE')
            published.push({
              destination: getHeader(frame, 'destination') ?? '',
              body: new TextDecoder().decode(frame.body),
            });
        },
      );
      for (const [id, destination] of [
        ['1', `/games/${gameId}/status`],
        ['2', `/games/${gameId}/players`],
      ] as const)
        channel.send({
          command: 'SUBSCRIBE',
          headers: [
            ['id', id],
            ['destination', destination],
          ],
          body: new Uint8Array(),
        });

      try {
        const hostile = await joined(code, tag);
        const quoting = await joined(code, quotes);

        const play = await hostile.get(`/games/${gameId}/play`);
        assertEscaped(play.text, 'the player page');
        expect(elementHtml(play.text, 'nickname')).toBe('&lt;img src=x onerror=f(1)&gt;');
        expect(pageData(play.text).players.map((player) => player.nickname)).toEqual([tag, quotes]);
        const quotingPlay = await quoting.get(`/games/${gameId}/play`);
        assertEscaped(quotingPlay.text, 'the second player page');
        expect(elementHtml(quotingPlay.text, 'nickname')).toBe(
          '&quot;&#39;&amp;&lt;b&gt;x&lt;/b&gt;',
        );

        const lobby = await author.get(`/games/${gameId}`);
        assertEscaped(lobby.text, 'the host lobby page');
        expect(lobby.text).toMatch(
          /<h1\b[^>]*>&lt;script&gt;alert\(&quot;t&quot;\)&lt;\/script&gt; &amp; co<\/h1>/,
        );
        const lobbyPage = pageData(lobby.text);
        expect(lobbyPage.players.map((player) => player.nickname)).toEqual([tag, quotes]);
        expect(lobbyPage.status.title).toBe(title);

        const clash = await browser().post('/join', { code, nickname: tag });
        expect(clash.status).toBe(409);
        assertEscaped(clash.text, 'the join form');
        expect(fieldValue(clash.text, 'nickname')).toBe('&lt;img src=x onerror=f(1)&gt;');
        const home = await author.get('/');
        assertEscaped(home.text, 'the home page');

        expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({});
        const question = await author.get(`/games/${gameId}`);
        assertEscaped(question.text, 'the host question page');
        expect(pageData(question.text).status).toMatchObject({
          question: { text: '<b>Bold?</b>', choices: ['<i>yes</i>', '"no"'] },
        });
        expect(
          (await hostile.ajax(`/games/${gameId}/answer`, { index: 0, choice: 0 })).status,
        ).toBe(200);
        expect(
          (await quoting.ajax(`/games/${gameId}/answer`, { index: 0, choice: 1 })).status,
        ).toBe(200);
        // Everyone answered: the reveal lists both nicknames.
        const reveal = await author.get(`/games/${gameId}`);
        assertEscaped(reveal.text, 'the host reveal page');
        assertEscaped((await hostile.get(`/games/${gameId}/play`)).text, 'the player reveal page');

        await until('the reveal to be published', () =>
          Promise.resolve(
            published.some((message) => message.body.includes('"state":"reveal"')) || undefined,
          ),
        );
        const players = published.filter((message) => message.destination.endsWith('/players'));
        expect(players.length).toBeGreaterThanOrEqual(2);
        for (const message of published) {
          // Valid JSON that gives back exactly what was typed, with no markup in the raw text.
          expect(() => JSON.parse(message.body) as unknown).not.toThrow();
          for (const text of raw) expect(message.body).not.toContain(text);
          expect(message.body).not.toMatch(/[<>]/);
        }
        const lastPlayers = JSON.parse(players.at(-1)!.body) as { players: PlayerSummary[] };
        expect(lastPlayers.players.map((player) => player.nickname)).toEqual([tag, quotes]);
        const revealed = JSON.parse(
          published.find((message) => message.body.includes('"state":"reveal"'))!.body,
        ) as Extract<GameStatus, { state: 'reveal' }>;
        expect(revealed.title).toBe(title);
        expect(revealed.results.map((result) => result.nickname).sort()).toEqual(
          [tag, quotes].sort(),
        );
      } finally {
        channel.close();
      }
    });

    // --- the client's script tags --------------------------------------------------------------

    it('gives every page the client’s script tags and settings, once, from the base template', async () => {
      const author = await registered('pia');
      const { gameId, code } = await hostGame(author);
      const guest = await joined(code, 'Tags');
      const pages: [Browser, string][] = [
        [browser(), '/'],
        [browser(), '/login'],
        [browser(), '/register'],
        [browser(), `/join?code=${code}`],
        [browser(), '/no/such/page'],
        [browser(), '/games/999999'],
        [author, '/'],
        [author, '/quizzes/new'],
        [author, `/games/${gameId}`],
        [guest, `/games/${gameId}/play`],
      ];
      for (const [visitor, path] of pages) {
        const html = (await visitor.get(path)).text;
        const head = html.slice(0, html.indexOf('</head>'));
        // In the <head>, where the talk's snippet went: loaded before any page script runs.
        expect(head.split('<script src="/perigee.js"></script>').length - 1, path).toBe(1);
        expect(head.split('id="perigee-settings"').length - 1, path).toBe(1);
        expect(html.split('/perigee.js"').length - 1, path).toBe(1);
      }
    });

    // --- who may publish ---------------------------------------------------------------------

    it('refuses a browser’s SEND to a game’s topics: only the app publishes there', async () => {
      const author = await registered('quentin');
      const { gameId, code } = await hostGame(author);
      await joined(code, 'Reader');
      const destinations = [`/games/${gameId}/status`, `/games/${gameId}/players`];
      const follower = await follow(quiz.app.broker, destinations);
      try {
        for (const destination of destinations) {
          // A browser's connection through the gateway, as game.js makes it (over WebSocket).
          const client = nodeClient(quiz.url, { transports: ['websocket'] });
          try {
            await client.ready;
            const forged = JSON.stringify({ state: 'finished', podium: [], forged: true });
            const refused = await client.publish(destination, forged).then(
              () => undefined,
              (error: Error) => error,
            );
            expect(refused?.message, destination).toMatch(
              new RegExp(`SEND to ${destination} refused by \\[\\[destinations\\]\\] rule \\d`),
            );
          } finally {
            await client.disconnect().catch(() => undefined);
          }
        }
        // The app still publishes: a join goes out on both topics, after anything forged would.
        const before = follower.messages.length;
        await joined(code, 'Writer');
        await follower.next('the join', (m) => m.destination.endsWith('/players'), before);
        await follower.next('the lobby status', (m) => m.body.state === 'lobby', before);
        expect(follower.messages.filter((m) => 'forged' in m.body)).toEqual([]);
      } finally {
        follower.close();
      }
    });

    it.runIf(database === 'postgres')(
      'keeps serving when PostgreSQL drops its idle connections',
      async () => {
        // An app of its own: no game clock of another test may be holding a connection.
        const site = await startQuiz({ database });
        const lost = vi.spyOn(console, 'error').mockImplementation(() => undefined);
        const admin = new pg.Client({ connectionString: site.databaseUrl });
        try {
          const author = Object.assign(new Browser(site.url), { username: name('otto') });
          const registration = await author.post('/register', {
            username: author.username,
            password: 'correct horse',
            confirm: 'correct horse',
          });
          expect(registration.status).toBe(303);
          // Requests leave the pool with idle connections open.
          await Promise.all([author.get('/'), author.get('/'), author.get('/quizzes/new')]);
          await admin.connect();
          // What a server restart or an administrator does to every session but this one.
          const { rows } = await admin.query<{ pid: number }>(
            `select pid from pg_stat_activity
             where datname = current_database() and pid <> pg_backend_pid()
               and backend_type = 'client backend'`,
          );
          expect(rows.length).toBeGreaterThan(0);
          await admin.query('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [
            rows.map((row) => row.pid),
          ]);
          // Each connection hears of it on its own; a request given one that has not yet would
          // fail, as it would against a server that has just gone away.
          await until('the pool to hear of each', () =>
            Promise.resolve(lost.mock.calls.length === rows.length || undefined),
          );
          expect(String(lost.mock.calls[0]![0])).toMatch(
            /^quiz: an idle PostgreSQL connection was lost \(.*\); the next query opens a new one$/,
          );
          // The process is still up, and the next requests get new connections.
          const home = await author.get('/');
          expect(home.status).toBe(200);
          expect(home.text).toContain(author.username);
        } finally {
          lost.mockRestore();
          await admin.end();
          await site.close();
        }
      },
    );

    it.runIf(database === 'postgres')(
      'survives PostgreSQL dropping a connection in the middle of a transaction',
      async () => {
        const admin = new pg.Client({ connectionString: quiz.databaseUrl });
        await admin.connect();
        try {
          const failure = await quiz.app.database.db
            .transaction()
            .execute(async (trx) => {
              const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(
                trx,
              );
              // Checked out and between two queries: the pool no longer listens to it. The
              // timeout makes the call wait until the backend is gone (PostgreSQL 14+).
              await admin.query('select pg_terminate_backend($1, 5000)', [rows[0]!.pid]);
              await sql`select 1`.execute(trx);
            })
            .then(
              () => undefined,
              (error: Error) => error,
            );
          expect(failure).toBeInstanceOf(Error);
          // The app goes on, on a new connection.
          expect((await browser().get('/login')).status).toBe(200);
          expect((await registered('after')).username).toMatch(/^after_/);
        } finally {
          await admin.end();
        }
      },
    );

    // --- races and throttling ----------------------------------------------------------------

    it.runIf(database === 'postgres')(
      'starts a game once when the start comes several times at once',
      async () => {
        const author = await registered('rosa');
        const { gameId, code } = await hostGame(author);
        await joined(code, 'Once');
        const token = await author.token();
        const follower = await follow(quiz.app.broker, [`/games/${gameId}/status`]);
        // A second connection holds the players table, so that a start that got past its checks
        // waits in the database (where a busy server would spend the time) while the others come.
        const blocker = new pg.Client({ connectionString: quiz.databaseUrl });
        await blocker.connect();
        try {
          await blocker.query('begin');
          await blocker.query('lock table players in access exclusive mode');
          const settled: Reply[] = [];
          const replies = Array.from({ length: 4 }, () =>
            author.ajax(`/games/${gameId}/start`, {}, token).then((reply) => {
              settled.push(reply);
              return reply;
            }),
          );
          // Every start has either been answered or is waiting on a lock: the players table, or
          // a row that another start, itself waiting for the table, has locked first.
          await until('every start answered or waiting', async () => {
            const { rows } = await blocker.query<{ waiting: number }>(
              `select count(*)::int as waiting from pg_stat_activity
               where datname = current_database() and wait_event_type = 'Lock'`,
            );
            return settled.length + rows[0]!.waiting === replies.length ? true : undefined;
          });
          await blocker.query('commit');
          const bodies = (await Promise.all(replies)).map((reply) => ({
            status: reply.status,
            body: json(reply),
          }));
          expect(bodies.filter((reply) => reply.status === 200)).toEqual([
            { status: 200, body: {} },
          ]);
          expect(bodies.filter((reply) => reply.status !== 200)).toEqual(
            Array.from({ length: 3 }, () => ({
              status: 409,
              body: { error: 'This game has already started.' },
            })),
          );
          // The question the page shows is the one that began, not a restart of it.
          const first = await follower.next('the question', (m) => m.body.state === 'question');
          const status = await statusOf(author, gameId);
          if (status.state !== 'question') throw new Error(`the game is in ${status.state}`);
          expect(status.startedAt).toBe(first.body.startedAt);
        } finally {
          await blocker.query('rollback').catch(() => undefined);
          await blocker.end();
          follower.close();
        }
      },
    );

    it('republishes the answer count when someone joins during a question', async () => {
      const author = await registered('sol');
      const { gameId, code } = await hostGame(author, twoChoices(5));
      await joined(code, 'Early');
      const follower = await follow(quiz.app.broker, [`/games/${gameId}/status`]);
      try {
        expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({});
        await follower.next('the question', (m) => m.body.state === 'question');
        const before = follower.messages.length;
        const late = await joined(code, 'Late');
        // The next status says so, while the question is still on (not only with its reveal).
        const next = await follower.next('a status after the join', () => true, before);
        expect(next.body).toMatchObject({ state: 'question', index: 0, players: 2, answered: 0 });
        // And the newcomer may answer.
        const answered = await late.ajax(`/games/${gameId}/answer`, { index: 0, choice: 0 });
        expect(answered.status).toBe(200);
      } finally {
        follower.close();
      }
    });

    it('sends the answer count at most every interval: a burst of answers, a few messages, the last one final', async () => {
      const author = await registered('tom');
      const { gameId, code } = await hostGame(author, twoChoices(60));
      const count = 30;
      const quick = await Promise.all(
        Array.from({ length: count }, (_, n) => joined(code, `Quick ${n + 1}`)),
      );
      // Someone who never answers keeps the question open after the burst.
      await joined(code, 'Idle');
      const tokens = await Promise.all(quick.map((player) => player.token()));
      const follower = await follow(quiz.app.broker, [`/games/${gameId}/status`]);
      try {
        expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({});
        await follower.next('the question', (m) => m.body.state === 'question');
        const from = follower.messages.length;
        const replies = await Promise.all(
          quick.map((player, n) =>
            player.ajax(`/games/${gameId}/answer`, { index: 0, choice: n % 2 }, tokens[n]),
          ),
        );
        expect(replies.map((reply) => reply.status)).toEqual(replies.map(() => 200));
        const final = await follower.next(
          'the final count',
          (m) => m.body.state === 'question' && m.body.answered === count,
          from,
        );
        const counts = follower.messages.slice(from);
        expect(counts.every((m) => m.body.state === 'question')).toBe(true);
        expect(counts.at(-1)).toBe(final);
        const answered = counts.map((m) => m.body.answered as number);
        expect(answered).toEqual([...answered].sort((a, b) => a - b));
        // Far fewer messages than answers: one at once, then at most one per interval.
        expect(counts.length).toBeLessThanOrEqual(count / 3);
        const span = final.body.publishedAt! - counts[0]!.body.publishedAt!;
        expect(counts.length).toBeLessThanOrEqual(2 + span / ANSWER_COUNT_INTERVAL_MS);
      } finally {
        follower.close();
      }
    });

    it.runIf(database === 'postgres')(
      'counts every answer accepted before the deadline, even one whose write is still on its way',
      async () => {
        const author = await registered('una');
        const { gameId, code } = await hostGame(author, twoChoices(5));
        const names = ['Ada', 'Bea', 'Cal', 'Dot'];
        const players = await Promise.all(names.map((nickname) => joined(code, nickname)));
        await joined(code, 'Idle'); // the clock, not the last answer, closes the question
        const tokens = await Promise.all(players.map((player) => player.token()));
        const follower = await follow(quiz.app.broker, [`/games/${gameId}/status`]);
        // A second connection holds writes to the answers table (reads go on), as a busy database
        // would: the answers are accepted, their inserts wait, and the deadline passes meanwhile.
        const blocker = new pg.Client({ connectionString: quiz.databaseUrl });
        await blocker.connect();
        try {
          expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({});
          await blocker.query('begin');
          await blocker.query('lock table answers in exclusive mode');
          const replies = players.map((player, n) =>
            player.ajax(`/games/${gameId}/answer`, { index: 0, choice: n % 2 }, tokens[n]),
          );
          await until('the answers accepted', async () => {
            const status = await statusOf(author, gameId);
            return status.state === 'question' && status.answered === names.length
              ? status
              : undefined;
          });
          await until('the clock to close the question', async () =>
            (await statusOf(author, gameId)).state === 'question' ? undefined : true,
          );
          await blocker.query('commit');
          const results = await Promise.all(
            replies.map(async (reply) => {
              const answered = await reply;
              expect(answered.status).toBe(200);
              return json<{ correct: boolean; points: number }>(answered);
            }),
          );
          const reveal = await follower.next('the reveal', (m) => m.body.state === 'reveal');
          const shown = reveal.body as unknown as Extract<GameStatus, { state: 'reveal' }>;
          for (const [n, nickname] of names.entries()) {
            const row = shown.results.find((result) => result.nickname === nickname);
            expect(row, nickname).toMatchObject({
              choice: n % 2,
              correct: n % 2 === 0,
              points: results[n]!.points,
              score: results[n]!.points,
            });
            expect(shown.scoreboard.find((player) => player.nickname === nickname)?.score).toBe(
              results[n]!.points,
            );
          }
          const finished = await follower.next('the end', (m) => m.body.state === 'finished');
          const scores = Object.fromEntries(
            (finished.body.scoreboard as PlayerSummary[]).map((p) => [p.nickname, p.score]),
          );
          expect(scores).toEqual({
            ...Object.fromEntries(names.map((nickname, n) => [nickname, results[n]!.points])),
            Idle: 0,
          });
        } finally {
          await blocker.query('rollback').catch(() => undefined);
          await blocker.end();
          follower.close();
        }
      },
    );

    // --- the end of a game, and editing its quiz ------------------------------------------------

    it('lets go of a game once it is over, and still shows it from the database', async () => {
      const author = await registered('vic');
      const { gameId, code } = await hostGame(author, twoChoices(5));
      const player = await joined(code, 'Win');
      const follower = await follow(quiz.app.broker, [`/games/${gameId}/status`]);
      try {
        expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({});
        expect(quiz.app.games.inMemory(gameId)).toBe(true);
        expect((await player.ajax(`/games/${gameId}/answer`, { index: 0, choice: 0 })).status).toBe(
          200,
        );
        await follower.next('the end', (m) => m.body.state === 'finished');
        expect(quiz.app.games.inMemory(gameId)).toBe(false);

        // Its pages and its errors still come from the database, without holding it again.
        const podium = await statusOf(author, gameId);
        expect(podium).toMatchObject({ state: 'finished', podium: [{ nickname: 'Win' }] });
        expect(elementHtml((await player.get(`/games/${gameId}/play`)).text, 'score')).toMatch(
          /^\d+$/,
        );
        expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({
          error: 'This game is over.',
        });
        expect(json(await player.ajax(`/games/${gameId}/answer`, { index: 0, choice: 0 }))).toEqual(
          { error: 'Too late: this question is closed.' },
        );
        expect(quiz.app.games.inMemory(gameId)).toBe(false);
      } finally {
        follower.close();
      }
    });

    it('refuses to edit a quiz while a game of it is open or being played', async () => {
      const author = await registered('wes');
      const questions: QuestionFields[] = [
        { text: 'First question', choices: ['Yes', 'No'], correct: 0, seconds: 5 },
        { text: 'Second question', choices: ['Yes', 'No'], correct: 1, seconds: 5 },
      ];
      const title = name('Frozen');
      const { gameId, code, quizId } = await hostGame(author, questions, title);
      const edit = quizForm(`${title} v2`, [
        { text: 'A new question', choices: ['A', 'B'], correct: 1, seconds: 30 },
      ]);
      const refusal = `A game of this quiz is open or being played (code ${code}): end that game first, from its host page.`;
      const refused = async (when: string): Promise<void> => {
        const reply = await author.post(`/quizzes/${quizId}`, edit);
        expect(reply.status, when).toBe(409);
        expect(problemsOf(reply.text), when).toEqual([refusal]);
        // What the author typed stays in the form, to save once the game is over.
        expect(fieldValue(reply.text, 'q0.text'), when).toBe('A new question');
      };

      await refused('in the lobby');
      const player = await joined(code, 'Xia');
      expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({});
      await refused('during the first question');
      const first = await statusOf(author, gameId);
      expect(first).toMatchObject({ state: 'question', question: { text: 'First question' } });
      const answer = `/games/${gameId}/answer`;
      expect((await player.ajax(answer, { index: 0, choice: 0 })).status).toBe(200);
      await refused('after the last answer (the reveal, or the next question)');
      const second = await until('the second question', async () => {
        const status = await statusOf(author, gameId);
        return status.state === 'question' && status.index === 1 ? status : undefined;
      });
      // The game plays the questions it started with.
      expect(second).toMatchObject({ total: 2, question: { text: 'Second question' } });
      expect((await player.ajax(answer, { index: 1, choice: 1 })).status).toBe(200);
      await until('the end of the game', async () =>
        (await statusOf(author, gameId)).state === 'finished' ? true : undefined,
      );

      const saved = await author.post(`/quizzes/${quizId}`, edit);
      expect(saved.status, problemsOf(saved.text).join(' ')).toBe(303);
      expect(fieldValue((await author.get(`/quizzes/${quizId}/edit`)).text, 'q0.text')).toBe(
        'A new question',
      );
    });

    it('exposes /metrics to this machine: the games running, and the gateway’s and broker’s figures', async () => {
      const author = await registered('mia');
      const { gameId } = await hostGame(author);
      await statusOf(author, gameId); // a page view holds the lobby in memory
      const reply = await author.get('/metrics');
      expect(reply.status).toBe(200);
      expect(reply.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const running = /^quiz_games_running (\d+)$/m.exec(reply.text);
      expect(Number(running?.[1])).toBeGreaterThanOrEqual(1);
      expect(reply.text).toMatch(/^# TYPE quiz_games_running gauge$/m);
      expect(reply.text).toMatch(/^perigee_broker_messages_published_total \d+$/m);
      expect(reply.text).toMatch(/^perigee_gateway_sessions\{state="attached"\} \d+$/m);
      const relayed = await author.get('/metrics', { 'x-forwarded-for': '203.0.113.9' });
      expect(relayed.status).toBe(403);
    });

    // --- ending a game, deleting a quiz --------------------------------------------------------

    it('ends a game from its lobby: nobody joins any more, and its quiz may be edited again', async () => {
      const author = await registered('abe');
      const title = name('Abandoned');
      const { gameId, code, quizId } = await hostGame(author, twoChoices(), title);
      await joined(code, 'Early');
      const follower = await follow(quiz.app.broker, [`/games/${gameId}/status`]);
      try {
        const stranger = await registered('bob');
        expect(json(await stranger.ajax(`/games/${gameId}/end`))).toEqual({
          error: 'Only the quiz author can do that.',
        });
        const anonymous = await browser().ajax(`/games/${gameId}/end`);
        expect(anonymous.status).toBe(401);
        expect((await statusOf(author, gameId)).state).toBe('lobby');

        const ended = await author.ajax(`/games/${gameId}/end`);
        expect(ended.status).toBe(200);
        expect(json(ended)).toEqual({});
        // Every page hears of it at once, and a reload shows it too.
        const end = await follower.next('the end', (m) => m.body.state === 'finished');
        expect(end.body).toMatchObject({ endedEarly: true, asked: 0, total: 1 });
        expect(await statusOf(author, gameId)).toMatchObject({
          state: 'finished',
          endedEarly: true,
          asked: 0,
        });
        expect(quiz.app.games.inMemory(gameId)).toBe(false);

        const late = await browser().post('/join', { code, nickname: 'Late' });
        expect(late.status).toBe(409);
        expect(problemsOf(late.text)).toEqual(['That game is over.']);
        const again = await author.ajax(`/games/${gameId}/end`);
        expect(again.status).toBe(409);
        expect(json(again)).toEqual({ error: 'This game is already over.' });
        const saved = await author.post(
          `/quizzes/${quizId}`,
          quizForm(`${title} v2`, twoChoices()),
        );
        expect(saved.status, problemsOf(saved.text).join(' ')).toBe(303);
      } finally {
        follower.close();
      }
    });

    it('ends a game mid-question: the answers given count, the scores stand, the clock stops', async () => {
      const author = await registered('cy');
      const questions: QuestionFields[] = [
        { text: 'One', choices: ['Right', 'Wrong'], correct: 0, seconds: 5 },
        { text: 'Two', choices: ['Right', 'Wrong'], correct: 0, seconds: 5 },
      ];
      const { gameId, code } = await hostGame(author, questions);
      const quick = await joined(code, 'Quick');
      const slow = await joined(code, 'Slow');
      const follower = await follow(quiz.app.broker, [`/games/${gameId}/status`]);
      try {
        expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({});
        await follower.next('the question', (m) => m.body.state === 'question');
        const answered = json<{ correct: boolean; points: number }>(
          await quick.ajax(`/games/${gameId}/answer`, { index: 0, choice: 0 }),
        );
        expect(answered.correct).toBe(true);

        expect(json(await author.ajax(`/games/${gameId}/end`))).toEqual({});
        const end = await follower.next('the end', (m) => m.body.state === 'finished');
        expect(end.body).toMatchObject({ endedEarly: true, asked: 1, total: 2 });
        expect(end.body.scoreboard).toEqual([
          expect.objectContaining({ nickname: 'Quick', score: answered.points }),
          expect.objectContaining({ nickname: 'Slow', score: 0 }),
        ]);
        expect(json(await slow.ajax(`/games/${gameId}/answer`, { index: 0, choice: 0 }))).toEqual({
          error: 'Too late: this question is closed.',
        });
        // Nothing moves it on once the question's 5 s have passed: no reveal, no question 2, and
        // the same finished game after a reload.
        const question = end.body as { publishedAt: number };
        await sleep(Math.max(0, question.publishedAt + 5500 - Date.now()));
        expect(
          follower.messages.filter((m) => m.body.state !== 'finished').at(-1)?.body.state,
        ).toBe('question');
        expect(follower.messages.filter((m) => m.body.state === 'reveal')).toEqual([]);
        expect(await statusOf(author, gameId)).toMatchObject({ state: 'finished', asked: 1 });
      } finally {
        follower.close();
      }
    });

    it('deletes a quiz with its finished games, after asking, and never one a game still uses', async () => {
      const author = await registered('di');
      const title = name('Doomed');
      const { gameId, quizId } = await hostGame(author, twoChoices(), title);
      const confirmPath = `/quizzes/${quizId}/delete`;
      const locked =
        'A game of this quiz is open or being played (code ' +
        pageData((await author.get(`/games/${gameId}`)).text).code +
        '): end that game first, from its host page.';
      // While its game is open: the page says why, and the delete is refused.
      const asked = await author.get(confirmPath);
      expect(asked.status).toBe(409);
      expect(problemsOf(asked.text)).toEqual([locked]);
      expect(asked.text).not.toContain('>Delete the quiz</button>');
      const refused = await author.post(confirmPath);
      expect(refused.status).toBe(409);
      expect(problemsOf(refused.text)).toEqual([locked]);
      expect((await author.get(`/quizzes/${quizId}/edit`)).status).toBe(200);

      expect(json(await author.ajax(`/games/${gameId}/end`))).toEqual({});
      const edit = await author.get(`/quizzes/${quizId}/edit`);
      expect(edit.text).toContain(`href="${confirmPath}"`);
      const confirm = await author.get(confirmPath);
      expect(confirm.status).toBe(200);
      expect(confirm.text).toContain('its 1 question, and the 1 game played with it');
      expect(confirm.text).toContain('>Delete the quiz</button>');
      const stranger = await registered('ed');
      for (const reply of [await stranger.get(confirmPath), await stranger.post(confirmPath)]) {
        expect(reply.status).toBe(403);
        expect(reply.text).toContain('Only its author can delete a quiz.');
      }

      const deleted = await author.post(confirmPath);
      expect(deleted.status).toBe(303);
      expect(deleted.location).toBe('/');
      const home = (await author.get('/')).text;
      expect(quizIds(home)).not.toContain(quizId);
      expect(home).not.toContain(title);
      expect((await author.get(`/quizzes/${quizId}/edit`)).status).toBe(404);
      expect((await author.get(`/games/${gameId}`)).status).toBe(404);
      expect((await author.post(confirmPath)).status).toBe(404);
    });

    it.runIf(database === 'postgres')(
      'never deletes a quiz together with a game being hosted at that moment',
      async () => {
        const author = await registered('fay');
        const quizId = await createQuiz(author, name('Contested'), twoChoices());
        // A second connection is hosting a game of it: its insert is not committed yet.
        const host = new pg.Client({ connectionString: quiz.databaseUrl });
        await host.connect();
        try {
          await host.query('begin');
          await host.query(
            `insert into games (quiz_id, author_id, code, state, current_index,
               phase_started_at, phase_ends_at, created_at)
             select id, author_id, 'RACE42', 'lobby', -1, 0, 0, 0 from quizzes where id = $1`,
            [quizId],
          );
          const settled: Reply[] = [];
          const deleting = author.post(`/quizzes/${quizId}/delete`).then((reply) => {
            settled.push(reply);
            return reply;
          });
          await until('the delete to wait for the hosting', async () => {
            const { rows } = await host.query<{ waiting: number }>(
              `select count(*)::int as waiting from pg_stat_activity
               where datname = current_database() and wait_event_type = 'Lock'`,
            );
            return settled.length > 0 || rows[0]!.waiting > 0 ? true : undefined;
          });
          await host.query('commit');
          const refused = await deleting;
          expect(refused.status).toBe(409);
          expect(problemsOf(refused.text)).toEqual([
            'A game of this quiz is open or being played (code RACE42): end that game first, from its host page.',
          ]);
          const { rows } = await host.query('select id from games where code = $1', ['RACE42']);
          expect(rows).toHaveLength(1);
          expect((await author.get(`/quizzes/${quizId}/edit`)).status).toBe(200);
        } finally {
          await host.query('rollback').catch(() => undefined);
          await host.end();
        }
      },
    );

    // --- a restart ---------------------------------------------------------------------------

    it.runIf(database === 'sqlite')(
      'resumes a game interrupted mid-question: its clock runs on after a restart',
      async () => {
        const file = join(mkdtempSync(join(tmpdir(), 'perigee-quiz-restart-')), 'quiz.db');
        let site = await startQuiz({ database, sqliteFile: file, revealMs: 500 });
        let author = Object.assign(new Browser(site.url), { username: name('yan') });
        let gameId: number;
        let asker: Browser;
        try {
          const registration = await author.post('/register', {
            username: author.username,
            password: 'correct horse',
            confirm: 'correct horse',
          });
          expect(registration.status).toBe(303);
          let code: string;
          ({ gameId, code } = await hostGame(author, twoChoices(5)));
          for (const nickname of ['Asker', 'Silent']) {
            const guest = new Browser(site.url);
            expect((await guest.post('/join', { code, nickname })).status).toBe(303);
            if (nickname === 'Asker') asker = guest;
          }
          expect(json(await author.ajax(`/games/${gameId}/start`))).toEqual({});
          expect(
            (await asker!.ajax(`/games/${gameId}/answer`, { index: 0, choice: 0 })).status,
          ).toBe(200);
        } finally {
          await site.close();
        }

        // The same data, a new process's worth of app: nothing in memory but what resumeAll loads.
        site = await startQuiz({ database, sqliteFile: file, revealMs: 500 });
        const follower = await follow(site.app.broker, [`/games/${gameId}/status`]);
        try {
          author = Object.assign(author.at(site.url), { username: author.username });
          asker = asker!.at(site.url);
          const resumed = await statusOf(author, gameId);
          expect(resumed).toMatchObject({ state: 'question', index: 0, answered: 1, players: 2 });
          const again = await asker.ajax(`/games/${gameId}/answer`, { index: 0, choice: 1 });
          expect(json(again)).toEqual({ error: 'You have already answered this question.' });
          // Silent never answers: only the server's clock can close the question.
          const reveal = await follower.next('the reveal', (m) => m.body.state === 'reveal');
          const results = (reveal.body as unknown as Extract<GameStatus, { state: 'reveal' }>)
            .results;
          expect(results.map((r) => [r.nickname, r.correct])).toEqual([
            ['Asker', true],
            ['Silent', false],
          ]);
          const finished = await follower.next('the end', (m) => m.body.state === 'finished');
          const podium = finished.body.podium as PlayerSummary[];
          expect(podium.map((p) => p.nickname)).toEqual(['Asker', 'Silent']);
          expect(podium[0]!.score).toBeGreaterThanOrEqual(500);
        } finally {
          follower.close();
          await site.close();
        }
      },
    );
  });
});
