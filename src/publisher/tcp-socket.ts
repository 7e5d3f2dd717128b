import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { ClientSocket } from '../client/index.js';

export interface TcpEndpoint {
  host: string;
  port: number;
  tls?: boolean;
}

/**
 * A TCP (or TLS) connection dressed as the {@link ClientSocket} the STOMP client expects. Frames
 * sent in the same tick leave in one write.
 */
export class TcpClientSocket implements ClientSocket {
  onopen: ((event?: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  binaryType?: string;

  private readonly socket: Socket;
  private pending: Uint8Array[] = [];
  private flushQueued = false;
  private lastError: Error | undefined;

  constructor(endpoint: TcpEndpoint) {
    const options = { host: endpoint.host, port: endpoint.port };
    this.socket = endpoint.tls
      ? connectTls({ ...options, servername: endpoint.host }, () => this.onopen?.())
      : connectTcp(options, () => this.onopen?.());
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onmessage?.({ data: chunk }));
    this.socket.on('error', (error) => {
      this.lastError = error;
      this.onerror?.(error);
    });
    this.socket.on('close', () => {
      const reason = this.lastError
        ? `${(this.lastError as NodeJS.ErrnoException).code ?? 'error'} ${endpoint.host}:${endpoint.port}`
        : undefined;
      this.onclose?.(reason ? { code: 1006, reason } : { code: 1000 });
    });
  }

  send(data: Uint8Array | string): void {
    if (this.socket.destroyed) return;
    this.pending.push(typeof data === 'string' ? Buffer.from(data) : data);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }

  close(): void {
    this.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.pending.length === 0 || this.socket.destroyed) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.socket.write(data);
  };
}
