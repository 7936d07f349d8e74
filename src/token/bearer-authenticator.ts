import { Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { LRUCache } from 'lru-cache';
import { AppError } from '../common/app-error';
import type { Principal } from '../common/principal';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { UsersService } from '../users/users.service';
import { AccessTokenClaims, revocationSecond } from './access-tokens';
import { verifyAccessToken, VerifierSettings } from './access-token-verifier';
import { RefreshFamilies } from './refresh-families.service';
import { CLOCK_LEEWAY_SECONDS, SigningKeys } from './signing-keys';

const CHALLENGE = 'Bearer realm="api"';
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/**
 * Turns an `Authorization: Bearer` header into a Principal, or throws the contract's error with its
 * `WWW-Authenticate` challenge. Signature checks are cached per token string; revocation state comes from
 * the revocation cache, which every instance invalidates on each change, or from the database.
 */
@Injectable()
export class BearerAuthenticator {
  private readonly settings: VerifierSettings;
  private readonly verified = new LRUCache<string, AccessTokenClaims>({ max: 10_000 });

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly keys: SigningKeys,
    private readonly users: UsersService,
    private readonly families: RefreshFamilies,
  ) {
    this.settings = {
      algorithm: config.token.algorithm,
      issuer: config.token.issuer,
      audience: config.token.audience,
      leewaySeconds: CLOCK_LEEWAY_SECONDS,
    };
  }

  /** Whether the request carries bearer credentials at all (an "either method" guard asks this first). */
  static presents(request: Request): boolean {
    return typeof request.headers.authorization === 'string';
  }

  async authenticate(request: Request): Promise<Principal> {
    const header = request.headers.authorization;
    if (typeof header !== 'string') throw this.error('AUTHENTICATION_REQUIRED');
    const token = BEARER.exec(header)?.[1];
    if (!token) throw this.error('TOKEN_INVALID');
    const claims = await this.verify(token);
    const principal = await this.checkRevocation(claims);
    request.principal = principal;
    return principal;
  }

  private async verify(token: string): Promise<AccessTokenClaims> {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const cached = this.verified.get(token);
    if (cached && cached.exp > nowSeconds - CLOCK_LEEWAY_SECONDS) return cached;
    const result = await verifyAccessToken(token, (kid) => this.keys.find(kid), this.settings, nowSeconds);
    if (!result.ok) throw this.error(result.code);
    const ttl = (result.claims.exp + CLOCK_LEEWAY_SECONDS) * 1000 - Date.now();
    if (ttl > 0) this.verified.set(token, result.claims, { ttl });
    return result.claims;
  }

  private async checkRevocation(claims: AccessTokenClaims): Promise<Principal> {
    // One after the other: the embedded database mixes up concurrent statements of one request.
    const user = await this.users.state(claims.sub);
    const family = await this.families.state(claims.sid);
    if (!user || !family || family.userId !== user.id || family.revoked) {
      throw this.error('TOKEN_REVOKED');
    }
    if (claims.iat < revocationSecond(user)) throw this.error('TOKEN_REVOKED');
    return {
      userId: user.id,
      role: user.role,
      method: 'token',
      sessionId: claims.sid,
      expiresAt: new Date(claims.exp * 1000),
      mfa: claims.amr?.includes('otp') === true,
    };
  }

  private error(
    code: 'AUTHENTICATION_REQUIRED' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'TOKEN_REVOKED',
  ): AppError {
    const challenge = code === 'AUTHENTICATION_REQUIRED' ? CHALLENGE : `${CHALLENGE}, error="invalid_token"`;
    return new AppError(code, undefined, undefined, { 'WWW-Authenticate': challenge });
  }
}
