/**
 * Builds the browser bundles into dist/client: perigee.js (IIFE, global `Perigee`), perigee.mjs
 * (ESM) and perigee-orbited.js (the talk's globals). Run by `npm run build`.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'client');

const common: BuildOptions = {
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  // Every browser in use today: ES2022 has class private fields (#name), which the minifier can shorten.
  target: ['es2022'],
  platform: 'browser',
  legalComments: 'none',
  logLevel: 'warning',
};

export async function buildClient(): Promise<void> {
  mkdirSync(outdir, { recursive: true });
  const entry = join(root, 'src', 'client', 'browser', 'index.ts');
  await Promise.all([
    build({
      ...common,
      entryPoints: [join(root, 'src', 'client', 'browser', 'global.ts')],
      format: 'iife',
      outfile: join(outdir, 'perigee.js'),
    }),
    build({ ...common, entryPoints: [entry], format: 'esm', outfile: join(outdir, 'perigee.mjs') }),
    build({
      ...common,
      entryPoints: [join(root, 'src', 'client', 'browser', 'orbited.ts')],
      format: 'iife',
      outfile: join(outdir, 'perigee-orbited.js'),
    }),
  ]);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildClient();
}
