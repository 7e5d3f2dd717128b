import { PerigeeError } from '../errors.js';

/**
 * Destination names and SUBSCRIBE patterns (DESIGN.md §4). Segments are separated by `/`. In a
 * pattern, a segment that is exactly `*` matches one non-empty segment and a segment that is
 * exactly `**` matches any number of segments, none included. `*` anywhere else is refused, so
 * that a name never looks like a pattern.
 */

export type PatternMatcher = (destination: string) => boolean;

export function isWildcardPattern(pattern: string): boolean {
  return pattern.includes('*');
}

/** Throws INVALID_DESTINATION unless `destination` is a concrete name a frame may SEND to. */
export function validateDestinationName(destination: string): void {
  if (destination.length === 0) {
    throw new PerigeeError('INVALID_DESTINATION', 'the destination is empty');
  }
  if (destination.includes('*')) {
    throw new PerigeeError(
      'INVALID_DESTINATION',
      `"${destination}": wildcards (*, **) are for SUBSCRIBE only`,
    );
  }
}

/** Throws INVALID_DESTINATION unless `pattern` is a valid SUBSCRIBE destination. */
export function validatePattern(pattern: string): void {
  if (pattern.length === 0) {
    throw new PerigeeError('INVALID_DESTINATION', 'the destination is empty');
  }
  if (!isWildcardPattern(pattern)) return;
  for (const segment of pattern.split('/')) {
    if (segment.includes('*') && segment !== '*' && segment !== '**') {
      throw new PerigeeError(
        'INVALID_DESTINATION',
        `"${pattern}": a wildcard must be a whole segment, "*" or "**"`,
      );
    }
  }
}

/** Compiles a SUBSCRIBE pattern into a matcher. A pattern without wildcards matches itself. */
export function compilePattern(pattern: string): PatternMatcher {
  if (!isWildcardPattern(pattern)) return (destination) => destination === pattern;
  const segments = pattern.split('/');
  return (destination) => matchSegments(segments, 0, destination.split('/'), 0);
}

export function matchesPattern(pattern: string, destination: string): boolean {
  return compilePattern(pattern)(destination);
}

function matchSegments(
  pattern: readonly string[],
  p: number,
  name: readonly string[],
  n: number,
): boolean {
  while (p < pattern.length) {
    const segment = pattern[p]!;
    if (segment === '**') {
      // Collapse runs of ** and try every possible length for this one.
      while (pattern[p + 1] === '**') p++;
      if (p === pattern.length - 1) return true;
      for (let skip = n; skip <= name.length; skip++) {
        if (matchSegments(pattern, p + 1, name, skip)) return true;
      }
      return false;
    }
    if (n >= name.length) return false;
    const part = name[n]!;
    if (segment === '*' ? part.length === 0 : segment !== part) return false;
    p++;
    n++;
  }
  return n === name.length;
}
