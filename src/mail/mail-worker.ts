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
import { MailOutbox, MailRequestKind } from './mail-outbox';
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

interface ClaimedRow {
  id: string;
  template: MailTemplate | MailRequestKind;
  recipient: string;
  variables: MailVariables;
  attempts: number;
  created_at: Date;
  claim: string;
}

interface ClaimedMail extends ClaimedRow {
  template: MailTemplate;
}

/**
 * Runs on every instance: claims due mail from the outbox (FOR UPDATE SKIP LOCKED, so two instances never
 * claim one row), sends it, and marks it sent or schedules a retry with doubling back-off. A mail is
 * retried until MAIL_RETRY_FOR has passed since it was queued. Its variables (the link) are erased once it
 * is sent or given up. A request row is first resolved, in a transaction that holds the claim, into its
 * mail (then sent like any other) or dropped.
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
    private readonly outbox: MailOutbox,
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

  private async claim(): Promise<ClaimedRow[]> {
    const claim = randomUUID();
    const rows = await this.dataSource.query<[ClaimedRow[], number]>(
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
    return returnedRows<ClaimedRow>(rows);
  }

  private async deliver(row: ClaimedRow): Promise<void> {
    let mail: ClaimedMail | undefined;
    try {
      mail = await this.resolve(row);
    } catch (error) {
      // A request that could not be resolved (the database, the limiter) is retried like a failed send.
      await this.failed(row, error);
      return;
    }
    if (mail) await this.send(mail);
  }

  /** The mail a claimed row stands for; undefined when a request was dropped or the claim is gone. */
  private async resolve(row: ClaimedRow): Promise<ClaimedMail | undefined> {
    const resolver = this.outbox.resolverFor(row.template);
    if (!resolver) return row as ClaimedMail;
    const write = await resolver({
      kind: row.template as MailRequestKind,
      to: row.recipient,
      variables: row.variables,
    });
    return this.dataSource.transaction(async (manager) => {
      // Only the claim's holder may turn the row into a mail, or two instances could each mail a link.
      const held = await manager.query<unknown[]>(
        'SELECT 1 FROM mail_outbox WHERE id = $1 AND claim = $2 AND sent_at IS NULL FOR UPDATE',
        [row.id, row.claim],
      );
      if (held.length === 0) return undefined;
      if (!write) {
        await manager.query('DELETE FROM mail_outbox WHERE id = $1', [row.id]);
        return undefined;
      }
      const queued = await write(manager);
      await this.outbox.replaceRequest(manager, row.id, queued);
      return { ...row, template: queued.template, recipient: queued.to, variables: queued.variables };
    });
  }

  private async send(mail: ClaimedMail): Promise<void> {
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

  private async failed(mail: ClaimedRow, error: unknown): Promise<void> {
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
