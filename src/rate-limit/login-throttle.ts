import { createHash, randomInt } from 'node:crypto';
import { IRateLimiterStoreOptions, RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError, BackendUnavailableError } from '../common/app-error';
import type { AppConfig } from '../config/app-config';
import { clientNetwork } from './client-network';

/**
 * Whose count a password check (or any guessable credential: a second-factor code) goes on. `email` is the
 * normalised email; `device` the id of a device token recognised for that account: its checks count on the
 * device's own counter and pass the account's lock.
 */
export interface AttemptSubject {
  email: string;
  device?: string;
}

/** What became of an admitted attempt: it passed, failed, or was never checked (refused later, dropped). */
export type AttemptOutcome = 'passed' | 'failed' | 'unchecked';

/** An attempt that was counted before its check; settle it once with the check's outcome. */
export interface Admission {
  settle(outcome: AttemptOutcome): Promise<void>;
}

/**
 * Counts password checks, registrations and refreshes in a store shared by every instance, and says when a
 * caller must wait. Callers are services (the auth module's CredentialAttempts, the register and refresh
 * use cases); strategies and guards never rate-limit. Every method throws `RATE_LIMITED` with `Retry-After`
 * when over a limit and `BackendUnavailableError` when the store cannot answer: the limits never switch off.
 */
export abstract class LoginThrottle {
  /**
   * Counts an attempt before its check, atomically in the store: attempts in flight count, so parallel
   * guesses cannot pass a limit that sequential ones hit. Refuses while the subject is locked, when its
   * budget is taken by failures and attempts in flight, or when the IP is over its limits.
   */
  abstract admit(subject: AttemptSubject, ip: string | undefined): Promise<Admission>;
  /** Clears the account's lock and failure count (a password reset). */
  abstract clearAccountLock(normalizedEmail: string): Promise<void>;
  abstract consumeRegistration(ip: string | undefined): Promise<void>;
  abstract consumeRefresh(ip: string | undefined): Promise<void>;
}

/** The first lock lasts this long; each further lock doubles it, up to LOCK_MAX_SECONDS. */
export const LOCK_BASE_SECONDS = 30;
export const LOCK_MAX_SECONDS = 60 * 60;
/** Consecutive failures are forgotten a day after the first one, unless a success clears them sooner. */
const FAILURE_WINDOW_SECONDS = 24 * 60 * 60;
/** Outlives every attempts counter it names, so a forgotten streak never finds an old counter again. */
const STREAK_SECONDS = 2 * FAILURE_WINDOW_SECONDS;
const DAY_SECONDS = 24 * 60 * 60;
const HOUR_SECONDS = 60 * 60;
/** A streak id holds its lock level above these bits and a random part below. */
const STREAK_RANDOM_BITS = 21;
const MAX_LEVEL = 20;
/** A missed give-back is retried every few seconds for about two minutes. */
const SETTLE_RETRIES = 24;
const SETTLE_RETRY_MS = 5000;

/** Builds one limiter on the chosen store; `name` becomes its key prefix. */
export type LimiterFactory = (
  name: string,
  options: Pick<IRateLimiterStoreOptions, 'points' | 'duration'>,
) => RateLimiterAbstract;

interface StreakTicket {
  key: string;
  streak: number;
  position: number;
}

/**
 * Consecutive failures of one subject (an account or a device) with a lock whose length doubles, built on
 * the store's atomic counters so that an attempt is counted before it is checked.
 *
 * A streak is a random id (its lock level in the high bits) under which attempts are counted; ending a
 * streak (a success, a lock, a reset) moves the subject to a new id, so no counter ever has to be
 * decremented past its own attempts. The first streak admits LOGIN_MAX_FAILURES attempts; the failure of
 * the last of them sets the lock and starts the next streak with one attempt left, which is admitted
 * once the lock has run out. Readers read the streak id before the lock, and the locker writes the lock
 * before the new id: whoever sees the new id sees the lock. Attempts refused during a lock change nothing.
 */
class FailureStreaks {
  private readonly streaks: RateLimiterAbstract;
  private readonly attempts: RateLimiterAbstract;
  private readonly locks: RateLimiterAbstract;

  constructor(
    kind: 'account' | 'device',
    private readonly maxFailures: number,
    limiter: LimiterFactory,
  ) {
    this.streaks = limiter(`login-streak-${kind}`, { points: 1, duration: STREAK_SECONDS });
    this.attempts = limiter(`login-attempts-${kind}`, {
      points: maxFailures,
      duration: FAILURE_WINDOW_SECONDS,
    });
    // Written only through block(): any live entry is a lock, its TTL the wait.
    this.locks = limiter(`login-lock-${kind}`, { points: 1, duration: 1 });
  }

  async admit(key: string): Promise<StreakTicket> {
    const streak = (await this.streaks.get(key))?.consumedPoints ?? 0;
    const lock = await this.locks.get(key);
    if (lock && lock.msBeforeNext > 0) throw rateLimited(lock.msBeforeNext);
    const counted = await this.attempts.penalty(`${key}:${streak}`);
    if (counted.consumedPoints > this.maxFailures) {
      // Taken by attempts still in flight: the lock their failure would set is the honest wait.
      throw rateLimited(lockSeconds(levelOf(streak) + 1) * 1000);
    }
    return { key, streak, position: counted.consumedPoints };
  }

  async settle(ticket: StreakTicket, outcome: AttemptOutcome): Promise<void> {
    if (outcome === 'passed') return this.reset(ticket.key);
    if (outcome === 'unchecked') {
      await this.attempts.reward(`${ticket.key}:${ticket.streak}`);
      return;
    }
    if (ticket.position < this.maxFailures) return;
    // A success (or a reset) that ended this streak meanwhile outranks a failure counted before it.
    const current = (await this.streaks.get(ticket.key))?.consumedPoints ?? 0;
    if (current !== ticket.streak) return;
    const level = Math.min(levelOf(ticket.streak) + 1, MAX_LEVEL);
    const next = newStreak(level);
    await this.locks.block(ticket.key, lockSeconds(level));
    await this.attempts.set(`${ticket.key}:${next}`, this.maxFailures - 1, FAILURE_WINDOW_SECONDS);
    await this.streaks.set(ticket.key, next, STREAK_SECONDS);
  }

  async reset(key: string): Promise<void> {
    await this.streaks.set(key, newStreak(0), STREAK_SECONDS);
    await this.locks.delete(key);
  }
}

function newStreak(level: number): number {
  return level * 2 ** STREAK_RANDOM_BITS + randomInt(1, 2 ** STREAK_RANDOM_BITS);
}

function levelOf(streak: number): number {
  return Math.floor(streak / 2 ** STREAK_RANDOM_BITS);
}

function lockSeconds(level: number): number {
  return Math.min(LOCK_BASE_SECONDS * 2 ** Math.max(level - 1, 0), LOCK_MAX_SECONDS);
}

/**
 * The store-backed throttle. Per account (or recognised device): a failure streak (FailureStreaks). Per
 * client IP (an IPv6 address by its /64): failures per day, and distinct accounts tried per hour, an account
 * counting from its first admitted attempt and given back when that attempt succeeds.
 */
export class StoreLoginThrottle extends LoginThrottle {
  private readonly accounts: FailureStreaks;
  private readonly devices: FailureStreaks;
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
    this.accounts = new FailureStreaks('account', config.loginMaxFailures, limiter);
    this.devices = new FailureStreaks('device', config.loginMaxFailures, limiter);
    this.ipFailures = limiter('login-fail-ip', { points: limits.ipFailuresPerDay, duration: DAY_SECONDS });
    this.ipAccountPairs = limiter('login-fail-ip-account', { points: 1, duration: HOUR_SECONDS });
    this.ipAccounts = limiter('login-spray-ip', { points: limits.ipAccountsPerHour, duration: HOUR_SECONDS });
    this.registrations = limiter('register-ip', {
      points: limits.registrationsPerHour,
      duration: HOUR_SECONDS,
    });
    this.refreshes = limiter('refresh-ip', { points: limits.refreshesPerMinute, duration: 60 });
  }

  async admit(subject: AttemptSubject, ip: string | undefined): Promise<Admission> {
    const account = accountKey(subject.email);
    const [streaks, streakKey] = subject.device
      ? [this.devices, deviceKey(subject.device)]
      : [this.accounts, account];
    const ticket = await this.reach(() => streaks.admit(streakKey));
    let fromIp: (outcome: AttemptOutcome) => Promise<void>;
    try {
      fromIp = await this.reach(() => this.admitFromIp(account, ipKey(ip)));
    } catch (error) {
      await this.reach(() => streaks.settle(ticket, 'unchecked'));
      throw error;
    }
    return {
      settle: (outcome) =>
        this.settleAll([() => streaks.settle(ticket, outcome), () => fromIp(outcome)], outcome !== 'failed'),
    };
  }

  /**
   * Runs the parts of a settlement in order. A give-back the store missed (a blip) would leave the attempt
   * counted as in flight for the whole window, so the parts not yet done are retried for a while.
   */
  private async settleAll(parts: (() => Promise<void>)[], retry: boolean, attempt = 0): Promise<void> {
    while (parts.length > 0) {
      try {
        await parts[0]();
        parts.shift();
      } catch (error) {
        if (retry && attempt < SETTLE_RETRIES) {
          setTimeout(() => {
            this.settleAll(parts, true, attempt + 1).catch(() => undefined);
          }, SETTLE_RETRY_MS).unref();
        }
        throw new BackendUnavailableError(this.store, error);
      }
    }
  }

  /** Counts the attempt against the IP's failures and accounts; returns how to settle those counts. */
  private async admitFromIp(
    account: string,
    client: string,
  ): Promise<(outcome: AttemptOutcome) => Promise<void>> {
    const { ipFailuresPerDay, ipAccountsPerHour } = this.config.limits;
    const pair = `${client}:${account}`;
    const failures = await this.ipFailures.penalty(client);
    const newAccount = (await this.ipAccountPairs.penalty(pair)).consumedPoints === 1;
    const accounts = newAccount ? await this.ipAccounts.penalty(client) : await this.ipAccounts.get(client);
    const giveBack = async (): Promise<void> => {
      await this.ipFailures.reward(client);
      if (newAccount) {
        await this.ipAccounts.reward(client);
        await this.ipAccountPairs.delete(pair);
      }
    };
    const accountsTried = accounts?.consumedPoints ?? 0;
    const waits = [
      failures.consumedPoints > ipFailuresPerDay ? failures.msBeforeNext : undefined,
      (newAccount ? accountsTried > ipAccountsPerHour : accountsTried >= ipAccountsPerHour)
        ? accounts?.msBeforeNext
        : undefined,
    ].filter((ms): ms is number => ms !== undefined);
    if (waits.length > 0) {
      await giveBack();
      throw rateLimited(Math.max(...waits));
    }
    return async (outcome) => {
      if (outcome !== 'failed') await giveBack();
    };
  }

  clearAccountLock(normalizedEmail: string): Promise<void> {
    return this.reach(() => this.accounts.reset(accountKey(normalizedEmail)));
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
      if (error instanceof AppError) throw error;
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

function deviceKey(deviceId: string): string {
  return createHash('sha256').update(deviceId, 'utf8').digest('base64url');
}

export function ipKey(ip: string | undefined): string {
  return ip === undefined ? 'unknown' : clientNetwork(ip);
}
