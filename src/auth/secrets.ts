import { createHash, timingSafeEqual } from 'node:crypto';

/** Compares a secret without the time taken saying anything about where they differ. */
export function constantTimeEqual(expected: string, given: string): boolean {
  // Hashing first gives equal lengths, so the comparison's time says nothing about either.
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(expected), digest(given));
}
