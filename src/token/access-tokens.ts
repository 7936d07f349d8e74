import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { randomUUID } from 'node:crypto';
import { Clock } from '../common/clock';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import type { Role, User } from '../users/user.entity';
import { SigningKeys } from './signing-keys';

export const ACCESS_TOKEN_TYPE = 'at+jwt';

export interface AccessTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  role: Role;
  sid: string;
  jti: string;
  /**
   * How the login proved itself (RFC 8176): `pwd`, and `otp` after a second factor. Always minted; absent
   * only from tokens minted before the second factor existed, which stay valid until they expire.
   */
  amr?: AuthMethodReference[];
  iat: number;
  exp: number;
}

export type AuthMethodReference = 'pwd' | 'otp';

export interface MintedAccessToken {
  token: string;
  expiresAt: Date;
}

type RevocationStamps = Pick<User, 'revokedBefore' | 'tokensRevokedBefore'>;

/** First whole second at which a token counts as issued after the user's revocation stamps. */
export function revocationSecond(user: RevocationStamps): number {
  const stamp = Math.max(user.revokedBefore?.getTime() ?? 0, user.tokensRevokedBefore?.getTime() ?? 0);
  return Math.ceil(stamp / 1000);
}

/** Mints access tokens with the ring's current key, through @nestjs/jwt. */
@Injectable()
export class AccessTokens {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: SigningKeys,
    private readonly jwt: JwtService,
    private readonly clock: Clock,
  ) {}

  /**
   * `authAt` (ms) dates a login's token from when its password check began, so a revocation written while
   * the check ran (the role and stamps in `user` were read before it) revokes this token too. `mfa`: the
   * login also passed a second factor (`amr` says so).
   */
  mint(
    user: { id: string; role: Role } & RevocationStamps,
    familyId: string,
    authAt?: number,
    mfa = false,
  ): MintedAccessToken {
    const issuedAt = authAt === undefined ? this.clock.nowSeconds() : Math.floor(authAt / 1000);
    // iat has whole seconds: a token minted in the same second as a revocation must still count as after it.
    const iat = Math.max(issuedAt, revocationSecond(user));
    const exp = iat + this.config.token.accessTtlSeconds;
    const claims: AccessTokenClaims = {
      iss: this.config.token.issuer,
      aud: this.config.token.audience,
      sub: user.id,
      role: user.role,
      sid: familyId,
      jti: randomUUID(),
      amr: mfa ? ['pwd', 'otp'] : ['pwd'],
      iat,
      exp,
    };
    const key = this.keys.signingKey;
    // Every claim is in the payload, so jsonwebtoken adds none of its own (iat, exp) and checks none here.
    const token = this.jwt.sign(claims, {
      algorithm: key.algorithm,
      keyid: key.kid,
      header: { alg: key.algorithm, typ: ACCESS_TOKEN_TYPE },
      privateKey: key.signing,
    });
    return { token, expiresAt: new Date(exp * 1000) };
  }
}
