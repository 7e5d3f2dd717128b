/**
 * Builds the browser bundles into dist/client: perigee.js (IIFE, global `Perigee`), perigee.mjs
 * (ESM) and perigee-orbited.js (the talk's globals). Run by `npm run build`.
 *
 * esbuild bundles and minifies; terser then compresses once more (about 2% less after gzip than
 * esbuild alone), carrying esbuild's source map through so that the map still points at src/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { minify } from 'terser';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'client');

const common: BuildOptions = {
  bundle: true,
  minify: true,
  sourcemap: 'external',
  // Every browser in use today: ES2022 has class private fields (#name), which the minifier can shorten.
  target: ['es2022'],
  platform: 'browser',
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
};

async function bundle(entry: string, format: 'iife' | 'esm', outfile: string): Promise<void> {
  const result = await build({ ...common, entryPoints: [entry], format, outfile });
  const files = result.outputFiles ?? [];
  const code = files.find((file) => file.path.endsWith('.js') || file.path.endsWith('.mjs'));
  const map = files.find((file) => file.path.endsWith('.map'));
  if (!code || !map) throw new Error(`esbuild gave no code or map for ${entry}`);
  const name = basename(outfile);
  const minified = await minify(code.text, {
    ecma: 2020,
    module: format === 'esm',
    compress: { passes: 2 },
    mangle: true,
    sourceMap: { content: map.text, url: `${name}.map`, filename: name },
  });
  if (minified.code === undefined || typeof minified.map !== 'string') {
    throw new Error(`terser gave no output for ${entry}`);
  }
  writeFileSync(outfile, minified.code);
  writeFileSync(`${outfile}.map`, minified.map);
}

export async function buildClient(): Promise<void> {
  mkdirSync(outdir, { recursive: true });
  const browser = join(root, 'src', 'client', 'browser');
  await Promise.all([
    bundle(join(browser, 'global.ts'), 'iife', join(outdir, 'perigee.js')),
    bundle(join(browser, 'index.ts'), 'esm', join(outdir, 'perigee.mjs')),
    bundle(join(browser, 'orbited.ts'), 'iife', join(outdir, 'perigee-orbited.js')),
  ]);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildClient();
}
