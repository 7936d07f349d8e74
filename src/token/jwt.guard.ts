import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
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
