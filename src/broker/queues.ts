import { PerigeeError } from '../errors.js';
import { Deque } from './deque.js';
import type { StoredMessage } from './message.js';
import type { Subscription } from './subscription.js';

/** What happens to a SEND when its queue is full. */
export type QueueOverflowPolicy = 'reject' | 'drop-oldest';

class Queue {
  readonly name: string;
  readonly messages = new Deque<StoredMessage>();
  bytes = 0;
  readonly consumers: Subscription[] = [];
  /** Index of the consumer that gets the next message (round-robin). */
  cursor = 0;

  constructor(name: string) {
    this.name = name;
  }
}

/**
 * Point-to-point destinations under `/queue/`. Each message goes to one consumer, in round-robin
 * order among those with room. A message waits while no consumer has room, up to `maxDepth`
 * messages per queue and `maxBytes` across all queues; past that, the overflow policy applies.
 */
export class QueueRegistry {
  private readonly queues = new Map<string, Queue>();
  /**
   * Queues whose messages wait although they have consumers: none of them has room now. A queue
   * moves to the end when it hands something out, so that re-offering them goes round fairly.
   */
  private readonly heldBack = new Set<Queue>();
  private bytes = 0;
  private readonly maxDepth: number;
  private readonly maxBytes: number;
  private readonly overflow: QueueOverflowPolicy;
  private readonly deliver: (subscription: Subscription, message: StoredMessage) => void;
  /** Messages dropped under the drop-oldest policy. */
  dropped = 0;

  constructor(options: {
    maxDepth: number;
    maxBytes: number;
    overflow: QueueOverflowPolicy;
    deliver: (subscription: Subscription, message: StoredMessage) => void;
  }) {
    this.maxDepth = options.maxDepth;
    this.maxBytes = options.maxBytes;
    this.overflow = options.overflow;
    this.deliver = options.deliver;
  }

  get queueCount(): number {
    return this.queues.size;
  }

  get queuedMessages(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.messages.length;
    return count;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  /** The number of messages waiting in `name`. */
  depth(name: string): number {
    return this.queues.get(name)?.messages.length ?? 0;
  }

  /**
   * Throws QUEUE_FULL if `enqueue` would refuse a message of `size` bytes. Checked before a
   * transaction commits, so that a commit either applies whole or not at all.
   */
  checkRoom(name: string, size: number, count = 1): void {
    if (this.overflow === 'drop-oldest') return;
    const queue = this.queues.get(name);
    const depth = queue ? queue.messages.length : 0;
    // A message that a consumer can take at once never waits, but room is checked as if it
    // would: the answer must not depend on timing.
    if (depth + count > this.maxDepth) {
      throw new PerigeeError(
        'QUEUE_FULL',
        `${name} holds ${depth} messages, its limit is ${this.maxDepth}`,
      );
    }
    if (this.bytes + size > this.maxBytes) {
      throw new PerigeeError(
        'QUEUE_FULL',
        `queues hold ${this.bytes} bytes, the limit is ${this.maxBytes}`,
      );
    }
  }

  enqueue(message: StoredMessage): void {
    this.checkRoom(message.destination, message.size);
    const queue = this.queue(message.destination);
    queue.messages.push(message);
    queue.bytes += message.size;
    this.bytes += message.size;
    if (this.overflow === 'drop-oldest') {
      while (
        queue.messages.length > this.maxDepth ||
        (this.bytes > this.maxBytes && queue.messages.length > 0)
      ) {
        this.take(queue);
        this.dropped++;
      }
    }
    this.dispatch(queue);
  }

  /** Puts messages back at the front, in their original order, marked as redelivered. */
  requeue(name: string, messages: readonly StoredMessage[]): void {
    if (messages.length === 0) return;
    const queue = this.queue(name);
    for (let i = messages.length - 1; i >= 0; i--) {
      const message = messages[i]!.redelivered();
      queue.messages.unshift(message);
      queue.bytes += message.size;
      this.bytes += message.size;
    }
    this.dispatch(queue);
  }

  addConsumer(subscription: Subscription): void {
    const queue = this.queue(subscription.destination);
    queue.consumers.push(subscription);
    this.dispatch(queue);
  }

  removeConsumer(subscription: Subscription): void {
    const queue = this.queues.get(subscription.destination);
    if (!queue) return;
    const index = queue.consumers.indexOf(subscription);
    if (index !== -1) {
      queue.consumers.splice(index, 1);
      if (queue.cursor > index) queue.cursor--;
    }
    if (queue.consumers.length === 0) this.heldBack.delete(queue);
    this.forgetIfUnused(queue);
  }

  /** Hands waiting messages to consumers with room. Call when a consumer may have gained room. */
  dispatchTo(subscription: Subscription): void {
    const queue = this.queues.get(subscription.destination);
    if (queue) this.dispatch(queue);
  }

  /**
   * Re-offers the queues whose messages wait for a consumer with room, in turn: a broker-wide
   * limit that held them back was lifted. `last` (the queue whose ACK freed the room) is left to
   * its caller. Stops once `hasRoom` says the limit is reached again; the queues not reached keep
   * their turn.
   */
  dispatchHeldBack(hasRoom: () => boolean, last?: string): void {
    for (const queue of [...this.heldBack]) {
      if (!hasRoom()) return;
      if (queue.name !== last) this.dispatch(queue);
    }
  }

  private dispatch(queue: Queue): void {
    let handedOut = 0;
    while (queue.messages.length > 0) {
      const consumer = this.nextConsumer(queue);
      if (!consumer) break;
      this.deliver(consumer, this.take(queue));
      handedOut++;
    }
    if (queue.messages.length === 0 || queue.consumers.length === 0) {
      this.heldBack.delete(queue);
    } else if (handedOut > 0 || !this.heldBack.has(queue)) {
      this.heldBack.delete(queue);
      this.heldBack.add(queue);
    }
    this.forgetIfUnused(queue);
  }

  private take(queue: Queue): StoredMessage {
    const message = queue.messages.shift()!;
    queue.bytes -= message.size;
    this.bytes -= message.size;
    return message;
  }

  private nextConsumer(queue: Queue): Subscription | undefined {
    const count = queue.consumers.length;
    for (let tried = 0; tried < count; tried++) {
      if (queue.cursor >= count) queue.cursor = 0;
      const consumer = queue.consumers[queue.cursor++]!;
      if (consumer.hasRoom && consumer.session.canTakeQueueMessage(consumer)) return consumer;
    }
    return undefined;
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  private forgetIfUnused(queue: Queue): void {
    if (queue.messages.length === 0 && queue.consumers.length === 0) this.queues.delete(queue.name);
  }
}
