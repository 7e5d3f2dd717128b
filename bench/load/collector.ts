/**
 * What every subscriber reports into: deliveries, gaps, the position of the slowest subscriber
 * (the publisher's credit is measured from it) and, while recording, the latency histogram.
 */
import type { LatencyFigures } from '../ipc.js';

/** Per-subscriber state the collector updates. */
export interface SubscriberState {
  /** The highest sequence received. */
  last: number;
}

/** Latencies in log-spaced buckets (4% wide): percentiles and a CDF without keeping samples. */
export class LatencyHistogram {
  private static readonly LOG_BASE = Math.log(1.04);
  private readonly buckets = new Map<number, number>();
  private count = 0;
  private max = 0;

  add(micros: number): void {
    const value = micros < 1 ? 1 : micros;
    const bucket = Math.ceil(Math.log(value) / LatencyHistogram.LOG_BASE);
    this.buckets.set(bucket, (this.buckets.get(bucket) ?? 0) + 1);
    this.count++;
    if (value > this.max) this.max = value;
  }

  get samples(): number {
    return this.count;
  }

  figures(): LatencyFigures | undefined {
    if (this.count === 0) return undefined;
    const sorted = [...this.buckets.entries()].sort((a, b) => a[0] - b[0]);
    const histogram: [number, number][] = sorted.map(([bucket, count]) => [
      Math.exp(bucket * LatencyHistogram.LOG_BASE) / 1000,
      count,
    ]);
    const percentile = (fraction: number): number => {
      const rank = Math.max(1, Math.ceil(fraction * this.count));
      let seen = 0;
      for (const [upperMs, count] of histogram) {
        seen += count;
        if (seen >= rank) return Math.min(upperMs, this.max / 1000);
      }
      return this.max / 1000;
    };
    return {
      samples: this.count,
      p50Ms: percentile(0.5),
      p90Ms: percentile(0.9),
      p99Ms: percentile(0.99),
      maxMs: this.max / 1000,
      histogram,
    };
  }
}

export class Collector {
  deliveries = 0;
  gaps = 0;
  /** Every subscriber has received every sequence up to here. */
  complete = 0;
  recording = false;
  histogram = new LatencyHistogram();
  /** When the chunk being parsed arrived (µs, CLOCK_MONOTONIC); set by the drivers. */
  arrivalMicros = 0;
  /** Called when `complete` moves. */
  onAdvance: () => void = () => {};
  private readonly reached = new Map<number, number>();

  constructor(private readonly subscribers: number) {}

  payload(state: SubscriberState, sequence: number, sentAtMicros: number): void {
    const previous = state.last;
    if (sequence <= previous) return;
    // A skipped sequence counts as reached, so that one lost message cannot stall the credit.
    if (sequence > previous + 1) this.gaps += sequence - previous - 1;
    for (let reached = previous + 1; reached <= sequence; reached++) {
      this.reached.set(reached, (this.reached.get(reached) ?? 0) + 1);
    }
    state.last = sequence;
    this.deliveries++;
    if (this.recording) this.histogram.add(this.arrivalMicros - sentAtMicros);
    let moved = false;
    while (this.reached.get(this.complete + 1) === this.subscribers) {
      this.reached.delete(this.complete + 1);
      this.complete++;
      moved = true;
    }
    if (moved) this.onAdvance();
  }
}
