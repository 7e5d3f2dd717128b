import type { ConnectContext } from '../auth/index.js';
import type { Principal } from '../backend.js';
import { errorTable, PerigeeError } from '../errors.js';
import {
  EMPTY_BODY,
  errorFrame,
  FrameParser,
  getHeader,
  heartBeatDeadline,
  negotiateHeartBeat,
  negotiateVersion,
  parseHeartBeat,
  type Frame,
  type Header,
  type StompVersion,
} from '../protocol/index.js';
import type { GatewayContext } from './context.js';
import { GatewaySession, newGatewaySessionId } from './session.js';
import type { Transport } from './transport.js';

type ConnectionState = 'new' | 'connecting' | 'open' | 'closed';

/** Frames a browser may send while its login is being checked. More is a flood. */
const MAX_FRAMES_WHILE_CONNECTING = 100;

/**
 * One transport's worth of a browser conversation: it reads frames, handles CONNECT (a new
 * session, or the resume of a detached one), then hands frames to its {@link GatewaySession}. It
 * also owns the heart-beats and the batching of outgoing frames for its transport.
 */
export class Connection {
  readonly transport: Transport;
  session: GatewaySession | undefined;
  version: StompVersion = '1.2';

  private state: ConnectionState = 'new';
  private readonly context: GatewayContext;
  private readonly parser: FrameParser;
  private readonly outgoing: Frame[] = [];
  private heartBeatBytes = false;
  private flushScheduled = false;
  private waiting: Frame[] | undefined;
  private lastReadAt = Date.now();
  private lastWriteAt = Date.now();
  private sendEvery = 0;
  private deadline = 0;

  constructor(transport: Transport, context: GatewayContext) {
    this.transport = transport;
    this.context = context;
    this.parser = new FrameParser((frame) => this.onFrame(frame), {
      limits: context.limits,
      version: '1.2',
    });
    transport.onData = (data) => this.onData(data);
    transport.onClose = (reason) => this.onTransportClosed(reason);
    context.connections.add(this);
    context.counters.connectionsOpened++;
  }

  /** Queues a frame for the browser; everything queued in one turn leaves in one write. */
  enqueue(frame: Frame): void {
    if (this.state === 'closed') return;
    this.outgoing.push(frame);
    this.scheduleFlush();
  }

  /** Writes what is queued. `now`: the batcher reads the clock once for all it flushes. */
  flush(now = Date.now()): void {
    this.flushScheduled = false;
    if (this.state === 'closed') return;
    if (this.outgoing.length === 0 && !this.heartBeatBytes) return;
    const transport = this.transport;
    // Data counts as a heart-beat: one is only sent when there is nothing else.
    const written =
      this.outgoing.length > 0
        ? transport.writeFrames(this.outgoing, this.version)
        : transport.writeHeartBeat();
    // Transports encode the batch before writeFrames returns, so the array is free again. A
    // batch of one (most of a fan-out) is emptied by pop(), which compiles inline; assigning the
    // length is a runtime call.
    if (this.outgoing.length === 1) this.outgoing.pop();
    else this.outgoing.length = 0;
    this.heartBeatBytes = false;
    this.lastWriteAt = now;
    if (!written || transport.bufferedBytes > this.context.options.maxBufferedBytes) {
      // The browser does not keep up. Dropping the connection (not the session) makes it
      // reconnect and resume, replaying from what the session retains; nothing is lost, and
      // the server stops buffering for it.
      this.context.log.debug(
        { session: this.session?.id, transport: transport.name },
        'slow browser: reconnecting it',
      );
      this.context.counters.slowConsumerDisconnects++;
      this.close(errorTable.SLOW_CONSUMER.closeCode, 'slow consumer: reconnect and resume');
    }
  }

  /** The ticker's check: heart-beats out, and silence in. */
  tick(now: number): void {
    if (this.state !== 'open') return;
    if (this.deadline !== 0 && now - this.lastReadAt > this.deadline) {
      this.context.counters.heartBeatTimeouts++;
      this.close(errorTable.HEARTBEAT_TIMEOUT.closeCode, 'heart-beat timeout');
      return;
    }
    // STOMP 1.2 §Heart-beating: "the sender MUST send new data ... at least every <n> ms".
    if (
      this.sendEvery !== 0 &&
      now - this.lastWriteAt >= this.sendEvery * 0.8 &&
      this.outgoing.length === 0
    ) {
      this.heartBeatBytes = true;
      this.scheduleFlush();
    }
  }

  /** The session moved to a newer connection: this one goes quietly, leaving the session alone. */
  replaced(): void {
    this.session = undefined;
    this.close(1000, 'replaced by a newer connection of the same session');
  }

  /** Closes the transport, after sending what is queued if `afterFlush`. */
  closeAfter(afterFlush: boolean, reason: string): void {
    this.session = undefined;
    if (afterFlush) this.flush();
    this.close(1000, reason);
  }

  /** Shutdown: the browser should come back later (a retryable close). */
  shutdown(): void {
    const error = new PerigeeError('SHUTTING_DOWN', 'the server is restarting; reconnect shortly');
    if (this.state === 'open') this.enqueue(errorFrame(error));
    this.flush();
    this.close(error.closeCode, error.message);
  }

  private close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.finish();
    this.transport.close(code, reason);
  }

  private finish(): void {
    this.state = 'closed';
    this.parser.stop();
    this.context.connections.delete(this);
    const session = this.session;
    this.session = undefined;
    session?.detach(this);
  }

  private onTransportClosed(_reason: string): void {
    if (this.state !== 'closed') this.finish();
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.context.batcher.schedule(this);
    }
  }

  private onData(data: string | Uint8Array): void {
    this.lastReadAt = Date.now();
    if (this.state === 'closed') return;
    try {
      this.parser.push(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    } catch (error) {
      this.fail(error);
    }
  }

  private onFrame(frame: Frame): void {
    switch (this.state) {
      case 'new':
        if (frame.command !== 'CONNECT' && frame.command !== 'STOMP') {
          this.fail(
            new PerigeeError('NOT_CONNECTED', `got ${frame.command} before CONNECT`),
            frame,
          );
          return;
        }
        this.state = 'connecting';
        this.connect(frame).catch((error: unknown) => this.fail(error, frame));
        return;
      case 'connecting': {
        const waiting = (this.waiting ??= []);
        if (waiting.length >= MAX_FRAMES_WHILE_CONNECTING) {
          this.fail(new PerigeeError('LIMIT_EXCEEDED', 'too many frames before CONNECTED'), frame);
          return;
        }
        waiting.push(frame);
        return;
      }
      case 'open':
        try {
          this.session!.fromClient(frame);
        } catch (error) {
          this.fail(error, frame);
        }
        return;
      case 'closed':
        return;
    }
  }

  private async connect(frame: Frame): Promise<void> {
    const version = negotiateVersion(getHeader(frame, 'accept-version'));
    this.version = version;
    this.parser.version = version;
    const clientHeartBeat = parseHeartBeat(getHeader(frame, 'heart-beat'));
    if (this.context.closing) {
      throw new PerigeeError('SHUTTING_DOWN', 'the server is restarting; reconnect shortly');
    }
    // The talk's STOMPClient.connect(host, port) names a broker; [access] says which may be named.
    const upstream = getHeader(frame, 'x-perigee-upstream');
    if (upstream !== undefined) this.context.upstreams.check(upstream);
    const connectContext = this.connectContext(frame);
    this.transport.releaseRequest?.();
    const principal = await this.context.authorizer.authenticate(connectContext);
    if (this.state !== 'connecting') return; // the transport went away during the login check

    const resumeId = getHeader(frame, 'x-perigee-session');
    const lastSeq = Number(getHeader(frame, 'x-perigee-last-seq') ?? '0');
    let session: GatewaySession | undefined;
    let resumed = false;
    if (resumeId !== undefined) {
      const previous = this.context.registry.get(resumeId);
      if (previous && !previous.closed && samePrincipal(previous.principal, principal)) {
        if (previous.canResumeFrom(lastSeq)) {
          session = previous;
          resumed = true;
          this.context.counters.sessionsResumed++;
        } else {
          this.context.counters.resumesTooLate++;
          previous.end('a resume came too late to be lossless');
        }
      }
    }
    if (!session) session = await this.openSession(principal, version);
    if (this.state !== 'connecting') {
      if (!resumed) session.end('the transport closed while connecting');
      return;
    }
    this.session = session;
    session.resumable = getHeader(frame, 'x-perigee-resume') === 'true';
    session.attach(this, version);
    this.state = 'open';
    this.startHeartBeats(clientHeartBeat);
    const [send, receive] = this.context.heartBeat;
    const headers: Header[] = [
      ['version', version],
      ['session', session.id],
      ['server', this.context.serverName],
      ['heart-beat', `${send},${receive}`],
      ['x-perigee-resumed', String(resumed)],
      // The client estimates the server clock from this, so countdowns need not trust the device.
      ['x-perigee-time', String(Date.now())],
    ];
    this.enqueue({ command: 'CONNECTED', headers, body: EMPTY_BODY });
    if (resumed) session.replayAfter(lastSeq);
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) for (const next of waiting) this.onFrame(next);
  }

  private async openSession(principal: Principal, version: StompVersion): Promise<GatewaySession> {
    if (this.context.registry.size >= this.context.options.maxSessions) {
      throw new PerigeeError(
        'LIMIT_EXCEEDED',
        `the gateway holds its limit of ${this.context.options.maxSessions} sessions; try again later`,
      );
    }
    // The channel exists before the session that wraps it; frames only flow once it does.
    const delivery: { to?: GatewaySession } = {};
    const channel = await this.context.backend.open(
      principal,
      (frame) => delivery.to?.fromBackend(frame),
      { version },
    );
    const session = new GatewaySession({
      id: newGatewaySessionId(),
      principal,
      channel,
      version,
      context: this.context,
    });
    delivery.to = session;
    this.context.registry.add(session);
    this.context.counters.sessionsOpened++;
    void channel.closed.then(() => session.end('the backend closed the session', true));
    return session;
  }

  private connectContext(frame: Frame): ConnectContext {
    return {
      login: getHeader(frame, 'login'),
      passcode: getHeader(frame, 'passcode'),
      authorization: getHeader(frame, 'Authorization') ?? getHeader(frame, 'authorization'),
      headers: frame.headers,
      request: {
        headers: this.transport.requestHeaders,
        remoteAddress: this.transport.remoteAddress,
      },
    };
  }

  private startHeartBeats(client: ReturnType<typeof parseHeartBeat>): void {
    const { outgoing, incoming } = negotiateHeartBeat(this.context.heartBeat, client);
    this.sendEvery = outgoing;
    this.deadline = incoming === 0 ? 0 : heartBeatDeadline(incoming);
    this.lastReadAt = Date.now();
  }

  /**
   * Answers a protocol violation with an ERROR (STOMP 1.2 §ERROR) and ends the session: an ERROR
   * is final, so it cannot be resumed.
   */
  private fail(error: unknown, frame?: Frame): void {
    if (this.state === 'closed') return;
    const perigeeError =
      error instanceof PerigeeError
        ? error
        : new PerigeeError('INTERNAL', 'unexpected gateway error', { cause: error });
    if (!(error instanceof PerigeeError)) {
      this.context.log.error(
        { err: error, session: this.session?.id },
        'unexpected error in a gateway session',
      );
    }
    this.enqueue(errorFrame(perigeeError, frame));
    this.flush();
    const session = this.session;
    // Close first, with the error's code; the session then ends without a connection to close.
    this.close(perigeeError.closeCode, perigeeError.message);
    session?.end(perigeeError.message);
  }
}

function samePrincipal(a: Principal, b: Principal): boolean {
  return a.id === b.id && a.anonymous === b.anonymous;
}
