import { describe, expect, it } from 'vitest';
import { unguessableId } from '../../src/ids.js';

/** Session ids are what a browser presents to resume: never repeated, never predictable. */
describe('unguessableId', () => {
  it('gives distinct base64url ids of the asked length across many refills of its pool', () => {
    const seen = new Set<string>();
    // 4096-byte pool: 20,000 ids of 18 bytes cross ~90 refills, and odd sizes cross its edge.
    for (let i = 0; i < 20_000; i++) {
      const bytes = i % 3 === 0 ? 16 : i % 3 === 1 ? 18 : 7;
      const id = unguessableId(bytes);
      expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(bytes);
      seen.add(id);
    }
    expect(seen.size).toBe(20_000);
  });

  it('spreads its bits: each of 128 bit positions is set in about half of 4,000 ids', () => {
    const counts = new Array<number>(128).fill(0);
    const ids = 4000;
    for (let i = 0; i < ids; i++) {
      const bytes = Buffer.from(unguessableId(16), 'base64url');
      for (let bit = 0; bit < 128; bit++) if ((bytes[bit >> 3]! >> (bit & 7)) & 1) counts[bit]!++;
    }
    // Binomial(4000, 0.5): mean 2000, sd ~32; 6 sd either side never fails by chance.
    for (const count of counts) {
      expect(count).toBeGreaterThan(2000 - 190);
      expect(count).toBeLessThan(2000 + 190);
    }
  });
});
