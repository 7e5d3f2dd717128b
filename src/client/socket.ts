/**
 * What the STOMP client needs from a connection: the part of the WebSocket interface it uses,
 * declared here so that the core depends on neither the DOM nor Node. A browser WebSocket fits
 * as is; Node supplies adapters (a TCP socket, `ws`) and the browser part adds the HTTP
 * transports.
 *
 * Contract: `onopen` fires once; `onmessage` delivers bytes or text in order, and frames may be
 * split across messages or several may share one; `onclose` fires exactly once, also when the
 * connection never opened; `send` after close is ignored.
 */
export interface ClientSocket {
  binaryType?: string;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event?: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type SocketFactory = () => ClientSocket;
