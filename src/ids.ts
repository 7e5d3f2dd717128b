import { randomFillSync } from 'node:crypto';

/**
 * Bytes from the CSPRNG, drawn a pool at a time. `randomBytes` costs several microseconds a call;
 * a storm of 10,000 connects called it twice per connection (broker and gateway session ids) and
 * spent 150 ms of its one core there. One fill now serves a few hundred ids. Every id still comes
 * from bytes no other id has used, so it is as unguessable as before.
 */
const pool = Buffer.allocUnsafe(4096);
let used = pool.length;

/** An unguessable id: `bytes` random bytes, base64url (no padding, safe in headers and URLs). */
export function unguessableId(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const id = pool.toString('base64url', used, used + bytes);
  // What made an id is not kept where a later memory disclosure could read it.
  pool.fill(0, used, used + bytes);
  used += bytes;
  return id;
}
