import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { VerifiedLogin } from './login.service';

/** The login LocalAuthGuard verified from the login body. */
export const VerifiedUser = createParamDecorator(
  (_data: unknown, context: ExecutionContext): VerifiedLogin => {
    const login = context.switchToHttp().getRequest<Request>().user as VerifiedLogin | undefined;
    if (!login) throw new Error('VerifiedUser used on a route without LocalAuthGuard');
    return login;
  },
);
