import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import { LRUCache } from 'lru-cache';
import { Strategy } from 'passport-jwt';
import { AppError } from '../common/app-error';
import { Clock } from '../common/clock';
import type { Principal } from '../common/principal';
import { APP_CONFIG, AppConfig, JwtAlgorithm } from '../config/app-config';
import { ROLES } from '../users/user.entity';
import { UsersService } from '../users/users.service';
import { ACCESS_TOKEN_TYPE, AccessTokenClaims, revocationSecond } from './access-tokens';
import { RefreshFamilies } from './refresh-families';
import { CLOCK_LEEWAY_SECONDS, SigningKeys } from './signing-keys';

export type BearerErrorCode = 'AUTHENTICATION_REQUIRED' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'TOKEN_REVOKED';

const CHALLENGE = 'Bearer realm="api"';

/** The contract's error for a bearer route, with the `WWW-Authenticate` challenge every such 401 carries. */
export function bearerError(code: BearerErrorCode): AppError {
  const challenge = code === 'AUTHENTICATION_REQUIRED' ? CHALLENGE : `${CHALLENGE}, error="invalid_token"`;
  return new AppError(code, undefined, undefined, { 'WWW-Authenticate': challenge });
}

/** What the strategy hands passport's `fail` before jsonwebtoken runs; anything else failing is TOKEN_INVALID. */
export class BearerChallenge {
  constructor(readonly code: 'AUTHENTICATION_REQUIRED' | 'TOKEN_INVALID') {}
}

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;
// Far above any token this service mints; nothing longer is worth decoding.
const MAX_TOKEN_LENGTH = 4096;
// Headers that point at other keys: a verifier that followed them would let the token choose its own key.
const FOREIGN_KEY_HEADERS = ['jku', 'jwk', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'crit'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The token of an `Authorization: Bearer` header, or null. */
export function bearerToken(request: Request): string | null {
  const header = request.headers.authorization;
  return (typeof header === 'string' && BEARER.exec(header)?.[1]) || null;
}

/**
 * The kid of a header this service could have written: exactly the configured `alg`, `typ: at+jwt`, a kid,
 * and nothing that names a key. Checked before any key is chosen, so no header ever picks one.
 */
export function acceptedKid(token: string, algorithm: JwtAlgorithm): string | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined;
  const fields = header as Record<string, unknown>;
  const accepted =
    fields.alg === algorithm &&
    fields.typ === ACCESS_TOKEN_TYPE &&
    typeof fields.kid === 'string' &&
    !FOREIGN_KEY_HEADERS.some((name) => name in fields);
  return accepted ? (fields.kid as string) : undefined;
}

/**
 * Bearer authentication: passport-jwt over jsonwebtoken, registered with @nestjs/passport as `jwt`.
 *
 * A token's first presentation goes the whole way: the header check and the key chosen by `kid` from the
 * service's own ring (`secretOrKeyProvider`), then jsonwebtoken (signature, the configured algorithm only,
 * issuer, audience), then `validate` (the claims jsonwebtoken does not know, the time claims against the
 * Clock with the leeway, exp last, so TOKEN_EXPIRED is said only of an otherwise valid token). Its claims are
 * then remembered per token string until exp plus the leeway, and a later presentation of the same string
 * skips straight to the revocation check (`admitVerified`, which the guards call before passport), which
 * reads the revocation cache: no signature check and no store round trip while warm. Either way the result
 * is a Principal, or a failure the guard turns into the contract's error.
 */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  private readonly verified = new LRUCache<string, AccessTokenClaims>({ max: 10_000 });
  private readonly accessTtlSeconds: number;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    keys: SigningKeys,
    private readonly users: UsersService,
    private readonly families: RefreshFamilies,
    private readonly clock: Clock,
  ) {
    const { algorithm, issuer, audience } = config.token;
    super({
      jwtFromRequest: bearerToken,
      secretOrKeyProvider: (
        _request: Request,
        token: string,
        done: (error: unknown, key?: Buffer) => void,
      ) => {
        const kid = acceptedKid(token, algorithm);
        const key = kid === undefined ? undefined : keys.find(kid);
        if (!key || key.algorithm !== algorithm) return done(new BearerChallenge('TOKEN_INVALID'));
        // jsonwebtoken takes the ring's parsed KeyObject as it is; the typings list only strings and buffers.
        done(null, key.verifying as unknown as Buffer);
      },
      algorithms: [algorithm],
      issuer,
      audience,
      // The time claims, and the 30 s leeway on them, are validate's: against the Clock, after everything else.
      ignoreExpiration: true,
      jsonWebTokenOptions: { ignoreNotBefore: true },
      passReqToCallback: true,
    });
    this.accessTtlSeconds = config.token.accessTtlSeconds;
  }

  /** A token verified before skips passport-jwt and jsonwebtoken; anything else takes the full path. */
  override authenticate(request: Request, options?: object): void {
    if (request.headers.authorization === undefined) {
      return this.fail(new BearerChallenge('AUTHENTICATION_REQUIRED'), 401);
    }
    if (!bearerToken(request)) return this.fail(new BearerChallenge('TOKEN_INVALID'), 401);
    const known = this.admitVerified(request);
    if (known) {
      known.then(
        (principal) => this.success(principal),
        (error: unknown) => this.error(error as Error),
      );
      return;
    }
    super.authenticate(request, options);
  }

  /**
   * The principal for a token verified before and not yet past exp plus the leeway, after the revocation
   * check; undefined when the token has to go the whole way.
   */
  admitVerified(request: Request): Promise<Principal> | undefined {
    const token = bearerToken(request);
    const claims = token ? this.verified.get(token) : undefined;
    if (!claims || claims.exp + CLOCK_LEEWAY_SECONDS <= this.clock.nowSeconds()) return undefined;
    return this.admit(claims);
  }

  /** Called by passport-jwt once jsonwebtoken has verified the signature, algorithm, issuer and audience. */
  async validate(request: Request, payload: unknown): Promise<Principal> {
    const now = this.clock.nowSeconds();
    if (!this.claimsHold(payload, now)) throw bearerError('TOKEN_INVALID');
    if (payload.exp + CLOCK_LEEWAY_SECONDS <= now) throw bearerError('TOKEN_EXPIRED');
    const ttl = (payload.exp + CLOCK_LEEWAY_SECONDS - now) * 1000;
    this.verified.set(bearerToken(request)!, payload, { ttl });
    return this.admit(payload);
  }

  /**
   * The claims jsonwebtoken does not check: ids, role, whole-second times, an iat and nbf not in the future,
   * and a lifetime no longer than ACCESS_TOKEN_TTL, whoever signed the token.
   */
  private claimsHold(payload: unknown, now: number): payload is AccessTokenClaims {
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return false;
    const claims = payload as Record<string, unknown>;
    const { iat, exp, nbf } = claims;
    return (
      typeof claims.sub === 'string' &&
      UUID.test(claims.sub) &&
      typeof claims.sid === 'string' &&
      UUID.test(claims.sid) &&
      typeof claims.jti === 'string' &&
      // Tokens minted before second factors existed carry no amr; any other amr lists only what we issue.
      (claims.amr === undefined ||
        (Array.isArray(claims.amr) && claims.amr.every((method) => method === 'pwd' || method === 'otp'))) &&
      ROLES.includes(claims.role as AccessTokenClaims['role']) &&
      Number.isInteger(iat) &&
      Number.isInteger(exp) &&
      (iat as number) <= now + CLOCK_LEEWAY_SECONDS &&
      (exp as number) - (iat as number) <= this.accessTtlSeconds &&
      (nbf === undefined || (typeof nbf === 'number' && nbf <= now + CLOCK_LEEWAY_SECONDS))
    );
  }

  /** The revocation check, from the revocation cache while it is trusted, else from the database. */
  private async admit(claims: AccessTokenClaims): Promise<Principal> {
    // One after the other: the embedded database mixes up concurrent statements of one request.
    const user = await this.users.state(claims.sub);
    const family = await this.families.state(claims.sid);
    if (!user || !family || family.userId !== user.id || family.revoked) throw bearerError('TOKEN_REVOKED');
    if (claims.iat < revocationSecond(user)) throw bearerError('TOKEN_REVOKED');
    return {
      userId: user.id,
      role: user.role,
      method: 'token',
      sessionId: claims.sid,
      expiresAt: new Date(claims.exp * 1000),
      mfa: claims.amr?.includes('otp') === true,
    };
  }
}
