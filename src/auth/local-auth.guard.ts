import { ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import type { Request } from 'express';
import { AppError } from '../common/app-error';

/**
 * Runs the local strategy after the body has been validated by the route's DTO (the guard checks only that
 * both fields are strings, so passport-local never sees anything else).
 */
@Injectable()
export class LocalAuthGuard extends AuthGuard('local') {
  override canActivate(context: ExecutionContext) {
    const body = context.switchToHttp().getRequest<Request>().body as Record<string, unknown> | undefined;
    const badDeviceToken = body?.deviceToken !== undefined && typeof body.deviceToken !== 'string';
    if (typeof body?.email !== 'string' || typeof body.password !== 'string' || badDeviceToken) {
      throw new AppError('VALIDATION_FAILED', 'The request is not valid', [
        ...(typeof body?.email !== 'string' ? [{ field: 'email', message: 'email must be a string' }] : []),
        ...(typeof body?.password !== 'string'
          ? [{ field: 'password', message: 'password must be a string' }]
          : []),
        ...(badDeviceToken ? [{ field: 'deviceToken', message: 'deviceToken must be a string' }] : []),
      ]);
    }
    return super.canActivate(context);
  }

  override handleRequest<TUser>(error: unknown, user: TUser | false): TUser {
    if (error) throw error instanceof Error ? error : new AppError('INVALID_CREDENTIALS');
    if (!user) throw new AppError('INVALID_CREDENTIALS');
    return user;
  }
}
