import { applyDecorators, CanActivate, ExecutionContext, Injectable, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCookieAuth } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { SECURITY } from '../common/openapi';
import { SessionAuthenticator } from '../session/session.authenticator';
import { authenticateBearer } from '../token/jwt.guard';
import { JwtStrategy } from '../token/jwt.strategy';

/**
 * Routes either method may call. An Authorization header decides even beside a cookie: the caller chose the
 * token, which needs no CSRF token, and the `jwt` strategy checks it as on a bearer-only route. A cookie
 * alone goes through the session checks, CSRF included. With neither, the `jwt` strategy answers
 * AUTHENTICATION_REQUIRED with its `WWW-Authenticate: Bearer` challenge.
 */
@Injectable()
export class AnyAuthGuard implements CanActivate {
  constructor(
    private readonly jwt: JwtStrategy,
    private readonly sessions: SessionAuthenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<Request>();
    if (request.headers.authorization === undefined && this.sessions.hasCredentials(request)) {
      request.principal = await this.sessions.authenticate(request);
    } else {
      await authenticateBearer(this.jwt, request, http.getResponse<Response>());
    }
    return true;
  }
}

/** The guard and both OpenAPI security schemes, applied together. */
export function AnyAuth(): MethodDecorator & ClassDecorator {
  return applyDecorators(
    UseGuards(AnyAuthGuard),
    ApiCookieAuth(SECURITY.session),
    ApiBearerAuth(SECURITY.bearer),
  );
}
