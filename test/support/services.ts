import { connect as connectTcp } from 'node:net';
import { parseStompUrl } from '../../src/publisher/index.js';

/**
 * Real brokers the tests talk to (see .ci/services.sh and .ci/activemq.sh). A test file asks for
 * one with `await stompService(...)`: when the broker is unreachable, the file's suites are skipped
 * with a printed reason, or, under PERIGEE_REQUIRE_SERVICES=1 (as in CI), the run fails.
 */

export const RABBITMQ_URL =
  process.env.PERIGEE_TEST_RABBITMQ_URL ?? 'stomp://guest:guest@127.0.0.1:61623';
export const ACTIVEMQ_URL =
  process.env.PERIGEE_TEST_ACTIVEMQ_URL ?? 'stomp://guest:guest@127.0.0.1:61633';

const requireServices = process.env.PERIGEE_REQUIRE_SERVICES === '1';

/** Whether a STOMP broker answers CONNECT at `url`. */
export async function stompService(name: string, url: string): Promise<boolean> {
  const reason = await probeStomp(url);
  if (reason === undefined) return true;
  const message = `${name} at ${url.replace(/:[^:@/]*@/, ':***@')} is unreachable (${reason})`;
  if (requireServices)
    throw new Error(
      `${message}; PERIGEE_REQUIRE_SERVICES=1 makes this a failure (start it with .ci/services.sh or .ci/activemq.sh)`,
    );
  console.warn(
    `Skipping ${name} tests: ${message}. Set PERIGEE_REQUIRE_SERVICES=1 to make this a failure.`,
  );
  return false;
}

/** Whether a program can be run (e.g. /usr/bin/python3 with the stomp module). */
export function localTool(name: string, available: boolean, reason: string): boolean {
  if (available) return true;
  if (requireServices)
    throw new Error(`${name} is required (PERIGEE_REQUIRE_SERVICES=1) but ${reason}`);
  console.warn(`Skipping ${name} tests: ${reason}.`);
  return false;
}

function probeStomp(url: string): Promise<string | undefined> {
  const { host, port, login, passcode } = parseStompUrl(url);
  return new Promise((resolve) => {
    const socket = connectTcp({ host, port });
    let reply = '';
    const done = (reason: string | undefined): void => {
      socket.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done('no answer within 5 s'), 5000);
    socket.on('connect', () => {
      socket.write(
        `CONNECT\naccept-version:1.2\nhost:/\nlogin:${login ?? ''}\npasscode:${passcode ?? ''}\nheart-beat:0,0\n\n\0`,
      );
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\0')) {
        clearTimeout(timer);
        socket.end('DISCONNECT\n\n\0');
        done(reply.startsWith('CONNECTED') ? undefined : `it answered ${reply.split('\n')[0]}`);
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      done(error.code ?? error.message);
    });
  });
}
