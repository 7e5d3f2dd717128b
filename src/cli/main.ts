#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { PerigeeError } from '../errors.js';
import { connect } from '../publisher/index.js';
import { DEFAULT_HTTP, DEFAULT_STOMP, resolveServeConfig, type ServeFlags } from './config.js';
import { createLogger, startServer } from './serve.js';

/** Exit codes: 0 done, 1 failed at run time, 2 bad flags or configuration. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

const USAGE_CODES = new Set(['USAGE', 'CONFIG_INVALID', 'ADDRESS_IN_USE']);

function fail(error: unknown): never {
  if (error instanceof PerigeeError) {
    process.stderr.write(`perigee: ${error.detail || error.message}\n`);
    process.exit(USAGE_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILED);
  }
  process.stderr.write(`perigee: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(EXIT_FAILED);
}

async function serve(flags: ServeFlags): Promise<void> {
  const config = resolveServeConfig(flags);
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, logger);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(EXIT_FAILED);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.close().then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exitCode = 0;
      },
      (error: unknown) => fail(error),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function publish(
  destination: string,
  body: string,
  options: { url: string; header: string[]; timeout: string },
): Promise<void> {
  const headers: Record<string, string> = {};
  for (const entry of options.header) {
    const colon = entry.indexOf(':');
    if (colon <= 0)
      throw new PerigeeError('USAGE', `--header: expected NAME:VALUE, got "${entry}"`);
    headers[entry.slice(0, colon)] = entry.slice(colon + 1);
  }
  const timeout = Number(options.timeout);
  if (!Number.isInteger(timeout) || timeout <= 0) {
    throw new PerigeeError('USAGE', `--timeout: expected milliseconds, got "${options.timeout}"`);
  }
  const payload = body === '-' ? readFileSync(0) : body;
  let client;
  try {
    client = await connect(options.url, {
      reconnect: false,
      connectTimeout: timeout,
      receiptTimeout: timeout,
    });
  } catch (error) {
    const detail = error instanceof PerigeeError ? error.detail : String(error);
    throw new PerigeeError('CONNECT_FAILED', `cannot reach ${redact(options.url)}: ${detail}`);
  }
  try {
    await client.publish(destination, payload, { headers, receipt: true });
  } finally {
    await client.disconnect();
  }
}

/** A URL without its passcode, for messages (secrets never appear in output). */
function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@/]*@/, '$1:***@');
}

async function bench(args: string[]): Promise<void> {
  let module: { main(args: string[]): Promise<void> };
  try {
    // Loaded only for this subcommand: the benchmark and its peers are development tools.
    module = await import('../../bench/main.js');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND';
    throw new PerigeeError(
      'USAGE',
      missing
        ? `the benchmark is not installed here (${(error as Error).message.split('\n')[0]}); run it from a clone with "npm install && npm run bench"`
        : String(error),
    );
  }
  await module.main(args);
}

export function buildProgram(): Command {
  const program = new Command('perigee')
    .description('Real-time push to web browsers over STOMP: broker, gateway and tools.')
    .version('0.1.0')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      // Commander's own mistakes ("unknown option") become our one-line format.
      outputError: (text) =>
        process.stderr.write(`perigee: ${text.replace(/^error: /, '').trim()}\n`),
    });

  program
    .command('serve')
    .description('run the embedded broker (STOMP over TCP) and the HTTP server')
    .option('--config <file>', 'read settings from this perigee.toml (or $PERIGEE_CONFIG)')
    .option(
      '--http <host:port>',
      `HTTP address (default ${DEFAULT_HTTP}; or $PERIGEE_HTTP, $HOST/$PORT)`,
    )
    .option(
      '--stomp <host:port|off>',
      `STOMP TCP address, or off (default ${DEFAULT_STOMP}; or $PERIGEE_STOMP)`,
    )
    .action((flags: ServeFlags) => serve(flags));

  program
    .command('publish')
    .description('send one message to a destination and wait for the broker to confirm it')
    .argument('<destination>', 'where to send, e.g. /games/1/status or /queue/jobs')
    .argument('<body>', 'the message body; - reads it from standard input')
    .option(
      '--url <url>',
      'broker address stomp://[login:passcode@]host:port',
      `stomp://${DEFAULT_STOMP}`,
    )
    .addOption(
      new Option('--header <name:value>', 'a header to add; repeatable')
        .default([])
        .argParser((value: string, previous: string[]) => [...previous, value]),
    )
    .option('--timeout <ms>', 'give up after this long', '10000')
    .action(
      (
        destination: string,
        body: string,
        options: { url: string; header: string[]; timeout: string },
      ) => publish(destination, body, options),
    );

  program
    .command('bench')
    .description('run the benchmark (same as npm run bench); --help lists its options')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]', 'options passed to the benchmark')
    .action((args: string[]) => bench(args));

  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every other commander error was already printed on one line.
      process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
    }
    fail(error);
  }
}

await main(process.argv);
