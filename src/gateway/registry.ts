import type { GatewaySession } from './session.js';

/** The live sessions by id, attached or waiting for a resume. */
export class SessionRegistry {
  private readonly sessions = new Map<string, GatewaySession>();
  /**
   * The sessions waiting for a resume, longest waiting first (a Set keeps insertion order, and a
   * session is re-inserted whenever it detaches). Expiry and the replay budget only ever look at
   * these: the per-delivery budget check must not walk every session.
   */
  private readonly detached = new Set<GatewaySession>();
  /** MESSAGE bytes all sessions hold for replay. */
  retainedBytes = 0;

  get size(): number {
    return this.sessions.size;
  }

  get(id: string): GatewaySession | undefined {
    return this.sessions.get(id);
  }

  add(session: GatewaySession): void {
    this.sessions.set(session.id, session);
  }

  remove(session: GatewaySession): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    this.detached.delete(session);
  }

  /** The session lost its connection and waits for a resume (from now: it goes last). */
  markDetached(session: GatewaySession): void {
    this.detached.delete(session);
    this.detached.add(session);
  }

  /** The session has a connection again. */
  markAttached(session: GatewaySession): void {
    this.detached.delete(session);
  }

  values(): IterableIterator<GatewaySession> {
    return this.sessions.values();
  }

  /** Ends the sessions that have waited longer than `timeout` for a resume. */
  expire(now: number, timeout: number): void {
    for (const session of this.detached) {
      // Longest waiting first: the first still within its time ends the walk.
      if (now - session.detachedAt < timeout) return;
      session.end('no resume within session.timeout');
    }
  }

  /**
   * Keeps what all sessions hold for replay within `budget`: past it, the sessions that have waited
   * longest for a resume end first (their browsers recover from topic history when they return).
   */
  enforceBudget(budget: number): void {
    // Attached sessions count too, but only detached ones are ended: past the budget with none
    // detached, this returns at once (each attached session's window is bounded by its own cap).
    for (const session of this.detached) {
      if (this.retainedBytes <= budget) return;
      session.end('the gateway needed the memory this detached session held');
    }
  }

  counts(): { sessions: number; attached: number; detached: number } {
    const detached = this.detached.size;
    return { sessions: this.sessions.size, attached: this.sessions.size - detached, detached };
  }
}
