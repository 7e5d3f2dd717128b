import { describe, expect, it } from 'vitest';
import { latencyWindow } from '../../bench/runner.js';

/**
 * The publisher sends message k at k periods after it starts. A latency window must open and close
 * midway between two messages, or its delivered rate reads a whole fan-out short and a load that
 * was sustained is reported as not sustained.
 */
describe('latencyWindow', () => {
  // Messages per second at 5,000 deliveries/s: 10k, 1k, 100 and an uneven 3,000 subscribers.
  for (const rate of [0.5, 5, 50, 5000 / 3000]) {
    it(`opens and closes halfway between two messages at ${rate.toFixed(2)} messages/s`, () => {
      const periodMs = 1000 / rate;
      const { latencyWarmupMs, latencyMs } = latencyWindow(rate, 300, 1000);
      const opens = latencyWarmupMs / periodMs;
      const closes = (latencyWarmupMs + latencyMs) / periodMs;
      expect(opens - Math.floor(opens)).toBeCloseTo(0.5, 2);
      expect(closes - Math.floor(closes)).toBeCloseTo(0.5, 2);
      // At least the measured duration, and at least two messages inside.
      expect(latencyMs).toBeGreaterThanOrEqual(1000 - 1);
      expect(Math.round(latencyMs / periodMs)).toBeGreaterThanOrEqual(2);
      // The warm-up is the configured one or more, unless half a period already exceeds it.
      expect(latencyWarmupMs).toBeGreaterThanOrEqual(Math.min(300, periodMs / 2) - 1);
    });
  }

  it('holds two messages at 10k subscribers: one every 2 s, a 4 s window after 1 s', () => {
    expect(latencyWindow(0.5, 300, 1000)).toEqual({ latencyWarmupMs: 1000, latencyMs: 4000 });
  });
});
