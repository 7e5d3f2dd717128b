import type { Principal } from '../backend.js';
import { PerigeeError } from '../errors.js';
import { validatePattern } from '../protocol/index.js';

/** Who may do something on a destination. */
export type Audience = 'anyone' | 'authenticated' | 'nobody';

export const AUDIENCES: readonly Audience[] = ['anyone', 'authenticated', 'nobody'];

/** One `[[destinations]]` entry: what browsers may do on the destinations `pattern` covers. */
export interface DestinationRule {
  /** `/`-separated; `*` is one segment, `**` any number, `{principal}` the principal's id. */
  readonly pattern: string;
  readonly subscribe?: Audience;
  readonly send?: Audience;
}

export type Action = 'subscribe' | 'send';

/** An access decision, with the sentence that explains it (it goes into the ERROR frame). */
export interface AccessDecision {
  readonly allowed: boolean;
  readonly reason: string;
}

type Segment =
  | { kind: 'literal'; text: string }
  | { kind: 'star' }
  | { kind: 'globstar' }
  | { kind: 'principal' };

interface CompiledRule {
  readonly index: number;
  readonly rule: DestinationRule;
  readonly segments: readonly Segment[];
}

const PRINCIPAL = '{principal}';

/**
 * Browsers' rights per destination (DESIGN.md §6), deny by default. The first rule, in order, that
 * covers a destination decides. For a SUBSCRIBE pattern, a rule covers it only if it matches
 * every destination the pattern can match: `/games/*\/status` covers `/games/7/status` and
 * `/games/*\/status`, never `/games/**`.
 */
export class AccessRules {
  private readonly rules: readonly CompiledRule[];

  constructor(rules: readonly DestinationRule[]) {
    this.rules = rules.map((rule, index) => ({ index, rule, segments: compileRule(rule, index) }));
  }

  get size(): number {
    return this.rules.length;
  }

  decide(principal: Principal, action: Action, destination: string): AccessDecision {
    const wanted = parseSegments(destination);
    for (const compiled of this.rules) {
      if (!covers(compiled.segments, 0, wanted, 0, principal)) continue;
      const audience = compiled.rule[action] ?? 'nobody';
      const allowed = admits(audience, principal);
      const described = `[[destinations]] rule ${compiled.index + 1} (pattern "${compiled.rule.pattern}", ${action} = "${audience}")`;
      return {
        allowed,
        reason: allowed
          ? `allowed by ${described}`
          : `${action.toUpperCase()} to ${destination} refused by ${described}${audience === 'authenticated' ? ': log in first' : ''}`,
      };
    }
    return {
      allowed: false,
      reason: `${action.toUpperCase()} to ${destination} refused: no [[destinations]] rule covers it, and access is denied by default`,
    };
  }
}

function admits(audience: Audience, principal: Principal): boolean {
  switch (audience) {
    case 'anyone':
      return true;
    case 'authenticated':
      return !principal.anonymous;
    case 'nobody':
      return false;
  }
}

function compileRule(rule: DestinationRule, index: number): Segment[] {
  const where = `[[destinations]] rule ${index + 1}`;
  if (typeof rule.pattern !== 'string' || !rule.pattern.startsWith('/')) {
    throw new PerigeeError(
      'CONFIG_INVALID',
      `${where}: pattern must be a string starting with "/"`,
    );
  }
  for (const action of ['subscribe', 'send'] as const) {
    const audience = rule[action];
    if (audience !== undefined && !AUDIENCES.includes(audience)) {
      throw new PerigeeError(
        'CONFIG_INVALID',
        `${where}: ${action} must be one of "anyone", "authenticated", "nobody"`,
      );
    }
  }
  const withoutPlaceholders = rule.pattern
    .split('/')
    .map((part) => (part === PRINCIPAL ? 'x' : part))
    .join('/');
  if (withoutPlaceholders.includes('{')) {
    throw new PerigeeError(
      'CONFIG_INVALID',
      `${where}: the only placeholder is a whole segment "${PRINCIPAL}"`,
    );
  }
  try {
    validatePattern(withoutPlaceholders);
  } catch (error) {
    throw new PerigeeError('CONFIG_INVALID', `${where}: ${(error as PerigeeError).detail}`);
  }
  return rule.pattern.split('/').map((part): Segment => {
    if (part === '**') return { kind: 'globstar' };
    if (part === '*') return { kind: 'star' };
    if (part === PRINCIPAL) return { kind: 'principal' };
    return { kind: 'literal', text: part };
  });
}

function parseSegments(destination: string): Segment[] {
  return destination.split('/').map((part): Segment => {
    if (part === '**') return { kind: 'globstar' };
    if (part === '*') return { kind: 'star' };
    return { kind: 'literal', text: part };
  });
}

/**
 * Whether `rule[i..]` matches every destination `wanted[j..]` can stand for. A `*` in `wanted`
 * stands for any one non-empty segment, so only `*` or `**` in the rule covers it; a `**` in
 * `wanted` stands for any run of segments, so only `**` covers it.
 */
function covers(
  rule: readonly Segment[],
  i: number,
  wanted: readonly Segment[],
  j: number,
  principal: Principal,
): boolean {
  if (i === rule.length) return j === wanted.length;
  const segment = rule[i]!;
  if (segment.kind === 'globstar') {
    for (let k = j; k <= wanted.length; k++)
      if (covers(rule, i + 1, wanted, k, principal)) return true;
    return false;
  }
  if (j === wanted.length) return false;
  const target = wanted[j]!;
  switch (segment.kind) {
    case 'star':
      if (target.kind === 'star' || (target.kind === 'literal' && target.text.length > 0)) {
        return covers(rule, i + 1, wanted, j + 1, principal);
      }
      return false;
    case 'principal':
      // An anonymous principal has no identity of its own to bind; such rules never apply to it.
      if (principal.anonymous || target.kind !== 'literal' || target.text !== principal.id)
        return false;
      return covers(rule, i + 1, wanted, j + 1, principal);
    case 'literal':
      return (
        target.kind === 'literal' &&
        target.text === segment.text &&
        covers(rule, i + 1, wanted, j + 1, principal)
      );
  }
}
