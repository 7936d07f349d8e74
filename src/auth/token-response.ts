import { Inject, Injectable } from '@nestjs/common';
import type { CookieOptions, Response } from 'express';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import type { TokenGrant } from '../token/refresh-families';
import { toPublicUser } from '../users/user.entity';
import type { TokenResponse } from './dto/token.dto';

const COOKIE_PATH = '/api/auth/token';

/**
 * Writes a token grant as the contract's token response, the refresh token in the body or in the `rt`
 * cookie; shared by token login, refresh, and the completion of a token login after a second factor.
 */
@Injectable()
export class TokenResponder {
  readonly cookieName: string;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.cookieName = config.session.cookieSecure ? '__Secure-rt' : 'rt';
  }

  reply(grant: TokenGrant, viaCookie: boolean, response: Response): TokenResponse {
    const now = Date.now();
    const refreshExpiresIn = Math.max(0, Math.round((grant.refreshExpiresAt.getTime() - now) / 1000));
    response.setHeader('Cache-Control', 'no-store');
    const common = {
      tokenType: 'Bearer' as const,
      accessToken: grant.accessToken,
      // The token's lifetime, which the client counts from receipt: counting down from now to exp said 899
      // for every token answered in the second half of its issuing second.
      expiresIn: this.config.token.accessTtlSeconds,
      refreshExpiresIn,
      user: toPublicUser(grant.user),
    };
    if (!viaCookie) return { ...common, refreshToken: grant.refreshToken };
    if (grant.csrfToken === undefined)
      throw new Error('a refresh family delivered by cookie has a CSRF token');
    response.cookie(this.cookieName, grant.refreshToken, {
      ...this.cookieOptions(),
      maxAge: refreshExpiresIn * 1000,
    });
    return { ...common, csrfToken: grant.csrfToken };
  }

  clearCookie(response: Response): void {
    response.clearCookie(this.cookieName, this.cookieOptions());
  }

  private cookieOptions(): CookieOptions {
    return {
      httpOnly: true,
      secure: this.config.session.cookieSecure,
      sameSite: 'strict',
      path: COOKIE_PATH,
    };
  }
}
