import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';

export type AuthMethod = 'session' | 'token';

/**
 * Who is calling, as a guard established it. User facts (role) come from the users table through its cache,
 * never from the session or from an old token, so a role change applies on the next request.
 */
export interface Principal {
  userId: string;
  role: 'user' | 'admin';
  method: AuthMethod;
  /** The public id of the cookie session, or the refresh family id (`sid` claim) of the token. */
  sessionId: string;
  expiresAt: Date;
  /** Whether this sign-in passed a second factor. */
  mfa: boolean;
}

declare module 'express' {
  interface Request {
    principal?: Principal;
  }
}

/** Hands a controller the typed principal a guard attached; controllers never dig in the request. */
export const CurrentUser = createParamDecorator((_data: unknown, context: ExecutionContext): Principal => {
  const principal = context.switchToHttp().getRequest<Request>().principal;
  if (!principal) throw new Error('CurrentUser used on a route without an authentication guard');
  return principal;
});
