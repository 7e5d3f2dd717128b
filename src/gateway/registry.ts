import type { GatewaySession } from './session.js';

/** The live sessions by id, attached or waiting for a resume. */
export class SessionRegistry {
  private readonly sessions = new Map<string, GatewaySession>();

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

  counts(): { sessions: number; attached: number; detached: number } {
    let attached = 0;
    for (const session of this.sessions.values()) if (session.attached) attached++;
    return { sessions: this.sessions.size, attached, detached: this.sessions.size - attached };
  }
}
