import type { Transport } from '../transport.js';
import type { SockJSConnection } from './sockjs/index.js';

/**
 * STOMP over a SockJS session: each SockJS message carries STOMP frames as text. A batch of frames
 * becomes one SockJS message (one `a[...]` entry): STOMP parsers read a stream, so the frames
 * need no separation beyond their NULs.
 */
export class SockJSStompTransport implements Transport {
  readonly name: string;
  readonly unidirectional: boolean;
  readonly textOnly = true;
  readonly requestHeaders: Readonly<Record<string, string | string[] | undefined>>;
  readonly remoteAddress: string | undefined;
  onData: ((data: string | Uint8Array) => void) | null = null;
  onClose: ((reason: string) => void) | null = null;
  private readonly connection: SockJSConnection;

  constructor(connection: SockJSConnection) {
    this.connection = connection;
    this.name = connection.transport;
    this.unidirectional = !connection.transport.includes('websocket');
    this.requestHeaders = connection.headers;
    this.remoteAddress = connection.remoteAddress;
    connection.onmessage = (message) => this.onData?.(message);
    connection.onclose = (code, reason) => this.onClose?.(`${code} ${reason}`);
  }

  get bufferedBytes(): number {
    return this.connection.bufferedBytes;
  }

  write(frames: readonly (string | Uint8Array)[]): boolean {
    const text = frames
      .map((frame) => (typeof frame === 'string' ? frame : new TextDecoder().decode(frame)))
      .join('');
    return this.connection.send(text);
  }

  close(code: number, reason: string): void {
    // The code travels in the `c[code,"reason"]` frame as is: clients read the error table's
    // WebSocket codes (1012 restart, 1013 try again later) to decide whether to reconnect.
    this.connection.close(code, reason);
  }
}
