/**
 * The load generator: N subscribers of one target, in a process of its own pinned to the load
 * core. Reads a {@link LoadSpec} (JSON) from argv[2] and talks to the orchestrator over IPC:
 * reports the storm, waits for `start`, asks for publishing (closed loop or fixed rate), measures
 * its windows, reports an outcome, and closes everything on `finish`.
 */
import { targetInfo } from '../catalog.js';
import {
  topicName,
  type LoadCommand,
  type LoadMessage,
  type LoadOutcome,
  type LoadSpec,
  type StormFigures,
  type ThroughputFigures,
} from '../ipc.js';
import { Collector, LatencyHistogram } from './collector.js';
import { closeAgents, createSubscriber, type DriverContext, type Subscriber } from './drivers.js';
import { cpuBetween, readCpu, wireBytes } from './meter.js';

/** Clients that failed in the storm are retried this many at a time. */
const RETRY_CONCURRENCY = 32;
const RETRY_TIMEOUT_MS = 10_000;
/** After publishing stops, subscribers get this long to receive the rest. */
const DRAIN_MS = 5000;
/** A drain also ends when nothing has arrived for this long (lossy long polls never catch up). */
const DRAIN_IDLE_MS = 1500;
/** A latency run fails when the slowest subscriber is this many seconds of messages behind. */
const MAX_BACKLOG_SECONDS = 2;

class RunFailed extends Error {}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
const target = targetInfo(spec.target);
const collector = new Collector(spec.topics.clients);
let failure: string | undefined;
const failureWaiters = new Set<(reason: string) => void>();

function send(message: LoadMessage): void {
  process.send?.(message);
}

const context: DriverContext = {
  host: spec.host,
  port: spec.port,
  collector,
  pollIntervalMs: spec.pollIntervalMs,
  fail(reason) {
    if (failure !== undefined) return;
    failure = reason;
    for (const waiter of failureWaiters) waiter(reason);
  },
};
if (target.server === 'rabbitmq') {
  context.stompLogin = { login: 'guest', passcode: 'guest', virtualHost: '/' };
}

/** Rejects as soon as any subscriber fails, so every wait ends with the run. */
function raceFailure<T>(promise: Promise<T>): Promise<T> {
  if (failure !== undefined) return Promise.reject(new RunFailed(failure));
  return new Promise<T>((resolve, reject) => {
    const waiter = (reason: string): void => reject(new RunFailed(reason));
    failureWaiters.add(waiter);
    promise.then(
      (value) => {
        failureWaiters.delete(waiter);
        resolve(value);
      },
      (error: unknown) => {
        failureWaiters.delete(waiter);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return raceFailure(new Promise((resolve) => setTimeout(resolve, ms)));
}

const commandWaiters: ((command: LoadCommand) => boolean)[] = [];
process.on('message', (command: LoadCommand) => {
  const index = commandWaiters.findIndex((waiter) => waiter(command));
  if (index >= 0) commandWaiters.splice(index, 1);
});
process.on('disconnect', () => process.exit(0));

function nextCommand<T extends LoadCommand['type']>(
  type: T,
): Promise<Extract<LoadCommand, { type: T }>> {
  return new Promise((resolve) => {
    commandWaiters.push((command) => {
      if (command.type !== type) return false;
      resolve(command as Extract<LoadCommand, { type: T }>);
      return true;
    });
  });
}

class NotSubscribedInTime extends Error {}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new NotSubscribedInTime(`not subscribed within ${ms} ms`)),
      ms,
    );
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

const subscribers: Subscriber[] = [];

/** Every client connects and subscribes at once; failures are retried a few at a time. */
async function storm(): Promise<StormFigures> {
  const startedAt = performance.now();
  let lastReadyAt = startedAt;
  for (let client = 0; client < spec.topics.clients; client++) {
    subscribers.push(createSubscriber(target, context, topicName(spec.topics, client)));
  }
  const results = await Promise.allSettled(
    subscribers.map((subscriber) =>
      withTimeout(subscriber.open(), spec.connectTimeoutMs).then(() => {
        lastReadyAt = performance.now();
      }),
    ),
  );
  const failed: number[] = [];
  let firstError: string | undefined;
  let timedOut = 0;
  results.forEach((result, index) => {
    if (result.status === 'rejected') {
      failed.push(index);
      firstError ??= (result.reason as Error).message;
      if (result.reason instanceof NotSubscribedInTime) timedOut++;
    }
  });
  const figures: StormFigures = {
    ms: lastReadyAt - startedAt,
    errors: failed.length,
    lost: 0,
    timedOut,
  };
  if (firstError !== undefined) figures.firstError = firstError;
  // The scenarios after the storm need all N: the failed ones try again, calmly. When most
  // failed, the cause is not the storm: retrying would only take long.
  if (failed.length > spec.topics.clients / 2) {
    figures.lost = failed.length;
    return figures;
  }
  let next = 0;
  const retry = async (): Promise<void> => {
    while (next < failed.length) {
      const index = failed[next++]!;
      void subscribers[index]!.close();
      const fresh = createSubscriber(target, context, topicName(spec.topics, index));
      subscribers[index] = fresh;
      try {
        await withTimeout(fresh.open(), RETRY_TIMEOUT_MS);
      } catch {
        figures.lost++;
      }
    }
  };
  await Promise.all(Array.from({ length: RETRY_CONCURRENCY }, retry));
  return figures;
}

interface Snapshot {
  deliveries: number;
  gaps: number;
  bytes: number;
  cpu: ReturnType<typeof readCpu>;
}

function snapshot(): Snapshot {
  return {
    deliveries: collector.deliveries,
    gaps: collector.gaps,
    bytes: wireBytes(),
    cpu: readCpu(spec.serverPids, spec.clockTicks),
  };
}

function between(start: Snapshot, end: Snapshot): ThroughputFigures {
  const deliveries = end.deliveries - start.deliveries;
  const seconds = (end.cpu.wall - start.cpu.wall) / 1000;
  const cpu = cpuBetween(start.cpu, end.cpu);
  return {
    deliveries,
    seconds,
    deliveriesPerSecond: deliveries / seconds,
    wireBytesPerDelivery: deliveries > 0 ? (end.bytes - start.bytes) / deliveries : null,
    serverCpuMicrosPerDelivery:
      cpu.serverSeconds === null || deliveries === 0
        ? null
        : (cpu.serverSeconds * 1e6) / deliveries,
    serverCpu: cpu.serverCpu,
    loadGeneratorCpu: cpu.loadGeneratorCpu,
    gaps: end.gaps - start.gaps,
  };
}

/** Stops the publisher and waits until every subscriber has what was sent (or stops getting any). */
async function haltAndDrain(): Promise<void> {
  send({ type: 'halt' });
  const { sent } = await raceFailure(nextCommand('halted'));
  const until = performance.now() + DRAIN_MS;
  let lastDeliveries = collector.deliveries;
  let lastProgressAt = performance.now();
  while (collector.complete < sent && performance.now() < until) {
    await sleep(20);
    if (collector.deliveries !== lastDeliveries) {
      lastDeliveries = collector.deliveries;
      lastProgressAt = performance.now();
    } else if (performance.now() - lastProgressAt > DRAIN_IDLE_MS) {
      break;
    }
  }
}

async function throughputPhase(): Promise<ThroughputFigures> {
  // Closed loop: the orchestrator gives the publisher credit up to `complete + window`.
  let reportScheduled = false;
  collector.onAdvance = () => {
    if (reportScheduled) return;
    reportScheduled = true;
    setImmediate(() => {
      reportScheduled = false;
      send({ type: 'position', value: collector.complete });
    });
  };
  send({ type: 'publish-credit' });
  await raceFailure(nextCommand('publish-started'));
  await sleep(spec.warmupMs);
  const start = snapshot();
  await sleep(spec.throughputMs);
  const figures = between(start, snapshot());
  collector.onAdvance = () => {};
  await haltAndDrain();
  return figures;
}

async function latencyPhase(): Promise<LoadOutcome['latency']> {
  send({ type: 'publish-rate', perSecond: spec.latencyRate });
  await raceFailure(nextCommand('publish-started'));
  const startedAt = performance.now();
  const expectedAt = (): number => ((performance.now() - startedAt) / 1000) * spec.latencyRate;
  const backlogLimit = Math.max(3, spec.latencyRate * MAX_BACKLOG_SECONDS);
  const checkBacklog = (): void => {
    const behind = expectedAt() - collector.complete;
    if (behind > backlogLimit) {
      throw new RunFailed(
        `not sustained: ${Math.round(spec.latencyRate)} messages/s left the slowest subscriber ${Math.round(behind)} messages behind`,
      );
    }
  };
  const warmupUntil = startedAt + spec.latencyWarmupMs;
  while (performance.now() < warmupUntil) {
    await sleep(50);
    checkBacklog();
  }
  collector.histogram = new LatencyHistogram();
  collector.recording = true;
  const start = snapshot();
  const until = performance.now() + spec.latencyMs;
  while (performance.now() < until) {
    await sleep(Math.min(50, until - performance.now()));
    checkBacklog();
  }
  const window = between(start, snapshot());
  await haltAndDrain();
  collector.recording = false;
  const latency = collector.histogram.figures();
  if (!latency) return { failed: 'no message arrived in the latency window' };
  return {
    ...latency,
    wireBytesPerDelivery: window.wireBytesPerDelivery,
    gaps: window.gaps,
    serverCpuMicrosPerDelivery: window.serverCpuMicrosPerDelivery,
    deliveriesPerSecond: window.deliveriesPerSecond,
    sustained: window.deliveriesPerSecond >= 0.9 * spec.latencyRate * spec.topics.clients,
  };
}

async function run(): Promise<void> {
  const outcome: LoadOutcome = { ok: true };
  try {
    const figures = await storm();
    outcome.storm = figures;
    send({
      type: 'connected',
      storm: figures,
      connected: spec.topics.clients - figures.lost,
    });
    if (figures.lost > 0) {
      throw new RunFailed(
        `${figures.lost} of ${spec.topics.clients} clients could not subscribe (${figures.firstError ?? 'no reason'})`,
      );
    }
    await nextCommand('start');
    {
      for (const phase of spec.phases) {
        if (phase === 'throughput') {
          try {
            outcome.throughput = await throughputPhase();
          } catch (error) {
            if (!(error instanceof RunFailed)) throw error;
            outcome.throughput = { failed: error.message };
            break;
          }
        } else {
          try {
            outcome.latency = await latencyPhase();
          } catch (error) {
            if (!(error instanceof RunFailed)) throw error;
            outcome.latency = { failed: error.message };
            // The publisher may still be running at its rate.
            send({ type: 'halt' });
            break;
          }
        }
      }
    }
  } catch (error) {
    outcome.ok = false;
    outcome.reason = error instanceof RunFailed ? error.message : String(error);
  }
  send({ type: 'outcome', outcome });
  await Promise.race([
    nextCommand('finish'),
    new Promise((resolve) => setTimeout(resolve, 30_000)),
  ]);
  await Promise.all(subscribers.map((subscriber) => Promise.resolve(subscriber.close())));
  closeAgents();
  process.exit(0);
}

await run();
