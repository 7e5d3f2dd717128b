import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  type Generated,
  type Migration,
} from 'kysely';
import pg from 'pg';

/**
 * The quiz's data: one query layer (Kysely) over SQLite by default, or PostgreSQL when
 * DATABASE_URL says so. Times are milliseconds since 1970 (bigint in PostgreSQL).
 */

export interface UsersTable {
  id: Generated<number>;
  username: string;
  password_hash: string;
  created_at: number;
}

export interface SessionsTable {
  id: string;
  user_id: number | null;
  csrf_token: string;
  created_at: number;
  expires_at: number;
}

export interface QuizzesTable {
  id: Generated<number>;
  author_id: number;
  title: string;
  created_at: number;
  updated_at: number;
}

export interface QuestionsTable {
  id: Generated<number>;
  quiz_id: number;
  position: number;
  text: string;
  /** JSON array of 2 to 4 strings. */
  choices: string;
  correct_index: number;
  seconds: number;
}

export type GameState = 'lobby' | 'question' | 'reveal' | 'finished';

export interface GamesTable {
  id: Generated<number>;
  quiz_id: number;
  author_id: number;
  code: string;
  state: GameState;
  /** Index of the current question (-1 in the lobby). */
  current_index: number;
  /** When the current phase started and when it ends, in server time. */
  phase_started_at: number;
  phase_ends_at: number;
  created_at: number;
  /** 1 when the host ended the game before its last question was over. */
  ended_early: Generated<number>;
}

export interface PlayersTable {
  id: Generated<number>;
  game_id: number;
  session_id: string;
  user_id: number | null;
  nickname: string;
  score: number;
  joined_at: number;
}

export interface AnswersTable {
  id: Generated<number>;
  game_id: number;
  player_id: number;
  question_index: number;
  choice_index: number;
  correct: number;
  points: number;
  answered_at: number;
}

export interface QuizDatabase {
  users: UsersTable;
  sessions: SessionsTable;
  quizzes: QuizzesTable;
  questions: QuestionsTable;
  games: GamesTable;
  players: PlayersTable;
  answers: AnswersTable;
}

export type Db = Kysely<QuizDatabase>;

export interface OpenedDatabase {
  db: Db;
  kind: 'sqlite' | 'postgres';
  /** Where the data is, for the log: a file path or the URL without its password. */
  where: string;
  close(): Promise<void>;
}

/** Opens the database (SQLite file, or PostgreSQL from `databaseUrl`) and migrates it. */
export async function openDatabase(options: {
  databaseUrl?: string;
  sqliteFile: string;
}): Promise<OpenedDatabase> {
  const url = options.databaseUrl;
  let opened: OpenedDatabase;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    // Counts and times come back as bigint (type 20); they fit in a JavaScript number.
    pg.types.setTypeParser(20, (value) => Number(value));
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle connection that the server drops (a restart, a failover, an administrator) makes
    // the pool emit 'error'; unheard, that event would end the process. The pool has already
    // discarded the connection and opens a new one on the next query, so saying so is enough.
    // While the pool ends, its connections' goodbyes may still be on the way when the server
    // drops them: expected then, and not worth a line.
    let closing = false;
    pool.on('error', (error) => {
      if (closing) return;
      console.error(
        `quiz: an idle PostgreSQL connection was lost (${error.message}); the next query opens a new one`,
      );
    });
    // A connection lost while checked out (mid-transaction, say) emits 'error' on the client
    // itself, where the pool no longer listens: its query fails, and that failure is what the
    // request sees. Unheard, the event would end the process.
    pool.on('connect', (client) => client.on('error', () => undefined));
    const db = new Kysely<QuizDatabase>({ dialect: new PostgresDialect({ pool }) });
    opened = {
      db,
      kind: 'postgres',
      where: url.replace(/:[^:@/]*@/, ':***@'),
      close: () => {
        closing = true;
        return db.destroy();
      },
    };
  } else {
    if (url)
      throw new Error(
        `DATABASE_URL must start with postgres:// or postgresql://, got "${url.split(':')[0]}:…"`,
      );
    if (options.sqliteFile !== ':memory:')
      mkdirSync(dirname(options.sqliteFile), { recursive: true });
    const file = new Database(options.sqliteFile);
    // WAL lets page renders read while a game writes.
    file.pragma('journal_mode = WAL');
    file.pragma('foreign_keys = ON');
    const db = new Kysely<QuizDatabase>({ dialect: new SqliteDialect({ database: file }) });
    opened = { db, kind: 'sqlite', where: options.sqliteFile, close: () => db.destroy() };
  }
  await migrate(opened.db, opened.kind);
  return opened;
}

async function migrate(db: Db, kind: 'sqlite' | 'postgres'): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations(kind)) },
    migrationTableName: 'quiz_migrations',
    migrationLockTableName: 'quiz_migrations_lock',
  });
  const { error } = await migrator.migrateToLatest();
  if (error)
    throw error instanceof Error ? error : new Error('the quiz database could not be migrated');
}

function migrations(kind: 'sqlite' | 'postgres'): Record<string, Migration> {
  // The two dialects differ only in how an id counts up and how wide a time is.
  const id = kind === 'postgres' ? 'serial' : 'integer';
  const time = kind === 'postgres' ? 'bigint' : 'integer';
  return {
    '001_initial': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('users')
          .addColumn('id', id, (column) =>
            kind === 'postgres' ? column.primaryKey() : column.primaryKey().autoIncrement(),
          )
          .addColumn('username', 'varchar(32)', (column) => column.notNull().unique())
          .addColumn('password_hash', 'varchar(255)', (column) => column.notNull())
          .addColumn('created_at', time, (column) => column.notNull())
          .execute();
        await db.schema
          .createTable('sessions')
          .addColumn('id', 'varchar(64)', (column) => column.primaryKey())
          .addColumn('user_id', 'integer', (column) =>
            column.references('users.id').onDelete('cascade'),
          )
          .addColumn('csrf_token', 'varchar(64)', (column) => column.notNull())
          .addColumn('created_at', time, (column) => column.notNull())
          .addColumn('expires_at', time, (column) => column.notNull())
          .execute();
        await db.schema
          .createTable('quizzes')
          .addColumn('id', id, (column) =>
            kind === 'postgres' ? column.primaryKey() : column.primaryKey().autoIncrement(),
          )
          .addColumn('author_id', 'integer', (column) =>
            column.notNull().references('users.id').onDelete('cascade'),
          )
          .addColumn('title', 'varchar(120)', (column) => column.notNull())
          .addColumn('created_at', time, (column) => column.notNull())
          .addColumn('updated_at', time, (column) => column.notNull())
          .execute();
        await db.schema
          .createTable('questions')
          .addColumn('id', id, (column) =>
            kind === 'postgres' ? column.primaryKey() : column.primaryKey().autoIncrement(),
          )
          .addColumn('quiz_id', 'integer', (column) =>
            column.notNull().references('quizzes.id').onDelete('cascade'),
          )
          .addColumn('position', 'integer', (column) => column.notNull())
          .addColumn('text', 'varchar(500)', (column) => column.notNull())
          .addColumn('choices', 'text', (column) => column.notNull())
          .addColumn('correct_index', 'integer', (column) => column.notNull())
          .addColumn('seconds', 'integer', (column) => column.notNull())
          .execute();
        await db.schema
          .createTable('games')
          .addColumn('id', id, (column) =>
            kind === 'postgres' ? column.primaryKey() : column.primaryKey().autoIncrement(),
          )
          .addColumn('quiz_id', 'integer', (column) =>
            column.notNull().references('quizzes.id').onDelete('cascade'),
          )
          .addColumn('author_id', 'integer', (column) =>
            column.notNull().references('users.id').onDelete('cascade'),
          )
          .addColumn('code', 'varchar(12)', (column) => column.notNull().unique())
          .addColumn('state', 'varchar(16)', (column) => column.notNull())
          .addColumn('current_index', 'integer', (column) => column.notNull())
          .addColumn('phase_started_at', time, (column) => column.notNull())
          .addColumn('phase_ends_at', time, (column) => column.notNull())
          .addColumn('created_at', time, (column) => column.notNull())
          .execute();
        await db.schema
          .createTable('players')
          .addColumn('id', id, (column) =>
            kind === 'postgres' ? column.primaryKey() : column.primaryKey().autoIncrement(),
          )
          .addColumn('game_id', 'integer', (column) =>
            column.notNull().references('games.id').onDelete('cascade'),
          )
          .addColumn('session_id', 'varchar(64)', (column) => column.notNull())
          .addColumn('user_id', 'integer')
          .addColumn('nickname', 'varchar(32)', (column) => column.notNull())
          .addColumn('score', 'integer', (column) => column.notNull())
          .addColumn('joined_at', time, (column) => column.notNull())
          .addUniqueConstraint('players_one_per_session', ['game_id', 'session_id'])
          .execute();
        await db.schema
          .createTable('answers')
          .addColumn('id', id, (column) =>
            kind === 'postgres' ? column.primaryKey() : column.primaryKey().autoIncrement(),
          )
          .addColumn('game_id', 'integer', (column) =>
            column.notNull().references('games.id').onDelete('cascade'),
          )
          .addColumn('player_id', 'integer', (column) =>
            column.notNull().references('players.id').onDelete('cascade'),
          )
          .addColumn('question_index', 'integer', (column) => column.notNull())
          .addColumn('choice_index', 'integer', (column) => column.notNull())
          .addColumn('correct', 'integer', (column) => column.notNull())
          .addColumn('points', 'integer', (column) => column.notNull())
          .addColumn('answered_at', time, (column) => column.notNull())
          // One answer per player per question, enforced by the database itself.
          .addUniqueConstraint('answers_one_per_question', [
            'game_id',
            'player_id',
            'question_index',
          ])
          .execute();
        await db.schema
          .createIndex('questions_by_quiz')
          .on('questions')
          .columns(['quiz_id', 'position'])
          .execute();
        await db.schema.createIndex('players_by_game').on('players').column('game_id').execute();
        await db.schema
          .createIndex('sessions_by_expiry')
          .on('sessions')
          .column('expires_at')
          .execute();
      },
    },
    '002_game_ended_early': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable('games')
          .addColumn('ended_early', 'integer', (column) => column.notNull().defaultTo(0))
          .execute();
      },
    },
  };
}
