/**
 * The brokers under test: the embedded broker in a child process of our own, and the system's
 * RabbitMQ, whose threads are pinned to the server core for the duration of its runs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StompUrl } from './options.js';
import type { StompTarget } from './spec.js';
import { describeErrorFrame, encodeFrame, FIRST_OCTET, FrameScanner } from './wire.js';

export const SERVER_CORE = '0';
export const LOAD_GENERATOR_CORE = '1';

const here = dirname(fileURLToPath(import.meta.url));
/** Sibling scripts share our extension: .ts under tsx, .js once compiled. */
const scriptExtension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** A process command line that runs a sibling script, pinned to `core` when taskset exists. */
export function pinnedNodeCommand(
  core: string,
  script: string,
  nodeFlags: string[] = [],
): { command: string; args: string[] } {
  const loader = scriptExtension === '.ts' ? ['--import', import.meta.resolve('tsx')] : [];
  const node = [
    process.execPath,
    ...nodeFlags,
    ...loader,
    join(here, `${script}${scriptExtension}`),
  ];
  return hasTaskset()
    ? { command: 'taskset', args: ['-c', core, ...node] }
    : { command: node[0]!, args: node.slice(1) };
}

let tasksetAvailable: boolean | undefined;
export function hasTaskset(): boolean {
  if (tasksetAvailable === undefined) {
    try {
      execFileSync('taskset', ['-V'], { stdio: 'ignore' });
      tasksetAvailable = true;
    } catch {
      tasksetAvailable = false;
    }
  }
  return tasksetAvailable;
}

/** Kernel clock ticks per second, the unit of /proc/PID/stat CPU times. */
export function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/**
 * Connects, sends CONNECT and reports the CONNECTED frame's `server` header, or throws with a
 * one-line reason (refused, ERROR frame, no answer).
 */
export function probeStomp(target: StompTarget, timeoutMs = 3000): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    const finish = (error: Error | undefined, server = ''): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(server);
    };
    const timer = setTimeout(
      () => finish(new Error(`no CONNECTED within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const scanner = new FrameScanner((data, start, end) => {
      if (data[start] === FIRST_OCTET.CONNECTED) {
        const server = /^server:(.*)$/m.exec(data.toString('utf8', start, end))?.[1] ?? 'unknown';
        finish(undefined, server);
      } else if (data[start] === FIRST_OCTET.ERROR) {
        finish(new Error(`ERROR frame: ${describeErrorFrame(data, start, end)}`));
      }
    });
    socket.on('data', (chunk: Buffer) => scanner.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish(new Error(error.code ?? error.message)),
    );
    socket.on('close', () => finish(new Error('closed before CONNECTED')));
    socket.on('connect', () => {
      const headers: Record<string, string> = {
        'accept-version': '1.2',
        host: target.virtualHost,
        'heart-beat': '0,0',
      };
      if (target.login !== undefined) headers.login = target.login;
      if (target.passcode !== undefined) headers.passcode = target.passcode;
      socket.write(encodeFrame('CONNECT', headers));
    });
  });
}

/** What every target offers the orchestrator. */
export interface BenchTarget {
  readonly name: string;
  /** The CONNECTED `server` header, e.g. RabbitMQ/3.10.8. */
  readonly serverVersion: string;
  readonly stomp: StompTarget;
  /** The broker's process, whose CPU time the load generator reads; 0 if unknown. */
  readonly pid: number;
  /** Notes for the report (pinning that could not be done, restarts). */
  readonly notes: string[];
  /** Brings the broker back if it died (after a failed run); resolves to a note if it did. */
  ensureRunning(): Promise<string | undefined>;
  /** Whatever the target changed on the machine is undone here; also called on SIGINT. */
  stopNow(): void;
  stop(): Promise<void>;
}

/** The embedded broker in `server.ts`, pinned to the server core. */
export class EmbeddedTarget implements BenchTarget {
  readonly name = 'embedded';
  serverVersion = '';
  stomp: StompTarget = { host: '127.0.0.1', port: 0, virtualHost: 'localhost' };
  pid = 0;
  readonly notes: string[] = [];
  /** The broker's counters, printed by server.ts as it stops. */
  readonly finalStats: unknown[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(private readonly profileDirectory: string | undefined) {}

  async start(): Promise<void> {
    const nodeFlags: string[] = [];
    if (this.profileDirectory) {
      mkdirSync(this.profileDirectory, { recursive: true });
      nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${this.profileDirectory}`);
    }
    const { command, args } = pinnedNodeCommand(SERVER_CORE, 'server', nodeFlags);
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.stopping = false;
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderr += text;
    });
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        for (const line of stderr.split('\n')) {
          if (line.startsWith('{"stats"')) {
            this.finalStats.push((JSON.parse(line) as { stats: unknown }).stats);
          }
        }
        resolve();
      });
    });
    const port = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(
        () => reject(new Error('server.ts printed no port in 30 s')),
        30_000,
      );
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (text: string) => {
        stdout += text;
        const line = /^\{.*\}$/m.exec(stdout)?.[0];
        if (line === undefined) return;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(
          new Error(`server.ts exited (${code}) before listening: ${stderr.trim().split('\n')[0]}`),
        );
      });
    });
    // taskset execs node, so the child's pid is the broker's.
    this.pid = child.pid ?? 0;
    this.stomp = { ...this.stomp, port };
    this.serverVersion = await probeStomp(this.stomp);
  }

  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  async ensureRunning(): Promise<string | undefined> {
    if (this.running) return undefined;
    const how = this.child
      ? `exit code ${this.child.exitCode ?? this.child.signalCode}`
      : 'not started';
    await this.start();
    const note = `the embedded broker's process had ended (${how}) and was restarted`;
    this.notes.push(note);
    return note;
  }

  stopNow(): void {
    if (this.running) this.child!.kill('SIGTERM');
  }

  /** Closing stdin asks server.ts to stop; it exits on its own, so a profile gets written. */
  async stop(): Promise<void> {
    if (!this.child || this.stopping) return this.exited;
    this.stopping = true;
    const child = this.child;
    child.stdin?.end();
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(killer);
  }
}

/**
 * The system RabbitMQ. Its STOMP plugin runs inside beam.smp, whose threads (every scheduler)
 * are pinned to the server core for the runs and given all cores back afterwards.
 */
export class RabbitMqTarget implements BenchTarget {
  readonly name = 'rabbitmq';
  serverVersion = '';
  readonly stomp: StompTarget;
  pid = 0;
  readonly notes: string[] = [];
  private pinned = false;

  constructor(url: StompUrl) {
    this.stomp = {
      host: url.host,
      port: url.port,
      virtualHost: url.virtualHost,
      login: url.login,
      passcode: url.passcode,
    };
  }

  /** Resolves to a one-line reason when RabbitMQ cannot be used, else undefined. */
  async check(): Promise<string | undefined> {
    try {
      this.serverVersion = await probeStomp(this.stomp);
      return undefined;
    } catch (error) {
      return `RabbitMQ STOMP at ${this.stomp.host}:${this.stomp.port} is unreachable (${(error as Error).message}); start it with: bash .ci/services.sh`;
    }
  }

  start(): void {
    this.pid = listeningPid(this.stomp.port);
    if (this.pid === 0) {
      this.notes.push(
        `could not find the process listening on ${this.stomp.port}: RabbitMQ ran unpinned`,
      );
      return;
    }
    if (!hasTaskset()) {
      this.notes.push('taskset is missing: RabbitMQ ran unpinned');
      return;
    }
    try {
      execFileSync('taskset', ['-a', '-p', '-c', SERVER_CORE, String(this.pid)], {
        stdio: 'ignore',
      });
      this.pinned = true;
    } catch (error) {
      this.notes.push(
        `could not pin RabbitMQ (pid ${this.pid}) to core ${SERVER_CORE}: ${(error as Error).message.split('\n')[0]}`,
      );
    }
  }

  ensureRunning(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }

  /** Gives every core back to all of beam.smp's threads. Synchronous: it runs on SIGINT too. */
  stopNow(): void {
    if (!this.pinned) return;
    const allCores = `0-${cpus().length - 1}`;
    try {
      execFileSync('taskset', ['-a', '-p', '-c', allCores, String(this.pid)], { stdio: 'ignore' });
      this.pinned = false;
    } catch (error) {
      process.stderr.write(
        `bench:broker: could not restore RabbitMQ's CPU affinity; run: taskset -a -p -c ${allCores} ${this.pid} (${(error as Error).message.split('\n')[0]})\n`,
      );
    }
  }

  stop(): Promise<void> {
    this.stopNow();
    return Promise.resolve();
  }
}

/** The pid of the local process listening on TCP `port`, from `ss`; 0 if unknown. */
function listeningPid(port: number): number {
  try {
    const output = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
    const match = /pid=(\d+)/.exec(output);
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}
