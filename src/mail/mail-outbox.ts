import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type {
  DataSource,
  EntityManager,
  EntitySubscriberInterface,
  QueryRunner,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';
import { MetricsService } from '../metrics/metrics.service';
import type { MailTemplate, MailVariables } from './mail-templates';

export interface QueuedMail {
  template: MailTemplate;
  to: string;
  variables: MailVariables;
}

const QUEUED = Symbol('mail queued in this transaction');
type RunnerData = { [QUEUED]?: MailTemplate[] };

/**
 * The transactional outbox: a mail is a row written in the transaction of the change that needs it, so it
 * exists exactly when the change does; MailWorker sends it afterwards, on whichever instance claims it.
 */
@Injectable()
export class MailOutbox implements EntitySubscriberInterface {
  constructor(
    @InjectDataSource() dataSource: DataSource,
    private readonly metrics: MetricsService,
  ) {
    dataSource.subscribers.push(this);
  }

  async enqueue(manager: EntityManager, mail: QueuedMail): Promise<void> {
    const runner = manager.queryRunner;
    if (!runner?.isTransactionActive) {
      throw new Error('a mail is written in the transaction of the change that needs it');
    }
    await manager.query('INSERT INTO mail_outbox (template, recipient, variables) VALUES ($1, $2, $3)', [
      mail.template,
      mail.to,
      JSON.stringify(mail.variables),
    ]);
    const data = runner.data as RunnerData;
    (data[QUEUED] ??= []).push(mail.template);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    if (event.queryRunner.isTransactionActive) return;
    for (const template of takeQueued(event.queryRunner)) this.metrics.mailQueued.inc({ template });
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    if (!event.queryRunner.isTransactionActive) takeQueued(event.queryRunner);
  }
}

function takeQueued(runner: QueryRunner): MailTemplate[] {
  const data = runner.data as RunnerData;
  const queued = data[QUEUED] ?? [];
  delete data[QUEUED];
  return queued;
}
