import type { IncomingMessage } from 'node:http';
import { PerigeeError } from '../errors.js';

/**
 * Which browser origins may talk to the gateway (`[listen] allowed_origins`). Entries are exact
 * origins (`https://app.example.com`), host wildcards (`https://*.example.com`), `self` (the
 * gateway's own origin, judged by the request's Host header; the default) or `*` (anyone).
 *
 * A request without an Origin header is not a browser's cross-origin request (or is a same-origin
 * GET); its rights come from its credentials, so it passes.
 */
export class OriginPolicy {
  private readonly any: boolean;
  private readonly self: boolean;
  private readonly exact = new Set<string>();
  private readonly patterns: RegExp[] = [];

  constructor(allowed: readonly string[] = ['self']) {
    this.any = allowed.includes('*');
    this.self = allowed.includes('self');
    for (const entry of allowed) {
      if (entry === '*' || entry === 'self') continue;
      if (entry === 'null') {
        this.exact.add('null');
        continue;
      }
      const match = /^(https?):\/\/(\*\.)?([a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(entry);
      if (!match) {
        throw new PerigeeError(
          'CONFIG_INVALID',
          `allowed_origins: "${entry}" is not an origin such as https://example.com, https://*.example.com, "self" or "*"`,
        );
      }
      const [, scheme, wildcard, host, port] = match;
      const origin = `${scheme!.toLowerCase()}://${host!.toLowerCase()}${port ? `:${port}` : ''}`;
      if (wildcard) {
        const escaped = host!.toLowerCase().replace(/[.]/g, '\\.');
        this.patterns.push(
          new RegExp(
            `^${scheme!.toLowerCase()}://[a-z0-9-]+(\\.[a-z0-9-]+)*\\.${escaped}${port ? `:${port}` : ''}$`,
          ),
        );
      } else {
        this.exact.add(origin);
      }
    }
  }

  /** The request's Origin if it is allowed (or absent: then undefined), else throws FORBIDDEN. */
  check(request: IncomingMessage): string | undefined {
    const origin = request.headers.origin;
    if (origin === undefined) return undefined;
    if (this.allows(origin, request.headers.host)) return origin;
    throw new PerigeeError('FORBIDDEN', `origin ${origin} is not in allowed_origins`);
  }

  allows(origin: string, host: string | undefined): boolean {
    if (this.any) return true;
    const normalized = origin.toLowerCase();
    if (this.exact.has(normalized)) return true;
    if (this.patterns.some((pattern) => pattern.test(normalized))) return true;
    if (this.self && host !== undefined) {
      try {
        return new URL(normalized).host === host.toLowerCase();
      } catch {
        return false;
      }
    }
    return false;
  }
}
