import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { assertTrustedOrigin } from '../common/csrf';
import { APP_CONFIG, AppConfig } from '../config/app-config';

/** Login CSRF: a page on another site must not be able to log a browser into an attacker's account. */
@Injectable()
export class TrustedOriginGuard implements CanActivate {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    assertTrustedOrigin(context.switchToHttp().getRequest<Request>(), this.config);
    return true;
  }
}
