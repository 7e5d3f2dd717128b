/**
 * The load generator: one publisher and K subscribers on raw sockets, in a process of its own
 * (pinned to its own core by main.ts). Reads a {@link LoadSpec} as JSON from argv[2] and prints one
 * {@link LoadResult} as JSON on stdout.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { LatencySummary, LoadResult, LoadSpec, LoadSuccess } from './spec.js';
import {
  describeErrorFrame,
  encodeFrame,
  FIRST_OCTET,
  FrameScanner,
  SendFrameWriter,
  sentAtOf,
  sequenceOf,
} from './wire.js';

/** How long the subscribers may take to receive the last measured message once publishing stops. */
const DRAIN_MS = 3000;
/** Latency runs give up when the slowest subscriber is this many seconds of messages behind. */
const MAX_BACKLOG_SECONDS = 2;

class RunAborted extends Error {}

/** The first failure of any connection ends the whole run; every wait races against it. */
class Abort {
  reason: string | undefined;
  readonly signal: Promise<never>;
  private reject!: (error: Error) => void;

  constructor() {
    this.signal = new Promise<never>((_resolve, reject) => {
      this.reject = reject;
    });
    // Whoever awaits the run sees the failure; this only keeps Node from calling it unhandled.
    this.signal.catch(() => {});
  }

  fail(reason: string): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.reject(new RunAborted(reason));
  }

  race<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.signal]);
  }

  sleep(ms: number): Promise<void> {
    return this.race(new Promise<void>((resolve) => setTimeout(resolve, ms)));
  }
}

function nowMicros(): number {
  return Math.round(performance.now() * 1000);
}

/** One STOMP connection: CONNECT, then MESSAGE frames to `onMessage`, any ERROR ends the run. */
class StompConnection {
  readonly socket: Socket;
  private readonly scanner: FrameScanner;
  private readonly connected: Promise<void>;
  private awaitedReply: { octet: number; resolve: () => void } | undefined;
  private closing = false;

  constructor(
    private readonly label: string,
    private readonly spec: LoadSpec,
    private readonly abort: Abort,
    private readonly onMessage: (data: Buffer, start: number, end: number) => void,
    onChunk: (chunk: Buffer) => void = () => {},
  ) {
    this.scanner = new FrameScanner((data, start, end) => this.onFrame(data, start, end));
    this.socket = connect({ host: spec.target.host, port: spec.target.port, noDelay: true });
    this.connected = new Promise<void>((resolve) => this.socket.once('connect', () => resolve()));
    this.socket.on('data', (chunk: Buffer) => {
      onChunk(chunk);
      try {
        this.scanner.push(chunk);
      } catch (error) {
        abort.fail(`${label}: ${(error as Error).message}`);
      }
    });
    this.socket.on('error', (error) => abort.fail(`${label}: ${error.message}`));
    this.socket.on('close', () => {
      if (!this.closing) abort.fail(`${label}: the server closed the connection`);
    });
  }

  async open(): Promise<void> {
    await this.abort.race(this.connected);
    const { virtualHost, login, passcode } = this.spec.target;
    const headers: Record<string, string> = {
      'accept-version': '1.2',
      host: virtualHost,
      'heart-beat': '0,0',
    };
    if (login !== undefined) headers.login = login;
    if (passcode !== undefined) headers.passcode = passcode;
    await this.request(encodeFrame('CONNECT', headers), FIRST_OCTET.CONNECTED);
  }

  async subscribe(destination: string): Promise<void> {
    const frame = encodeFrame('SUBSCRIBE', {
      id: '0',
      destination,
      ack: 'auto',
      receipt: 'subscribed',
    });
    await this.request(frame, FIRST_OCTET.RECEIPT);
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  /** DISCONNECT and wait (briefly) for the server to hang up. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.socket.destroyed) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.end(encodeFrame('DISCONNECT', {}));
    const timer = setTimeout(() => this.socket.destroy(), 1000);
    await closed;
    clearTimeout(timer);
  }

  private request(frame: Buffer, replyOctet: number): Promise<void> {
    return this.abort.race(
      new Promise<void>((resolve) => {
        this.awaitedReply = { octet: replyOctet, resolve };
        this.socket.write(frame);
      }),
    );
  }

  private onFrame(data: Buffer, start: number, end: number): void {
    const octet = data[start];
    const awaited = this.awaitedReply;
    if (octet === FIRST_OCTET.MESSAGE) {
      this.onMessage(data, start, end);
    } else if (octet === FIRST_OCTET.ERROR) {
      this.abort.fail(`${this.label} got an ERROR frame: ${describeErrorFrame(data, start, end)}`);
    } else if (awaited !== undefined && awaited.octet === octet) {
      this.awaitedReply = undefined;
      awaited.resolve();
    } else {
      const command = data.toString('latin1', start, Math.min(end, start + 20)).split('\n')[0];
      this.abort.fail(`${this.label}: unexpected ${command} frame`);
    }
  }
}

/** Latencies of the messages published during the measured window. */
class LatencyRecorder {
  /** Sequence numbers of the first and last measured messages; outside them nothing is kept. */
  first = Infinity;
  last = Infinity;
  readonly samplesMs: number[] = [];

  summary(): LatencySummary | undefined {
    const count = this.samplesMs.length;
    if (count === 0) return undefined;
    const sorted = Float64Array.from(this.samplesMs).sort();
    let sum = 0;
    for (const sample of sorted) sum += sample;
    return {
      samples: count,
      p50Ms: percentile(sorted, 0.5),
      p90Ms: percentile(sorted, 0.9),
      p99Ms: percentile(sorted, 0.99),
      p999Ms: percentile(sorted, 0.999),
      maxMs: sorted[count - 1]!,
      meanMs: sum / count,
    };
  }
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: Float64Array, fraction: number): number {
  const rank = Math.ceil(fraction * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

class Subscriber {
  /** MESSAGE frames received; every subscriber sees every message, in order, from sequence 1. */
  received = 0;
  readonly connection: StompConnection;
  private chunkArrivedAtMicros = 0;

  constructor(
    index: number,
    spec: LoadSpec,
    private readonly abort: Abort,
    private readonly recorder: LatencyRecorder | undefined,
    afterChunk: () => void,
  ) {
    this.connection = new StompConnection(
      `subscriber ${index}`,
      spec,
      abort,
      (data, start, end) => this.onMessage(data, start, end),
      () => {
        // One clock read per chunk: its frames arrived together.
        if (this.recorder) this.chunkArrivedAtMicros = nowMicros();
        // Runs before the chunk is scanned; the pump it schedules runs after (setImmediate).
        afterChunk();
      },
    );
  }

  private onMessage(data: Buffer, start: number, end: number): void {
    const sequence = sequenceOf(data, start, end);
    if (sequence !== this.received + 1) {
      this.abort.fail(
        sequence < 0
          ? `a MESSAGE body is not the one published (content altered or not ${end - start} bytes?)`
          : `expected message ${this.received + 1}, got ${sequence}: messages lost or reordered`,
      );
      return;
    }
    this.received = sequence;
    const recorder = this.recorder;
    if (recorder && sequence >= recorder.first && sequence <= recorder.last) {
      recorder.samplesMs.push((this.chunkArrivedAtMicros - sentAtOf(data, end)) / 1000);
    }
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc; null if unreadable. */
function processCpuSeconds(pid: number, clockTicks: number): number | null {
  if (pid <= 0) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the parenthesized name, which may itself contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return null;
  }
}

class CpuMeter {
  private readonly serverStart: number | null;
  private readonly ownStart = process.cpuUsage();
  private readonly wallStart = performance.now();

  constructor(private readonly spec: LoadSpec) {
    this.serverStart = processCpuSeconds(spec.serverPid, spec.clockTicks);
  }

  read(): { serverCpu: number | null; loadGeneratorCpu: number } {
    const seconds = (performance.now() - this.wallStart) / 1000;
    const serverEnd = processCpuSeconds(this.spec.serverPid, this.spec.clockTicks);
    const own = process.cpuUsage(this.ownStart);
    return {
      serverCpu:
        this.serverStart === null || serverEnd === null
          ? null
          : (serverEnd - this.serverStart) / seconds,
      loadGeneratorCpu: (own.user + own.system) / 1e6 / seconds,
    };
  }
}

function slowestPosition(subscribers: readonly Subscriber[]): number {
  let slowest = Infinity;
  for (const subscriber of subscribers) {
    if (subscriber.received < slowest) slowest = subscriber.received;
  }
  return slowest;
}

function totalReceived(subscribers: readonly Subscriber[]): number {
  let total = 0;
  for (const subscriber of subscribers) total += subscriber.received;
  return total;
}

async function generateLoad(spec: LoadSpec): Promise<LoadResult> {
  const abort = new Abort();
  const deadline = setTimeout(
    () => abort.fail(`no result within ${spec.deadlineMs} ms`),
    spec.deadlineMs,
  );
  const recorder = spec.measurement === 'latency' ? new LatencyRecorder() : undefined;
  const writer = new SendFrameWriter(spec.destination);
  let sent = 0;
  let publishing = false;
  let pumpScheduled = false;

  const subscribers: Subscriber[] = [];
  const publisher = new StompConnection('publisher', spec, abort, () =>
    abort.fail('the publisher received a MESSAGE'),
  );
  const publish = (count: number): void => {
    publisher.write(writer.batch(sent + 1, count, nowMicros()));
    sent += count;
  };

  // Closed loop: publish whatever keeps the publisher `window` messages ahead of the slowest
  // subscriber, at most once per turn of the event loop so that frames go out in batches.
  const pump = (): void => {
    pumpScheduled = false;
    if (!publishing) return;
    const room = slowestPosition(subscribers) + spec.window - sent;
    if (room > 0) publish(room);
  };
  const afterChunk =
    spec.measurement === 'throughput'
      ? (): void => {
          if (pumpScheduled) return;
          pumpScheduled = true;
          setImmediate(pump);
        }
      : (): void => {};

  try {
    for (let index = 0; index < spec.subscribers; index++) {
      subscribers.push(new Subscriber(index, spec, abort, recorder, afterChunk));
    }
    await abort.race(
      Promise.all(
        subscribers.map(async ({ connection }) => {
          await connection.open();
          await connection.subscribe(spec.destination);
        }),
      ),
    );
    await publisher.open();

    let paceTimer: NodeJS.Timeout | undefined;
    publishing = true;
    if (spec.measurement === 'throughput') {
      pump();
    } else {
      // Open loop at a fixed rate: each tick publishes what the clock says is due, so timer
      // jitter changes batch sizes but never the average rate.
      const messagesPerSecond = spec.deliveriesPerSecond / spec.subscribers;
      const maxBacklog = Math.max(1000, messagesPerSecond * MAX_BACKLOG_SECONDS);
      const startedAt = performance.now();
      const tick = (): void => {
        if (!publishing) return;
        const due = Math.floor(((performance.now() - startedAt) / 1000) * messagesPerSecond);
        if (due > sent) publish(due - sent);
        const backlog = sent - slowestPosition(subscribers);
        if (backlog > maxBacklog) {
          abort.fail(
            `not sustained: ${spec.deliveriesPerSecond} deliveries/s left a subscriber ${backlog} messages behind`,
          );
          return;
        }
        paceTimer = setTimeout(tick, 1);
      };
      tick();
    }

    await abort.sleep(spec.warmupMs);
    const receivedBefore = totalReceived(subscribers);
    const sentBefore = sent;
    if (recorder) recorder.first = sent + 1;
    const cpu = new CpuMeter(spec);
    const windowStart = performance.now();
    await abort.sleep(spec.durationMs);
    const seconds = (performance.now() - windowStart) / 1000;
    const deliveries = totalReceived(subscribers) - receivedBefore;
    const usage = cpu.read();
    const published = sent - sentBefore;
    if (recorder) recorder.last = sent;
    publishing = false;
    clearTimeout(paceTimer);

    if (recorder) {
      // Every measured message must arrive, or the percentiles would leave out the slowest.
      const drainUntil = performance.now() + DRAIN_MS;
      while (slowestPosition(subscribers) < sent && performance.now() < drainUntil) {
        await abort.sleep(10);
      }
      let missing = 0;
      for (const subscriber of subscribers) missing += Math.max(0, sent - subscriber.received);
      if (missing > 0) {
        abort.fail(`${missing} deliveries had not arrived ${DRAIN_MS} ms after the last publish`);
        await abort.signal;
      }
    }
    const result: LoadSuccess = {
      ok: true,
      measurement: spec.measurement,
      deliveries,
      seconds,
      deliveriesPerSecond: deliveries / seconds,
      published,
      ...usage,
    };
    const latency = recorder?.summary();
    if (latency) result.latency = latency;
    return result;
  } catch (error) {
    if (!(error instanceof RunAborted)) throw error;
    return { ok: false, measurement: spec.measurement, reason: error.message };
  } finally {
    publishing = false;
    clearTimeout(deadline);
    const connections = [publisher, ...subscribers.map(({ connection }) => connection)];
    await Promise.all(connections.map((connection) => connection.close()));
  }
}

async function runFromCommandLine(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  let result: LoadResult;
  try {
    result = await generateLoad(spec);
  } catch (error) {
    result = { ok: false, measurement: spec.measurement, reason: String(error) };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

await runFromCommandLine();
