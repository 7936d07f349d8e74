import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { AuditService } from './audit.service';

const MAX_INTERVAL_MS = 60 * 60_000;

/**
 * Erases the IP and user agent of a deleted user's audit entries once AUDIT_RETENTION has passed since the
 * deletion. Not at deletion: an intruder who deletes the account must not wipe the traces of the sign-ins
 * that led to it. Every instance runs the job; it is one idempotent statement, so runs that overlap on
 * several instances wait on each other's row locks and the later one finds nothing left to erase.
 */
@Injectable()
export class AuditRetention implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('AuditRetention');
  private readonly retentionSeconds: number;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly audit: AuditService,
  ) {
    this.retentionSeconds = config.audit.retentionSeconds;
  }

  onApplicationBootstrap(): void {
    // A quarter of the retention, at most an hour: entries are erased at most that late.
    const interval = Math.min(MAX_INTERVAL_MS, Math.max(1000, (this.retentionSeconds * 1000) / 4));
    this.timer = setInterval(() => void this.run(), interval);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; a pass still running is not doubled. */
  run(): Promise<void> {
    this.running ??= this.audit
      .eraseClientDataOfDeletedUsers(this.retentionSeconds)
      .catch((error: unknown) => this.logger.warn({ err: error }, 'audit retention pass failed'))
      .finally(() => (this.running = undefined));
    return this.running;
  }
}
