import { RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { BackendUnavailableError } from '../common/app-error';
import type { AppConfig } from '../config/app-config';
import { accountKey, ipKey, LimiterFactory, rateLimited } from './login-throttle';

/** Password-reset mails, and mails that prove an address (verification, email change). */
export type MailKind = 'password_reset' | 'verification';

const HOUR_SECONDS = 60 * 60;

/**
 * Limits how much mail a client can cause (per IP) and how much one address can be sent (per address), in
 * the store LoginThrottle uses. Each method throws `RATE_LIMITED` with `Retry-After` past a limit and
 * `BackendUnavailableError` when the store cannot answer: no mail goes out uncounted.
 */
export abstract class MailThrottle {
  abstract consumeRequest(kind: MailKind, ip: string | undefined): Promise<void>;
  abstract consumeRecipient(kind: MailKind, normalizedEmail: string): Promise<void>;
}

export class StoreMailThrottle extends MailThrottle {
  private readonly requests: Record<MailKind, RateLimiterAbstract>;
  private readonly recipients: Record<MailKind, RateLimiterAbstract>;

  constructor(
    config: AppConfig['mail'],
    private readonly store: BackendUnavailableError['component'],
    limiter: LimiterFactory,
  ) {
    super();
    const perIp = { points: config.ipMailsPerHour, duration: HOUR_SECONDS };
    const perAddress = { points: config.addressMailsPerHour, duration: HOUR_SECONDS };
    this.requests = {
      password_reset: limiter('mail-reset-ip', perIp),
      verification: limiter('mail-verify-ip', perIp),
    };
    this.recipients = {
      password_reset: limiter('mail-reset-address', perAddress),
      verification: limiter('mail-verify-address', perAddress),
    };
  }

  consumeRequest(kind: MailKind, ip: string | undefined): Promise<void> {
    return this.consume(this.requests[kind], ipKey(ip));
  }

  consumeRecipient(kind: MailKind, normalizedEmail: string): Promise<void> {
    return this.consume(this.recipients[kind], accountKey(normalizedEmail));
  }

  private async consume(limiter: RateLimiterAbstract, key: string): Promise<void> {
    try {
      await limiter.consume(key);
    } catch (error) {
      if (error instanceof RateLimiterRes) throw rateLimited(error.msBeforeNext);
      throw new BackendUnavailableError(this.store, error);
    }
  }
}
