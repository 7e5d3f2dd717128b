import { describe, expect, it } from 'vitest';
import { BUDGET_BYTES, bundleSizes } from '../../scripts/bundle-size.js';

describe('browser bundle', () => {
  it(`/perigee.js stays within ${BUDGET_BYTES} bytes min+gzip`, async () => {
    const [perigee] = await bundleSizes();
    expect(perigee!.gzipped).toBeGreaterThan(1000);
    expect(perigee!.gzipped).toBeLessThanOrEqual(BUDGET_BYTES);
  });
});
