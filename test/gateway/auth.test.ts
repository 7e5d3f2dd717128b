import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import {
  jwtAuthenticator,
  usersAuthenticator,
  type Authenticate,
  type DestinationRule,
} from '../../src/auth/index.js';
import type { PerigeeError } from '../../src/errors.js';
import type { PerigeeClient } from '../../src/client/browser/index.js';
import { collector, nodeClient, startGateway, type TestGateway } from '../support/gateway.js';
import { until } from './transport-conformance.js';

/** Who a browser is (logins, JWTs), and what that lets it do (rules with {principal}). */

const RULES: DestinationRule[] = [
  { pattern: '/user/{principal}/**', subscribe: 'authenticated', send: 'nobody' },
  { pattern: '/members/**', subscribe: 'authenticated', send: 'authenticated' },
  { pattern: '/public/**', subscribe: 'anyone', send: 'nobody' },
];
const SECRET = 'a test secret that is long enough for HS256';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function gatewayWith(authenticate: Authenticate): Promise<TestGateway> {
  const gateway = await startGateway({ rules: RULES, authenticate });
  cleanups.push(() => gateway.close());
  return gateway;
}

function client(url: string, options: Parameters<typeof nodeClient>[1]): PerigeeClient {
  const created = nodeClient(url, {
    transports: ['websocket'],
    reconnect: { initialDelay: 20, maxDelay: 100 },
    ...options,
  });
  cleanups.push(() => created.disconnect().catch(() => undefined));
  return created;
}

function token(subject: string, expiresIn: string | number): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(SECRET));
}

describe('logins', () => {
  it('a login and passcode from the users table make the browser its user', async () => {
    const gateway = await gatewayWith(usersAuthenticator({ alice: 'wonderland' }));
    const alice = client(gateway.url, { login: 'alice', passcode: 'wonderland' });
    const inbox = collector();
    await alice.subscribe('/user/alice/inbox', inbox.handler).ready;
    gateway.broker.publishNow('/user/alice/inbox', 'for alice');
    expect((await inbox.next()).text).toBe('for alice');
  });

  it('a wrong passcode is refused, and said so', async () => {
    const gateway = await gatewayWith(usersAuthenticator({ alice: 'wonderland' }));
    const mallory = client(gateway.url, { login: 'alice', passcode: 'guess' });
    const error = await new Promise<PerigeeError>((resolve) => mallory.on('error', resolve));
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(error.message).not.toContain('guess');
  });

  it('{principal} binds a rule to the logged-in user: alice may not read bob’s inbox', async () => {
    const gateway = await gatewayWith(usersAuthenticator({ alice: 'wonderland' }));
    const alice = client(gateway.url, { login: 'alice', passcode: 'wonderland' });
    await expect(alice.subscribe('/user/bob/inbox', () => {}).ready).rejects.toThrow(
      /SUBSCRIBE to \/user\/bob\/inbox refused/,
    );
  });

  it('an anonymous browser gets only what anyone may have', async () => {
    const gateway = await gatewayWith(usersAuthenticator({ alice: 'wonderland' }));
    const anonymous = client(gateway.url, {});
    await expect(anonymous.subscribe('/public/news', () => {}).ready).resolves.toEqual({});
    const members = anonymous.subscribe('/members/chat', () => {});
    await expect(members.ready).rejects.toThrow(/subscribe = "authenticated".*log in first/);
  });
});

describe('JSON Web Tokens', () => {
  it('getToken runs before every connect, so an expired token is never sent again', async () => {
    const gateway = await gatewayWith(jwtAuthenticator({ secret: SECRET }));
    const issued: string[] = [];
    let calls = 0;
    const browser = client(gateway.url, {
      getToken: async () => {
        calls++;
        // The first token has already expired; every later one is fresh.
        const fresh = await token(
          'carol',
          calls === 1 ? Math.floor(Date.now() / 1000) - 60 : '10m',
        );
        issued.push(fresh);
        return fresh;
      },
    });
    const errors: PerigeeError[] = [];
    browser.on('error', (error) => errors.push(error));
    const inbox = collector();
    await browser.subscribe('/user/carol/inbox', inbox.handler).ready;
    expect(errors.some((error) => /token has expired/.test(error.message))).toBe(true);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(new Set(issued).size).toBe(issued.length);
    // A later reconnect asks for a token again.
    const before = calls;
    browser.reconnect('test');
    await until(() => calls > before && browser.state === 'open');
    gateway.broker.publishNow('/user/carol/inbox', 'hello carol');
    expect((await inbox.next()).text).toBe('hello carol');
  });

  it('a token signed with another key is refused', async () => {
    const gateway = await gatewayWith(jwtAuthenticator({ secret: SECRET }));
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('admin')
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode('not the secret, but long enough anyway'));
    const browser = client(gateway.url, { getToken: () => forged });
    const error = await new Promise<PerigeeError>((resolve) => browser.on('error', resolve));
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(error.message).toMatch(/token is not valid/);
  });
});
