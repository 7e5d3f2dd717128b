import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createQuizApp, type QuizApp, type QuizOptions } from '../../examples/quiz/app.js';
import { localTool } from './services.js';

/**
 * The quiz app on a free port, on SQLite (a fresh file) or on the machine's PostgreSQL (a fresh
 * database, dropped afterwards).
 */

export const POSTGRES_ADMIN_URL =
  process.env.PERIGEE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface RunningQuiz {
  app: QuizApp;
  url: string;
  port: number;
  /** The PostgreSQL database's URL, for a test that talks to it directly; undefined on SQLite. */
  databaseUrl: string | undefined;
  close(): Promise<void>;
}

/** Whether PostgreSQL answers; a missing one skips (or fails under PERIGEE_REQUIRE_SERVICES=1). */
export async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({
    connectionString: POSTGRES_ADMIN_URL,
    connectionTimeoutMillis: 3000,
  });
  let reason: string | undefined;
  try {
    await client.connect();
    await client.query('select 1');
  } catch (error) {
    reason = `PostgreSQL at ${POSTGRES_ADMIN_URL} is unreachable (${(error as Error).message})`;
  } finally {
    await client.end().catch(() => undefined);
  }
  return localTool('PostgreSQL', reason === undefined, reason ?? '');
}

export async function startQuiz(
  options: {
    database?: 'sqlite' | 'postgres';
    /** An SQLite file to use (and keep), e.g. to start the app again on the same data. */
    sqliteFile?: string;
  } & Omit<QuizOptions, 'databaseUrl' | 'sqliteFile'> = {},
): Promise<RunningQuiz> {
  let databaseUrl: string | undefined;
  let dropDatabase: (() => Promise<void>) | undefined;
  if (options.database === 'postgres') {
    const name = `perigee_quiz_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(POSTGRES_ADMIN_URL);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    dropDatabase = async () => {
      const cleaner = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await cleaner.connect();
      await cleaner.query(`drop database if exists ${name} with (force)`);
      await cleaner.end();
    };
  }
  const app = await createQuizApp({
    stomp: 'off',
    revealMs: 1500,
    ...options,
    databaseUrl,
    sqliteFile: options.sqliteFile ?? join(mkdtempSync(join(tmpdir(), 'perigee-quiz-')), 'quiz.db'),
  });
  await app.fastify.listen({ host: '127.0.0.1', port: 0 });
  const address = app.fastify.server.address() as { port: number };
  return {
    app,
    port: address.port,
    url: `http://127.0.0.1:${address.port}`,
    databaseUrl,
    async close() {
      await app.close();
      await dropDatabase?.();
    },
  };
}
