/**
 * The embedded broker in a process of its own, so that main.ts can pin it to one core and the load
 * generator to the other. Prints `{"port":…}` once it listens; stops when stdin closes (the
 * orchestrator went away) or on SIGINT/SIGTERM, printing the broker's counters on stderr. It exits
 * normally either way, so that `node --cpu-prof` gets to write its profile.
 */
import { createBroker } from '../../src/broker/index.js';

const broker = createBroker({ history: 100 });
const address = await broker.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await broker.close({ drainMs: 0 });
  process.stderr.write(`${JSON.stringify({ stats: broker.stats() })}\n`, () => process.exit(0));
}

const stopNow = (): void => void stop();
process.stdin.on('end', stopNow);
process.stdin.resume();
process.on('SIGINT', stopNow);
process.on('SIGTERM', stopNow);
