import type { Request, Response } from 'express';
import passport, { type Strategy } from 'passport';

/** What a strategy decided for one request: who the caller is, or a failure and its challenge. */
export type StrategyDecision<T> = { user: T } | { user: false; challenge: unknown };

/**
 * Runs this application's instance of a passport strategy on one request.
 *
 * Passport keeps one registry of strategies by name per process, and @nestjs/passport's AuthGuard(name)
 * looks the strategy up there: with two applications in one process (the multi-instance e2e specs), each
 * would run the strategy, and so the services, caches and database, of whichever registered the name last,
 * and of a closed one after it stopped. Passport also takes a strategy object instead of a name; a fresh
 * object over the application's instance, as passport makes itself for a named strategy, keeps each
 * request's success and failure to that request.
 */
export function runStrategy<T>(
  strategy: Strategy,
  request: Request,
  response: Response,
): Promise<StrategyDecision<T>> {
  return new Promise((resolve, reject) => {
    const attempt = Object.create(strategy) as Strategy;
    const decided = (error: Error | null, user: T | false | undefined, challenge: unknown): void => {
      if (error) reject(error);
      else resolve(user ? { user } : { user: false, challenge });
    };
    const middleware = passport.authenticate(attempt, { session: false }, decided) as (
      request: Request,
      response: Response,
      next: (error?: Error) => void,
    ) => void;
    // Passport calls next only for a strategy that neither succeeds nor fails; ours always do one.
    middleware(request, response, (error) => reject(error ?? new Error('the strategy decided nothing')));
  });
}
