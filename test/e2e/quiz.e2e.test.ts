import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  chromiumAvailable,
  PACKAGE_ROOT,
  screenshot,
  useChromium,
  visit,
} from '../support/browser.js';
import { postgresAvailable, startQuiz, type RunningQuiz } from '../support/quiz.js';

/**
 * The quiz (examples/quiz) end to end in Chromium, as people use it: an author signs up, writes a
 * quiz through the editor's forms and hosts it; guests join from their own browsers with the
 * join link and a nickname; everyone's page follows the game the server runs. Each step checks
 * what every page shows, from the page's DOM. Also: a player who reloads mid-question, axe-core
 * on every page, and the whole game again on PostgreSQL.
 *
 * No assertion is about how long something took: the tests wait for page states, and the only
 * clock compared is the countdown a page displays against the deadline the server set.
 */

const AXE_SOURCE = readFileSync(
  join(PACKAGE_ROOT, 'node_modules', 'axe-core', 'axe.min.js'),
  'utf8',
);
/** Generous: a question lasts QUESTION_SECONDS, and CI machines are slow and shared. */
const WAIT_MS = 20_000;
const QUESTION_SECONDS = 8;
/**
 * Long enough that four pages can be screenshotted during a reveal on a busy 2-core machine
 * (assertions do not need it: they read each page's state in one go, see `waitForGame`).
 */
const REVEAL_MS = 3000;

interface QuestionSpec {
  text: string;
  choices: string[];
  correct: number;
}

const QUIZ_TITLE = 'Perigee & friends';
const QUESTIONS: QuestionSpec[] = [
  { text: 'What is 2 + 2?', choices: ['3', '4', '5', '22'], correct: 1 },
  {
    text: 'Which transport does a browser try first?',
    choices: ['JSONP polling', 'WebSocket', 'htmlfile'],
    correct: 1,
  },
  { text: 'STOMP frames end with which byte?', choices: ['NUL', 'LF'], correct: 0 },
];

/** What a game page shows, read from its DOM in one go (see SNAPSHOT_SCRIPT). */
interface GameView {
  state: string | null;
  connection: string | null;
  transport: string | null;
  progress: string | null;
  question: string | null;
  choices: {
    label: string | null;
    button: boolean;
    disabled: boolean;
    picked: boolean;
    right: boolean;
    count: string | null;
  }[];
  seconds: string | null;
  answered: string | null;
  notice: string | null;
  verdict: string | null;
  error: string | null;
  players: string[];
  results: { name: string | null; outcome: string | null; points: string | null }[];
  scoreboard: { name: string | null; points: string | null; me: boolean }[];
  podium: { place: string | null; name: string | null; points: string | null }[];
  nickname: string | null;
  score: string | null;
  /** What the page's live region last said to screen readers. */
  announced: string | null;
  cspViolations: string[];
}

/**
 * Injected into every page before its own scripts: `e2eView()` reads what the game shows, and
 * CSP violations are recorded (the app's pages must work under their own policy).
 */
const SNAPSHOT_SCRIPT = `(() => {
  const cspViolations = [];
  document.addEventListener('securitypolicyviolation', (event) => {
    cspViolations.push(event.violatedDirective + ' ' + (event.blockedURI || 'inline'));
  });
  // The text a person reads: decorations marked aria-hidden (icons, shapes) left out.
  const text = (node) => {
    if (!node) return null;
    const copy = node.cloneNode(true);
    for (const hidden of copy.querySelectorAll('[aria-hidden="true"]')) hidden.remove();
    return copy.textContent.replace(/\\s+/g, ' ').trim();
  };
  window.e2eView = () => {
    const game = document.getElementById('game');
    const all = (selector) => (game ? Array.from(game.querySelectorAll(selector)) : []);
    const one = (selector) => (game ? game.querySelector(selector) : null);
    const connection = document.getElementById('connection');
    return {
      state: game ? game.dataset.state || null : null,
      connection: connection ? connection.dataset.state : null,
      transport: window.quizClient ? window.quizClient.transport || null : null,
      progress: text(one('.progress')),
      question: text(one('.question-text')),
      choices: all('.choice').map((choice) => ({
        label: text(choice.querySelector('.label')),
        button: choice.tagName === 'BUTTON',
        disabled: choice.disabled === true,
        picked: choice.classList.contains('picked'),
        right: choice.classList.contains('right'),
        count: text(choice.querySelector('.count')),
      })),
      seconds: text(one('#seconds')),
      answered: text(one('#answered')),
      notice: text(one('.notice')),
      verdict: text(one('.verdict')),
      error: text(one('.error')),
      players: all('.chips li').map((li) => text(li.querySelector('.chip-name') || li)),
      results: all('.results li').map((li) => ({
        name: text(li.querySelector('.name')),
        outcome: text(li.querySelector('.outcome')),
        points: text(li.querySelector('.points')),
      })),
      scoreboard: all('.scoreboard li').map((li) => ({
        name: text(li.querySelector('.name')),
        points: text(li.querySelector('.points')),
        me: li.classList.contains('me'),
      })),
      podium: all('.podium li').map((li) => ({
        place: text(li.querySelector('.place')),
        name: text(li.querySelector('.name')),
        points: text(li.querySelector('.points')),
      })),
      nickname: text(document.getElementById('nickname')),
      announced: text(document.getElementById('announce')),
      score: text(document.getElementById('score')),
      cspViolations,
    };
  };
})();`;

/** Keeps what each page printed and threw, to explain a failure. */
const pageLogs = new WeakMap<Page, string[]>();

function logOf(page: Page): string {
  return (pageLogs.get(page) ?? []).slice(-30).join('\n') || '(the page logged nothing)';
}

interface Contexts {
  /** A new browser context (its own cookies: another person) with one page in it. */
  open(options?: {
    width?: number;
    height?: number;
    mobile?: boolean;
    withoutWebSocket?: boolean;
  }): Promise<Page>;
}

function useContexts(browser: () => Browser): Contexts {
  const contexts: BrowserContext[] = [];
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close().catch(() => {})));
  });
  return {
    async open(options = {}) {
      const context = await browser().newContext({
        viewport: { width: options.width ?? 1100, height: options.height ?? 800 },
        isMobile: options.mobile ?? false,
        hasTouch: options.mobile ?? false,
      });
      contexts.push(context);
      await context.addInitScript({ content: SNAPSHOT_SCRIPT });
      // A browser without WebSocket (an old proxy, a locked-down network): Perigee must fall back.
      if (options.withoutWebSocket)
        await context.addInitScript({ content: 'delete window.WebSocket;' });
      const page = await context.newPage();
      const log: string[] = [];
      pageLogs.set(page, log);
      page.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`));
      page.on('pageerror', (error) => log.push(`page error: ${error.message}`));
      page.on('requestfailed', (request) =>
        log.push(`request failed: ${request.url()} ${request.failure()?.errorText}`),
      );
      return page;
    },
  };
}

async function view(page: Page): Promise<GameView> {
  return page.evaluate<GameView>('window.e2eView()');
}

/**
 * Waits until the game page shows what `condition` accepts, and returns that view: read in one
 * go inside the page, so a view is never half one state and half the next.
 */
async function waitForGame(
  page: Page,
  what: string,
  condition: (view: GameView) => boolean,
  timeoutMs = WAIT_MS,
): Promise<GameView> {
  const deadline = Date.now() + timeoutMs;
  let last: GameView | undefined;
  for (;;) {
    last = await view(page).catch(() => last);
    if (last && condition(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(
        `${page.url()} never showed ${what}.\nIt shows: ${JSON.stringify(last, null, 1)}\nPage log:\n${logOf(page)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const inQuestion = (index: number) => (v: GameView) =>
  v.state === 'question' && (v.progress ?? '').startsWith(`Question ${index + 1} of `);
const inReveal = (index: number) => (v: GameView) =>
  v.state === 'reveal' && (v.progress ?? '').startsWith(`Question ${index + 1} of `);
const finished = (v: GameView) => v.state === 'finished';

/** axe-core's serious and critical violations on the page as it is now, one line each. */
async function seriousViolations(page: Page): Promise<string[]> {
  // Not page.addScriptTag: that inserts an inline script, which the app's Content-Security-Policy
  // rightly blocks (script-src 'self'), and turning the policy off (bypassCSP) would hide the
  // pages' own CSP mistakes. Evaluated through the DevTools protocol, axe runs under the policy.
  const hasAxe = await page.evaluate<boolean>('typeof window.axe !== "undefined"');
  if (!hasAxe) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate<
    {
      id: string;
      impact: string;
      help: string;
      nodes: { target: string[]; failureSummary: string }[];
    }[]
  >(
    `window.axe.run(document, { resultTypes: ['violations'] }).then((result) => result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) })))`,
  );
  return violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map(
      (violation) =>
        `${violation.impact} ${violation.id}: ${violation.help}\n${violation.nodes
          .map((node) => `    ${node.target.join(' ')}: ${node.failureSummary.replace(/\n/g, ' ')}`)
          .join('\n')}`,
    );
}

/**
 * Controls smaller than a thumb (44 × 44 CSS px): buttons, button-like links, the header's links,
 * text fields, and the editor's right-answer pickers (whose label is the target). Links inside
 * sentences are exempt, as in WCAG 2.5.8.
 */
async function smallTargets(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(`Array.from(document.querySelectorAll(
    'button, a.button, .bar a, label.pick, input:not([type=hidden]):not([type=radio]):not([type=checkbox]), select, textarea'
  ))
    .filter((el) => !el.classList.contains('skip') && el.getClientRects().length > 0)
    .map((el) => [el, el.getBoundingClientRect()])
    .filter(([, box]) => box.width < 44 || box.height < 44)
    .map(([el, box]) => 'target smaller than 44 px: ' + el.tagName.toLowerCase() + ' "' + (el.textContent.trim() || el.name || el.id) + '" ' + Math.round(box.width) + 'x' + Math.round(box.height))`);
}

/** Fails if the page scrolls sideways: at 390 px, a phone's width, everything must fit. */
async function expectNoSidewaysScroll(page: Page, where: string): Promise<void> {
  const { scrollWidth, clientWidth } = await page.evaluate<{
    scrollWidth: number;
    clientWidth: number;
  }>(
    '({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth })',
  );
  expect(clientWidth, `${where}: the viewport`).toBeLessThanOrEqual(390);
  expect(
    scrollWidth,
    `${where} is wider than the ${clientWidth} px phone screen`,
  ).toBeLessThanOrEqual(clientWidth);
}

/** Runs axe and the target-size check on the page, and collects what they find under `name`. */
async function audit(page: Page, name: string, found: Map<string, string[]>): Promise<void> {
  found.set(name, [...(await seriousViolations(page)), ...(await smallTargets(page))]);
}

// ---- The author's side, through the real forms -------------------------------------------------

async function register(page: Page, site: RunningQuiz, username: string): Promise<void> {
  await visit(page, `${site.url}/register`);
  await page.fill('#username', username);
  await page.fill('#password', 'correct horse battery');
  await page.fill('#confirm', 'correct horse battery');
  await Promise.all([
    page.waitForURL(`${site.url}/`),
    page.click('button:has-text("Create my account")'),
  ]);
  expect(await page.textContent('.who')).toContain(username);
}

async function fillQuestion(
  page: Page,
  n: number,
  question: QuestionSpec,
  seconds: number,
): Promise<void> {
  await page.fill(`#q${n}-text`, question.text);
  for (let c = 0; c < 4; c++) await page.fill(`#q${n}-choice${c}`, question.choices[c] ?? '');
  await page.check(`#q${n}-correct${question.correct}`);
  await page.fill(`#q${n}-seconds`, String(seconds));
}

/**
 * Writes the quiz as an author would: the new-quiz form has room for two questions, so the third
 * goes in through the edit form. Returns the quiz's id.
 */
async function writeQuiz(
  page: Page,
  site: RunningQuiz,
  questions: QuestionSpec[],
  seconds: number,
  audits?: Map<string, string[]>,
): Promise<number> {
  await visit(page, `${site.url}/quizzes/new`);
  expect(await page.textContent('h1')).toBe('Write a quiz');
  if (audits) await audit(page, 'new quiz', audits);
  await page.fill('#title', QUIZ_TITLE);
  for (const [n, question] of questions.slice(0, 2).entries())
    await fillQuestion(page, n, question, seconds);
  await Promise.all([page.waitForURL(`${site.url}/`), page.click('text=Save the quiz')]);
  expect(await page.textContent('#quizzes-title + ul')).toContain(
    `${QUIZ_TITLE} · ${countOf(Math.min(2, questions.length), 'question')}`,
  );
  if (questions.length <= 2) return quizIdOnHome(page);

  await Promise.all([
    page.waitForURL(/\/quizzes\/\d+\/edit$/),
    page.click(`a:has-text("Edit ${QUIZ_TITLE}")`),
  ]);
  expect(await page.textContent('h1')).toBe('Edit the quiz');
  expect(await page.inputValue('#q1-text')).toBe(questions[1]!.text);
  if (audits) await audit(page, 'edit quiz', audits);
  for (const [n, question] of questions.entries())
    if (n >= 2) await fillQuestion(page, n, question, seconds);
  await Promise.all([page.waitForURL(`${site.url}/`), page.click('text=Save the quiz')]);
  expect(await page.textContent('#quizzes-title + ul')).toContain(
    `${QUIZ_TITLE} · ${countOf(questions.length, 'question')}`,
  );
  return quizIdOnHome(page);
}

const countOf = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

async function quizIdOnHome(page: Page): Promise<number> {
  const href = await page.getAttribute(`a:has-text("Edit ${QUIZ_TITLE}")`, 'href');
  return Number(/\/quizzes\/(\d+)\/edit/.exec(href ?? '')![1]);
}

/** Presses "Host" on the home page; returns the game's id and the join link the host shows. */
async function host(page: Page): Promise<{ gameId: number; joinUrl: string; code: string }> {
  await Promise.all([
    page.waitForURL(/\/games\/\d+$/),
    page.click(`button:has-text("Host ${QUIZ_TITLE}")`),
  ]);
  const gameId = Number(/\/games\/(\d+)$/.exec(page.url())![1]);
  const joinUrl = (await page.getAttribute('.join-info a', 'href'))!;
  const code = (await page.textContent('#join-code'))!.trim();
  expect(code).toMatch(/^[A-Z0-9]{6}$/);
  expect(joinUrl).toMatch(new RegExp(`/g/${code}$`));
  return { gameId, joinUrl, code };
}

/** A guest follows the join link, picks a nickname and lands on the player's page. */
async function joinGame(
  page: Page,
  joinUrl: string,
  code: string,
  nickname: string,
): Promise<void> {
  await visit(page, joinUrl);
  expect(await page.inputValue('#code')).toBe(code);
  await page.fill('#nickname', nickname);
  await Promise.all([
    page.waitForURL(/\/games\/\d+\/play$/),
    page.click('button:has-text("Join the game")'),
  ]);
  // The nickname shows as typed, never as markup.
  expect(await page.textContent('#nickname')).toBe(nickname);
  await waitForGame(page, 'the live lobby', (v) => v.state === 'lobby' && v.connection === 'open');
}

async function answer(page: Page, choice: number): Promise<void> {
  await page.click(`button.choice[data-choice="${choice}"]`);
}

/**
 * Answers with the keyboard alone: from the top of the page's main content, Tab must reach the
 * choices first and in order (nothing focusable in between), and Enter answers.
 */
async function answerWithKeyboard(page: Page, choice: number): Promise<void> {
  await page.focus('#main');
  const path: string[] = [];
  for (let i = 0; i <= choice; i++) {
    await page.keyboard.press('Tab');
    path.push(
      await page.evaluate<string>(
        `(() => { const el = document.activeElement; return el.dataset.choice !== undefined ? 'choice ' + el.dataset.choice : el.tagName + ' ' + el.textContent.trim(); })()`,
      ),
    );
  }
  expect(path, 'the focus order from the top of the game').toEqual(
    Array.from({ length: choice + 1 }, (_, i) => `choice ${i}`),
  );
  await page.keyboard.press('Enter');
}

/** "Correct! +873 points" → 873. */
function pointsOf(verdict: string | null): number {
  const match = /\+(\d+) points/.exec(verdict ?? '');
  return match ? Number(match[1]) : 0;
}

const scoreOf = (points: string | null): number => Number(/^(\d+)/.exec(points ?? '')?.[1]);

async function shoot(pages: Record<string, Page>, step: string, enabled: boolean): Promise<void> {
  if (!enabled) return;
  await Promise.all(
    Object.entries(pages).map(([who, page]) => screenshot(page, `quiz-${step}-${who}`)),
  );
}

// ---- The tests ---------------------------------------------------------------------------------

const postgresReady = await postgresAvailable();

describe.skipIf(!chromiumAvailable())('the quiz in Chromium', () => {
  const chromium = useChromium();
  const browsers = useContexts(() => chromium.browser);

  describe.each(['sqlite', 'postgres'] as const)('a full game on %s', (database) => {
    let site: RunningQuiz | undefined;
    beforeAll(async () => {
      if (database === 'postgres' && !postgresReady) return;
      site = await startQuiz({ database, revealMs: REVEAL_MS });
    });
    afterAll(async () => {
      await site?.close();
    });

    it.skipIf(database === 'postgres' && !postgresReady)(
      'author writes and hosts a 3-question quiz; three guests join and play it to the podium',
      async () => {
        const shots = database === 'sqlite';
        const author = await browsers.open({ width: 1280, height: 800 });
        await register(author, site!, 'quizmaster');
        await writeQuiz(author, site!, QUESTIONS, QUESTION_SECONDS);
        const { joinUrl, code } = await host(author);
        const lobby = await waitForGame(
          author,
          'the lobby, live',
          (v) => v.state === 'lobby' && v.connection === 'open',
        );
        expect(lobby.players).toEqual([]);
        expect(await author.isDisabled('#start')).toBe(true);

        // Three guests, each in a browser of their own: one has no WebSocket, one is a phone.
        const ann = await browsers.open();
        const bo = await browsers.open({ withoutWebSocket: true });
        const cy = await browsers.open({ width: 390, height: 844, mobile: true });
        const guests = [
          { name: 'Ann', page: ann },
          { name: '<b>Bo</b>', page: bo },
          { name: 'Cy', page: cy },
        ];
        const joined: string[] = [];
        for (const guest of guests) {
          await joinGame(guest.page, joinUrl, code, guest.name);
          joined.push(guest.name);
          // Everyone already in the lobby sees the newcomer, without a reload.
          for (const page of [author, ...guests.slice(0, joined.length).map((g) => g.page)]) {
            await waitForGame(
              page,
              `the lobby listing ${joined.join(', ')}`,
              (v) => v.state === 'lobby' && v.players.join('|') === joined.join('|'),
            );
          }
        }
        const playerLobby = await view(bo);
        expect(playerLobby.nickname).toBe('<b>Bo</b>');
        expect(await bo.locator('#game b').count()).toBe(0);
        expect(await bo.textContent('#game')).toContain('Waiting for the host to start');

        // Transports: Bo's page fell back from WebSocket, the others use it.
        expect(await bo.evaluate<unknown>('typeof window.WebSocket')).toBe('undefined');
        expect(playerLobby.transport).not.toBe('websocket');
        expect(playerLobby.transport).toMatch(
          /^(eventsource|xhr-streaming|htmlfile|xhr-polling|jsonp-polling)$/,
        );
        expect((await view(ann)).transport).toBe('websocket');
        expect((await view(author)).transport).toBe('websocket');

        await shoot({ host: author, player: bo, phone: cy }, 'lobby', shots);
        await expectNoSidewaysScroll(cy, 'the phone’s lobby');

        const pages = { host: author, player: bo, phone: cy };
        const points = new Map<string, number>(guests.map((g) => [g.name, 0]));

        /** One question: who answers what (undefined: lets the time run out). */
        const playQuestion = async (
          index: number,
          choices: (number | undefined)[],
          order: number[] = [0, 1, 2],
          keyboard?: string,
        ): Promise<void> => {
          const question = QUESTIONS[index]!;
          // Everyone sees the question, its choices and a countdown.
          for (const page of [author, ...guests.map((g) => g.page)]) {
            const seen = await waitForGame(page, `question ${index + 1}`, inQuestion(index));
            expect(seen.question).toBe(question.text);
            expect(seen.choices.map((c) => c.label)).toEqual(question.choices);
            expect(Number(seen.seconds)).toBeGreaterThanOrEqual(1);
            expect(Number(seen.seconds)).toBeLessThanOrEqual(QUESTION_SECONDS);
            expect(await page.isVisible('#seconds')).toBe(true);
            expect(seen.answered).toBe(`0 of ${guests.length} answered`);
            if (page === cy) await expectNoSidewaysScroll(cy, `the phone’s question ${index + 1}`);
          }
          // The host's screen shows the choices but cannot answer; players can.
          expect((await view(author)).choices.every((c) => !c.button)).toBe(true);
          for (const guest of guests)
            expect((await view(guest.page)).choices.every((c) => c.button && !c.disabled)).toBe(
              true,
            );
          if (index === 0) await shoot(pages, 'question', shots);

          const answering = order
            .map((i) => ({ ...guests[i]!, choice: choices[i] }))
            .filter((guest) => guest.choice !== undefined);
          for (const [n, guest] of answering.entries()) {
            if (guest.name === keyboard) await answerWithKeyboard(guest.page, guest.choice!);
            else await answer(guest.page, guest.choice!);
            if (n === answering.length - 1 && answering.length === guests.length) break;
            // Locked in on their page, counted on everyone's.
            const locked = await waitForGame(
              guest.page,
              'the answer locked in',
              (v) => v.answered === `${n + 1} of ${guests.length} answered`,
            );
            expect(locked.notice).toMatch(/locked in/i);
            expect(locked.choices.filter((c) => c.picked).map((c) => c.label)).toEqual([
              question.choices[guest.choice!],
            ]);
            expect(locked.choices.every((c) => c.disabled)).toBe(true);
            expect(locked.announced).toBe('Answer locked in. Waiting for the others.');
            if (guest.page === cy) await expectNoSidewaysScroll(cy, 'the phone, answered');
            await waitForGame(
              author,
              `${n + 1} answers counted`,
              (v) => v.answered === `${n + 1} of ${guests.length} answered`,
            );
            if (index === 0)
              await shoot(guest.page === cy ? { phone: cy } : { player: bo }, 'answered', shots);
          }
          // Whoever has not answered still can, while their countdown runs down to the end.
          for (const guest of guests.filter((g) => !answering.some((a) => a.name === g.name))) {
            const waiting = await view(guest.page);
            if (waiting.state === 'question' && Number(waiting.seconds) > 0)
              expect(waiting.choices.every((c) => !c.disabled)).toBe(true);
            await waitForGame(
              guest.page,
              'the countdown near its end',
              (v) => inReveal(index)(v) || (inQuestion(index)(v) && Number(v.seconds) <= 2),
            );
          }

          // The reveal: the right answer, each player's verdict, the scores.
          for (const [i, guest] of guests.entries()) {
            const shown = await waitForGame(guest.page, `reveal ${index + 1}`, inReveal(index));
            const choice = choices[i];
            const right = choice === question.correct;
            expect(shown.choices.filter((c) => c.right).map((c) => c.label)).toEqual([
              question.choices[question.correct],
            ]);
            if (choice === undefined) expect(shown.verdict).toBe('No answer this time.');
            else if (right) expect(shown.verdict).toMatch(/^Correct! \+\d+ points$/);
            else expect(shown.verdict).toBe('Not quite.');
            const gained = pointsOf(shown.verdict);
            if (right) {
              expect(gained).toBeGreaterThanOrEqual(500);
              expect(gained).toBeLessThanOrEqual(1000);
            }
            points.set(guest.name, points.get(guest.name)! + gained);
            expect(shown.score).toBe(String(points.get(guest.name)));
            expect(shown.scoreboard.find((row) => row.me)?.name).toBe(`${guest.name} (you)`);
            if (guest.page === cy)
              await expectNoSidewaysScroll(cy, `the phone’s reveal ${index + 1}`);
            // Screen readers hear the verdict and the right answer once, not every re-render.
            expect(shown.announced).toBe(
              `${shown.verdict} The right answer: ${question.choices[question.correct]}.`,
            );
          }
          const hostReveal = await waitForGame(author, `reveal ${index + 1}`, inReveal(index));
          for (const [i, guest] of guests.entries()) {
            const row = hostReveal.results.find((r) => r.name === guest.name);
            const choice = choices[i];
            expect(row?.outcome, `${guest.name} on the host's reveal`).toBe(
              choice === undefined ? 'No answer' : choice === question.correct ? 'Right' : 'Wrong',
            );
          }
          const scores = hostReveal.scoreboard.map((row) => scoreOf(row.points));
          expect(scores).toEqual([...scores].sort((a, b) => b - a));
          for (const row of hostReveal.scoreboard)
            expect(scoreOf(row.points), row.name!).toBe(points.get(row.name!));
          // Answer counts per choice add up to the answers given.
          const counted = hostReveal.choices.reduce((sum, c) => sum + parseInt(c.count ?? '0'), 0);
          expect(counted).toBe(answering.length);
          if (index === 0) await shoot(pages, 'reveal', shots);
        };

        // An impatient double press sends one start, not two.
        let starts = 0;
        author.on('request', (request) => {
          if (request.method() === 'POST' && request.url().endsWith('/start')) starts++;
        });
        await author.dblclick('#start');
        // Q1: Ann and Cy right, Bo wrong. Q2: Ann wrong, Bo right, Cy lets the time run out.
        // Q3: Ann and Bo right, Cy wrong.
        await playQuestion(0, [1, 2, 1], [2, 1, 0]);
        expect(starts, 'start requests').toBe(1);
        await playQuestion(1, [0, 1, undefined]);
        await playQuestion(2, [0, 0, 1], [1, 0, 2], 'Ann');

        // The podium, in score order, the same on every page.
        const final = await waitForGame(author, 'the podium', finished);
        const ranking = [...points.entries()].sort((a, b) => b[1] - a[1]);
        expect(final.scoreboard.map((row) => scoreOf(row.points))).toEqual(
          ranking.map(([, score]) => score),
        );
        expect(final.podium.map((p) => p.place)).toEqual(['1st', '2nd', '3rd']);
        expect(final.podium.map((p) => scoreOf(p.points))).toEqual(ranking.map(([, s]) => s));
        expect(final.podium.map((p) => p.name)).toEqual(final.scoreboard.map((row) => row.name));
        for (const guest of guests) {
          const mine = await waitForGame(guest.page, 'the podium', finished);
          expect(mine.podium).toEqual(final.podium);
          const place = final.podium.findIndex((p) => p.name === guest.name) + 1;
          expect(mine.verdict).toBe(
            `You finished #${place} of ${guests.length} with ${points.get(guest.name)} points.`,
          );
          expect(mine.cspViolations).toEqual([]);
        }
        await expectNoSidewaysScroll(cy, 'the phone’s podium');
        expect(final.cspViolations).toEqual([]);
        await shoot(pages, 'podium', shots);
        // The fallback page stayed on its fallback all game long.
        expect((await view(bo)).transport).toBe(playerLobby.transport);
      },
      120_000,
    );
  });

  describe('a player who reloads', () => {
    let site: RunningQuiz;
    beforeAll(async () => {
      site = await startQuiz({ database: 'sqlite', revealMs: REVEAL_MS });
    });
    afterAll(async () => {
      await site?.close();
    });

    it('mid-question: the same question, the time the server gives, and the game goes on', async () => {
      const seconds = 12;
      const author = await browsers.open();
      await register(author, site, 'reloader');
      await writeQuiz(author, site, QUESTIONS.slice(0, 2), seconds);
      const { gameId, joinUrl, code } = await host(author);
      const dee = await browsers.open({ width: 390, height: 844, mobile: true });
      const eve = await browsers.open();
      await joinGame(dee, joinUrl, code, 'Dee');
      await joinGame(eve, joinUrl, code, 'Eve');
      await waitForGame(author, 'both players', (v) => v.players.length === 2);
      await author.click('#start');

      // Well into the question, so that a page counting from the question's full length would
      // show the wrong time.
      await waitForGame(
        dee,
        'question 1, a few seconds in',
        (v) => inQuestion(0)(v) && Number(v.seconds) <= seconds - 3 && Number(v.seconds) >= 4,
      );
      await dee.reload({ waitUntil: 'domcontentloaded' });

      const before = Date.now();
      const reloaded = await waitForGame(dee, 'question 1 after the reload', inQuestion(0));
      const after = Date.now();
      const status = await site.app.games.status(gameId);
      if (status?.state !== 'question') throw new Error(`the game is ${status?.state}`);
      expect(reloaded.question).toBe(QUESTIONS[0]!.text);
      expect(reloaded.choices.map((c) => c.label)).toEqual(QUESTIONS[0]!.choices);
      expect(reloaded.choices.every((c) => c.button && !c.disabled)).toBe(true);
      expect(reloaded.answered).toBe('0 of 2 answered');
      // The page's countdown is the server's deadline, give or take a second of rounding.
      const shown = Number(reloaded.seconds);
      const latest = Math.ceil((status.deadline - before) / 1000);
      const earliest = Math.ceil((status.deadline - after) / 1000);
      expect(
        shown,
        `shown ${shown} s; the deadline allows ${earliest}-${latest} s`,
      ).toBeGreaterThanOrEqual(earliest - 1);
      expect(shown).toBeLessThanOrEqual(latest + 1);
      expect(shown).toBeLessThan(seconds);
      // And it counts down.
      await waitForGame(dee, 'the countdown moving', (v) => Number(v.seconds) < shown);

      // Answered, then reloaded again: the answer stays locked in.
      await answer(dee, 1);
      await waitForGame(author, 'the answer counted', (v) => v.answered === '1 of 2 answered');
      await dee.reload({ waitUntil: 'domcontentloaded' });
      const locked = await waitForGame(
        dee,
        'the locked answer after a reload',
        (v) => inQuestion(0)(v) && v.connection === 'open',
      );
      expect(locked.notice).toMatch(/locked in/i);
      expect(locked.choices.filter((c) => c.picked).map((c) => c.label)).toEqual(['4']);
      expect(locked.choices.every((c) => c.disabled)).toBe(true);

      // Updates keep arriving on the reloaded page: the reveal, then the next question.
      await answer(eve, 0);
      const reveal = await waitForGame(dee, 'the reveal after the reload', inReveal(0));
      expect(reveal.verdict).toMatch(/^Correct! \+\d+ points$/);
      const next = await waitForGame(dee, 'question 2 after the reload', inQuestion(1));
      expect(next.question).toBe(QUESTIONS[1]!.text);
      expect(next.choices.every((c) => c.button && !c.disabled)).toBe(true);
      await answer(dee, 1);
      await answer(eve, 1);
      const podium = await waitForGame(dee, 'the podium after the reload', finished);
      expect(podium.podium.map((p) => p.name)).toEqual(['Dee', 'Eve']);
      expect(podium.cspViolations).toEqual([]);
    }, 90_000);
  });

  describe('a host page still loading', () => {
    let site: RunningQuiz;
    beforeAll(async () => {
      site = await startQuiz({ database: 'sqlite', revealMs: REVEAL_MS });
    });
    afterAll(async () => {
      await site?.close();
    });

    it('lists a player who joined between the page’s render and its subscriptions', async () => {
      const author = await browsers.open();
      await register(author, site, 'slowhost');
      await writeQuiz(author, site, QUESTIONS.slice(0, 1), 30);
      // The page script is held back: the host's page is rendered (at the topics' positions),
      // but has not subscribed yet when the player joins, as on a slow phone or network.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let requested!: () => void;
      const scriptRequested = new Promise<void>((resolve) => (requested = resolve));
      await author.route('**/static/game.js', async (route) => {
        requested();
        await released;
        await route.continue();
      });
      await author.click(`button:has-text("Host ${QUIZ_TITLE}")`, { noWaitAfter: true });
      await scriptRequested;
      await author.waitForSelector('#join-code', { state: 'attached' });
      const code = (await author.textContent('#join-code'))!.trim();
      const joinUrl = (await author.getAttribute('.join-info a', 'href'))!;
      const ann = await browsers.open({ width: 390, height: 844, mobile: true });
      await joinGame(ann, joinUrl, code, 'Ann');
      release();

      await waitForGame(
        author,
        'the lobby listing Ann',
        (v) => v.state === 'lobby' && v.connection === 'open' && v.players.join('|') === 'Ann',
      );
      expect(await author.isDisabled('#start')).toBe(false);
      await author.click('#start');
      await waitForGame(author, 'the question', inQuestion(0));
      await waitForGame(ann, 'the question', inQuestion(0));
    }, 60_000);
  });

  describe('the host ends a game', () => {
    let site: RunningQuiz;
    beforeAll(async () => {
      site = await startQuiz({ database: 'sqlite', revealMs: REVEAL_MS });
    });
    afterAll(async () => {
      await site?.close();
    });

    it('from its lobby, after a confirmation: every page says so, and the quiz is free again', async () => {
      const author = await browsers.open();
      await register(author, site, 'quitter');
      await writeQuiz(author, site, QUESTIONS.slice(0, 1), 30);
      const { joinUrl, code } = await host(author);
      const ann = await browsers.open({ width: 390, height: 844, mobile: true });
      await joinGame(ann, joinUrl, code, 'Ann');
      await waitForGame(author, 'the lobby listing Ann', (v) => v.players.join('|') === 'Ann');

      // Dismissing the confirmation changes nothing.
      const dialogs: string[] = [];
      author.once('dialog', (dialog) => {
        dialogs.push(dialog.message());
        void dialog.dismiss();
      });
      await author.click('#end');
      expect(dialogs).toEqual([
        'End this game for everyone? Nobody will be able to join it any more.',
      ]);
      expect((await view(author)).state).toBe('lobby');

      author.once('dialog', (dialog) => void dialog.accept());
      await author.click('#end');
      for (const page of [author, ann]) {
        const ended = await waitForGame(page, 'the end', finished);
        expect(ended.announced).toBe('The host ended this game.');
        expect(await page.textContent('#game')).toContain(
          'The host ended this game before it started.',
        );
        expect(ended.cspViolations).toEqual([]);
      }
      expect(await author.$('#end')).toBeNull();

      // The quiz can be edited, and deleted, again.
      await visit(author, `${site.url}/`);
      const quizId = await quizIdOnHome(author);
      await visit(author, `${site.url}/quizzes/${quizId}/edit`);
      await Promise.all([
        author.waitForURL(`${site.url}/quizzes/${quizId}/delete`),
        author.click('text=Delete this quiz'),
      ]);
      expect(await author.textContent('h1')).toBe(`Delete “${QUIZ_TITLE}”?`);
      await Promise.all([
        author.waitForURL(`${site.url}/`),
        author.click('button:has-text("Delete the quiz")'),
      ]);
      expect(await author.$(`a:has-text("Edit ${QUIZ_TITLE}")`)).toBeNull();
    }, 60_000);
  });

  describe('accessibility', () => {
    let site: RunningQuiz;
    beforeAll(async () => {
      // A long reveal: axe needs a moment on each page, and this test is not about pace.
      site = await startQuiz({ database: 'sqlite', revealMs: 8000 });
    });
    afterAll(async () => {
      await site?.close();
    });

    it('axe-core finds no serious or critical violation on any page', async () => {
      const found = new Map<string, string[]>();
      const visitor = await browsers.open();
      await visit(visitor, `${site.url}/`);
      await audit(visitor, 'home', found);
      // Every page gets the client from the base template, under the pages' CSP.
      expect(await visitor.evaluate<string>('typeof window.Perigee.connect')).toBe('function');
      expect((await view(visitor)).cspViolations).toEqual([]);
      // The first Tab shows the skip link; following it puts the focus on the main content.
      await visitor.keyboard.press('Tab');
      expect(await visitor.evaluate<string>('document.activeElement.textContent')).toBe(
        'Skip to content',
      );
      expect((await visitor.locator('.skip').boundingBox())?.x).toBeGreaterThanOrEqual(0);
      await visitor.keyboard.press('Enter');
      expect(await visitor.evaluate<string>('document.activeElement.id')).toBe('main');
      await visit(visitor, `${site.url}/login`);
      await audit(visitor, 'login', found);
      await visitor.fill('#username', 'nobody');
      await visitor.fill('#password', 'wrong password');
      await Promise.all([visitor.waitForLoadState(), visitor.click('button:has-text("Log in")')]);
      expect(await visitor.textContent('#problems')).toContain('do not match');
      await audit(visitor, 'login, with a problem', found);
      await visit(visitor, `${site.url}/register`);
      await audit(visitor, 'register', found);
      await visitor.fill('#username', 'x');
      await visitor.fill('#password', 'short');
      await Promise.all([
        visitor.waitForURL(`${site.url}/register`),
        visitor.click('button:has-text("Create my account")'),
      ]);
      expect(await visitor.isVisible('#problems')).toBe(true);
      await audit(visitor, 'register, with problems', found);
      await screenshot(visitor, 'quiz-register-problems');
      await visit(visitor, `${site.url}/games/999999`);
      expect(await visitor.textContent('h1')).toBe('No such game');
      await audit(visitor, 'error page', found);
      await screenshot(visitor, 'quiz-error');
      await visit(visitor, `${site.url}/no/such/page`);
      await audit(visitor, 'not found', found);

      const author = await browsers.open();
      await register(author, site, 'auditor');
      await audit(author, 'home, signed in', found);
      await writeQuiz(author, site, QUESTIONS.slice(0, 1), 60, found);
      await audit(author, 'home, with a quiz', found);
      await screenshot(author, 'quiz-home');
      await Promise.all([
        author.waitForURL(/\/quizzes\/\d+\/edit$/),
        author.click(`a:has-text("Edit ${QUIZ_TITLE}")`),
      ]);
      expect(await author.inputValue('#q0-text')).toBe(QUESTIONS[0]!.text);
      await audit(author, 'edit quiz', found);
      await screenshot(author, 'quiz-edit');
      await Promise.all([
        author.waitForURL(/\/quizzes\/\d+\/delete$/),
        author.click('text=Delete this quiz'),
      ]);
      await audit(author, 'delete quiz', found);
      await visit(author, `${site.url}/`);
      const { joinUrl, code } = await host(author);
      await waitForGame(author, 'the lobby', (v) => v.state === 'lobby' && v.connection === 'open');
      await audit(author, 'host lobby, empty', found);

      const ann = await browsers.open({ width: 390, height: 844, mobile: true });
      const bo = await browsers.open();
      await visit(ann, joinUrl);
      await audit(ann, 'join', found);
      await expectNoSidewaysScroll(ann, 'the join page');
      await ann.fill('#nickname', 'Ann');
      await ann.fill('#code', 'ZZZZZZ');
      await ann.click('button:has-text("Join the game")');
      expect(await ann.textContent('#problems')).toContain('No game has the code ZZZZZZ');
      await audit(ann, 'join, with problems', found);
      await expectNoSidewaysScroll(ann, 'the join page with problems');
      await screenshot(ann, 'quiz-join-problems-phone');
      await joinGame(ann, joinUrl, code, 'Ann');
      await joinGame(bo, joinUrl, code, 'Bo');
      await waitForGame(author, 'two players', (v) => v.players.length === 2);
      await audit(author, 'host lobby', found);
      await audit(ann, 'player lobby', found);
      await expectNoSidewaysScroll(ann, 'the player lobby');

      await author.click('#start');
      await waitForGame(author, 'the question', inQuestion(0));
      await waitForGame(ann, 'the question', inQuestion(0));
      await audit(author, 'host, question', found);
      await audit(ann, 'player, question', found);
      await expectNoSidewaysScroll(ann, 'the question');
      await answer(ann, QUESTIONS[0]!.correct);
      await waitForGame(ann, 'the answer locked in', (v) => v.answered === '1 of 2 answered');
      await audit(ann, 'player, answered', found);
      await expectNoSidewaysScroll(ann, 'the answered question');
      await audit(author, 'host, one answer in', found);

      await answer(bo, 0);
      await waitForGame(author, 'the reveal', inReveal(0));
      await waitForGame(ann, 'the reveal', inReveal(0));
      await waitForGame(bo, 'the reveal', inReveal(0));
      await Promise.all([
        audit(author, 'host, reveal', found),
        audit(ann, 'player, reveal (right)', found),
        audit(bo, 'player, reveal (wrong)', found),
      ]);
      // Still the reveal: the audits above saw what they are named after.
      for (const page of [author, ann, bo]) expect((await view(page)).state).toBe('reveal');
      await expectNoSidewaysScroll(ann, 'the reveal');

      await waitForGame(author, 'the podium', finished);
      await waitForGame(ann, 'the podium', finished);
      await audit(author, 'host, podium', found);
      await audit(ann, 'player, podium', found);
      await expectNoSidewaysScroll(ann, 'the podium');

      const report = [...found.entries()]
        .filter(([, violations]) => violations.length > 0)
        .map(([name, violations]) => `${name}:\n  ${violations.join('\n  ')}`)
        .join('\n');
      console.log(`axe-core: ${found.size} pages checked: ${[...found.keys()].join(', ')}`);
      expect(report, `serious or critical accessibility violations:\n${report}`).toBe('');
    }, 90_000);
  });
});
