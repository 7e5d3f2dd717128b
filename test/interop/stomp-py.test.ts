import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type EmbeddedBroker } from '../../src/broker/index.js';
import { localTool } from '../support/services.js';

/**
 * stomp.py, the talk's own STOMP client (Debian's python3-stomp, run with /usr/bin/python3: the
 * first python3 on PATH may be a build that cannot see Debian's packages).
 */

const PYTHON = '/usr/bin/python3';
const run = promisify(execFile);

async function stompPyInstalled(): Promise<boolean> {
  if (!existsSync(PYTHON)) return false;
  try {
    await run(PYTHON, ['-c', 'import stomp']);
    return true;
  } catch {
    return false;
  }
}

const available = localTool(
  'stomp.py',
  await stompPyInstalled(),
  `${PYTHON} cannot import stomp (apt-get install python3-stomp)`,
);

describe.runIf(available)('stomp.py against the embedded broker', () => {
  let broker: EmbeddedBroker;
  let port: number;
  beforeAll(async () => {
    broker = createBroker({ users: { guest: 'guest' } });
    port = (await broker.listen({ port: 0 })).port;
  });
  afterAll(() => broker.close({ drainMs: 100 }));

  it('publishes and subscribes on topics and queues, with acks, NACK, transactions and receipts', async () => {
    const script = new URL('./stomp_py_session.py', import.meta.url).pathname;
    const { stdout } = await run(PYTHON, [script, String(port)], { timeout: 30_000 });
    const result = JSON.parse(stdout) as {
      topic: Record<string, unknown>;
      queue: Record<string, unknown>;
      transaction: string;
      errors: string[];
    };
    expect(result.topic).toEqual({
      a: '{"state": "question"}',
      b: '{"state": "question"}',
      content_type: 'application/json',
      destination: '/games/1/status',
      has_offset: true,
    });
    expect(result.queue).toEqual({
      first: 'job-1',
      second: 'job-2',
      redelivered: 'job-1',
      redelivered_flag: 'true',
    });
    expect(result.transaction).toBe('committed');
    expect(result.errors).toEqual([]);
    expect(broker.stats().queuedMessages).toBe(0);
  });
});
