import { PerigeeError } from '../errors.js';

/**
 * `[access] rules`, as in Orbited's `* -> localhost:61613`: which brokers a browser may name when
 * it connects the talk's way (`STOMPClient.connect(host, port)`, sent as `x-perigee-upstream`).
 * The broker the gateway runs on is always allowed. Nothing else is, unless a rule says so.
 */
export class UpstreamAccess {
  private readonly targets = new Set<string>();

  constructor(rules: readonly string[] = [], selfAddresses: readonly string[] = []) {
    for (const rule of rules) {
      const match = /^\s*\*\s*->\s*(\S+):(\d{1,5})\s*$/.exec(rule);
      if (!match) {
        throw new PerigeeError(
          'CONFIG_INVALID',
          `[access] rule "${rule}" must look like "* -> HOST:PORT"`,
        );
      }
      this.targets.add(normalize(match[1]!, match[2]!));
    }
    for (const address of selfAddresses) {
      const colon = address.lastIndexOf(':');
      if (colon > 0) this.targets.add(normalize(address.slice(0, colon), address.slice(colon + 1)));
    }
  }

  /** Throws FORBIDDEN unless `target` ("host:port") may be reached. */
  check(target: string): void {
    const colon = target.lastIndexOf(':');
    const key = colon > 0 ? normalize(target.slice(0, colon), target.slice(colon + 1)) : target;
    if (!this.targets.has(key)) {
      throw new PerigeeError('FORBIDDEN', `no [access] rule lets browsers reach ${target}`);
    }
  }
}

/** localhost, 127.0.0.1 and ::1 name the same machine; 0.0.0.0 listens on it too. */
function normalize(host: string, port: string): string {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  const local =
    bare === 'localhost' ||
    bare === '::1' ||
    bare === '0.0.0.0' ||
    bare === '::' ||
    bare.startsWith('127.');
  return `${local ? 'localhost' : bare}:${Number(port)}`;
}
