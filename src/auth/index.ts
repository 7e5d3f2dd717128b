/**
 * Who a browser is, and what it may do. The gateway asks an {@link Authorizer} at CONNECT and at
 * every SUBSCRIBE and SEND; it never looks at credentials or rules itself.
 */
import { createSecretKey } from 'node:crypto';
import { errors as joseErrors, importSPKI, jwtVerify, type JWTPayload } from 'jose';
import type { Principal } from '../backend.js';
import { PerigeeError } from '../errors.js';
import type { Header } from '../protocol/index.js';
import { AccessRules, type AccessDecision, type Action, type DestinationRule } from './rules.js';
import { constantTimeEqual } from './secrets.js';

export { constantTimeEqual } from './secrets.js';
export {
  AccessRules,
  AUDIENCES,
  type AccessDecision,
  type Action,
  type Audience,
  type DestinationRule,
} from './rules.js';

/** What a browser's CONNECT offers, and where it came from. Secrets here never reach a log. */
export interface ConnectContext {
  readonly login: string | undefined;
  readonly passcode: string | undefined;
  /** The CONNECT frame's `Authorization` header (e.g. `Bearer <JWT>`), if any. */
  readonly authorization: string | undefined;
  readonly headers: readonly Header[];
  /** The HTTP request that opened the transport. */
  readonly request: {
    readonly headers: Readonly<Record<string, string | string[] | undefined>>;
    readonly remoteAddress: string | undefined;
  };
}

/** An application's login check: a principal for valid credentials, null (or a throw) otherwise. */
export type Authenticate = (
  context: ConnectContext,
) => Principal | null | undefined | Promise<Principal | null | undefined>;

/**
 * Contract: `authenticate` resolves with the principal or rejects with UNAUTHENTICATED; it is
 * called for every CONNECT, reconnects included, so an expired token is never accepted twice.
 * `authorize` is synchronous and cheap: it runs for every SUBSCRIBE and SEND.
 */
export interface Authorizer {
  authenticate(context: ConnectContext): Promise<Principal>;
  authorize(principal: Principal, action: Action, destination: string): AccessDecision;
}

export const ANONYMOUS_PRINCIPAL: Principal = Object.freeze({ id: 'anonymous', anonymous: true });

export interface AuthorizerOptions {
  /** Browsers' rights, deny by default. */
  rules?: readonly DestinationRule[];
  /**
   * The login check. Without one, every browser is anonymous, and a CONNECT that offers
   * credentials is refused (they would be silently ignored otherwise).
   */
  authenticate?: Authenticate;
}

export function createAuthorizer(options: AuthorizerOptions = {}): Authorizer {
  const rules = new AccessRules(options.rules ?? []);
  const check = options.authenticate;
  return {
    async authenticate(context) {
      const offersCredentials =
        context.login !== undefined ||
        context.passcode !== undefined ||
        context.authorization !== undefined;
      if (!check) {
        if (offersCredentials) {
          throw new PerigeeError(
            'UNAUTHENTICATED',
            'this gateway has no login check configured; connect without credentials',
          );
        }
        return ANONYMOUS_PRINCIPAL;
      }
      if (!offersCredentials) return ANONYMOUS_PRINCIPAL;
      let principal: Principal | null | undefined;
      try {
        principal = await check(context);
      } catch (error) {
        if (error instanceof PerigeeError) throw error;
        throw new PerigeeError('UNAUTHENTICATED', 'the login check refused the credentials', {
          cause: error,
        });
      }
      if (!principal) throw new PerigeeError('UNAUTHENTICATED', 'bad login or passcode');
      return principal;
    },
    authorize: (principal, action, destination) => rules.decide(principal, action, destination),
  };
}

/** A login check against a fixed table of login → passcode. */
export function usersAuthenticator(users: Readonly<Record<string, string>>): Authenticate {
  return ({ login, passcode }) => {
    if (login === undefined || passcode === undefined || !Object.hasOwn(users, login)) return null;
    return constantTimeEqual(users[login]!, passcode) ? { id: login, anonymous: false } : null;
  };
}

export interface JwtOptions {
  /** HMAC secret (HS256/384/512). */
  secret?: string;
  /** PEM public key (RS*, ES*, PS*, EdDSA). */
  publicKey?: string;
  issuer?: string;
  audience?: string;
  algorithms?: string[];
}

/**
 * A login check for JSON Web Tokens, from the CONNECT `Authorization: Bearer …` header (or the
 * passcode, for clients that can only send login/passcode). The principal is the token's `sub`.
 */
export function jwtAuthenticator(options: JwtOptions): Authenticate {
  if (!options.secret === !options.publicKey) {
    throw new PerigeeError(
      'CONFIG_INVALID',
      'a JWT check needs exactly one of secret or publicKey',
    );
  }
  const key = options.secret
    ? Promise.resolve(createSecretKey(Buffer.from(options.secret, 'utf8')))
    : importSPKI(options.publicKey!, options.algorithms?.[0] ?? 'RS256');
  return async ({ authorization, passcode }) => {
    const token = authorization?.replace(/^Bearer\s+/i, '') ?? passcode;
    if (!token) return null;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await key, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: options.algorithms,
      }));
    } catch (error) {
      const reason =
        error instanceof joseErrors.JWTExpired
          ? 'the token has expired'
          : error instanceof joseErrors.JWTClaimValidationFailed
            ? `the token's ${error.claim} claim is not accepted`
            : 'the token is not valid';
      throw new PerigeeError('UNAUTHENTICATED', reason, { cause: error });
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
      throw new PerigeeError('UNAUTHENTICATED', 'the token has no subject (sub)');
    }
    return { id: payload.sub, anonymous: false, attributes: payload };
  };
}
