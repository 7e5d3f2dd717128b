/**
 * Thin protocol drivers, one subscriber each: open the transport, subscribe, then hand every
 * payload found in what arrives to the collector. Setup is parsed properly (handshakes, STOMP
 * CONNECTED/RECEIPT, SockJS open frames); after it, bytes are only scanned for payloads, which
 * is what keeps one load-generator core ahead of one server core.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { READY_TOKEN, TOPIC_PLACEHOLDER, type DriverSpec, type TargetInfo } from '../catalog.js';
import { monotonicMicros, PayloadStreamScanner, scanMessage } from '../payload.js';
import type { Collector, SubscriberState } from './collector.js';
import { MeteredAgent } from './meter.js';
import { WebSocketClient } from './websocket.js';

export interface DriverContext {
  host: string;
  port: number;
  collector: Collector;
  /** A subscriber that fails after it was subscribed ends the run with this reason. */
  fail(reason: string): void;
  pollIntervalMs: number;
  /** STOMP login for servers that want one (RabbitMQ). */
  stompLogin?: { login: string; passcode: string; virtualHost: string };
}

export interface Subscriber extends SubscriberState {
  /** Resolves once subscribed (or, for long polls, once the first poll is out). */
  open(): Promise<void>;
  /** Ends the subscription; resolves once the server has been told (HTTP sessions) or at once. */
  close(): void | Promise<void>;
}

/** Subscriber ends of the long polls cannot tell when they are subscribed; the server can. */
export function serverConfirmsSubscriptions(driver: DriverSpec): boolean {
  return driver.kind === 'longpoll';
}

// Receiving requests each hold a socket; sends share a pool, as a browser's would be per origin.
const receiveAgent = new MeteredAgent({
  keepAlive: true,
  maxSockets: Infinity,
  maxFreeSockets: 65_536,
});
const sendAgent = new MeteredAgent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });

export function closeAgents(): void {
  receiveAgent.destroy();
  sendAgent.destroy();
}

function stompFrame(command: string, headers: Record<string, string>): string {
  let text = `${command}\n`;
  for (const [name, value] of Object.entries(headers)) text += `${name}:${value}\n`;
  return `${text}\n\0`;
}

function connectFrame(context: DriverContext): string {
  const headers: Record<string, string> = {
    'accept-version': '1.2',
    host: context.stompLogin?.virtualHost ?? 'localhost',
    'heart-beat': '0,0',
  };
  if (context.stompLogin) {
    headers.login = context.stompLogin.login;
    headers.passcode = context.stompLogin.passcode;
  }
  return stompFrame('CONNECT', headers);
}

function subscribeFrame(destination: string): string {
  return stompFrame('SUBSCRIBE', {
    id: '0',
    destination,
    ack: 'auto',
    receipt: 'subscribed',
  });
}

/** A settle-once promise with its resolve/reject. */
function deferred(): {
  promise: Promise<void>;
  resolve: () => void;
  reject: (reason: string) => void;
  settled: () => boolean;
} {
  let settled = false;
  let resolve!: () => void;
  let reject!: (reason: string) => void;
  const promise = new Promise<void>((ok, fail) => {
    resolve = () => {
      settled = true;
      ok();
    };
    reject = (reason: string) => {
      settled = true;
      fail(new Error(reason));
    };
  });
  promise.catch(() => {});
  return { promise, resolve, reject, settled: () => settled };
}

function firstBytes(data: Buffer, start: number, end: number, count = 160): string {
  return data.toString('latin1', start, Math.min(end, start + count));
}

/** STOMP, plain, or socket.io over a WebSocket; SockJS over a WebSocket is {@link SockJSWebSocketSubscriber}. */
class WebSocketSubscriber implements Subscriber {
  last = 0;
  private client: WebSocketClient | undefined;
  private ready = false;
  private readonly done = deferred();
  private readonly onPayload = (sequence: number, sentAt: number): void =>
    this.context.collector.payload(this, sequence, sentAt);

  constructor(
    private readonly context: DriverContext,
    private readonly driver: Extract<DriverSpec, { kind: 'websocket' }>,
    private readonly topic: string,
    private readonly destination: string,
  ) {}

  open(): Promise<void> {
    const path = this.driver.path.replace(TOPIC_PLACEHOLDER, encodeURIComponent(this.topic));
    const collector = this.context.collector;
    this.client = new WebSocketClient(
      this.context.host,
      this.context.port,
      path,
      this.driver.subprotocol,
      {
        onChunk: () => {
          collector.arrivalMicros = monotonicMicros();
        },
        onOpen: () => {
          if (this.driver.inner === 'none') this.subscribed();
          else if (this.driver.inner === 'stomp') this.client!.send(connectFrame(this.context));
        },
        onMessage: (data, start, end) => this.onMessage(data, start, end),
        onClose: (reason) => this.failed(reason),
      },
    );
    return this.done.promise;
  }

  close(): void {
    this.client?.close();
  }

  private subscribed(): void {
    this.ready = true;
    this.done.resolve();
  }

  private failed(reason: string): void {
    if (this.ready) this.context.fail(`a subscriber's WebSocket ended: ${reason}`);
    else this.done.reject(reason);
  }

  private onMessage(data: Buffer, start: number, end: number): void {
    const first = data[start];
    switch (this.driver.inner) {
      case 'none':
        scanMessage(data, start, end, this.onPayload);
        return;
      case 'ready-token':
        if (this.ready) scanMessage(data, start, end, this.onPayload);
        else if (data.includes(READY_TOKEN, start)) this.subscribed();
        return;
      case 'socketio':
        // engine.io packet types: 0 open, 1 close, 2 ping, 4 message (socket.io: 0 connect, 2 event, 4 error).
        if (first === 0x34) {
          if (this.ready) scanMessage(data, start, end, this.onPayload);
          else if (data[start + 1] === 0x30) this.subscribed();
          else this.failed(`socket.io refused: ${firstBytes(data, start, end)}`);
        } else if (first === 0x32) {
          this.client!.send('3');
        } else if (first === 0x30) {
          this.client!.send('40');
        } else if (first === 0x31) {
          this.failed('engine.io close packet');
        }
        return;
      case 'stomp':
        if (this.ready) {
          if (first === 0x45) this.failed(`ERROR frame: ${firstBytes(data, start, end)}`);
          else scanMessage(data, start, end, this.onPayload);
          return;
        }
        if (first === 0x43) {
          this.client!.send(subscribeFrame(this.destination));
        } else if (first === 0x52) {
          this.subscribed();
        } else if (first === 0x45) {
          this.failed(`ERROR frame: ${firstBytes(data, start, end)}`);
        }
        return;
    }
  }
}

/** What a SockJS client sends first, and how it knows it is subscribed. */
class SockJSInner {
  private stage: 'open' | 'connecting' | 'subscribing' | 'ready' = 'open';

  constructor(
    private readonly inner: 'stomp' | 'ready-token',
    private readonly topic: string,
    private readonly destination: string,
    private readonly context: DriverContext,
  ) {}

  get ready(): boolean {
    return this.stage === 'ready';
  }

  /** The session is open: the first messages to send. */
  opened(): string[] {
    if (this.inner === 'stomp') {
      this.stage = 'connecting';
      return [connectFrame(this.context)];
    }
    this.stage = 'subscribing';
    return [`sub ${this.topic}`];
  }

  /**
   * What ends the session at once. Without it an HTTP session would linger for the server's
   * disconnect delay after its last request, and weigh on the next run's memory baseline.
   */
  goodbye(): string {
    return this.inner === 'stomp' ? stompFrame('DISCONNECT', {}) : 'bye';
  }

  /** Text received before ready: what to send next, or an error. */
  received(text: string): { send?: string[]; error?: string } {
    if (this.inner === 'stomp' && text.includes('ERROR')) {
      return {
        error: `ERROR frame: ${text.slice(text.indexOf('ERROR'), text.indexOf('ERROR') + 160)}`,
      };
    }
    if (this.stage === 'connecting' && text.includes('CONNECTED')) {
      this.stage = 'subscribing';
      return { send: [subscribeFrame(this.destination)] };
    }
    if (this.stage === 'subscribing') {
      const token = this.inner === 'stomp' ? 'RECEIPT' : READY_TOKEN;
      if (text.includes(token)) this.stage = 'ready';
    }
    return {};
  }
}

function sessionPath(base: string): string {
  return `${base}/000/${randomBytes(9).toString('base64url')}`;
}

class SockJSWebSocketSubscriber implements Subscriber {
  last = 0;
  private client: WebSocketClient | undefined;
  private readonly inner: SockJSInner;
  private readonly done = deferred();
  private readonly onPayload = (sequence: number, sentAt: number): void =>
    this.context.collector.payload(this, sequence, sentAt);

  constructor(
    private readonly context: DriverContext,
    private readonly driver: Extract<DriverSpec, { kind: 'sockjs' }>,
    topic: string,
    destination: string,
  ) {
    this.inner = new SockJSInner(driver.inner, topic, destination, context);
  }

  open(): Promise<void> {
    const collector = this.context.collector;
    const path = `${sessionPath(this.driver.base)}/websocket`;
    this.client = new WebSocketClient(this.context.host, this.context.port, path, undefined, {
      onChunk: () => {
        collector.arrivalMicros = monotonicMicros();
      },
      onOpen: () => {},
      onMessage: (data, start, end) => this.onMessage(data, start, end),
      onClose: (reason) => this.failed(reason),
    });
    return this.done.promise;
  }

  close(): void {
    this.client?.close();
  }

  private failed(reason: string): void {
    if (this.done.settled()) this.context.fail(`a subscriber's SockJS WebSocket ended: ${reason}`);
    else this.done.reject(reason);
  }

  private send(messages: string[] | undefined): void {
    if (messages && messages.length > 0) this.client!.send(JSON.stringify(messages));
  }

  private onMessage(data: Buffer, start: number, end: number): void {
    const first = data[start];
    if (first === 0x61 /* a */) {
      if (this.inner.ready) {
        scanMessage(data, start, end, this.onPayload);
        return;
      }
      const { send, error } = this.inner.received(data.toString('utf8', start, end));
      if (error !== undefined) this.failed(error);
      this.send(send);
      if (this.inner.ready) this.done.resolve();
    } else if (first === 0x6f /* o */) {
      this.send(this.inner.opened());
    } else if (first === 0x63 /* c */) {
      this.failed(`SockJS close frame ${firstBytes(data, start, end)}`);
    }
  }
}

/** How each SockJS HTTP transport asks for frames, and how its open and close frames look. */
const SOCKJS_HTTP: Record<
  Exclude<Extract<DriverSpec, { kind: 'sockjs' }>['transport'], 'websocket'>,
  {
    method: 'GET' | 'POST';
    segment: string;
    streaming: boolean;
    open: RegExp;
    close: RegExp;
    jsonp: boolean;
  }
> = {
  'xhr-streaming': {
    method: 'POST',
    segment: 'xhr_streaming',
    streaming: true,
    open: /(^|\n)o\n/,
    close: /(^|\n)c\[/,
    jsonp: false,
  },
  eventsource: {
    method: 'GET',
    segment: 'eventsource',
    streaming: true,
    open: /data: o\r\n/,
    close: /data: c\[/,
    jsonp: false,
  },
  htmlfile: {
    method: 'GET',
    segment: 'htmlfile?c=cb',
    streaming: true,
    open: /p\("o"\)/,
    close: /p\("c\[/,
    jsonp: false,
  },
  'xhr-polling': {
    method: 'POST',
    segment: 'xhr',
    streaming: false,
    open: /^o\n/,
    close: /^c\[/,
    jsonp: false,
  },
  'jsonp-polling': {
    method: 'GET',
    segment: 'jsonp?c=cb',
    streaming: false,
    open: /cb\("o"\)/,
    close: /cb\("c\[/,
    jsonp: true,
  },
};

class SockJSHttpSubscriber implements Subscriber {
  last = 0;
  private readonly inner: SockJSInner;
  private readonly done = deferred();
  private readonly path: string;
  private readonly mode: (typeof SOCKJS_HTTP)[keyof typeof SOCKJS_HTTP];
  private opened = false;
  private closed = false;
  private current: ReturnType<typeof httpRequest> | undefined;
  private waitTimer: NodeJS.Timeout | undefined;
  private readonly scanner: PayloadStreamScanner;

  constructor(
    private readonly context: DriverContext,
    private readonly driver: Extract<DriverSpec, { kind: 'sockjs' }>,
    topic: string,
    destination: string,
  ) {
    this.inner = new SockJSInner(driver.inner, topic, destination, context);
    this.path = sessionPath(driver.base);
    this.mode = SOCKJS_HTTP[driver.transport as keyof typeof SOCKJS_HTTP];
    this.scanner = new PayloadStreamScanner((sequence, sentAt) =>
      context.collector.payload(this, sequence, sentAt),
    );
  }

  open(): Promise<void> {
    this.receive();
    return this.done.promise;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const graceful = this.inner.ready;
    this.stop();
    if (graceful) await this.send([this.inner.goodbye()]);
  }

  private stop(): void {
    this.closed = true;
    clearTimeout(this.waitTimer);
    this.current?.destroy();
  }

  private failed(reason: string): void {
    if (this.closed) return;
    this.stop();
    if (this.done.settled())
      this.context.fail(`a subscriber's ${this.driver.transport} ended: ${reason}`);
    else this.done.reject(reason);
  }

  private receive(): void {
    if (this.closed) return;
    const request = httpRequest({
      host: this.context.host,
      port: this.context.port,
      method: this.mode.method,
      path: `${this.path}/${this.mode.segment}`,
      agent: receiveAgent,
      headers: this.mode.method === 'POST' ? { 'content-length': '0' } : {},
    });
    this.current = request;
    request.on('response', (response) => this.onResponse(response));
    request.on('error', (error: NodeJS.ErrnoException) =>
      this.failed(`receive request failed: ${error.code ?? error.message}`),
    );
    request.end();
  }

  private onResponse(response: IncomingMessage): void {
    if (response.statusCode !== 200) {
      this.failed(`${this.mode.segment} answered ${response.statusCode}`);
      response.resume();
      return;
    }
    const collector = this.context.collector;
    let first = true;
    let onlyHeartbeat = true;
    response.on('data', (chunk: Buffer) => {
      collector.arrivalMicros = monotonicMicros();
      if (first) {
        first = false;
        const head = chunk.toString('latin1', 0, Math.min(chunk.length, 64));
        if (this.mode.close.test(head) && this.opened) {
          this.failed(`SockJS close frame: ${head}`);
          return;
        }
      }
      if (onlyHeartbeat && !(chunk.length <= 2 && chunk[0] === 0x68)) onlyHeartbeat = false;
      if (this.inner.ready) this.scanner.push(chunk);
      else this.setup(chunk.toString('utf8'));
    });
    response.on('end', () => {
      if (this.closed) return;
      // A stream reached its response limit, or a poll was answered: ask again at once, except
      // that a short poll that brought nothing waits, as Perigee's client does.
      if (this.driver.shortPolling && onlyHeartbeat) {
        this.waitTimer = setTimeout(() => this.receive(), this.context.pollIntervalMs);
      } else {
        this.receive();
      }
    });
    response.on('aborted', () => this.failed('the response was cut'));
    response.on('error', (error: NodeJS.ErrnoException) =>
      this.failed(error.code ?? error.message),
    );
  }

  private setup(text: string): void {
    if (!this.opened) {
      if (!this.mode.open.test(text)) {
        if (this.mode.close.test(text)) this.failed(`SockJS close frame: ${text.slice(0, 160)}`);
        return;
      }
      this.opened = true;
      void this.send(this.inner.opened());
      return;
    }
    const { send, error } = this.inner.received(text);
    if (error !== undefined) {
      this.failed(error);
      return;
    }
    if (send) void this.send(send);
    if (this.inner.ready) this.done.resolve();
  }

  private send(messages: string[]): Promise<void> {
    const json = JSON.stringify(messages);
    const body = this.mode.jsonp ? `d=${encodeURIComponent(json)}` : json;
    const request = httpRequest({
      host: this.context.host,
      port: this.context.port,
      method: 'POST',
      path: `${this.path}/${this.mode.jsonp ? 'jsonp_send' : 'xhr_send'}`,
      agent: sendAgent,
      headers: {
        'content-type': this.mode.jsonp
          ? 'application/x-www-form-urlencoded'
          : 'text/plain;charset=UTF-8',
        'content-length': String(Buffer.byteLength(body)),
      },
    });
    return new Promise<void>((resolve) => {
      request.setTimeout(5000, () => request.destroy());
      request.on('response', (response) => {
        response.resume();
        response.on('end', resolve);
        if (response.statusCode !== 204 && response.statusCode !== 200) {
          this.failed(`send answered ${response.statusCode}`);
        }
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        this.failed(`send failed: ${error.code ?? error.message}`);
        resolve();
      });
      request.end(body);
    });
  }
}

/** An SSE stream: subscribed when the server answers 200 (it subscribes before it does). */
class SseSubscriber implements Subscriber {
  last = 0;
  private readonly done = deferred();
  private request: ReturnType<typeof httpRequest> | undefined;
  private closed = false;
  private readonly scanner: PayloadStreamScanner;

  constructor(
    private readonly context: DriverContext,
    private readonly path: string,
  ) {
    this.scanner = new PayloadStreamScanner((sequence, sentAt) =>
      context.collector.payload(this, sequence, sentAt),
    );
  }

  open(): Promise<void> {
    const collector = this.context.collector;
    const request = httpRequest({
      host: this.context.host,
      port: this.context.port,
      path: this.path,
      agent: receiveAgent,
      headers: { accept: 'text/event-stream', 'cache-control': 'no-cache' },
    });
    this.request = request;
    request.on('response', (response) => {
      if (response.statusCode !== 200) {
        this.failed(`answered ${response.statusCode}`);
        response.resume();
        return;
      }
      this.done.resolve();
      response.on('data', (chunk: Buffer) => {
        collector.arrivalMicros = monotonicMicros();
        this.scanner.push(chunk);
      });
      response.on('end', () => this.failed('the stream ended'));
      response.on('aborted', () => this.failed('the stream was cut'));
    });
    request.on('error', (error: NodeJS.ErrnoException) => this.failed(error.code ?? error.message));
    request.end();
    return this.done.promise;
  }

  close(): void {
    this.closed = true;
    this.request?.destroy();
  }

  private failed(reason: string): void {
    if (this.closed) return;
    this.close();
    if (this.done.settled()) this.context.fail(`a subscriber's SSE stream ended: ${reason}`);
    else this.done.reject(reason);
  }
}

/**
 * Long polling against a peer: a new GET after each answer. nchan's answers carry Last-Modified
 * and Etag, sent back so that nothing is skipped; Pushpin holds only the open request, so what is
 * published between two polls is lost (counted as gaps).
 */
class LongPollSubscriber implements Subscriber {
  last = 0;
  private closed = false;
  private request: ReturnType<typeof httpRequest> | undefined;
  private lastModified: string | undefined;
  private etag: string | undefined;
  private readonly scanner: PayloadStreamScanner;

  constructor(
    private readonly context: DriverContext,
    private readonly flavor: 'nchan' | 'pushpin',
    private readonly path: string,
  ) {
    this.scanner = new PayloadStreamScanner((sequence, sentAt) =>
      context.collector.payload(this, sequence, sentAt),
    );
  }

  open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.poll((error) => (error === undefined ? resolve() : reject(new Error(error))));
    });
  }

  close(): void {
    this.closed = true;
    this.request?.destroy();
  }

  private poll(onSent?: (error?: string) => void): void {
    if (this.closed) return;
    const headers: Record<string, string> = { accept: '*/*' };
    if (this.flavor === 'nchan') {
      if (this.lastModified !== undefined) headers['if-modified-since'] = this.lastModified;
      if (this.etag !== undefined) headers['if-none-match'] = this.etag;
    }
    const collector = this.context.collector;
    const request = httpRequest({
      host: this.context.host,
      port: this.context.port,
      path: this.path,
      agent: receiveAgent,
      headers,
    });
    this.request = request;
    request.on('socket', (socket) => {
      if (!onSent) return;
      const sent = onSent;
      onSent = undefined;
      if ((socket as { connecting?: boolean }).connecting) socket.once('connect', () => sent());
      else sent();
    });
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      if (status !== 200 && status !== 304 && status !== 408) {
        response.resume();
        this.failed(`answered ${status}`);
        return;
      }
      const modified = response.headers['last-modified'];
      const etag = response.headers.etag;
      if (typeof modified === 'string') this.lastModified = modified;
      if (typeof etag === 'string') this.etag = etag;
      response.on('data', (chunk: Buffer) => {
        collector.arrivalMicros = monotonicMicros();
        this.scanner.push(chunk);
      });
      response.on('end', () => this.poll());
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code ?? error.message;
      if (onSent) onSent(reason);
      else this.failed(reason);
    });
    request.end();
  }

  private failed(reason: string): void {
    if (this.closed) return;
    this.close();
    this.context.fail(`a subscriber's long poll failed: ${reason}`);
  }
}

export function createSubscriber(
  target: TargetInfo,
  context: DriverContext,
  topic: string,
): Subscriber {
  const driver = target.driver;
  const destination = target.destination?.(topic) ?? topic;
  const path = (template: string): string =>
    template.replace(TOPIC_PLACEHOLDER, encodeURIComponent(topic));
  switch (driver.kind) {
    case 'websocket':
      return new WebSocketSubscriber(context, driver, topic, destination);
    case 'sockjs':
      return driver.transport === 'websocket'
        ? new SockJSWebSocketSubscriber(context, driver, topic, destination)
        : new SockJSHttpSubscriber(context, driver, topic, destination);
    case 'sse':
      return new SseSubscriber(context, path(driver.path));
    case 'longpoll':
      return new LongPollSubscriber(context, driver.flavor, path(driver.path));
  }
}
