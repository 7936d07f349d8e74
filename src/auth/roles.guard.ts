import {
  applyDecorators,
  CanActivate,
  ExecutionContext,
  Injectable,
  SetMetadata,
  UseGuards,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiBearerAuth, ApiCookieAuth } from '@nestjs/swagger';
import type { Request } from 'express';
import { AppError } from '../common/app-error';
import { SECURITY } from '../common/openapi';
import type { Role } from '../users/user.entity';
import { AnyAuthGuard } from './any-auth.guard';

export const ROLES = 'auth:roles';

export const Roles = (...roles: Role[]): MethodDecorator & ClassDecorator => SetMetadata(ROLES, roles);

/**
 * Runs after an authentication guard and compares the principal's role, which the authenticators read
 * from the users table on each request, so a role change applies on the caller's next request.
 */
@Injectable()
export class RolesGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES, [
      context.getHandler(),
      context.getClass(),
    ]);
    const principal = context.switchToHttp().getRequest<Request>().principal;
    if (!roles?.length || !principal) throw new Error('RolesGuard needs @Roles and an authentication guard');
    if (!roles.includes(principal.role)) throw new AppError('FORBIDDEN');
    return true;
  }
}

/** Either method, and role admin; guards, roles and OpenAPI security applied together. */
export function AdminAuth(): MethodDecorator & ClassDecorator {
  return applyDecorators(
    UseGuards(AnyAuthGuard, RolesGuard),
    Roles('admin'),
    ApiCookieAuth(SECURITY.session),
    ApiBearerAuth(SECURITY.bearer),
  );
}
