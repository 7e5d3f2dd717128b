/**
 * The orchestrator's handle on each server under test: starting it pinned to the server core on
 * free ports, its publisher channel, its memory, and stopping it (also synchronously, on Ctrl-C).
 * External servers get a temporary directory of their own, removed when they stop; nothing of the
 * machine's configuration is touched.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerKind } from '../catalog.js';
import {
  collectStderr,
  freePort,
  LOAD_CORE,
  pinned,
  PublisherChannel,
  SERVER_CORE,
  spawnNodeScript,
  waitForPort,
} from '../children.js';
import { processTree, processTreeRss } from '../procfs.js';
import type { AdapterConfig } from './adapter.js';

/** The server cannot run here; the reason goes into the report. */
export class NotAvailable extends Error {}

export interface MemoryReading {
  rss: number | null;
  heapUsed: number | null;
}

export interface ServerUnderTest {
  readonly kind: ServerKind;
  /** Where clients connect. */
  port: number;
  /** The server's processes, for CPU and RSS from /proc. */
  pids: number[];
  about: string;
  publisher: PublisherChannel;
  readonly notes: string[];
  /** Set once a run has used it. */
  used: boolean;
  start(): Promise<void>;
  alive(): boolean;
  memory(): Promise<MemoryReading>;
  stop(): Promise<void>;
  /** Synchronous, for signal handlers: kill what runs and remove temporary files. */
  stopNow(): void;
}

const STARTUP_TIMEOUT_MS = 60_000;

/** A Node server from node-server.ts: server and publisher in one process. */
/** Extra flags for the Node servers under test (`--cpu-prof`), set once per bench. */
const nodeServerFlags: string[] = [];

/** Profiles every Node server under test: one .cpuprofile per server process, in `directory`. */
export function profileNodeServers(directory: string): void {
  nodeServerFlags.push('--cpu-prof', `--cpu-prof-dir=${directory}`);
}

class NodeServer implements ServerUnderTest {
  used = false;
  port = 0;
  pids: number[] = [];
  about = '';
  publisher!: PublisherChannel;
  readonly notes: string[] = [];

  constructor(readonly kind: ServerKind) {}

  async start(): Promise<void> {
    const child = spawnNodeScript(
      SERVER_CORE,
      'servers/node-server',
      [this.kind],
      ['--expose-gc', ...nodeServerFlags],
    );
    this.publisher = new PublisherChannel(child, collectStderr(child));
    const ready = await this.publisher.ready(STARTUP_TIMEOUT_MS);
    this.port = ready.port;
    this.about = ready.about;
    this.pids = [child.pid ?? 0];
  }

  alive(): boolean {
    return this.publisher.alive;
  }

  async memory(): Promise<MemoryReading> {
    const reply = await this.publisher.request({ cmd: 'memory' });
    if (!reply.ok) throw new Error(reply.error);
    return { rss: reply.rss ?? null, heapUsed: reply.heapUsed ?? null };
  }

  stop(): Promise<void> {
    return this.publisher.stop();
  }

  stopNow(): void {
    this.publisher?.kill();
  }
}

/** External servers: their own processes, plus a Node publisher adapter on the load core. */
abstract class ExternalServer implements ServerUnderTest {
  used = false;
  port = 0;
  pids: number[] = [];
  about = '';
  publisher!: PublisherChannel;
  readonly notes: string[] = [];
  protected directory: string | undefined;
  protected process: ChildProcess | undefined;
  protected processStderr: () => string = () => '';

  constructor(readonly kind: ServerKind) {}

  abstract start(): Promise<void>;

  protected makeDirectory(): string {
    this.directory = mkdtempSync(join(tmpdir(), `perigee-bench-${this.kind}-`));
    return this.directory;
  }

  protected async startAdapter(config: AdapterConfig): Promise<number> {
    const child = spawnNodeScript(LOAD_CORE, 'servers/adapter', [
      this.kind,
      JSON.stringify(config),
    ]);
    this.publisher = new PublisherChannel(child, collectStderr(child));
    const ready = await this.publisher.ready(STARTUP_TIMEOUT_MS);
    return ready.port;
  }

  protected spawnServer(
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
  ): ChildProcess {
    const pinnedCommand = pinned(SERVER_CORE, command, args);
    const child = spawn(pinnedCommand.command, pinnedCommand.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    this.process = child;
    this.processStderr = collectStderr(child);
    return child;
  }

  alive(): boolean {
    const processAlive =
      this.process === undefined ||
      (this.process.exitCode === null && this.process.signalCode === null);
    return processAlive && this.publisher?.alive !== false && this.pids.every(isRunning);
  }

  memory(): Promise<MemoryReading> {
    return Promise.resolve({ rss: processTreeRss(this.pids), heapUsed: null });
  }

  async stop(): Promise<void> {
    await this.publisher?.stop();
    await this.stopServer();
    this.removeDirectory();
  }

  protected async stopServer(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  stopNow(): void {
    this.publisher?.kill();
    this.process?.kill('SIGKILL');
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.removeDirectory();
  }

  protected removeDirectory(): void {
    if (this.directory) rmSync(this.directory, { recursive: true, force: true });
    this.directory = undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';

/**
 * A private RabbitMQ node with rabbitmq_web_stomp on free ports: its own node name, config,
 * database and logs in a temporary directory, so the system's RabbitMQ (and its STOMP listener
 * on 61623 that the tests use) is never restarted or reconfigured. One scheduler (+S 1:1): the
 * node gets one core, like every server here.
 */
class RabbitMqServer extends ExternalServer {
  private env: NodeJS.ProcessEnv = {};

  constructor() {
    super('rabbitmq');
  }

  async start(): Promise<void> {
    if (!existsSync(join(RABBITMQ_BIN, 'rabbitmq-server'))) {
      throw new NotAvailable('RabbitMQ is not installed (apt-get install rabbitmq-server)');
    }
    const plugins = rabbitmqPluginsDirectory();
    if (
      plugins === undefined ||
      !readdirSync(plugins).some((name) => name.startsWith('rabbitmq_web_stomp-'))
    ) {
      throw new NotAvailable('the rabbitmq_web_stomp plugin is not in this RabbitMQ installation');
    }
    const directory = this.makeDirectory();
    const [webStompPort, stompPort, distPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    writeFileSync(
      join(directory, 'rabbitmq.conf'),
      [
        'listeners.tcp = none',
        `stomp.listeners.tcp.1 = 127.0.0.1:${stompPort}`,
        `web_stomp.tcp.port = ${webStompPort}`,
        'web_stomp.tcp.ip = 127.0.0.1',
        'web_stomp.tcp.backlog = 4096',
        'log.console = false',
        '',
      ].join('\n'),
    );
    writeFileSync(join(directory, 'enabled_plugins'), '[rabbitmq_web_stomp].\n');
    writeFileSync(join(directory, 'rabbitmq-env.conf'), '');
    const pidFile = join(directory, 'rabbit.pid');
    this.env = {
      ...process.env,
      PATH: `${RABBITMQ_BIN}:${process.env.PATH ?? ''}`,
      HOME: directory,
      RABBITMQ_NODENAME: `perigee-bench-${process.pid}@localhost`,
      RABBITMQ_CONFIG_FILE: join(directory, 'rabbitmq'),
      RABBITMQ_CONF_ENV_FILE: join(directory, 'rabbitmq-env.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(directory, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: join(directory, 'mnesia'),
      RABBITMQ_LOG_BASE: join(directory, 'log'),
      RABBITMQ_PID_FILE: pidFile,
      RABBITMQ_DIST_PORT: String(distPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_CRASH_DUMP: join(directory, 'erl_crash.dump'),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '+S 1:1 -kernel inet_dist_use_interface {127,0,0,1}',
    };
    const pinnedCommand = pinned(SERVER_CORE, join(RABBITMQ_BIN, 'rabbitmq-server'), ['-detached']);
    try {
      execFileSync(pinnedCommand.command, pinnedCommand.args, {
        env: this.env,
        cwd: directory,
        stdio: 'pipe',
        timeout: 30_000,
      });
      execFileSync(join(RABBITMQ_BIN, 'rabbitmqctl'), ['wait', '--timeout', '60', pidFile], {
        env: this.env,
        stdio: 'pipe',
        timeout: 70_000,
      });
    } catch (error) {
      const log = readLogTail(directory);
      this.stopNow();
      throw new Error(`RabbitMQ did not start: ${firstLine(error)}${log ? ` (log: ${log})` : ''}`, {
        cause: error,
      });
    }
    const beam = Number(readFileSync(pidFile, 'utf8').trim());
    this.pids = processTree(beam);
    await waitForPort(webStompPort, STARTUP_TIMEOUT_MS);
    this.port = webStompPort;
    await this.startAdapter({ publishPort: stompPort });
    const version = this.ctl(['version']).trim();
    this.about = `RabbitMQ ${version}, rabbitmq_web_stomp, private node (+S 1:1)`;
  }

  private ctl(args: string[]): string {
    try {
      return execFileSync(join(RABBITMQ_BIN, 'rabbitmqctl'), args, {
        env: this.env,
        encoding: 'utf8',
        timeout: 30_000,
      });
    } catch {
      return '';
    }
  }

  protected override stopServer(): Promise<void> {
    if (this.pids.length > 0) this.ctl(['stop']);
    return Promise.resolve();
  }

  override stopNow(): void {
    if (this.directory && this.pids.length > 0) this.ctl(['stop']);
    super.stopNow();
  }
}

function rabbitmqPluginsDirectory(): string | undefined {
  const lib = '/usr/lib/rabbitmq/lib';
  if (!existsSync(lib)) return undefined;
  const server = readdirSync(lib).find((name) => name.startsWith('rabbitmq_server-'));
  return server ? join(lib, server, 'plugins') : undefined;
}

/** The crash dump's slogan, or the last error lines of the logs: why a node did not start. */
function readLogTail(directory: string): string {
  try {
    const dump = join(directory, 'erl_crash.dump');
    if (existsSync(dump)) {
      const slogan = /^Slogan: (.*)$/m.exec(readFileSync(dump, 'latin1').slice(0, 4096))?.[1];
      if (slogan) return slogan.slice(0, 300);
    }
    const logs = join(directory, 'log');
    const files = existsSync(logs) ? readdirSync(logs).filter((name) => name.endsWith('.log')) : [];
    const text = files.map((name) => readFileSync(join(logs, name), 'utf8')).join('\n');
    return text
      .split('\n')
      .filter((line) => /error|crash/i.test(line))
      .slice(-2)
      .join(' | ')
      .slice(0, 300);
  } catch {
    return '';
  }
}

function firstLine(error: unknown): string {
  const text = (error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message;
  return text.split('\n')[0] ?? '';
}

/** The Debian package's config with our ports, directories and zurl; INI sections merged. */
function pushpinConfig(directory: string, httpPort: number, publishPort: number): string {
  const sections = new Map<string, Map<string, string>>();
  const read = (text: string): void => {
    let section = '';
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const header = /^\[(.+)\]$/.exec(line);
      if (header) {
        section = header[1]!;
        if (!sections.has(section)) sections.set(section, new Map());
        continue;
      }
      const equals = line.indexOf('=');
      if (equals < 0 || line.startsWith('include')) continue;
      sections.get(section)?.set(line.slice(0, equals).trim(), line.slice(equals + 1).trim());
    }
  };
  read(
    readFileSync('/usr/lib/pushpin/internal.conf', 'utf8').replaceAll(
      'ipc:///var/run/zurl/',
      'ipc://{rundir}/{ipc_prefix}',
    ),
  );
  read(readFileSync('/etc/pushpin/pushpin.conf', 'utf8'));
  const set = (section: string, key: string, value: string): void => {
    if (!sections.has(section)) sections.set(section, new Map());
    sections.get(section)!.set(key, value);
  };
  set('global', 'rundir', join(directory, 'run'));
  set('global', 'ipc_prefix', 'pushpin-');
  set('runner', 'services', 'condure,zurl,pushpin-proxy,pushpin-handler');
  set('runner', 'http_port', `127.0.0.1:${httpPort}`);
  set('runner', 'logdir', join(directory, 'log'));
  set('runner', 'client_maxconn', '50000');
  set('proxy', 'routesfile', join(directory, 'routes'));
  set('handler', 'push_in_spec', 'ipc://{rundir}/{ipc_prefix}push-in');
  set('handler', 'push_in_sub_specs', 'ipc://{rundir}/{ipc_prefix}push-in-sub');
  set('handler', 'command_spec', 'ipc://{rundir}/{ipc_prefix}handler-command');
  set('handler', 'push_in_http_addr', '127.0.0.1');
  set('handler', 'push_in_http_port', String(publishPort));
  // Pushpin throttles deliveries to 2,500 messages/s by default; a throughput test must not.
  set('handler', 'message_rate', '1000000');
  set('handler', 'message_hwm', '1000000');
  let out = '';
  for (const [section, values] of sections) {
    if (section === '') continue;
    out += `[${section}]\n`;
    for (const [key, value] of values) out += `${key}=${value}\n`;
    out += '\n';
  }
  return out;
}

/** Pushpin from Debian's package: condure, zurl, proxy and handler, all on the server core. */
class PushpinServer extends ExternalServer {
  constructor() {
    super('pushpin');
  }

  async start(): Promise<void> {
    if (!commandExists('pushpin') || !existsSync('/usr/lib/pushpin/internal.conf')) {
      throw new NotAvailable('Pushpin is not installed (apt-get install pushpin)');
    }
    const directory = this.makeDirectory();
    const [httpPort, publishPort] = [await freePort(), await freePort()];
    const originPort = await this.startAdapter({ publishPort });
    execFileSync('mkdir', ['-p', join(directory, 'run'), join(directory, 'log')]);
    writeFileSync(join(directory, 'routes'), `* 127.0.0.1:${originPort},over_http\n`);
    const configFile = join(directory, 'pushpin.conf');
    writeFileSync(configFile, pushpinConfig(directory, httpPort, publishPort));
    const child = this.spawnServer('pushpin', ['--config', configFile, '--merge-output']);
    const isAlive = (): boolean => child.exitCode === null && child.signalCode === null;
    try {
      await waitForPort(httpPort, STARTUP_TIMEOUT_MS, isAlive);
      await waitForPort(publishPort, STARTUP_TIMEOUT_MS, isAlive);
    } catch (error) {
      const reason = `${(error as Error).message}: ${this.processStderr()}`;
      this.stopNow();
      throw new Error(`Pushpin did not start: ${reason}`, { cause: error });
    }
    this.port = httpPort;
    this.pids = processTree(child.pid ?? 0);
    const version = execFileSync('pushpin', ['--version'], { encoding: 'utf8' }).trim();
    this.about = `${version} (Debian), message_rate raised from 2,500/s; GRIP origin on the load core`;
  }
}

/** nginx with nchan from Debian's package: one worker, on the server core. */
class NchanServer extends ExternalServer {
  constructor() {
    super('nchan');
  }

  async start(): Promise<void> {
    const module = '/usr/lib/nginx/modules/ngx_nchan_module.so';
    if (!commandExists('nginx') || !existsSync(module)) {
      throw new NotAvailable(
        'nginx with nchan is not installed (apt-get install libnginx-mod-nchan)',
      );
    }
    const directory = this.makeDirectory();
    const port = await freePort();
    execFileSync('mkdir', ['-p', join(directory, 'logs'), join(directory, 'temp')]);
    writeFileSync(
      join(directory, 'nginx.conf'),
      `load_module ${module};
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid ${join(directory, 'nginx.pid')};
error_log ${join(directory, 'logs', 'error.log')} warn;
events { worker_connections 19000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${join(directory, 'temp')};
  proxy_temp_path ${join(directory, 'temp')};
  fastcgi_temp_path ${join(directory, 'temp')};
  uwsgi_temp_path ${join(directory, 'temp')};
  scgi_temp_path ${join(directory, 'temp')};
  nchan_message_buffer_length 2000;
  nchan_message_timeout 5m;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location ~ ^/sub/(.+)$ { nchan_subscriber; nchan_channel_id $1; }
    location ~ ^/pub/(.+)$ { nchan_publisher; nchan_channel_id $1; }
    location = /nchan_status { nchan_stub_status; }
  }
}
`,
    );
    const child = this.spawnServer('nginx', ['-p', directory, '-c', join(directory, 'nginx.conf')]);
    try {
      await waitForPort(
        port,
        STARTUP_TIMEOUT_MS,
        () => child.exitCode === null && child.signalCode === null,
      );
    } catch (error) {
      const reason = `${(error as Error).message}: ${this.processStderr()}`;
      this.stopNow();
      throw new Error(`nginx/nchan did not start: ${reason}`, { cause: error });
    }
    this.port = port;
    this.pids = processTree(child.pid ?? 0);
    await this.startAdapter({ publishPort: port });
    this.about = `${nginxVersionText()} + nchan ${debianVersion('libnginx-mod-nchan')}, 1 worker`;
  }
}

function commandExists(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function nginxVersionText(): string {
  try {
    // nginx -v writes to stderr.
    const result = execFileSync('sh', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' });
    return result.trim().replace(/^nginx version: /, '');
  } catch {
    return 'nginx';
  }
}

function debianVersion(pkg: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

export function createServerUnderTest(kind: ServerKind): ServerUnderTest {
  switch (kind) {
    case 'rabbitmq':
      return new RabbitMqServer();
    case 'pushpin':
      return new PushpinServer();
    case 'nchan':
      return new NchanServer();
    case 'raw-ws':
    case 'ws':
    case 'raw-sse':
    case 'socketio':
    case 'sockjs':
    case 'perigee':
      return new NodeServer(kind);
  }
}
