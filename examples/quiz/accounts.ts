import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Db } from './db.js';

/**
 * Accounts and browser sessions: scrypt password hashes, server-side sessions in the database
 * (the cookie holds only a random id), and a CSRF token per session.
 */

const SCRYPT: ScryptOptions = { N: 16_384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_BYTES = 32;
export const SESSION_DAYS = 14;

function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_BYTES, SCRYPT, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

/** `scrypt$N$r$p$salt$hash`, all that is needed to check a password later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt);
  return [
    'scrypt',
    SCRYPT.N,
    SCRYPT.r,
    SCRYPT.p,
    salt.toString('base64url'),
    key.toString('base64url'),
  ].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, , , , salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await derive(password, Buffer.from(salt, 'base64url'));
  return key.length === expected.length && timingSafeEqual(key, expected);
}

export interface Account {
  id: number;
  username: string;
}

export interface BrowserSession {
  id: string;
  csrfToken: string;
  user: Account | undefined;
}

export const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/;
export const MIN_PASSWORD = 8;

/** What is wrong with a registration, as a person would want to hear it; empty if nothing. */
export function registrationProblems(
  username: string,
  password: string,
  confirmation: string,
): string[] {
  const problems: string[] = [];
  if (!USERNAME.test(username)) {
    problems.push('Choose a name of 3 to 32 letters, digits, dots, dashes or underscores.');
  }
  if (password.length < MIN_PASSWORD)
    problems.push(`Use a password of at least ${MIN_PASSWORD} characters.`);
  else if (password !== confirmation) problems.push('The two passwords do not match.');
  return problems;
}

export async function createUser(
  db: Db,
  username: string,
  password: string,
): Promise<Account | undefined> {
  const taken = await db
    .selectFrom('users')
    .select('id')
    .where('username', '=', username)
    .executeTakeFirst();
  if (taken) return undefined;
  const password_hash = await hashPassword(password);
  try {
    return await db
      .insertInto('users')
      .values({ username, password_hash, created_at: Date.now() })
      .returning(['id', 'username'])
      .executeTakeFirstOrThrow();
  } catch (error) {
    // Someone took the name while the password was hashing: the same answer as a taken name.
    const again = await db
      .selectFrom('users')
      .select('id')
      .where('username', '=', username)
      .executeTakeFirst();
    if (again) return undefined;
    throw error;
  }
}

export async function checkLogin(
  db: Db,
  username: string,
  password: string,
): Promise<Account | undefined> {
  const user = await db
    .selectFrom('users')
    .select(['id', 'username', 'password_hash'])
    .where('username', '=', username)
    .executeTakeFirst();
  // Hash even for an unknown name, so that the answer's timing does not say which names exist.
  if (!user) {
    await hashPassword(password);
    return undefined;
  }
  return (await verifyPassword(password, user.password_hash))
    ? { id: user.id, username: user.username }
    : undefined;
}

export async function loadSession(
  db: Db,
  id: string | undefined,
): Promise<BrowserSession | undefined> {
  if (!id || !/^[\w-]{20,64}$/.test(id)) return undefined;
  const row = await db
    .selectFrom('sessions')
    .leftJoin('users', 'users.id', 'sessions.user_id')
    .select([
      'sessions.id',
      'sessions.csrf_token',
      'sessions.expires_at',
      'users.id as user_id',
      'users.username',
    ])
    .where('sessions.id', '=', id)
    .executeTakeFirst();
  if (!row || row.expires_at < Date.now()) return undefined;
  return {
    id: row.id,
    csrfToken: row.csrf_token,
    user:
      row.user_id !== null && row.username !== null
        ? { id: row.user_id, username: row.username }
        : undefined,
  };
}

export async function createSession(db: Db, user?: Account): Promise<BrowserSession> {
  const now = Date.now();
  const session = {
    id: randomBytes(24).toString('base64url'),
    csrfToken: randomBytes(24).toString('base64url'),
    user,
  };
  await db
    .insertInto('sessions')
    .values({
      id: session.id,
      user_id: user?.id ?? null,
      csrf_token: session.csrfToken,
      created_at: now,
      expires_at: now + SESSION_DAYS * 86_400_000,
    })
    .execute();
  // Expired sessions go now and then, not on a timer of their own.
  if (Math.random() < 0.01) await db.deleteFrom('sessions').where('expires_at', '<', now).execute();
  return session;
}

export async function deleteSession(db: Db, id: string): Promise<void> {
  await db.deleteFrom('sessions').where('id', '=', id).execute();
}

/** Compares a submitted CSRF token with the session's, in constant time. */
export function csrfMatches(session: BrowserSession, submitted: unknown): boolean {
  if (typeof submitted !== 'string') return false;
  const a = Buffer.from(session.csrfToken);
  const b = Buffer.from(submitted);
  return a.length === b.length && timingSafeEqual(a, b);
}
