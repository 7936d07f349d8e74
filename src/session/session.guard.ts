import { applyDecorators, CanActivate, ExecutionContext, Injectable, UseGuards } from '@nestjs/common';
import { ApiCookieAuth } from '@nestjs/swagger';
import type { Request } from 'express';
import { SECURITY } from '../common/openapi';
import { SessionAuthenticator } from './session.authenticator';

/** Routes only a cookie session may call. */
@Injectable()
export class SessionGuard implements CanActivate {
  constructor(private readonly authenticator: SessionAuthenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<Request>();
    request.principal = await this.authenticator.authenticate(request);
    return true;
  }
}

/** The guard and its OpenAPI security scheme, applied together so neither is forgotten. */
export function SessionAuth(): MethodDecorator & ClassDecorator {
  return applyDecorators(UseGuards(SessionGuard), ApiCookieAuth(SECURITY.session));
}
