import { applyDecorators, CanActivate, ExecutionContext, Injectable, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCookieAuth } from '@nestjs/swagger';
import type { Request } from 'express';
import { SessionAuthenticator } from '../session/session.authenticator';
import { BearerAuthenticator } from '../token/bearer-authenticator';

/**
 * Routes either method may call. An Authorization header decides even beside a cookie: the caller chose the
 * token, which needs no CSRF token. A cookie alone goes through the session checks, CSRF included. With
 * neither, the bearer side answers AUTHENTICATION_REQUIRED with its `WWW-Authenticate: Bearer` challenge.
 */
@Injectable()
export class AnyAuthGuard implements CanActivate {
  constructor(
    private readonly bearer: BearerAuthenticator,
    private readonly sessions: SessionAuthenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<Request>();
    const bySession = !BearerAuthenticator.presents(request) && this.sessions.hasCredentials(request);
    request.principal = bySession
      ? await this.sessions.authenticate(request)
      : await this.bearer.authenticate(request);
    return true;
  }
}

/** The guard and both OpenAPI security schemes, applied together. */
export function AnyAuth(): MethodDecorator & ClassDecorator {
  return applyDecorators(UseGuards(AnyAuthGuard), ApiCookieAuth('session'), ApiBearerAuth('bearer'));
}
