import { createHash } from 'node:crypto';
import { IRateLimiterStoreOptions, RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError, BackendUnavailableError } from '../common/app-error';
import type { AppConfig } from '../config/app-config';

/**
 * Counts login failures, registrations and refreshes in a store shared by every instance, and says when a
 * caller must wait. Callers are services (LoginService, the register and refresh use cases); strategies and
 * guards never rate-limit. Every method throws `RATE_LIMITED` with `Retry-After` when over a limit and
 * `BackendUnavailableError` when the store cannot answer: the limits never switch off.
 */
export abstract class LoginThrottle {
  /** Before any password comparison: refuses while the account is locked or the IP is over its limits. */
  abstract assertLoginAllowed(email: string, ip: string | undefined): Promise<void>;
  /** After a failed login (unknown email included, so lockouts do not reveal which accounts exist). */
  abstract recordLoginFailure(email: string, ip: string | undefined): Promise<void>;
  /** After a successful login: the account's consecutive-failure count starts again. */
  abstract recordLoginSuccess(email: string): Promise<void>;
  /** After a password reset: the account's lock and its consecutive-failure count are gone. */
  abstract clearAccountLock(normalizedEmail: string): Promise<void>;
  abstract consumeRegistration(ip: string | undefined): Promise<void>;
  abstract consumeRefresh(ip: string | undefined): Promise<void>;
}

/** The first lock lasts this long; each further failure doubles it, up to LOCK_MAX_SECONDS. */
export const LOCK_BASE_SECONDS = 30;
export const LOCK_MAX_SECONDS = 60 * 60;
/** Consecutive failures are forgotten a day after the first one, unless a success clears them sooner. */
const ACCOUNT_FAILURE_WINDOW_SECONDS = 24 * 60 * 60;
const DAY_SECONDS = 24 * 60 * 60;
const HOUR_SECONDS = 60 * 60;

/** Builds one limiter on the chosen store; `name` becomes its key prefix. */
export type LimiterFactory = (
  name: string,
  options: Pick<IRateLimiterStoreOptions, 'points' | 'duration'>,
) => RateLimiterAbstract;

/**
 * The brute-force recipe of rate-limiter-flexible ("Login endpoint protection"): read the counters before
 * checking the password, count only failures, reset the account on success. On top of it: a lock whose
 * length doubles with each failure past the limit, and a per-IP count of distinct accounts failed against.
 */
export class StoreLoginThrottle extends LoginThrottle {
  private readonly accountFailures: RateLimiterAbstract;
  private readonly accountLocks: RateLimiterAbstract;
  private readonly ipFailures: RateLimiterAbstract;
  private readonly ipAccountPairs: RateLimiterAbstract;
  private readonly ipAccounts: RateLimiterAbstract;
  private readonly registrations: RateLimiterAbstract;
  private readonly refreshes: RateLimiterAbstract;

  constructor(
    private readonly config: AppConfig['auth'],
    private readonly store: BackendUnavailableError['component'],
    limiter: LimiterFactory,
  ) {
    super();
    const { limits } = config;
    this.accountFailures = limiter('login-fail-account', {
      points: 1,
      duration: ACCOUNT_FAILURE_WINDOW_SECONDS,
    });
    // Written only through block(): any live entry is a lock, its TTL the wait.
    this.accountLocks = limiter('login-lock-account', { points: 1, duration: 1 });
    this.ipFailures = limiter('login-fail-ip', { points: limits.ipFailuresPerDay, duration: DAY_SECONDS });
    this.ipAccountPairs = limiter('login-fail-ip-account', { points: 1, duration: HOUR_SECONDS });
    this.ipAccounts = limiter('login-spray-ip', { points: limits.ipAccountsPerHour, duration: HOUR_SECONDS });
    this.registrations = limiter('register-ip', {
      points: limits.registrationsPerHour,
      duration: HOUR_SECONDS,
    });
    this.refreshes = limiter('refresh-ip', { points: limits.refreshesPerMinute, duration: 60 });
  }

  async assertLoginAllowed(email: string, ip: string | undefined): Promise<void> {
    const account = accountKey(email);
    const client = ipKey(ip);
    const [lock, failures, accounts] = await this.reach(() =>
      Promise.all([this.accountLocks.get(account), this.ipFailures.get(client), this.ipAccounts.get(client)]),
    );
    const waits = [
      lock?.msBeforeNext,
      failures && failures.consumedPoints >= this.config.limits.ipFailuresPerDay
        ? failures.msBeforeNext
        : undefined,
      accounts && accounts.consumedPoints >= this.config.limits.ipAccountsPerHour
        ? accounts.msBeforeNext
        : undefined,
    ].filter((ms): ms is number => ms !== undefined);
    if (waits.length > 0) throw rateLimited(Math.max(...waits));
  }

  async recordLoginFailure(email: string, ip: string | undefined): Promise<void> {
    const account = accountKey(email);
    const client = ipKey(ip);
    const failures = await this.reach(async () => {
      const [accountRes, , pair] = await Promise.all([
        this.accountFailures.penalty(account),
        this.ipFailures.penalty(client),
        this.ipAccountPairs.penalty(`${client}:${account}`),
      ]);
      // Only the first failure against an account in the window counts towards spraying.
      if (pair.consumedPoints === 1) await this.ipAccounts.penalty(client);
      return accountRes.consumedPoints;
    });
    const past = failures - this.config.loginMaxFailures;
    if (past < 0) return;
    const seconds = Math.min(LOCK_BASE_SECONDS * 2 ** Math.min(past, 20), LOCK_MAX_SECONDS);
    await this.reach(() => this.accountLocks.block(account, seconds));
  }

  async recordLoginSuccess(email: string): Promise<void> {
    await this.reach(() => this.accountFailures.delete(accountKey(email)));
  }

  async clearAccountLock(normalizedEmail: string): Promise<void> {
    const account = accountKey(normalizedEmail);
    await this.reach(() =>
      Promise.all([this.accountLocks.delete(account), this.accountFailures.delete(account)]),
    );
  }

  consumeRegistration(ip: string | undefined): Promise<void> {
    return this.consume(this.registrations, ipKey(ip));
  }

  consumeRefresh(ip: string | undefined): Promise<void> {
    return this.consume(this.refreshes, ipKey(ip));
  }

  private async consume(limiter: RateLimiterAbstract, key: string): Promise<void> {
    try {
      await limiter.consume(key);
    } catch (error) {
      if (error instanceof RateLimiterRes) throw rateLimited(error.msBeforeNext);
      throw new BackendUnavailableError(this.store, error);
    }
  }

  /** Any store failure means the limit cannot be checked, so the request fails rather than passing. */
  private async reach<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw new BackendUnavailableError(this.store, error);
    }
  }
}

export function rateLimited(msBeforeNext: number): AppError {
  const seconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return new AppError('RATE_LIMITED', undefined, undefined, { 'Retry-After': String(seconds) });
}

/** Hashed: keys stay short (the table's key is varchar(255)) and the store holds no email addresses. */
export function accountKey(normalizedEmail: string): string {
  return createHash('sha256').update(normalizedEmail, 'utf8').digest('base64url');
}

export function ipKey(ip: string | undefined): string {
  return ip ?? 'unknown';
}
