import { readFileSync } from 'node:fs';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { DestinationRule } from '../auth/index.js';
import type { BrokerOptions } from '../broker/index.js';
import { PerigeeError } from '../errors.js';
import { parseHostPort, type HostPort } from './address.js';

/**
 * perigee.toml: the keys that exist, their types, and how flags and environment variables
 * override them (DESIGN.md §4, §6). Precedence: flag, then environment, then file, then default.
 * Every mistake is one line that names the key and the file.
 */

type Field =
  | { kind: 'address' }
  | { kind: 'address-or-off' }
  | { kind: 'integer'; min: number; max?: number }
  | { kind: 'size' }
  | { kind: 'duration' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'string'; secret?: boolean }
  | { kind: 'string-list' }
  | { kind: 'boolean' }
  | { kind: 'string-map' };

const address: Field = { kind: 'address' };
const size: Field = { kind: 'size' };
const duration: Field = { kind: 'duration' };
const integer = (min: number, max?: number): Field => ({ kind: 'integer', min, max });
const oneOf = (...values: string[]): Field => ({ kind: 'enum', values });
const text: Field = { kind: 'string' };
const list: Field = { kind: 'string-list' };
const flag: Field = { kind: 'boolean' };
const audience = oneOf('anyone', 'authenticated', 'nobody');

const SCHEMA = {
  listen: {
    http: address,
    stomp: { kind: 'address-or-off' },
    allowed_origins: list,
    prefix: text,
  },
  session: {
    ping_interval: duration,
    timeout: duration,
    max_queued_bytes: size,
    max_sessions: integer(1),
  },
  access: {
    rules: list,
  },
  auth: {
    users: { kind: 'string-map' },
    jwt_secret: { kind: 'string', secret: true },
    jwt_public_key_file: text,
    jwt_issuer: text,
    jwt_audience: text,
  },
  sockjs: {
    response_limit: size,
    cookie_needed: flag,
    disconnect_delay: duration,
    max_post_bytes: size,
  },
  broker: {
    mode: oneOf('embedded', 'upstream'),
    history: integer(0, 1_000_000),
    max_history_bytes: size,
    max_queue_depth: integer(1),
    max_queue_bytes: size,
    queue_overflow: oneOf('reject', 'drop-oldest'),
    slow_consumer: oneOf('error', 'drop'),
    max_connections: integer(1),
  },
  stomp: {
    users: { kind: 'string-map' },
  },
  limits: {
    max_frame_bytes: size,
    max_headers: integer(1, 10_000),
    max_header_line_bytes: size,
    max_body_bytes: size,
  },
  log: {
    level: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  },
  metrics: {
    access: oneOf('loopback', 'open', 'off'),
  },
} as const satisfies Record<string, Record<string, Field>>;

/** `[[destinations]]`: an array of tables, one per access rule (DESIGN.md §6). */
const DESTINATION_FIELDS: Readonly<Record<string, Field>> = {
  pattern: text,
  subscribe: audience,
  send: audience,
};

type Section = keyof typeof SCHEMA;
type Values = { [S in Section]: { [K in keyof (typeof SCHEMA)[S]]?: unknown } } & {
  destinations?: DestinationRule[];
};

export interface ServeConfig {
  /** The file the settings came from, if any. */
  file: string | undefined;
  http: HostPort;
  stomp: HostPort | 'off';
  broker: BrokerOptions;
  gateway: {
    prefix: string;
    allowedOrigins: string[] | undefined;
    session: {
      pingInterval?: number;
      timeout?: number;
      maxQueuedBytes?: number;
      maxSessions?: number;
    };
    sockjs: {
      responseLimit?: number;
      cookieNeeded?: boolean;
      disconnectDelay?: number;
      maxPostBytes?: number;
    };
    access: string[];
    destinations: DestinationRule[];
    /** Who may read `/metrics` (`[metrics] access`). */
    metrics: 'loopback' | 'open' | 'off';
    auth: {
      users?: Record<string, string>;
      jwt?: { secret?: string; publicKey?: string; issuer?: string; audience?: string };
    };
  };
  logLevel: string;
}

export interface ServeFlags {
  config?: string;
  http?: string;
  stomp?: string;
}

export const DEFAULT_HTTP = '127.0.0.1:8080';
export const DEFAULT_STOMP = '127.0.0.1:61613';

/** Reads and validates perigee.toml. Throws CONFIG_INVALID with a one-line message. */
export function readConfigFile(file: string): Values {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new PerigeeError(
      'CONFIG_INVALID',
      `${file}: ${code === 'ENOENT' ? 'no such file' : `cannot read (${code ?? String(error)})`}`,
    );
  }
  let document: Record<string, unknown>;
  try {
    document = parseToml(text);
  } catch (error) {
    const where =
      error instanceof TomlError ? ` at line ${error.line}, column ${error.column}` : '';
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new PerigeeError('CONFIG_INVALID', `${file}: not valid TOML${where}: ${reason}`);
  }
  const values = {} as Record<string, unknown>;
  for (const [sectionName, section] of Object.entries(document)) {
    if (sectionName === 'destinations') {
      values.destinations = readDestinations(section, file);
      continue;
    }
    if (!Object.hasOwn(SCHEMA, sectionName)) {
      throw new PerigeeError(
        'CONFIG_INVALID',
        `${file}: unknown section [${sectionName}] (known: ${[
          ...Object.keys(SCHEMA).map((s) => `[${s}]`),
          '[[destinations]]',
        ].join(', ')})`,
      );
    }
    const fields = SCHEMA[sectionName as Section] as Record<string, Field>;
    if (!isTable(section)) {
      throw new PerigeeError(
        'CONFIG_INVALID',
        `${file}: ${sectionName} must be a table, [${sectionName}]`,
      );
    }
    const out: Record<string, unknown> = {};
    for (const [key, raw] of Object.entries(section)) {
      const field = fields[key];
      if (!field) {
        throw new PerigeeError(
          'CONFIG_INVALID',
          `${file}: unknown key ${sectionName}.${key} (known in [${sectionName}]: ${Object.keys(fields).join(', ')})`,
        );
      }
      out[key] = convert(raw, field, `${file}: ${sectionName}.${key}`);
    }
    values[sectionName] = out;
  }
  return values as Values;
}

function readDestinations(raw: unknown, file: string): DestinationRule[] {
  if (!Array.isArray(raw)) {
    throw new PerigeeError(
      'CONFIG_INVALID',
      `${file}: destinations must be written as [[destinations]] tables`,
    );
  }
  return raw.map((entry: unknown, index) => {
    const where = `${file}: [[destinations]] number ${index + 1}`;
    if (!isTable(entry)) throw new PerigeeError('CONFIG_INVALID', `${where} must be a table`);
    const rule: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(entry)) {
      const field = DESTINATION_FIELDS[key];
      if (!field) {
        throw new PerigeeError(
          'CONFIG_INVALID',
          `${where}: unknown key ${key} (known: pattern, subscribe, send)`,
        );
      }
      rule[key] = convert(value, field, `${where}: ${key}`);
    }
    if (typeof rule.pattern !== 'string') {
      throw new PerigeeError('CONFIG_INVALID', `${where} has no pattern`);
    }
    return rule as unknown as DestinationRule;
  });
}

/** Settings for `perigee serve`, with flags and environment applied over the file. */
export function resolveServeConfig(
  flags: ServeFlags,
  env: NodeJS.ProcessEnv = process.env,
): ServeConfig {
  const file = flags.config ?? env.PERIGEE_CONFIG;
  const values: Values = file ? readConfigFile(file) : ({} as Values);
  const from = (section: Section): Record<string, unknown> => values[section] ?? {};
  const listen = from('listen');
  const session = from('session');
  const broker = from('broker');
  const limits = from('limits');

  let http = (listen.http as HostPort | undefined) ?? parseHostPort(DEFAULT_HTTP, 'default');
  if (env.HOST) http = { ...http, host: env.HOST };
  if (env.PORT) http = { ...http, port: portFrom(env.PORT, 'PORT') };
  if (env.PERIGEE_HTTP) http = parseHostPort(env.PERIGEE_HTTP, 'PERIGEE_HTTP');
  if (flags.http !== undefined) http = parseHostPort(flags.http, '--http');

  let stomp =
    (listen.stomp as HostPort | 'off' | undefined) ?? parseHostPort(DEFAULT_STOMP, 'default');
  if (env.PERIGEE_STOMP) stomp = parseAddressOrOff(env.PERIGEE_STOMP, 'PERIGEE_STOMP');
  if (flags.stomp !== undefined) stomp = parseAddressOrOff(flags.stomp, '--stomp');

  if (broker.mode === 'upstream') {
    throw new PerigeeError(
      'CONFIG_INVALID',
      `${file}: broker.mode "upstream" is not available in this version; use "embedded"`,
    );
  }
  const pingInterval = session.ping_interval as number | undefined;
  const brokerOptions: BrokerOptions = {
    heartBeat: pingInterval === undefined ? undefined : [pingInterval, pingInterval],
    maxQueuedBytes: session.max_queued_bytes as number | undefined,
    history: broker.history as number | undefined,
    maxHistoryBytes: broker.max_history_bytes as number | undefined,
    maxQueueDepth: broker.max_queue_depth as number | undefined,
    maxQueueBytes: broker.max_queue_bytes as number | undefined,
    queueOverflow: broker.queue_overflow as BrokerOptions['queueOverflow'],
    slowConsumerPolicy: broker.slow_consumer as BrokerOptions['slowConsumerPolicy'],
    maxConnections: broker.max_connections as number | undefined,
    users: from('stomp').users as Record<string, string> | undefined,
    limits: {
      ...(limits.max_frame_bytes !== undefined && {
        maxFrameBytes: limits.max_frame_bytes as number,
      }),
      ...(limits.max_headers !== undefined && { maxHeaders: limits.max_headers as number }),
      ...(limits.max_header_line_bytes !== undefined && {
        maxHeaderLineBytes: limits.max_header_line_bytes as number,
      }),
      ...(limits.max_body_bytes !== undefined && { maxBodyBytes: limits.max_body_bytes as number }),
    },
  };
  const sockjs = from('sockjs');
  const auth = from('auth');
  let publicKey: string | undefined;
  if (auth.jwt_public_key_file !== undefined) {
    try {
      publicKey = readFileSync(auth.jwt_public_key_file as string, 'utf8');
    } catch {
      throw new PerigeeError(
        'CONFIG_INVALID',
        `${file}: auth.jwt_public_key_file: cannot read ${auth.jwt_public_key_file as string}`,
      );
    }
  }
  if (auth.jwt_secret !== undefined && publicKey !== undefined) {
    throw new PerigeeError(
      'CONFIG_INVALID',
      `${file}: [auth] takes jwt_secret or jwt_public_key_file, not both`,
    );
  }
  const jwt =
    auth.jwt_secret !== undefined || publicKey !== undefined
      ? {
          secret: auth.jwt_secret as string | undefined,
          publicKey,
          issuer: auth.jwt_issuer as string | undefined,
          audience: auth.jwt_audience as string | undefined,
        }
      : undefined;
  const prefix = (listen.prefix as string | undefined) ?? '';
  if (prefix !== '' && !/^\/[\w./-]*[^/]$/.test(prefix)) {
    throw new PerigeeError(
      'CONFIG_INVALID',
      `${file}: listen.prefix must look like "/realtime" (a path, no trailing slash), got "${prefix}"`,
    );
  }
  return {
    file,
    http,
    stomp,
    broker: brokerOptions,
    gateway: {
      prefix,
      allowedOrigins: listen.allowed_origins as string[] | undefined,
      session: {
        pingInterval,
        timeout: session.timeout as number | undefined,
        maxQueuedBytes: session.max_queued_bytes as number | undefined,
        maxSessions: session.max_sessions as number | undefined,
      },
      sockjs: {
        responseLimit: sockjs.response_limit as number | undefined,
        cookieNeeded: sockjs.cookie_needed as boolean | undefined,
        disconnectDelay: sockjs.disconnect_delay as number | undefined,
        maxPostBytes: sockjs.max_post_bytes as number | undefined,
      },
      access: (from('access').rules as string[] | undefined) ?? [],
      destinations: values.destinations ?? [],
      metrics: (from('metrics').access as 'loopback' | 'open' | 'off' | undefined) ?? 'off',
      auth: { users: auth.users as Record<string, string> | undefined, jwt },
    },
    logLevel: (from('log').level as string | undefined) ?? env.LOG_LEVEL ?? 'info',
  };
}

function parseAddressOrOff(value: string, what: string): HostPort | 'off' {
  return value.trim() === 'off' ? 'off' : parseHostPort(value, what);
}

function portFrom(value: string, what: string): number {
  const port = Number(value);
  if (!/^\d{1,5}$/.test(value.trim()) || port > 65535) {
    throw new PerigeeError('USAGE', `${what}: expected a port number 0-65535, got "${value}"`);
  }
  return port;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
  );
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};
const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

function convert(raw: unknown, field: Field, where: string): unknown {
  const bad = (expected: string): never => {
    // A secret's wrong value is still a secret: name its type, never its content.
    const shown = field.kind === 'string' && field.secret ? `a ${typeof raw}` : JSON.stringify(raw);
    throw new PerigeeError('CONFIG_INVALID', `${where} must be ${expected}, got ${shown}`);
  };
  switch (field.kind) {
    case 'address':
      if (typeof raw !== 'string') return bad('a "HOST:PORT" string');
      return hostPortOrFail(raw, where);
    case 'address-or-off':
      if (typeof raw !== 'string') return bad('a "HOST:PORT" string or "off"');
      return raw.trim() === 'off' ? 'off' : hostPortOrFail(raw, where);
    case 'integer': {
      if (typeof raw !== 'number' || !Number.isInteger(raw)) return bad('an integer');
      if (raw < field.min || (field.max !== undefined && raw > field.max)) {
        return bad(
          `an integer from ${field.min}${field.max === undefined ? ' up' : ` to ${field.max}`}`,
        );
      }
      return raw;
    }
    case 'size':
      return withUnit(raw, SIZE_UNITS, 'b', () =>
        bad('a size in bytes, such as 1048576 or "1MiB"'),
      );
    case 'duration':
      return withUnit(raw, DURATION_UNITS, 'ms', () =>
        bad('a duration in milliseconds, such as 25000 or "25s"'),
      );
    case 'enum':
      if (typeof raw !== 'string' || !field.values.includes(raw)) {
        return bad(`one of ${field.values.map((v) => `"${v}"`).join(', ')}`);
      }
      return raw;
    case 'string':
      if (typeof raw !== 'string') return bad('a string');
      return raw;
    case 'string-list':
      if (!Array.isArray(raw) || raw.some((item) => typeof item !== 'string')) {
        return bad('a list of strings, such as ["a", "b"]');
      }
      return raw;
    case 'boolean':
      if (typeof raw !== 'boolean') return bad('true or false');
      return raw;
    case 'string-map': {
      if (!isTable(raw)) return bad('a table of strings, such as { alice = "secret" }');
      for (const [key, value] of Object.entries(raw)) {
        if (typeof value !== 'string') {
          throw new PerigeeError('CONFIG_INVALID', `${where}.${key} must be a string`);
        }
      }
      return raw;
    }
  }
}

function withUnit(
  raw: unknown,
  units: Readonly<Record<string, number>>,
  bareUnit: string,
  fail: () => never,
): number {
  if (typeof raw === 'number') {
    if (!Number.isInteger(raw) || raw < 0) fail();
    return raw;
  }
  if (typeof raw !== 'string') fail();
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
  if (!match) fail();
  const unit = (match[2] || bareUnit).toLowerCase();
  const factor = units[unit];
  if (factor === undefined) fail();
  return Math.round(Number(match[1]) * factor);
}

function hostPortOrFail(value: string, where: string): HostPort {
  try {
    return parseHostPort(value, where);
  } catch (error) {
    throw new PerigeeError('CONFIG_INVALID', (error as PerigeeError).detail);
  }
}
