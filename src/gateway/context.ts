import type { Authorizer } from '../auth/index.js';
import type { Backend } from '../backend.js';
import type { HeartBeat, ParserLimits } from '../protocol/index.js';
import type { Connection } from './connection.js';
import type { GatewayCounters } from './metrics.js';
import type { SessionRegistry } from './registry.js';
import type { UpstreamAccess } from './upstreams.js';

export interface GatewayLogger {
  debug(object: object, message: string): void;
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

export interface ResolvedSessionOptions {
  /** STOMP heart-beats offered to browsers, and the SockJS `h` interval. */
  pingInterval: number;
  /** How long a detached session waits for a resume. */
  timeout: number;
  /**
   * MESSAGE bytes a session may hold for replay: half of it while attached (what may be in
   * flight), all of it while detached; past it a detached session ends.
   */
  maxQueuedBytes: number;
  /** Bytes a connection may have unsent before the browser counts as slow and is reconnected. */
  maxBufferedBytes: number;
  maxSessions: number;
  /** MESSAGE bytes all sessions together may hold for replay. */
  maxRetainedBytes: number;
}

/** What every part of the gateway shares. */
export interface GatewayContext {
  readonly options: ResolvedSessionOptions;
  readonly limits: Partial<ParserLimits>;
  readonly heartBeat: HeartBeat;
  readonly serverName: string;
  readonly backend: Backend;
  readonly authorizer: Authorizer;
  readonly upstreams: UpstreamAccess;
  readonly registry: SessionRegistry;
  readonly batcher: FlushBatcher;
  readonly connections: Set<Connection>;
  /** Events counted for `/metrics`. */
  readonly counters: GatewayCounters;
  readonly log: GatewayLogger;
  /** Set once the gateway is shutting down: new CONNECTs are refused. */
  closing: boolean;
}

/**
 * Collects the connections that have frames to send and flushes each once per turn of the event
 * loop, so that everything queued in one turn leaves in one write.
 */
export class FlushBatcher {
  private pending: Connection[] = [];
  private scheduled = false;

  schedule(connection: Connection): void {
    this.pending.push(connection);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushAll);
    }
  }

  private readonly flushAll = (): void => {
    this.scheduled = false;
    const connections = this.pending;
    this.pending = [];
    const now = Date.now();
    for (const connection of connections) connection.flush(now);
  };
}
