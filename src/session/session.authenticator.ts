import { Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { AppError } from '../common/app-error';
import { assertCsrfToken, assertTrustedOrigin, isUnsafeMethod } from '../common/csrf';
import type { Principal } from '../common/principal';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { UsersService } from '../users/users.service';
import { hasSessionCookie, sessionCookieName } from './session-cookie';
import { isSessionExpired, sessionExpiry, shouldRecordActivity } from './session-lifetime';
import { LiveSession, SessionService } from './session.service';

/**
 * Decides who a cookie-authenticated request comes from: the session must exist, be within its idle and
 * absolute limits and postdate the user's revocation; unsafe methods must pass the CSRF checks. Shared by
 * SessionGuard and any guard that accepts a session among other methods.
 */
@Injectable()
export class SessionAuthenticator {
  private readonly cookieName: string;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly sessions: SessionService,
    private readonly users: UsersService,
  ) {
    this.cookieName = sessionCookieName(config);
  }

  hasCredentials(request: Request): boolean {
    return hasSessionCookie(request, this.cookieName);
  }

  async authenticate(request: Request): Promise<Principal> {
    if (!this.hasCredentials(request)) throw new AppError('AUTHENTICATION_REQUIRED');
    const session = request.session as LiveSession | undefined;
    // An unknown id or a bad signature leaves express-session with a fresh, empty session.
    if (!session?.userId || !session.publicId || !session.createdAt || !session.lastSeenAt) {
      return this.reject(request);
    }
    const now = Date.now();
    const limits = this.sessions.limits;
    if (isSessionExpired({ createdAt: session.createdAt, lastSeenAt: session.lastSeenAt }, limits, now)) {
      return this.reject(request);
    }
    const user = await this.users.state(session.userId);
    if (!user) return this.reject(request);
    if (user.revokedBefore && (session.authAt ?? 0) < user.revokedBefore.getTime()) {
      return this.reject(request);
    }
    if (isUnsafeMethod(request.method)) {
      assertTrustedOrigin(request, this.config);
      assertCsrfToken(request, session.csrfToken);
    }
    // Changing the session marks it modified; express-session writes it once the response is sent.
    if (shouldRecordActivity({ createdAt: session.createdAt, lastSeenAt: session.lastSeenAt }, limits, now)) {
      session.lastSeenAt = now;
    }
    // The contract's expiresAt is the absolute limit; the idle end moves with every use.
    const { absoluteExpiresAt } = sessionExpiry(
      { createdAt: session.createdAt, lastSeenAt: session.lastSeenAt },
      limits,
    );
    return {
      userId: user.id,
      role: user.role,
      method: 'session',
      sessionId: session.publicId,
      expiresAt: new Date(absoluteExpiresAt),
      mfa: session.mfa === true,
    };
  }

  private async reject(request: Request): Promise<never> {
    await this.sessions.end(request);
    throw new AppError('SESSION_INVALID');
  }
}
