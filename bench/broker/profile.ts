/** Top self-time functions of a `node --cpu-prof` profile, to point at the broker's hot spots. */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  functionName: string;
  /**
   * The file, relative to the repository when it is ours. No line: under tsx the profile's lines
   * are those of the transpiled code.
   */
  location: string;
  selfMs: number;
  /** Share of the time the process was not idle. */
  busyShare: number;
}

export interface ProfileSummary {
  file: string;
  busyMs: number;
  idleMs: number;
  top: HotFunction[];
}

const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));

export function summarizeProfiles(directory: string, top = 15): ProfileSummary[] {
  return (
    readdirSync(directory)
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the broker; the others are
      // tsx's module-loader worker.
      .filter((name) => name.endsWith('.cpuprofile') && (name.split('.')[4] ?? '0') === '0')
      .map((name) => summarizeProfile(join(directory, name), top))
  );
}

export function summarizeProfile(file: string, top: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodesById = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMsByFunction = new Map<string, { node: CpuProfileNode; selfMs: number }>();
  let idleMs = 0;
  let totalMs = 0;
  profile.samples.forEach((id, index) => {
    // timeDeltas[i] is the time since the previous sample: the time sample i stands for.
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    const node = nodesById.get(id);
    if (!node) return;
    totalMs += ms;
    if (node.callFrame.functionName === '(idle)') {
      idleMs += ms;
      return;
    }
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName}\0${url}\0${lineNumber}`;
    const entry = selfMsByFunction.get(key) ?? { node, selfMs: 0 };
    entry.selfMs += ms;
    selfMsByFunction.set(key, entry);
  });
  const busyMs = totalMs - idleMs;
  const hottest = [...selfMsByFunction.values()]
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, top)
    .map(({ node, selfMs }) => ({
      functionName: node.callFrame.functionName || '(anonymous)',
      location: describeLocation(node.callFrame.url),
      selfMs,
      busyShare: busyMs > 0 ? selfMs / busyMs : 0,
    }));
  return { file, busyMs, idleMs, top: hottest };
}

function describeLocation(url: string): string {
  return url.startsWith('file://') ? relative(repositoryRoot, fileURLToPath(url)) : url;
}

export function formatProfileSummary(summary: ProfileSummary): string {
  const lines = [
    `Profile ${summary.file}: ${(summary.busyMs / 1000).toFixed(1)} s busy, ${(summary.idleMs / 1000).toFixed(1)} s idle. Top self time:`,
  ];
  for (const entry of summary.top) {
    lines.push(
      `  ${(entry.busyShare * 100).toFixed(1).padStart(5)}%  ${entry.selfMs.toFixed(0).padStart(7)} ms  ${entry.functionName}  ${entry.location}`,
    );
  }
  return lines.join('\n');
}
