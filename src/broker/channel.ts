import type { BackendChannel, Principal } from '../backend.js';
import { MessageDelivery, OwnHeaders, type Frame, type StompVersion } from '../protocol/index.js';
import type { BrokerCore } from './core.js';
import type { StoredMessage } from './message.js';
import { BrokerSession } from './session.js';
import type { Subscription } from './subscription.js';

/**
 * A STOMP session inside the process: the gateway's browser sessions and in-process apps. It
 * skips CONNECT, because its principal is already authenticated, and follows the ACK rules of the
 * version the far client speaks (1.2 by default).
 * Frames go to `deliver` as objects; a MESSAGE is a {@link MessageDelivery}, so a transport that
 * encodes it reuses the bytes shared by all subscribers.
 */
export class ChannelSession extends BrokerSession implements BackendChannel {
  readonly closed: Promise<void>;
  private readonly deliverFrame: (frame: Frame) => void;
  private resolveClosed!: () => void;

  constructor(
    core: BrokerCore,
    principal: Principal,
    deliver: (frame: Frame) => void,
    version: StompVersion,
  ) {
    super(core);
    this.deliverFrame = deliver;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.startConnected(principal, version);
  }

  get sessionId(): string {
    return this.id;
  }

  send(frame: Frame): void {
    this.handleFrame(frame);
  }

  close(): void {
    this.end(false);
  }

  queuedBytes(): number {
    return 0;
  }

  protected writeFrame(frame: Frame): void {
    this.deliverFrame(frame);
  }

  protected writeMessage(
    subscription: Subscription,
    message: StoredMessage,
    ackId: string | undefined,
  ): void {
    // Without an ack id the own headers are the subscription's alone: one object for all its
    // deliveries, so that their encoded form is cached once (OwnHeaders).
    const own =
      ackId === undefined
        ? subscription.ownHeaders
        : new OwnHeaders([
            ['subscription', subscription.id],
            ['ack', ackId],
          ]);
    this.deliverFrame(new MessageDelivery(own, message.shared));
  }

  protected terminate(): void {
    this.resolveClosed();
  }
}
