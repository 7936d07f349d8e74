import { ExecutionContext, Injectable, Type } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import type { Request } from 'express';
import { AppError } from '../common/app-error';
import { createValidationPipe } from '../common/validation';
import { LoginDto } from './dto/session.dto';

const validation = createValidationPipe();

/**
 * Runs the local strategy once the body has passed the route's login DTO (LoginDto or a subclass): guards
 * run before pipes, so the guard validates it here, every field at once, and passport-local only ever sees
 * well-formed strings.
 */
@Injectable()
export class LocalAuthGuard extends AuthGuard('local') {
  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<Request>();
    request.body = (await validation.transform(request.body, {
      type: 'body',
      metatype: loginDtoOf(context),
    })) as LoginDto;
    return (await super.canActivate(context)) as boolean;
  }

  override handleRequest<TUser>(error: unknown, user: TUser | false): TUser {
    if (error) throw error instanceof Error ? error : new AppError('INVALID_CREDENTIALS');
    if (!user) throw new AppError('INVALID_CREDENTIALS');
    return user;
  }
}

function loginDtoOf(context: ExecutionContext): Type<LoginDto> {
  const parameters = (Reflect.getMetadata(
    'design:paramtypes',
    context.getClass().prototype as object,
    context.getHandler().name,
  ) ?? []) as unknown[];
  const dto = parameters.find(
    (type): type is Type<LoginDto> =>
      type === LoginDto || (typeof type === 'function' && type.prototype instanceof LoginDto),
  );
  return dto ?? LoginDto;
}
