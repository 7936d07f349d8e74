import { applyDecorators, CanActivate, ExecutionContext, Injectable, UseGuards } from '@nestjs/common';
import { ApiBearerAuth } from '@nestjs/swagger';
import type { Request } from 'express';
import { BearerAuthenticator } from './bearer-authenticator';

/** For bearer-only routes: the caller must present a valid, unrevoked access token. */
@Injectable()
export class JwtGuard implements CanActivate {
  constructor(private readonly bearer: BearerAuthenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    await this.bearer.authenticate(context.switchToHttp().getRequest<Request>());
    return true;
  }
}

/** The guard and its OpenAPI security scheme, applied together so neither is forgotten. */
export function BearerAuth(): MethodDecorator & ClassDecorator {
  return applyDecorators(UseGuards(JwtGuard), ApiBearerAuth('bearer'));
}
