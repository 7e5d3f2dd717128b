import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { createFrame, encodeFrame, getHeader } from '../../src/protocol/index.js';
import { TcpFrameSession } from '../support/frame-session.js';

/** The `perigee` command as a user runs it: real processes, real ports, exit codes and output. */

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function perigee(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

function finished(child: ChildProcess): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function run(args: string[], env: Record<string, string> = {}): Promise<Finished> {
  return finished(perigee(args, env));
}

/** Expects the one-line refusal of a bad command line or config, with exit code 2. */
async function expectUsageError(
  args: string[],
  message: RegExp,
  env: Record<string, string> = {},
): Promise<void> {
  const result = await run(args, env);
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(message);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
}

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'perigee-cli-')), 'perigee.toml');
  writeFileSync(file, text);
  return file;
}

interface Served {
  child: ChildProcess;
  http: URL;
  stompPort: number | undefined;
  output: () => string;
  /** Resolves when a log line with this `msg` has been printed. */
  logged: (msg: string) => Promise<void>;
}

/** Starts `perigee serve` on free ports and reads the URLs it logs. */
async function serve(args: string[] = [], env: Record<string, string> = {}): Promise<Served> {
  const child = perigee(['serve', '--http', '127.0.0.1:0', '--stomp', '127.0.0.1:0', ...args], env);
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const lines = createInterface({ input: child.stdout! });
  let http: URL | undefined;
  let stompPort: number | undefined;
  const messages = new Set<string>();
  const waiting: { msg: string; resolve: () => void }[] = [];
  lines.on('line', (line) => {
    const { msg } = JSON.parse(line) as { msg: string };
    messages.add(msg);
    for (const waiter of waiting.filter((entry) => entry.msg === msg)) waiter.resolve();
  });
  const logged = (msg: string): Promise<void> =>
    messages.has(msg)
      ? Promise.resolve()
      : new Promise((resolve) => waiting.push({ msg, resolve }));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${output}`)));
    lines.on('line', (line) => {
      output += `${line}\n`;
      const entry = JSON.parse(line) as { msg: string; url?: string };
      if (entry.msg === 'HTTP listening') http = new URL(entry.url!);
      if (entry.msg === 'STOMP listening')
        stompPort = Number(new URL(entry.url!.replace('stomp:', 'http:')).port);
      if (entry.msg === 'STOMP TCP listener off') stompPort = undefined;
      if (http && (stompPort !== undefined || entry.msg === 'STOMP TCP listener off')) resolve();
    });
  });
  return { child, http: http!, stompPort, output: () => output, logged };
}

/**
 * What a new client gets from the STOMP port: 'refused' when nothing listens, else the bytes the
 * server sent in answer to CONNECT before the connection ended ('' if it was reset unanswered).
 */
function connectAttempt(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    let reply = '';
    let refused = false;
    socket.on('connect', () => socket.write('CONNECT\naccept-version:1.2\nhost:/\n\n\0'));
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') refused = true;
    });
    socket.on('close', () => resolve(refused ? 'refused' : reply));
  });
}

async function freePortTaken(): Promise<{ port: number; release: () => Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    release: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('perigee --help', () => {
  it('lists the commands and exits 0', async () => {
    const result = await run(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/serve/);
    expect(result.stdout).toMatch(/publish/);
    expect(result.stdout).toMatch(/bench/);
  });

  it('has help for each command', async () => {
    for (const command of ['serve', 'publish']) {
      const result = await run([command, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/--/);
    }
  });
});

describe('bad flags and configuration: one line, exit code 2', () => {
  it('an unknown flag', () => expectUsageError(['serve', '--bogus'], /unknown option '--bogus'/));

  it('an unknown command', () => expectUsageError(['frobnicate'], /unknown command 'frobnicate'/));

  it('a malformed address', () =>
    expectUsageError(['serve', '--http', 'nope'], /--http: expected HOST:PORT/));

  it('a malformed address in the environment', () =>
    expectUsageError(['serve'], /PERIGEE_STOMP: expected HOST:PORT/, {
      PERIGEE_STOMP: 'localhost',
    }));

  it('a missing config file', () =>
    expectUsageError(
      ['serve', '--config', '/nonexistent/perigee.toml'],
      /\/nonexistent\/perigee.toml: no such file/,
    ));

  it('a config file that is not TOML', () =>
    expectUsageError(
      ['serve', '--config', configFile('[listen\nhttp = 1')],
      /not valid TOML at line 1/,
    ));

  it('an unknown key names the key, the file and the known keys', async () => {
    const file = configFile('[broker]\nhistroy = 10\n');
    await expectUsageError(
      ['serve', '--config', file],
      new RegExp(`${file}: unknown key broker.histroy \\(known in \\[broker\\]: mode, history`),
    );
  });

  it('an unknown section', () =>
    expectUsageError(
      ['serve', '--config', configFile('[brokers]\n')],
      /unknown section \[brokers\]/,
    ));

  it('a value of the wrong type', () =>
    expectUsageError(
      ['serve', '--config', configFile('[broker]\nhistory = "lots"\n')],
      /broker.history must be an integer, got "lots"/,
    ));

  it('a metrics access that does not exist', () =>
    expectUsageError(
      ['serve', '--config', configFile('[metrics]\naccess = "public"\n')],
      /metrics.access must be one of "loopback", "open", "off", got "public"/,
    ));

  it('a value out of range', () =>
    expectUsageError(
      ['serve', '--config', configFile('[broker]\nhistory = -1\n')],
      /broker.history must be an integer from 0 to 1000000/,
    ));

  it('a bad size', () =>
    expectUsageError(
      ['serve', '--config', configFile('[session]\nmax_queued_bytes = "lots"\n')],
      /session.max_queued_bytes must be a size in bytes/,
    ));

  it('a publish header without a colon', () =>
    expectUsageError(
      ['publish', '/a', 'b', '--header', 'novalue'],
      /--header: expected NAME:VALUE/,
    ));

  it('a STOMP listener open to the network without users', () =>
    expectUsageError(
      ['serve', '--http', '127.0.0.1:0', '--stomp', '0.0.0.0:0'],
      /reachable from the network and would accept anyone/,
    ));

  it('a taken STOMP port names the port and the flag', async () => {
    const taken = await freePortTaken();
    try {
      await expectUsageError(
        ['serve', '--http', '127.0.0.1:0', '--stomp', `127.0.0.1:${taken.port}`],
        new RegExp(
          `${taken.port} is in use \\(another STOMP broker\\?\\): use --stomp HOST:PORT or --stomp off`,
        ),
      );
    } finally {
      await taken.release();
    }
  });

  it('a taken HTTP port names the port and the flag', async () => {
    const taken = await freePortTaken();
    try {
      await expectUsageError(
        ['serve', '--http', `127.0.0.1:${taken.port}`, '--stomp', 'off'],
        new RegExp(`${taken.port} is in use: use --http HOST:PORT`),
      );
    } finally {
      await taken.release();
    }
  });
});

describe('perigee serve', () => {
  it('logs its URLs, answers /healthz, and takes messages from perigee publish', async () => {
    const served = await serve(['--config', configFile('[metrics]\naccess = "loopback"\n')]);
    const health = await fetch(new URL('/healthz', served.http));
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe('ok');

    const subscriber = await TcpFrameSession.connect({ port: served.stompPort! });
    subscriber.send('SUBSCRIBE', { id: '1', destination: '/games/1/status', receipt: 's' });
    await subscriber.receipt('s');
    const published = await run([
      'publish',
      '/games/1/status',
      '{"state":"lobby"}',
      '--url',
      `stomp://127.0.0.1:${served.stompPort}`,
      '--header',
      'content-type:application/json',
    ]);
    expect(published.code).toBe(0);
    const message = await subscriber.nextOf('MESSAGE');
    expect(new TextDecoder().decode(message.body)).toBe('{"state":"lobby"}');
    expect(getHeader(message, 'content-type')).toBe('application/json');
    subscriber.close();
    // The same figures for Prometheus: the broker's, with the gateway's and the process's.
    const metrics = await fetch(new URL('/metrics', served.http));
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await metrics.text();
    expect(text).toMatch(/^perigee_broker_messages_published_total 1$/m);
    expect(text).toMatch(/^perigee_broker_messages_delivered_total 1$/m);
    expect(text).toMatch(/^perigee_gateway_connections\{transport="websocket"\} 0$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
  });

  it('serves no /metrics unless [metrics] access says who may read it', async () => {
    const served = await serve();
    const metrics = await fetch(new URL('/metrics', served.http));
    expect(metrics.status).toBe(404);
  });

  it('on SIGTERM answers the receipts still owed, then tells clients to reconnect, and exits 0', async () => {
    const served = await serve();
    const exit = finished(served.child);
    const port = served.stompPort!;
    const client = await TcpFrameSession.connect({ port });
    // A peer that never hangs up holds the broker in its bounded drain: the process is still
    // running, shutting down, when the listener is checked below.
    const lingering = connectTcp({ host: '127.0.0.1', port, allowHalfOpen: true });
    await new Promise<void>((resolve) => lingering.once('connect', () => resolve()));
    lingering.on('error', () => {});
    const receipts = Array.from({ length: 20 }, (_, i) => `owed-${i}`);
    const frames = receipts.map((receipt, i) =>
      encodeFrame(
        createFrame(
          'SEND',
          [
            ['destination', '/queue/shutdown'],
            ['receipt', receipt],
          ],
          `m${i}`,
        ),
        '1.2',
      ),
    );
    // One write and the signal right behind it, unawaited: the RECEIPTs are owed when it lands.
    client.sendBytes(Buffer.concat(frames));
    served.child.kill('SIGTERM');

    for (const receipt of receipts) {
      const frame = await client.next();
      expect(frame.command).toBe('RECEIPT');
      expect(getHeader(frame, 'receipt-id')).toBe(receipt);
    }
    const error = await client.next();
    expect(error.command).toBe('ERROR');
    expect(getHeader(error, 'message')).toMatch(/shutting down/);
    await client.closed;

    // The broker closes its listener before it sends that ERROR, and the process still runs.
    expect(await connectAttempt(port)).toBe('refused');
    expect(served.child.exitCode).toBeNull();
    const result = await exit;
    expect(result.code).toBe(0);
    expect(served.output()).toMatch(/"msg":"stopped"/);
    lingering.destroy();
  });

  it('on SIGTERM stops accepting STOMP connections at once, not after the drain', async () => {
    const served = await serve();
    const exit = finished(served.child);
    const port = served.stompPort!;
    // Keeps the process in its drain, so that the attempt below meets a running process.
    const lingering = connectTcp({ host: '127.0.0.1', port, allowHalfOpen: true });
    await new Promise<void>((resolve) => lingering.once('connect', () => resolve()));
    lingering.on('error', () => {});
    served.child.kill('SIGTERM');
    await served.logged('shutting down');
    // Refused, or reset unanswered if it raced the listener's close; never CONNECTED.
    expect(['refused', '']).toContain(await connectAttempt(port));
    expect(served.child.exitCode).toBeNull();
    expect((await exit).code).toBe(0);
    lingering.destroy();
  });

  it('PERIGEE_STOMP=off runs without the TCP listener', async () => {
    const child = perigee(['serve', '--http', '127.0.0.1:0'], { PERIGEE_STOMP: 'off' });
    const lines = createInterface({ input: child.stdout! });
    const messages: string[] = [];
    await new Promise<void>((resolve) =>
      lines.on('line', (line) => {
        messages.push((JSON.parse(line) as { msg: string }).msg);
        if (messages.includes('STOMP TCP listener off')) resolve();
      }),
    );
    expect(messages).toContain('HTTP listening');
  });

  it('the --stomp flag wins over PERIGEE_STOMP and the config file', async () => {
    const file = configFile('[listen]\nstomp = "127.0.0.1:1"\n');
    const served = await serve(['--config', file], { PERIGEE_STOMP: '127.0.0.1:2' });
    expect(served.stompPort).toBeGreaterThan(2);
  });

  it('never writes a passcode to its logs', async () => {
    const file = configFile(
      '[stomp]\nusers = { alice = "s3cret-passcode" }\n[log]\nlevel = "trace"\n',
    );
    const served = await serve(['--config', file]);
    const wrong = await TcpFrameSession.openSocket(served.stompPort!);
    wrong.send('CONNECT', {
      'accept-version': '1.2',
      login: 'alice',
      passcode: 'guessed-passcode',
    });
    await wrong.error();
    const right = await TcpFrameSession.connect({
      port: served.stompPort!,
      login: 'alice',
      passcode: 's3cret-passcode',
    });
    right.send('DISCONNECT', { receipt: 'bye' });
    await right.receipt('bye');
    served.child.kill('SIGTERM');
    await finished(served.child);
    expect(served.output()).not.toMatch(/s3cret-passcode|guessed-passcode/);
  });
});

describe('perigee publish', () => {
  it('fails with one line and exit 1 when no broker answers', async () => {
    const taken = await freePortTaken();
    await taken.release();
    const result = await run(['publish', '/a', 'b', '--url', `stomp://127.0.0.1:${taken.port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`cannot reach stomp://127.0.0.1:${taken.port}`));
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('hides the passcode of the URL in its messages', async () => {
    const taken = await freePortTaken();
    await taken.release();
    const result = await run([
      'publish',
      '/a',
      'b',
      '--url',
      `stomp://alice:hunter2@127.0.0.1:${taken.port}`,
    ]);
    expect(result.stderr).toMatch(/alice:\*\*\*@/);
    expect(result.stderr).not.toMatch(/hunter2/);
  });
});
