/**
 * What the browser client takes from its surroundings. Browsers have all of it as globals; Node
 * (tests, bots) passes `ws` for WebSocket and `eventsource` for EventSource. The shapes are the
 * few members the client uses, declared here so the code compiles with or without the DOM types.
 */

export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  close(): void;
}

export type EventSourceConstructor = new (url: string) => EventSourceLike;

export interface ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly body: {
    getReader(): {
      read(): Promise<{ done: boolean; value?: Uint8Array }>;
      cancel(): Promise<void>;
    };
  } | null;
  text(): Promise<string>;
}

export type FetchLike = (
  url: string,
  init?: {
    method?: string;
    body?: string;
    headers?: Record<string, string>;
    signal?: unknown;
    credentials?: string;
    cache?: string;
  },
) => Promise<ResponseLike>;

/** The bits of the DOM that htmlfile and JSONP need; absent outside browsers. */
export interface DocumentLike {
  createElement(tag: string): {
    src: string;
    style: { display: string };
    async?: boolean;
    onerror: ((event: unknown) => void) | null;
    onload: ((event: unknown) => void) | null;
    remove(): void;
  };
  body: { appendChild(node: unknown): unknown } | null;
  head?: { appendChild(node: unknown): unknown } | null;
}

export interface Environment {
  WebSocket: WebSocketConstructor | undefined;
  EventSource: EventSourceConstructor | undefined;
  fetch: FetchLike | undefined;
  AbortController: (new () => { signal: unknown; abort(): void }) | undefined;
  document: DocumentLike | undefined;
  /** The window, where htmlfile and JSONP callbacks live. */
  global: Record<string, unknown>;
}

export function defaultEnvironment(overrides: Partial<Environment> = {}): Environment {
  const scope = globalThis as unknown as Record<string, unknown>;
  return {
    WebSocket: scope.WebSocket as WebSocketConstructor | undefined,
    EventSource: scope.EventSource as EventSourceConstructor | undefined,
    fetch:
      typeof scope.fetch === 'function' ? (scope.fetch as FetchLike).bind(globalThis) : undefined,
    AbortController: scope.AbortController as Environment['AbortController'],
    document: scope.document as DocumentLike | undefined,
    global: scope,
    ...overrides,
  };
}
