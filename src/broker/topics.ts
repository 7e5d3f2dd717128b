import { randomBytes } from 'node:crypto';
import type { StreamPosition } from '../backend.js';
import { isWildcardPattern, type PatternMatcher } from '../protocol/index.js';
import { Deque } from './deque.js';
import type { StoredMessage } from './message.js';
import type { Subscription } from './subscription.js';

/** What a topic costs to keep, beyond its messages: the map entry, epoch and counters. */
const TOPIC_OVERHEAD_BYTES = 256;

class Topic {
  readonly name: string;
  /** Changes whenever the topic's history starts over, so that stale offsets are recognised. */
  readonly epoch: string;
  lastOffset = 0;
  readonly history = new Deque<StoredMessage>();
  historyBytes = 0;
  readonly subscribers = new Set<Subscription>();

  constructor(name: string) {
    this.name = name;
    this.epoch = randomBytes(6).toString('base64url');
  }
}

interface WildcardGroup {
  readonly matches: PatternMatcher;
  readonly subscribers: Set<Subscription>;
}

export interface ReplayResult {
  /** Whether the history held every message after the requested position. */
  readonly recovered: boolean;
  /** The messages after the requested position; empty unless recovered. */
  readonly messages: readonly StoredMessage[];
}

/**
 * Publish-subscribe destinations: every name outside `/queue/`. Keeps a bounded history per topic
 * for recovery (DESIGN.md §5) within a global byte budget; when the budget is spent, the history
 * of the topic published to least recently goes first.
 */
export class TopicRegistry {
  /** Topics in least-recently-published order (Map keeps insertion order). */
  private readonly topics = new Map<string, Topic>();
  private readonly wildcards = new Map<string, WildcardGroup>();
  private bytes = 0;
  private readonly historyDepth: number;
  private readonly maxBytes: number;

  constructor(options: { historyDepth: number; maxHistoryBytes: number }) {
    this.historyDepth = options.historyDepth;
    this.maxBytes = options.maxHistoryBytes;
  }

  get topicCount(): number {
    return this.topics.size;
  }

  get historyBytes(): number {
    return this.bytes;
  }

  subscribe(subscription: Subscription): void {
    const destination = subscription.destination;
    if (isWildcardPattern(destination)) {
      let group = this.wildcards.get(destination);
      if (!group) {
        group = { matches: subscription.matches, subscribers: new Set() };
        this.wildcards.set(destination, group);
      }
      group.subscribers.add(subscription);
    } else {
      this.topic(destination).subscribers.add(subscription);
    }
  }

  unsubscribe(subscription: Subscription): void {
    const destination = subscription.destination;
    if (isWildcardPattern(destination)) {
      const group = this.wildcards.get(destination);
      group?.subscribers.delete(subscription);
      if (group?.subscribers.size === 0) this.wildcards.delete(destination);
    } else {
      const topic = this.topics.get(destination);
      if (!topic) return;
      topic.subscribers.delete(subscription);
      this.forgetIfUnused(topic);
    }
  }

  /**
   * Records a message for `destination` and returns the topic's new position, to be stamped on
   * the message. `build` creates the message once its offset is known.
   */
  append(destination: string, build: (position: StreamPosition) => StoredMessage): StoredMessage {
    const topic = this.topic(destination);
    topic.lastOffset++;
    const message = build({ epoch: topic.epoch, offset: topic.lastOffset });
    if (this.historyDepth > 0) {
      topic.history.push(message);
      topic.historyBytes += message.size;
      this.bytes += message.size;
      if (topic.history.length > this.historyDepth) {
        const dropped = topic.history.shift()!;
        topic.historyBytes -= dropped.size;
        this.bytes -= dropped.size;
      }
      this.touch(topic);
      this.enforceBudget(topic);
    } else {
      this.forgetIfUnused(topic);
    }
    return message;
  }

  /** Calls `deliver` for each subscription whose destination or pattern matches. */
  forEachSubscriber(destination: string, deliver: (subscription: Subscription) => void): void {
    const topic = this.topics.get(destination);
    if (topic) for (const subscription of topic.subscribers) deliver(subscription);
    if (this.wildcards.size === 0) return;
    for (const group of this.wildcards.values()) {
      if (group.matches(destination))
        for (const subscription of group.subscribers) deliver(subscription);
    }
  }

  /** The topic's current position; creates the topic so that its epoch stays stable. */
  position(destination: string): StreamPosition {
    const topic = this.topic(destination);
    return { epoch: topic.epoch, offset: topic.lastOffset };
  }

  /** The messages after (epoch, offset), if the history still holds all of them. */
  replay(destination: string, since: StreamPosition): ReplayResult {
    const topic = this.topics.get(destination);
    const notRecovered: ReplayResult = { recovered: false, messages: [] };
    if (!topic || topic.epoch !== since.epoch || since.offset > topic.lastOffset) {
      return notRecovered;
    }
    if (since.offset === topic.lastOffset) return { recovered: true, messages: [] };
    const oldest = topic.history.peek();
    if (!oldest || oldest.offset > since.offset + 1) return notRecovered;
    const messages: StoredMessage[] = [];
    for (let i = since.offset + 1 - oldest.offset; i < topic.history.length; i++) {
      messages.push(topic.history.at(i)!);
    }
    return { recovered: true, messages };
  }

  private topic(name: string): Topic {
    let topic = this.topics.get(name);
    if (!topic) {
      topic = new Topic(name);
      this.topics.set(name, topic);
      this.bytes += TOPIC_OVERHEAD_BYTES + name.length;
      this.enforceBudget(topic);
    }
    return topic;
  }

  private touch(topic: Topic): void {
    // Moving the entry to the end keeps the map in least-recently-published order.
    this.topics.delete(topic.name);
    this.topics.set(topic.name, topic);
  }

  private enforceBudget(keep: Topic): void {
    if (this.bytes <= this.maxBytes) return;
    for (const topic of this.topics.values()) {
      if (this.bytes <= this.maxBytes) break;
      if (topic === keep) continue;
      this.dropHistory(topic);
      if (topic.subscribers.size === 0) this.remove(topic);
    }
    // A single topic larger than the whole budget keeps only its newest message.
    while (this.bytes > this.maxBytes && keep.history.length > 1) {
      const dropped = keep.history.shift()!;
      keep.historyBytes -= dropped.size;
      this.bytes -= dropped.size;
    }
  }

  private dropHistory(topic: Topic): void {
    this.bytes -= topic.historyBytes;
    topic.historyBytes = 0;
    topic.history.clear();
  }

  private forgetIfUnused(topic: Topic): void {
    if (topic.subscribers.size === 0 && topic.history.length === 0 && this.historyDepth === 0) {
      this.remove(topic);
    }
  }

  private remove(topic: Topic): void {
    this.dropHistory(topic);
    this.topics.delete(topic.name);
    this.bytes -= TOPIC_OVERHEAD_BYTES + topic.name.length;
  }
}
