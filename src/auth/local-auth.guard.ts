import { CanActivate, ExecutionContext, Injectable, Type } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError } from '../common/app-error';
import { runStrategy } from '../common/run-strategy';
import { createValidationPipe } from '../common/validation';
import { LoginDto } from './dto/session.dto';
import { LocalStrategy } from './local.strategy';
import type { VerifiedLogin } from './login.service';

const validation = createValidationPipe();

/**
 * Runs this application's local strategy (runStrategy says why not AuthGuard('local')) once the body has
 * passed the route's login DTO (LoginDto or a subclass): guards run before pipes, so the guard validates it
 * here, every field at once, and passport-local only ever sees well-formed strings.
 */
@Injectable()
export class LocalAuthGuard implements CanActivate {
  constructor(private readonly strategy: LocalStrategy) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<Request>();
    request.body = (await validation.transform(request.body, {
      type: 'body',
      metatype: loginDtoOf(context),
    })) as LoginDto;
    const decision = await runStrategy<VerifiedLogin>(this.strategy, request, http.getResponse<Response>());
    if (!decision.user) throw new AppError('INVALID_CREDENTIALS');
    request.user = decision.user;
    return true;
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
