/**
 * `npm start`: the quiz on http://localhost:8080, with Perigee's gateway on the same server and
 * origin and its embedded broker (STOMP over TCP on 61613, for stomp.py and `perigee publish`).
 *
 * Environment: PORT and HOST (HTTP), PERIGEE_STOMP (`host:port` or `off`), DATABASE_URL
 * (`postgres://…`; SQLite in ./data/quiz.db otherwise).
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createQuizApp } from './app.js';

function fail(message: string): never {
  process.stderr.write(`quiz: ${message}\n`);
  process.exit(2);
}

function stompSetting(value: string | undefined): { host: string; port: number } | 'off' {
  if (value === undefined) return { host: '127.0.0.1', port: 61613 };
  if (value.trim() === 'off') return 'off';
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  if (!match || Number(match[3]) > 65535)
    fail(`PERIGEE_STOMP: expected HOST:PORT or off, got "${value}"`);
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port: Number(match[3]) };
}

export async function main(): Promise<void> {
  const host = process.env.HOST ?? '127.0.0.1';
  const portText = process.env.PORT ?? '8080';
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535)
    fail(`PORT: expected a port number, got "${portText}"`);
  const port = Number(portText);
  const stomp = stompSetting(process.env.PERIGEE_STOMP);
  if (stomp !== 'off' && !/^(127\.|localhost$|::1$)/.test(stomp.host)) {
    fail(
      `PERIGEE_STOMP: ${stomp.host} is reachable from the network and the quiz has no STOMP logins; keep it on 127.0.0.1 or set it off`,
    );
  }
  let app;
  try {
    app = await createQuizApp({
      databaseUrl: process.env.DATABASE_URL,
      sqliteFile: join(process.cwd(), 'data', 'quiz.db'),
      stomp,
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ADDRESS_IN_USE' && stomp !== 'off') {
      fail(
        `${stomp.port} is in use (another STOMP broker?): set PERIGEE_STOMP=HOST:PORT or PERIGEE_STOMP=off`,
      );
    }
    fail(`cannot start: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    await app.fastify.listen({ host, port, backlog: 4096 });
  } catch (error) {
    await app.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE')
      fail(`${port} is in use: set PORT to another port`);
    fail(`cannot listen on ${host}:${port}: ${(error as Error).message}`);
  }
  const shown = host === '127.0.0.1' || host === '0.0.0.0' ? 'localhost' : host;
  process.stdout.write(
    [
      `PyCon Quiz on http://${shown}:${port}/`,
      host === '0.0.0.0'
        ? `  (also on this machine's network addresses, for phones on the LAN)`
        : '',
      `  STOMP: ${app.stompAddress ? `stomp://${app.stompAddress}` : 'off'}`,
      `  data: ${app.database.where} (${app.database.kind})`,
      `  Play: open the page, sign up, press "Host the sample quiz"; join from a second window with the code.`,
      '',
    ]
      .filter((line) => line !== '')
      .join('\n') + '\n',
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
