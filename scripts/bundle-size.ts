/**
 * `npm run size`: the browser bundles' size, minified and gzipped (level 9), next to the clients
 * people would otherwise ship. The figure goes in BENCHMARKS.md.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildClient } from './build-client.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The budget for /perigee.js, in bytes of min+gzip (the 12 kB). */
export const BUDGET_BYTES = 12_000;

export interface BundleSize {
  name: string;
  minified: number;
  gzipped: number;
}

export function measure(name: string, file: string): BundleSize {
  const bytes = readFileSync(file);
  return { name, minified: bytes.length, gzipped: gzipSync(bytes, { level: 9 }).length };
}

export async function bundleSizes(): Promise<BundleSize[]> {
  await buildClient();
  const client = join(root, 'dist', 'client');
  return [
    measure('perigee.js (IIFE, global Perigee)', join(client, 'perigee.js')),
    measure('perigee.mjs (ESM)', join(client, 'perigee.mjs')),
    measure('perigee-orbited.js (the talk’s globals)', join(client, 'perigee-orbited.js')),
    measure(
      '@stomp/stompjs 7 (stomp.umd.min.js)',
      join(root, 'node_modules', '@stomp', 'stompjs', 'bundles', 'stomp.umd.min.js'),
    ),
    measure(
      'sockjs-client 1.6 (sockjs.min.js)',
      join(root, 'node_modules', 'sockjs-client', 'dist', 'sockjs.min.js'),
    ),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const sizes = await bundleSizes();
  console.log('| bundle | minified | min+gzip |\n|---|---:|---:|');
  for (const size of sizes)
    console.log(
      `| ${size.name} | ${size.minified.toLocaleString('en')} B | ${size.gzipped.toLocaleString('en')} B |`,
    );
  const own = sizes[0]!;
  console.log(`\nperigee.js: ${own.gzipped} B of the ${BUDGET_BYTES} B budget`);
  if (own.gzipped > BUDGET_BYTES) process.exitCode = 1;
}
