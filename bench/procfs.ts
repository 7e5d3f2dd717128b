/**
 * CPU time and RSS of a server's processes from /proc, the same way for every server: Node, the
 * Erlang VM, Pushpin's several processes, nginx's master and worker.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the parenthesized name, which may itself contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds of these processes (all their threads); null if any is gone. */
export function processTreeCpuSeconds(pids: readonly number[], clockTicks: number): number | null {
  if (pids.length === 0) return null;
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    if (!fields) return null;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / clockTicks;
}

/** Resident set size in bytes, summed over these processes; null if any is gone. */
export function processTreeRss(pids: readonly number[]): number | null {
  if (pids.length === 0) return null;
  let total = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'latin1');
      const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
      if (!match) return null;
      total += Number(match[1]) * 1024;
    } catch {
      return null;
    }
  }
  return total;
}

/** `pid` and every process below it. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(Number(name));
    if (!fields) continue;
    const parent = Number(fields[1]);
    const list = children.get(parent) ?? [];
    list.push(Number(name));
    children.set(parent, list);
  }
  const out: number[] = [];
  const visit = (current: number): void => {
    out.push(current);
    for (const child of children.get(current) ?? []) visit(child);
  };
  visit(pid);
  return out;
}

/** Kernel clock ticks per second, the unit of /proc/PID/stat CPU times. */
export function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** The pid of the local process listening on TCP `port`, from `ss`; 0 if unknown. */
export function listeningPid(port: number): number {
  try {
    const output = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
    const match = /pid=(\d+)/.exec(output);
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Open file descriptors of these processes (sockets included); null if any is gone. */
export function openDescriptors(pids: readonly number[]): number | null {
  let total = 0;
  for (const pid of pids) {
    try {
      total += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      return null;
    }
  }
  return total;
}
