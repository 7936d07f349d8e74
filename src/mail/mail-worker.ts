import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { returnedRows } from '../database/returned-rows';
import { MetricsService } from '../metrics/metrics.service';
import { MailTemplate, MailTemplates, MailVariables } from './mail-templates';
import { MailTransport, SMTP_TIMEOUTS_MS } from './mail-transport';

/**
 * How long a claimed mail stays with the worker that claimed it. Longer than an SMTP exchange can last
 * (SMTP_TIMEOUTS_MS), so no other instance sends a mail whose send may still complete; a worker that dies
 * holding mail leaves it due again when the claim ends.
 */
export const CLAIM_SECONDS = 300;
const BATCH = 10;
const MAX_RETRY_MS = 60 * 60 * 1000;

interface ClaimedMail {
  id: string;
  template: MailTemplate;
  recipient: string;
  variables: MailVariables;
  attempts: number;
  created_at: Date;
  claim: string;
}

/**
 * Runs on every instance: claims due mail from the outbox (FOR UPDATE SKIP LOCKED, so two instances never
 * claim one row), sends it, and marks it sent or schedules a retry with doubling back-off. A mail is
 * retried until MAIL_RETRY_FOR has passed since it was queued. Its variables (the link) are erased once it
 * is sent or given up.
 */
@Injectable()
export class MailWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Mail');
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private stopped = false;
  private databaseFailing = false;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly transport: MailTransport,
    private readonly templates: MailTemplates,
    private readonly metrics: MetricsService,
  ) {
    if (CLAIM_SECONDS * 1000 <= Object.values(SMTP_TIMEOUTS_MS).reduce((a, b) => a + b)) {
      throw new Error('a mail claim must outlast an SMTP exchange');
    }
  }

  onApplicationBootstrap(): void {
    this.schedule();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
    this.transport.close();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        this.schedule();
      });
    }, this.config.mail.pollIntervalMs);
    this.timer.unref();
  }

  /** Sends what is due, batch after batch, until nothing is. */
  private async poll(): Promise<void> {
    try {
      await this.measureBacklog();
      for (;;) {
        const batch = await this.claim();
        await Promise.all(batch.map((mail) => this.deliver(mail)));
        if (batch.length < BATCH || this.stopped) break;
      }
      if (this.databaseFailing) this.logger.log('mail outbox reachable again');
      this.databaseFailing = false;
    } catch (error) {
      // Mail waits in the database; nothing is lost while it cannot be read. One line per outage.
      if (!this.databaseFailing) this.logger.warn(`mail outbox unreachable: ${describe(error)}`);
      this.databaseFailing = true;
    }
  }

  private async claim(): Promise<ClaimedMail[]> {
    const claim = randomUUID();
    const rows = await this.dataSource.query<[ClaimedMail[], number]>(
      `UPDATE mail_outbox
          SET claim = $1, attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
        WHERE id IN (SELECT id FROM mail_outbox
                      WHERE sent_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= now()
                      ORDER BY next_attempt_at
                      LIMIT $3
                      FOR UPDATE SKIP LOCKED)
        RETURNING id, template, recipient, variables, attempts, created_at, claim`,
      [claim, CLAIM_SECONDS, BATCH],
    );
    return returnedRows<ClaimedMail>(rows);
  }

  private async deliver(mail: ClaimedMail): Promise<void> {
    const { template } = mail;
    try {
      const rendered = this.templates.render(template, mail.variables);
      await this.transport.send({ ...rendered, id: mail.id, to: mail.recipient, link: mail.variables.link });
    } catch (error) {
      await this.failed(mail, error);
      return;
    }
    this.metrics.mailSent.inc({ template });
    await this.dataSource.query(
      `UPDATE mail_outbox SET sent_at = now(), variables = '{}'::jsonb, claim = NULL, last_error = NULL
        WHERE id = $1 AND claim = $2`,
      [mail.id, mail.claim],
    );
  }

  private async failed(mail: ClaimedMail, error: unknown): Promise<void> {
    const { template } = mail;
    this.metrics.mailFailures.inc({ template });
    const retryMs = Math.min(this.config.mail.retryBaseMs * 2 ** (mail.attempts - 1), MAX_RETRY_MS);
    const deadline = new Date(mail.created_at).getTime() + this.config.mail.retryForSeconds * 1000;
    const reason = describe(error).slice(0, 500);
    if (Date.now() + retryMs > deadline) {
      this.metrics.mailAbandoned.inc({ template });
      this.logger.error(`mail ${mail.id} (${template}) given up after ${mail.attempts} attempts: ${reason}`);
      await this.dataSource.query(
        `UPDATE mail_outbox SET abandoned_at = now(), variables = '{}'::jsonb, claim = NULL, last_error = $3
          WHERE id = $1 AND claim = $2`,
        [mail.id, mail.claim, reason],
      );
      return;
    }
    this.logger.warn(`mail ${mail.id} (${template}) attempt ${mail.attempts} failed, retrying: ${reason}`);
    await this.dataSource.query(
      `UPDATE mail_outbox
          SET next_attempt_at = now() + make_interval(secs => $3), claim = NULL, last_error = $4
        WHERE id = $1 AND claim = $2`,
      [mail.id, mail.claim, retryMs / 1000, reason],
    );
  }

  private async measureBacklog(): Promise<void> {
    const [row] = await this.dataSource.query<{ waiting: number; oldest: string | number }[]>(
      `SELECT count(*)::int AS waiting, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS oldest
         FROM mail_outbox WHERE sent_at IS NULL AND abandoned_at IS NULL`,
    );
    this.metrics.mailWaiting.set(row?.waiting ?? 0);
    this.metrics.mailOldestWaiting.set(Number(row?.oldest ?? 0));
  }
}

/** An error's message only: a driver error's parameters (the link) never reach the log. */
function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${typeof code === 'string' ? `${code}: ` : ''}${error.message}`;
  }
  return String(error);
}
