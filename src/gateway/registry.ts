import type { GatewaySession } from './session.js';

/** The live sessions by id, attached or waiting for a resume. */
export class SessionRegistry {
  private readonly sessions = new Map<string, GatewaySession>();
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
  }

  values(): IterableIterator<GatewaySession> {
    return this.sessions.values();
  }

  /** Ends the sessions that have waited longer than `timeout` for a resume. */
  expire(now: number, timeout: number): void {
    for (const session of this.sessions.values()) {
      if (session.detachedAt !== 0 && now - session.detachedAt >= timeout) {
        session.end('no resume within session.timeout');
      }
    }
  }

  /**
   * Keeps what all sessions hold for replay within `budget`: past it, the sessions that have waited
   * longest for a resume end first (their browsers recover from topic history when they return).
   */
  enforceBudget(budget: number): void {
    if (this.retainedBytes <= budget) return;
    const detached = [...this.sessions.values()]
      .filter((session) => session.detachedAt !== 0)
      .sort((a, b) => a.detachedAt - b.detachedAt);
    for (const session of detached) {
      if (this.retainedBytes <= budget) return;
      session.end('the gateway needed the memory this detached session held');
    }
  }

  counts(): { sessions: number; attached: number; detached: number } {
    let attached = 0;
    for (const session of this.sessions.values()) if (session.attached) attached++;
    return { sessions: this.sessions.size, attached, detached: this.sessions.size - attached };
  }
}
