import { applyDecorators, CanActivate, ExecutionContext, Injectable, UseGuards } from '@nestjs/common';
import { ApiBearerAuth } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import passport from 'passport';
import { SECURITY } from '../common/openapi';
import type { Principal } from '../common/principal';
import { BearerChallenge, bearerError, JwtStrategy } from './jwt.strategy';

/**
 * Runs this application's JwtStrategy, through `passport.authenticate` unless the strategy knows the token
 * already, and sets `request.principal`, or rejects with the contract's error and its `WWW-Authenticate`
 * challenge.
 *
 * Passport keeps one registry of strategies by name per process, and @nestjs/passport's AuthGuard('jwt')
 * looks the strategy up there: with two applications in one process (the multi-instance e2e specs), each
 * would check tokens with the keys and caches of whichever registered `jwt` last. Passport also takes a
 * strategy object instead of a name; a fresh object over this application's instance, as passport makes
 * itself for a named strategy, keeps each request's success and failure to that request.
 */
export async function authenticateBearer(
  strategy: JwtStrategy,
  request: Request,
  response: Response,
): Promise<Principal> {
  // A token the strategy verified before needs none of passport's per-request setup, which was half the
  // guard's cost on a warm bearer request, about 12 µs of CPU (docs/performance.md).
  const principal = await (strategy.admitVerified(request) ?? viaPassport(strategy, request, response));
  request.principal = principal;
  return principal;
}

function viaPassport(strategy: JwtStrategy, request: Request, response: Response): Promise<Principal> {
  return new Promise<Principal>((resolve, reject) => {
    const attempt = Object.create(strategy) as JwtStrategy;
    const settle = (error: Error | null, principal: Principal | false | undefined, challenge: unknown) => {
      if (error) return reject(error);
      if (principal) return resolve(principal);
      reject(bearerError(challenge instanceof BearerChallenge ? challenge.code : 'TOKEN_INVALID'));
    };
    const middleware = passport.authenticate(attempt, { session: false }, settle) as (
      request: Request,
      response: Response,
      next: (error?: Error) => void,
    ) => void;
    // Passport calls next only for a strategy that neither succeeds nor fails; this one always does one.
    middleware(request, response, (error) => reject(error ?? new Error('the jwt strategy decided nothing')));
  });
}

/** For bearer-only routes: the caller must present a valid, unrevoked access token. */
@Injectable()
export class JwtGuard implements CanActivate {
  constructor(private readonly strategy: JwtStrategy) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    await authenticateBearer(this.strategy, http.getRequest<Request>(), http.getResponse<Response>());
    return true;
  }
}

/** The guard and its OpenAPI security scheme, applied together so neither is forgotten. */
export function BearerAuth(): MethodDecorator & ClassDecorator {
  return applyDecorators(UseGuards(JwtGuard), ApiBearerAuth(SECURITY.bearer));
}
