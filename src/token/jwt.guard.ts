import { applyDecorators, CanActivate, ExecutionContext, Injectable, UseGuards } from '@nestjs/common';
import { ApiBearerAuth } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { SECURITY } from '../common/openapi';
import { runStrategy } from '../common/run-strategy';
import type { Principal } from '../common/principal';
import { BearerChallenge, bearerError, JwtStrategy } from './jwt.strategy';

/**
 * Runs this application's JwtStrategy (through passport unless the strategy knows the token already) and
 * sets `request.principal`, or rejects with the contract's error and its `WWW-Authenticate` challenge.
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

async function viaPassport(strategy: JwtStrategy, request: Request, response: Response): Promise<Principal> {
  const decision = await runStrategy<Principal>(strategy, request, response);
  if (decision.user) return decision.user;
  const { challenge } = decision;
  throw bearerError(challenge instanceof BearerChallenge ? challenge.code : 'TOKEN_INVALID');
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
