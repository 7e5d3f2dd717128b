import { PerigeeError } from '../errors.js';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `HOST:PORT`, `:PORT` or `[IPv6]:PORT`. `what` names the flag or key for the error, which
 * must read on its own: "--http: expected HOST:PORT such as 127.0.0.1:8080, got "x"".
 */
export function parseHostPort(value: string, what: string, defaultHost = '127.0.0.1'): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new PerigeeError(
      'USAGE',
      `${what}: expected HOST:PORT such as 127.0.0.1:8080, got "${value}"`,
    );
  }
  return { host: match[1] ?? (match[2] || defaultHost), port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Whether `host` is reachable only from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
