/**
 * The publishing side every publisher shares: the orchestrator's commands over IPC, the closed loop
 * (publish up to the credit the load generator's slowest client allows) and the fixed-rate loop.
 * A message (fan-out) or a round (one message to each topic) is published by `publishRound`.
 */
import type { PublisherCommand, PublisherReply, PublisherReady, TopicPlan } from '../ipc.js';

export interface PublisherHooks {
  /** Publishes round `sequence`: one payload to the topic, or one to each topic. */
  publishRound(sequence: number, plan: TopicPlan): void | Promise<void>;
  memory?(): { rss: number; heapUsed: number };
  /** Resolves once the server counts `count` subscribers (for clients that cannot tell). */
  awaitSubscribers?(count: number, plan: TopicPlan, timeoutMs: number): Promise<string | undefined>;
  stop(): Promise<void>;
}

export function fullGcMemory(): { rss: number; heapUsed: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed };
}

/** Serves the orchestrator's commands until it says stop or goes away. */
export function servePublisher(ready: PublisherReady, hooks: PublisherHooks): void {
  let plan: TopicPlan | undefined;
  let sent = 0;
  let upTo = 0;
  let pumping = false;
  let rateTimer: NodeJS.Timeout | undefined;
  let failure: string | undefined;

  const reply = (message: PublisherReply): void => {
    process.send?.(message);
  };

  // Rounds go out one after another; an async publisher (HTTP) is awaited so that the rounds
  // stay in order, and credit that arrives meanwhile is picked up by the same loop.
  const pump = async (): Promise<void> => {
    if (pumping || plan === undefined) return;
    pumping = true;
    try {
      while (sent < upTo && plan !== undefined) {
        sent++;
        const pending = hooks.publishRound(sent, plan);
        if (pending) await pending;
      }
    } catch (error) {
      failure ??= (error as Error).message;
    } finally {
      pumping = false;
    }
  };

  const halt = (): void => {
    clearTimeout(rateTimer);
    rateTimer = undefined;
    upTo = sent;
  };

  const handle = async (command: PublisherCommand): Promise<void> => {
    switch (command.cmd) {
      case 'prepare':
        halt();
        plan = command.topics;
        sent = 0;
        upTo = 0;
        failure = undefined;
        reply({ id: command.id, ok: true });
        return;
      case 'credit':
        if (rateTimer !== undefined) return;
        if (command.upTo > upTo) upTo = command.upTo;
        void pump();
        return;
      case 'rate': {
        halt();
        const startedAt = performance.now();
        const startSent = sent;
        const tick = (): void => {
          const due =
            startSent + Math.floor(((performance.now() - startedAt) / 1000) * command.perSecond);
          if (due > upTo) upTo = due;
          void pump();
          rateTimer = setTimeout(tick, 1);
        };
        tick();
        reply({ id: command.id, ok: true });
        return;
      }
      case 'halt':
        halt();
        while (pumping) await new Promise((resolve) => setImmediate(resolve));
        if (failure !== undefined) reply({ id: command.id, ok: false, error: failure });
        else reply({ id: command.id, ok: true, sent });
        return;
      case 'memory':
        if (!hooks.memory) {
          reply({ id: command.id, ok: false, error: 'no memory figures from this publisher' });
          return;
        }
        reply({ id: command.id, ok: true, ...hooks.memory() });
        return;
      case 'subscribers': {
        if (!hooks.awaitSubscribers || plan === undefined) {
          reply({ id: command.id, ok: true });
          return;
        }
        const note = await hooks.awaitSubscribers(command.count, plan, command.timeoutMs);
        if (note === undefined) reply({ id: command.id, ok: true });
        else reply({ id: command.id, ok: false, error: note });
        return;
      }
      case 'stop':
        halt();
        await hooks.stop();
        reply({ id: command.id, ok: true });
        process.disconnect?.();
        setTimeout(() => process.exit(0), 50);
        return;
    }
  };

  process.on('message', (message: PublisherCommand) => {
    handle(message).catch((error: unknown) => {
      if ('id' in message) reply({ id: message.id, ok: false, error: String(error) });
    });
  });
  // The orchestrator went away (killed, or Ctrl-C): nothing left to serve.
  process.on('disconnect', () => {
    void hooks.stop().finally(() => process.exit(0));
  });
  process.send?.(ready);
}
