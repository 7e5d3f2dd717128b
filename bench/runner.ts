/**
 * The plan (which configurations, merged across scenarios so that nothing is measured twice) and
 * one run of one configuration: a fresh load generator against a running server, relaying the
 * publisher's credit, with every step bounded in time.
 */
import { randomBytes } from 'node:crypto';
import {
  LARGE_FANOUT_TARGETS,
  FRESH_PER_RUN_KINDS,
  REQUIRED_TARGETS,
  SCENARIO_TARGETS,
  SCENARIOS,
  targetInfo,
  TARGETS,
  type Scenario,
  type TargetId,
} from './catalog.js';
import { LOAD_CORE, collectStderr, spawnNodeScript } from './children.js';
import type { LoadCommand, LoadMessage, LoadSpec, TopicMode } from './ipc.js';
import { serverConfirmsSubscriptions } from './load/drivers.js';
import type { BenchOptions } from './options.js';
import { MEMORY_NOT_READ_NOTE, type ConfigurationResult, type RunRecord } from './results.js';
import { openDescriptors } from './procfs.js';
import type { ServerUnderTest } from './servers/controllers.js';

/** After N clients are subscribed, a moment for the server to settle before its memory is read. */
const SETTLE_MS = 300;
/** After a load generator exits, a moment for the server to close what it held. */
const CLOSE_SETTLE_MS = 300;
/**
 * How long a storm may take to get every client subscribed: 1.5 ms a client (15 s at 10,000, 30 s
 * at 19,900; the cost of accepting and handshaking grows with N for everyone), and at least 12 s.
 * The slowest server that finishes, RabbitMQ at 1,000, takes 3.5 to 5.6 s.
 */
function connectTimeoutMs(clients: number): number {
  return Math.max(12_000, Math.ceil(clients * 1.5));
}
/** How long a server may take to close a run's connections after the load generator is gone. */
const RELEASE_TIMEOUT_MS = 20_000;
/** Per phase, on top of warm-up and window: publishing handshakes and the drain. */
const PHASE_ALLOWANCE_MS = 12_000;
/** Storm, retries, memory readings and the close. */
function runAllowanceMs(clients: number): number {
  return 2 * connectTimeoutMs(clients) + 30_000;
}

/**
 * The latency phase's warm-up and window, both in whole periods of the fixed publishing rate and
 * offset by half a period. The publisher sends message k at k periods after it starts, so the
 * window opens and closes midway between two messages, and each message in it has half a period
 * to reach everyone before the window closes. The delivered rate in the window is then the load
 * itself unless a backlog forms; a window with a message at an edge would read up to one whole
 * fan-out short (at 10k subscribers, 0.5 messages/s: a fifth of a 5 s window).
 * The window holds at least two messages: at 10k each is 10,000 latencies.
 */
export function latencyWindow(
  messagesPerSecond: number,
  warmupMs: number,
  durationMs: number,
): { latencyWarmupMs: number; latencyMs: number } {
  const periodMs = 1000 / messagesPerSecond;
  const warmupPeriods = Math.max(0, Math.ceil(Math.max(300, warmupMs) / periodMs - 0.5));
  const windowPeriods = Math.max(2, Math.ceil(durationMs / periodMs));
  return {
    latencyWarmupMs: Math.round((warmupPeriods + 0.5) * periodMs),
    latencyMs: Math.round(windowPeriods * periodMs),
  };
}

export type Configuration = Omit<ConfigurationResult, 'runs' | 'summary' | 'notRun'>;

export function buildPlan(options: BenchOptions): Configuration[] {
  const byKey = new Map<string, Configuration>();
  const add = (
    target: TargetId,
    clients: number,
    mode: TopicMode,
    scenario: Scenario,
    measure: boolean,
  ): void => {
    const key = `${target}|${clients}|${mode}`;
    const info = targetInfo(target);
    let configuration = byKey.get(key);
    if (!configuration) {
      const window = Math.max(2, Math.ceil(options.windowDeliveries / clients));
      configuration = {
        target,
        server: info.server,
        transport: info.transport,
        group: info.group,
        serverText: info.serverText,
        driverText: info.driverText,
        clients,
        topicMode: mode,
        phases: [],
        scenarios: [],
        window,
        latencyRate: options.latencyLoad / clients,
      };
      byKey.set(key, configuration);
    }
    if (!configuration.scenarios.includes(scenario)) configuration.scenarios.push(scenario);
    if (measure && configuration.phases.length === 0)
      configuration.phases = ['throughput', 'latency'];
  };
  for (const scenario of SCENARIOS) {
    if (!options.scenarios.includes(scenario)) continue;
    for (const target of scenarioTargets(scenario, options)) {
      for (const clients of options.clients[scenario]) {
        const large = clients >= 10_000 && scenario === 'fanout';
        if (large && !options.full && !options.targets && !LARGE_FANOUT_TARGETS.includes(target))
          continue;
        const measure = scenario === 'fanout' || scenario === 'topics' || scenario === 'transports';
        add(target, clients, scenario === 'topics' ? 'each' : 'one', scenario, measure);
      }
    }
  }
  // Scenarios that only connect (idle, storm) get their figures from a measuring run at the same
  // N when there is one; otherwise they run on their own.
  const plan = [...byKey.values()];
  // One server start per server kind: rows of a kind run together, smaller N first.
  const serverOrder = [...new Set([...TARGETS.values()].map((info) => info.server))];
  const targetOrder = [...TARGETS.keys()];
  plan.sort(
    (a, b) =>
      serverOrder.indexOf(a.server) - serverOrder.indexOf(b.server) ||
      a.clients - b.clients ||
      targetOrder.indexOf(a.target) - targetOrder.indexOf(b.target) ||
      a.topicMode.localeCompare(b.topicMode),
  );
  return plan;
}

/** The smoke run: every required row once, a few peers, each scenario's path exercised. */
const QUICK_TARGETS: Readonly<Record<Scenario, readonly TargetId[]>> = {
  fanout: [...REQUIRED_TARGETS, 'raw-sse', 'pushpin/eventsource', 'nchan/websocket'],
  transports: REQUIRED_TARGETS.filter((target) => target.startsWith('perigee/')),
  topics: ['raw-ws', 'perigee/websocket'],
  idle: ['raw-ws'],
  storm: ['raw-ws'],
};

function scenarioTargets(scenario: Scenario, options: BenchOptions): TargetId[] {
  let targets: TargetId[];
  if (options.targets) {
    // Rows named on the command line run in every selected scenario.
    targets = [...options.targets];
  } else if (options.full) {
    targets = [...TARGETS.keys()];
  } else if (options.quick) {
    targets = [...QUICK_TARGETS[scenario]];
  } else {
    targets = [...SCENARIO_TARGETS[scenario]];
  }
  if (options.transports) {
    const transports = options.transports;
    targets = targets.filter((target) => transports.includes(targetInfo(target).transport));
  }
  return targets;
}

export interface RunContext {
  options: BenchOptions;
  clockTicks: number;
  /** Kills what runs (Ctrl-C); registered by the run while it has a load generator. */
  register(kill: () => void): () => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One run: fresh connections from a fresh load generator; the server keeps running. */
export async function runOnce(
  server: ServerUnderTest,
  configuration: Configuration,
  run: number,
  context: RunContext,
  firstRunOfServer: boolean,
): Promise<RunRecord> {
  const { options } = context;
  const record: RunRecord = { run, notes: [] };
  const publisher = server.publisher;
  const topics = {
    mode: configuration.topicMode,
    prefix: `b${randomBytes(4).toString('hex')}`,
    clients: configuration.clients,
  };
  const prepared = await publisher.request({ cmd: 'prepare', topics });
  if (!prepared.ok) {
    record.failure = `the publisher did not answer: ${prepared.error}`;
    return record;
  }
  const descriptorsBefore = openDescriptors(server.pids);
  let before: Awaited<ReturnType<ServerUnderTest['memory']>> | undefined;
  if (!firstRunOfServer) {
    // An earlier run's connections left memory the allocator keeps and reuses: the growth would
    // read as zero or less (RabbitMQ, nginx). See FRESH_PER_RUN_KINDS.
    record.notes.push(MEMORY_NOT_READ_NOTE);
  } else {
    try {
      before = await server.memory();
    } catch (error) {
      record.memory = { failed: (error as Error).message };
    }
  }
  const warmupMs = options.warmupSeconds * 1000;
  const durationMs = options.durationSeconds * 1000;
  // A short-polling client hears of messages once per poll interval: a window of one interval
  // would catch 0, 1 or 2 polls per client; three average that out. And it enters the phase
  // waiting out an interval after the drain's empty polls: the warm-up covers that wait, or the
  // window's first interval delivers nothing and the load reads as not sustained.
  const driver = targetInfo(configuration.target).driver;
  const shortPolling = driver.kind === 'sockjs' && driver.shortPolling === true;
  const { latencyWarmupMs, latencyMs } = latencyWindow(
    configuration.latencyRate,
    shortPolling ? Math.max(warmupMs, 1.5 * options.pollIntervalMs) : warmupMs,
    shortPolling ? Math.max(durationMs, 3 * options.pollIntervalMs) : durationMs,
  );
  const spec: LoadSpec = {
    target: configuration.target,
    host: '127.0.0.1',
    port: server.port,
    topics,
    phases: configuration.phases,
    warmupMs,
    throughputMs: durationMs,
    latencyWarmupMs,
    latencyMs,
    latencyRate: configuration.latencyRate,
    serverPids: server.pids,
    clockTicks: context.clockTicks,
    pollIntervalMs: options.pollIntervalMs,
    connectTimeoutMs: connectTimeoutMs(configuration.clients),
  };
  const deadlineMs =
    runAllowanceMs(configuration.clients) +
    configuration.phases.length * (latencyWarmupMs + latencyMs + PHASE_ALLOWANCE_MS);
  const child = spawnNodeScript(LOAD_CORE, 'load/loadgen', [JSON.stringify(spec)]);
  const stderr = collectStderr(child);
  const unregister = context.register(() => child.kill('SIGKILL'));
  const tell = (command: LoadCommand): void => {
    if (child.connected) child.send(command);
  };
  let outcomeSeen = false;
  const confirms = serverConfirmsSubscriptions(targetInfo(configuration.target).driver);

  const onMessage = async (message: LoadMessage): Promise<void> => {
    switch (message.type) {
      case 'connected': {
        record.storm = message.storm;
        if (message.connected < configuration.clients) return;
        if (confirms) {
          // Long polls count as subscribed once sent; only the server knows when it holds them.
          // A server that does not hold them all within the storm's bound fails the run as a
          // storm would: publishing to fewer subscribers than N measures nothing comparable.
          const timeoutMs = connectTimeoutMs(configuration.clients);
          const counted = await publisher.request(
            { cmd: 'subscribers', count: configuration.clients, timeoutMs },
            timeoutMs + 10_000,
          );
          if (!counted.ok) {
            record.failure = counted.error;
            child.kill('SIGKILL');
            return;
          }
        }
        await sleep(SETTLE_MS);
        if (before) {
          try {
            const after = await server.memory();
            const per = (a: number | null, b: number | null): number | null =>
              a === null || b === null ? null : (a - b) / configuration.clients;
            record.memory = {
              rssBefore: before.rss,
              rssAfter: after.rss,
              heapBefore: before.heapUsed,
              heapAfter: after.heapUsed,
              rssPerConnection: per(after.rss, before.rss),
              heapPerConnection: per(after.heapUsed, before.heapUsed),
            };
          } catch (error) {
            record.memory = { failed: (error as Error).message };
          }
        }
        tell({ type: 'start' });
        return;
      }
      case 'publish-credit':
        publisher.send({ cmd: 'credit', upTo: configuration.window });
        tell({ type: 'publish-started' });
        return;
      case 'position':
        publisher.send({ cmd: 'credit', upTo: message.value + configuration.window });
        return;
      case 'publish-rate': {
        const reply = await publisher.request({ cmd: 'rate', perSecond: message.perSecond });
        if (!reply.ok) record.notes.push(`rate: ${reply.error}`);
        tell({ type: 'publish-started' });
        return;
      }
      case 'halt': {
        const reply = await publisher.request({ cmd: 'halt' });
        if (!reply.ok) record.notes.push(`the publisher failed: ${reply.error}`);
        tell({ type: 'halted', sent: reply.ok ? (reply.sent ?? 0) : 0 });
        return;
      }
      case 'outcome':
        outcomeSeen = true;
        if (message.outcome.storm) record.storm = message.outcome.storm;
        if (message.outcome.throughput) record.throughput = message.outcome.throughput;
        if (message.outcome.latency) record.latency = message.outcome.latency;
        if (!message.outcome.ok) record.failure = message.outcome.reason ?? 'failed';
        tell({ type: 'finish' });
        return;
    }
  };
  child.on('message', (message: LoadMessage) => {
    onMessage(message).catch((error: unknown) => {
      record.failure ??= `orchestrator: ${String(error)}`;
      child.kill('SIGKILL');
    });
  });

  let timedOut = false;
  const killer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, deadlineMs);
  const exit = await new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? '?')),
  );
  clearTimeout(killer);
  unregister();
  // Whatever the load generator left, the publisher must not go on publishing into the next run.
  await publisher.request({ cmd: 'halt' }, 10_000);
  if (timedOut)
    record.failure = `hung: the load generator was killed after ${Math.round(deadlineMs / 1000)} s`;
  else if (!outcomeSeen) {
    record.failure ??= `the load generator ended (${exit}) without a result${stderr() ? `: ${stderr().slice(0, 300)}` : ''}`;
  }
  if (!server.alive()) record.failure ??= 'the server died during the run';
  // A server that keeps running into the next run must first let go of this run's sockets, or
  // the next storm would meet its descriptor limit. The others start afresh for the next run.
  if (descriptorsBefore !== null && !FRESH_PER_RUN_KINDS.includes(server.kind)) {
    await sleep(CLOSE_SETTLE_MS);
    const until = Date.now() + RELEASE_TIMEOUT_MS;
    let open = openDescriptors(server.pids);
    while (open !== null && open > descriptorsBefore + 32 && Date.now() < until) {
      await sleep(100);
      open = openDescriptors(server.pids);
    }
    if (open !== null && open > descriptorsBefore + 32) {
      record.notes.push(
        `the server still held ${open - descriptorsBefore} more descriptors after the run`,
      );
    }
  }
  return record;
}
