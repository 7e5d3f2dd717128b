/**
 * Byte counters over every socket the load generator opens (both directions, HTTP headers and
 * framing included), and the CPU time of the server's processes from /proc.
 */
import { Agent, type AgentOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { processTreeCpuSeconds } from '../procfs.js';

const live = new Set<Socket>();
/** Bytes of sockets already closed. */
let closedBytes = 0;

export function trackSocket(socket: Socket): void {
  live.add(socket);
  socket.once('close', () => {
    live.delete(socket);
    closedBytes += socket.bytesRead + socket.bytesWritten;
  });
}

/** Bytes read and written on every socket so far. */
export function wireBytes(): number {
  let total = closedBytes;
  for (const socket of live) total += socket.bytesRead + socket.bytesWritten;
  return total;
}

/** An http.Agent whose sockets are counted. */
export class MeteredAgent extends Agent {
  constructor(options: AgentOptions) {
    super(options);
  }

  override createConnection(
    ...args: Parameters<Agent['createConnection']>
  ): ReturnType<Agent['createConnection']> {
    const socket = super.createConnection(...args) as Duplex | undefined;
    if (socket) {
      trackSocket(socket as Socket);
      (socket as Socket).setNoDelay(true);
    }
    return socket;
  }
}

export interface CpuReading {
  wall: number;
  server: number | null;
  own: NodeJS.CpuUsage;
}

export function readCpu(serverPids: readonly number[], clockTicks: number): CpuReading {
  return {
    wall: performance.now(),
    server: processTreeCpuSeconds(serverPids, clockTicks),
    own: process.cpuUsage(),
  };
}

/** Server CPU seconds, and shares of one core for the server and this process, between readings. */
export function cpuBetween(
  start: CpuReading,
  end: CpuReading,
): { serverSeconds: number | null; serverCpu: number | null; loadGeneratorCpu: number } {
  const seconds = (end.wall - start.wall) / 1000;
  const ownMicros = end.own.user - start.own.user + (end.own.system - start.own.system);
  const serverSeconds =
    start.server === null || end.server === null ? null : end.server - start.server;
  return {
    serverSeconds,
    serverCpu: serverSeconds === null ? null : serverSeconds / seconds,
    loadGeneratorCpu: ownMicros / 1e6 / seconds,
  };
}
