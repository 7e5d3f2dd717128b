/**
 * Child processes of the bench: Node scripts pinned to a core with an IPC channel, request/reply
 * over that channel, free ports, and waiting for a port to answer.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PublisherCommand, PublisherReady, PublisherReply } from './ipc.js';

export const SERVER_CORE = '0';
export const LOAD_CORE = '1';

const here = dirname(fileURLToPath(import.meta.url));
/** Sibling scripts share our extension: .ts under tsx, .js once compiled. */
const scriptExtension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

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

/** `command args` pinned to `core` when taskset exists. */
export function pinned(
  core: string,
  command: string,
  args: string[],
): { command: string; args: string[] } {
  return hasTaskset()
    ? { command: 'taskset', args: ['-c', core, command, ...args] }
    : { command, args };
}

/** The child scripts, bundled once per bench: see {@link bundleChildScripts}. */
const bundled = new Map<string, string>();

/**
 * Under tsx every child would compile its TypeScript (and Perigee's src/) as it starts: about a
 * second per process, twice per run, over a hundred runs. Bundling each script once into plain
 * JavaScript (esbuild, not minified, packages left to node_modules) makes a start cost what
 * Node's own does. The bundles go under node_modules/.cache, where their imports still resolve.
 */
export async function bundleChildScripts(scripts: readonly string[]): Promise<void> {
  if (scriptExtension !== '.ts') return;
  const { build } = await import('esbuild');
  const outdir = join(here, '..', 'node_modules', '.cache', 'perigee-bench');
  mkdirSync(outdir, { recursive: true });
  await Promise.all(
    scripts.map(async (script) => {
      const outfile = join(outdir, `${script.replaceAll('/', '-')}.mjs`);
      await build({
        entryPoints: [join(here, `${script}.ts`)],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        packages: 'external',
        outfile,
        logLevel: 'error',
      });
      bundled.set(script, outfile);
    }),
  );
}

/**
 * Runs bench/`script` (relative, without extension) in Node on `core`, with an IPC channel.
 * taskset execs node, so the child's pid is Node's.
 */
export function spawnNodeScript(
  core: string,
  script: string,
  args: string[],
  nodeFlags: string[] = [],
): ChildProcess {
  const bundle = bundled.get(script);
  const loader =
    bundle === undefined && scriptExtension === '.ts'
      ? ['--import', import.meta.resolve('tsx')]
      : [];
  const { command, args: fullArgs } = pinned(core, process.execPath, [
    ...nodeFlags,
    ...loader,
    bundle ?? join(here, `${script}${scriptExtension}`),
    ...args,
  ]);
  return spawn(command, fullArgs, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
}

/** Keeps the last lines a child wrote on stderr, for a failure's reason. */
export function collectStderr(child: ChildProcess, keep = 20): () => string {
  const lines: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    lines.push(...text.split('\n').filter((line) => line.trim() !== ''));
    if (lines.length > keep) lines.splice(0, lines.length - keep);
  });
  child.stdout?.resume();
  return () => lines.join(' | ');
}

/** A command that expects a reply, before the channel numbers it. */
export type PublisherRequest = PublisherCommand extends infer C
  ? C extends { id: number }
    ? Omit<C, 'id'>
    : never
  : never;

/** Request/reply to a publisher process over IPC. */
export class PublisherChannel {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (reply: PublisherReply) => void; timer: NodeJS.Timeout }
  >();
  private exitReason: string | undefined;

  constructor(
    readonly child: ChildProcess,
    private readonly stderr: () => string,
  ) {
    child.on('message', (message: PublisherReply | PublisherReady) => {
      if (!('id' in message)) return;
      const entry = this.waiting.get(message.id);
      if (!entry) return;
      clearTimeout(entry.timer);
      this.waiting.delete(message.id);
      entry.resolve(message);
    });
    child.once('exit', (code, signal) => {
      this.exitReason = `the process ended (${code ?? signal})${this.stderr() ? `: ${this.stderr()}` : ''}`;
      for (const [id, entry] of this.waiting) {
        clearTimeout(entry.timer);
        entry.resolve({ id, ok: false, error: this.exitReason });
      }
      this.waiting.clear();
    });
  }

  get alive(): boolean {
    return this.exitReason === undefined;
  }

  get deathReason(): string | undefined {
    return this.exitReason;
  }

  /** Waits for the `ready` message the process sends once it listens. */
  ready(timeoutMs: number): Promise<PublisherReady> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`not ready within ${timeoutMs} ms: ${this.stderr()}`));
      }, timeoutMs);
      const onMessage = (message: PublisherReady): void => {
        if (message.type !== 'ready') return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        resolve(message);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(this.exitReason ?? 'the process ended before it was ready'));
      });
    });
  }

  send(command: PublisherCommand): void {
    if (this.alive && this.child.connected) this.child.send(command);
  }

  request(command: PublisherRequest, timeoutMs = 30_000): Promise<PublisherReply> {
    const id = this.nextId++;
    if (!this.alive || !this.child.connected) {
      return Promise.resolve({ id, ok: false, error: this.exitReason ?? 'not connected' });
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve({ id, ok: false, error: `no answer to ${command.cmd} within ${timeoutMs} ms` });
      }, timeoutMs);
      this.waiting.set(id, { resolve, timer });
      this.child.send({ ...command, id });
    });
  }

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.request({ cmd: 'stop' }, 5000);
    const timer = setTimeout(() => this.kill(), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** A port that was free a moment ago (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on `port`; rejects after `timeoutMs`. */
export async function waitForPort(
  port: number,
  timeoutMs: number,
  isAlive: () => boolean = () => true,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (!isAlive()) throw new Error('the process ended before it listened');
    if (Date.now() > until) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
