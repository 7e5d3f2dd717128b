/**
 * /perigee-orbited.js: the globals the talk's page template expects (`Orbited` with `settings`
 * and `TCPSocket`, `STOMPClient`, and a `destpatterns` dispatcher), so that its `<head>` snippet
 * runs with only its script URLs changed. Loading it more than once is harmless, since the
 * template's three script tags may all point here.
 */
import { STOMPClient, type OrbitedSettings } from './compat.js';

interface DestinationPatterns {
  add(
    pattern: string,
    handler: (
      frame: { headers: Record<string, string>; body: string },
      params: Record<string, string>,
    ) => void,
  ): void;
  dispatch(frame: { headers: Record<string, string>; body: string }): boolean;
}

const scope = globalThis as unknown as Record<string, unknown>;

if (!scope.Orbited) {
  const settings: OrbitedSettings = {};
  scope.Orbited = {
    settings,
    TCPSocket: function TCPSocket() {
      throw new Error(
        'Perigee: TCPSocket tunnels (IRC, XMPP) are not available yet; use STOMPClient',
      );
    },
  };
  scope.STOMPClient = class extends STOMPClient {
    constructor() {
      super(() => settings);
    }
  };
  // The talk's pages route frames by destination with `destpatterns.dispatch(frame)`.
  if (!scope.destpatterns) scope.destpatterns = createDestinationPatterns();
}

function createDestinationPatterns(): DestinationPatterns {
  const routes: {
    matcher: RegExp;
    names: string[];
    handler: Parameters<DestinationPatterns['add']>[1];
  }[] = [];
  return {
    add(pattern, handler) {
      const names: string[] = [];
      const source = pattern
        .split('/')
        .map((segment) => {
          if (segment.startsWith(':')) {
            names.push(segment.slice(1));
            return '([^/]+)';
          }
          return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        })
        .join('/');
      routes.push({ matcher: new RegExp(`^${source}$`), names, handler });
    },
    dispatch(frame) {
      const destination = frame.headers.destination ?? '';
      for (const route of routes) {
        const match = route.matcher.exec(destination);
        if (!match) continue;
        const params: Record<string, string> = {};
        route.names.forEach((name, i) => (params[name] = match[i + 1]!));
        route.handler(frame, params);
        return true;
      }
      return false;
    },
  };
}
