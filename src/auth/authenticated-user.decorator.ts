import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { User } from '../users/user.entity';

/** The user LocalAuthGuard verified from the login body. */
export const VerifiedUser = createParamDecorator((_data: unknown, context: ExecutionContext): User => {
  const user = context.switchToHttp().getRequest<Request>().user as User | undefined;
  if (!user) throw new Error('VerifiedUser used on a route without LocalAuthGuard');
  return user;
});
