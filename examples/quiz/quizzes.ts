import type { Db } from './db.js';

/** Quizzes and their questions: what an author writes, checked the way a person would. */

export interface QuestionInput {
  text: string;
  choices: string[];
  correct: number;
  seconds: number;
}

export interface Question extends QuestionInput {
  position: number;
}

export interface Quiz {
  id: number;
  authorId: number;
  title: string;
  questions: Question[];
}

export const MIN_SECONDS = 5;
export const MAX_SECONDS = 120;

/** Problems with a quiz, each a sentence; empty when it can be saved. */
export function quizProblems(title: string, questions: QuestionInput[]): string[] {
  const problems: string[] = [];
  if (title.trim().length === 0) problems.push('Give the quiz a title.');
  if (title.length > 120) problems.push('Keep the title under 120 characters.');
  if (questions.length === 0) problems.push('Add at least one question.');
  if (questions.length > 50) problems.push('A quiz may have at most 50 questions.');
  questions.forEach((question, index) => {
    const where = `Question ${index + 1}`;
    if (question.text.trim().length === 0) problems.push(`${where} has no text.`);
    if (question.text.length > 500) problems.push(`${where} is longer than 500 characters.`);
    const filled = question.choices.filter((choice) => choice.trim().length > 0);
    if (filled.length < 2 || filled.length > 4) problems.push(`${where} needs 2 to 4 choices.`);
    if (question.choices.some((choice) => choice.length > 120))
      problems.push(`${where} has a choice longer than 120 characters.`);
    if (
      !Number.isInteger(question.correct) ||
      question.correct < 0 ||
      question.correct >= filled.length
    ) {
      problems.push(`${where}: mark which choice is right.`);
    }
    if (
      !Number.isInteger(question.seconds) ||
      question.seconds < MIN_SECONDS ||
      question.seconds > MAX_SECONDS
    ) {
      problems.push(`${where}: allow between ${MIN_SECONDS} and ${MAX_SECONDS} seconds.`);
    }
  });
  return problems;
}

export async function saveQuiz(
  db: Db,
  authorId: number,
  title: string,
  questions: QuestionInput[],
  quizId?: number,
): Promise<number> {
  const now = Date.now();
  return db.transaction().execute(async (trx) => {
    let id = quizId;
    if (id === undefined) {
      const row = await trx
        .insertInto('quizzes')
        .values({ author_id: authorId, title: title.trim(), created_at: now, updated_at: now })
        .returning('id')
        .executeTakeFirstOrThrow();
      id = row.id;
    } else {
      await trx
        .updateTable('quizzes')
        .set({ title: title.trim(), updated_at: now })
        .where('id', '=', id)
        .execute();
      await trx.deleteFrom('questions').where('quiz_id', '=', id).execute();
    }
    const quiz = id;
    await trx
      .insertInto('questions')
      .values(
        questions.map((question, position) => ({
          quiz_id: quiz,
          position,
          text: question.text.trim(),
          choices: JSON.stringify(
            question.choices.map((choice) => choice.trim()).filter((choice) => choice.length > 0),
          ),
          correct_index: question.correct,
          seconds: question.seconds,
        })),
      )
      .execute();
    return quiz;
  });
}

export async function loadQuiz(db: Db, id: number): Promise<Quiz | undefined> {
  const quiz = await db.selectFrom('quizzes').selectAll().where('id', '=', id).executeTakeFirst();
  if (!quiz) return undefined;
  const questions = await db
    .selectFrom('questions')
    .selectAll()
    .where('quiz_id', '=', id)
    .orderBy('position')
    .execute();
  return {
    id: quiz.id,
    authorId: quiz.author_id,
    title: quiz.title,
    questions: questions.map((row) => ({
      position: row.position,
      text: row.text,
      choices: JSON.parse(row.choices) as string[],
      correct: row.correct_index,
      seconds: row.seconds,
    })),
  };
}

export async function quizzesOf(
  db: Db,
  authorId: number,
): Promise<{ id: number; title: string; questions: number }[]> {
  const rows = await db
    .selectFrom('quizzes')
    .leftJoin('questions', 'questions.quiz_id', 'quizzes.id')
    .select(({ fn }) => [
      'quizzes.id',
      'quizzes.title',
      fn.count<number>('questions.id').as('questions'),
    ])
    .where('quizzes.author_id', '=', authorId)
    .groupBy(['quizzes.id', 'quizzes.title'])
    .orderBy('quizzes.id', 'desc')
    .execute();
  return rows.map((row) => ({ id: row.id, title: row.title, questions: Number(row.questions) }));
}

/** The talk's PyCon quiz: ten questions about Python and the web, so a newcomer can play at once. */
export const SAMPLE_QUIZ: { title: string; questions: QuestionInput[] } = {
  title: 'Python and the real-time web',
  questions: [
    {
      text: 'Which keyword defines a generator function in Python?',
      choices: ['yield', 'return', 'async', 'lambda'],
      correct: 0,
      seconds: 20,
    },
    {
      text: 'What does PEP 8 describe?',
      choices: ['The import system', 'Style for Python code', 'The GIL', 'Packaging'],
      correct: 1,
      seconds: 20,
    },
    {
      text: 'Which HTTP technique holds a request open until there is data?',
      choices: ['Short polling', 'Long polling', 'Prefetching', 'CORS'],
      correct: 1,
      seconds: 20,
    },
    {
      text: 'STOMP stands for…',
      choices: [
        'Simple Text Oriented Messaging Protocol',
        'Streaming Transport Over Multiple Pipes',
        'Socket Transfer Object Model Protocol',
      ],
      correct: 0,
      seconds: 25,
    },
    {
      text: 'Which browser API receives server-sent events?',
      choices: ['WebSocket', 'EventSource', 'XMLHttpRequest', 'BroadcastChannel'],
      correct: 1,
      seconds: 20,
    },
    {
      text: 'What does `len({1, 1, 2})` return?',
      choices: ['1', '2', '3', 'An error'],
      correct: 1,
      seconds: 20,
    },
    {
      text: 'Which framework did the original quiz use for its app logic?',
      choices: ['Flask', 'Django', 'Pyramid', 'web2py'],
      correct: 1,
      seconds: 15,
    },
    {
      text: 'Which port does STOMP use by default?',
      choices: ['5672', '1883', '61613', '8080'],
      correct: 2,
      seconds: 20,
    },
    {
      text: 'What is the type of `3 / 2` in Python 3?',
      choices: ['int', 'float', 'Decimal', 'Fraction'],
      correct: 1,
      seconds: 15,
    },
    {
      text: 'Which transport does a browser try first, when it can?',
      choices: ['JSONP polling', 'htmlfile', 'WebSocket', 'Short polling'],
      correct: 2,
      seconds: 15,
    },
  ],
};

/**
 * Deletes a quiz with everything of it: its questions, and its finished games with their players
 * and answers (the schema cascades). Refused while a game of it is not over, so that a game is
 * never deleted from under its players. Returns whether the quiz was deleted.
 *
 * On PostgreSQL the quiz row is locked first: a game being hosted at that moment holds a key
 * lock on it until its insert commits, so the check below then sees that game; without the lock
 * the delete could wait for the insert and cascade to the new game with a snapshot that missed
 * it. SQLite runs one write at a time, and has no FOR UPDATE.
 */
export async function deleteQuiz(
  db: Db,
  id: number,
  kind: 'sqlite' | 'postgres',
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    if (kind === 'postgres') {
      const quiz = await trx
        .selectFrom('quizzes')
        .select('id')
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!quiz) return false;
    }
    const result = await trx
      .deleteFrom('quizzes')
      .where('id', '=', id)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('games')
              .select('games.id')
              .where('games.quiz_id', '=', id)
              .where('games.state', '!=', 'finished'),
          ),
        ),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  });
}

/** How many games of a quiz were played (or are), for what deleting it would take away. */
export async function gameCountOf(db: Db, quizId: number): Promise<number> {
  const row = await db
    .selectFrom('games')
    .select(({ fn }) => fn.countAll<number>().as('count'))
    .where('quiz_id', '=', quizId)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}
